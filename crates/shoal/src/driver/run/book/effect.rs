//! What the run book asks the async layer to do ([`Effect`]), and what the
//! layer reports back when work it started off the run loop ends
//! ([`Internal`]).
//!
//! Hosts are indices into the run's host list, attempts and tasks the
//! scheduler's numbers. An effect carries what the book knows (which
//! buckets, which output, whether skip mode is on); the layer adds what
//! only it has (the host's link, its name, its `RunEnv`).

use std::path::PathBuf;
use std::sync::Arc;

use shoal_wire::{Bucket, Hash, TaskReport};

/// Something the layer must do, in the order given.
#[derive(Debug, PartialEq)]
pub enum Effect {
    /// Send the attempt's `RunTask` now: its input travels inside it, or
    /// it has none.
    Start(Launch),
    /// Upload the task's input block if the host lacks it, then start it
    /// (`Internal::Uploaded`, or `Internal::LaunchFailed`).
    Upload(Launch),
    /// Make the reducer's host hold these buckets, then start it
    /// (`Internal::Shuffled`, `Internal::FetchFailed` or
    /// `Internal::LaunchFailed`).
    Stage { launch: Launch, buckets: Vec<Needed> },
    /// Ask the host to kill the attempt.
    Kill { host: usize, attempt: u32 },
    /// Fetch a committed output block into `file`
    /// (`Internal::Collected` or `Internal::CollectFailed`).
    Fetch { task: u32, attempt: u32, host: usize, hash: Hash, size: u64, file: PathBuf },
    /// Write an output that came inline, too large for its journal line, to
    /// `file` and sync it (`Internal::Collected` or `Internal::CannotKeep`).
    Write { task: u32, attempt: u32, hash: Hash, data: Vec<u8>, file: PathBuf },
    /// Write the commit's journal line, then tell the book
    /// ([`super::RunBook::on_journaled`]) or fail the run.
    Journal(Committed),
    /// An attempt ended by a SIGKILL the driver did not send: the host may
    /// be going down. Hand the report back
    /// ([`super::RunBook::on_held_report`]) after a moment, unless the
    /// host was lost meanwhile.
    HoldBack { host: usize, report: Box<TaskReport> },
    /// A report the book did not believe.
    Ignored(Ignored),
    /// A line for the user.
    Note(String),
}

/// One attempt to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    pub task: u32,
    pub attempt: u32,
    pub host: usize,
    /// `skip_bad` of its request: skip mode, with the job's limit.
    pub skip_bad: Option<u32>,
}

/// A committed output the driver holds, to be journaled.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    pub task: u32,
    pub attempt: u32,
    pub host: usize,
    pub file: PathBuf,
    pub size: u64,
    /// Its BLAKE3, in hex.
    pub hash: String,
    /// The bytes of a small output, kept in memory and in the journal line.
    pub data: Option<Arc<[u8]>>,
}

/// One bucket a reducer needs: from map `map`, held on host `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needed {
    pub map: u32,
    pub from: usize,
    pub bucket: Bucket,
}

/// A report from `host` for `attempt` that does not count, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    pub host: usize,
    pub attempt: u32,
    /// "an attempt that was never sent", ...
    pub why: String,
}

/// What became of work the layer did off the run loop.
#[derive(Debug)]
pub enum Internal {
    /// A reduce could not get its input: map `from_task`'s host is gone.
    FetchFailed { task: u32, attempt: u32, from_task: u32 },
    /// Shuffle bytes staged for a reducer: through the driver, and
    /// fetched by the reducer's host straight from its peers.
    Shuffled { relayed: u64, direct: u64 },
    /// An input staged for a task from a host that held it: bytes through
    /// the driver, and fetched by the task's host straight from the holder.
    InputMoved { relayed: u64, direct: u64 },
    /// A task's input, a cached part only a host held (`hash`), cannot be
    /// had any more: the run stops, and the program makes it again.
    InputLost { hash: shoal_wire::Hash, why: String },
    /// A connection to a host's peer listener was refused.
    PeerRefused,
    /// An input upload: bytes sent, and bytes the host already held.
    Uploaded { host: usize, sent: u64, skipped: u64 },
    /// A committed output is in the run dir (`data` when kept in memory).
    Collected { task: u32, attempt: u32, file: PathBuf, size: u64, hash: String, data: Option<Arc<[u8]>> },
    /// Fetching an output failed (the host's loss, if that is why, is
    /// reported on its own).
    CollectFailed { host: usize, why: String },
    /// The driver cannot write an output into its own run dir: the run
    /// cannot commit, so it stops.
    CannotKeep { why: String },
    /// An attempt could not be started; `gone` when its host is gone (the
    /// loss is reported on its own).
    LaunchFailed { task: u32, attempt: u32, why: String, gone: bool },
}
