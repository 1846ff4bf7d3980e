//! `shoal agent`: the process the driver starts on every host.
//!
//! It speaks frames on stdin/stdout (the ssh channel, or the pipes of a
//! local child), stores blocks in its cache, builds run work dirs, runs
//! task attempts in their own process groups and serves their outputs.
//! It owns nothing that outlives the driver: when the driver's link ends
//! (EOF), goes silent for longer than the lease, or the agent is sent
//! SIGTERM, SIGHUP or SIGINT, it kills every process it started and
//! everything those started (`tree`), removes the scratch of its runs and
//! exits. When it cannot (SIGKILL), its guardian (`guard`) does the same
//! for it, and the next agent on the host removes any scratch left
//! (`scratch`).

mod blocks;
pub mod container;
mod error;
mod failpoint;
mod file_error;
mod gate;
pub mod guard;
mod hostinfo;
mod private;
mod resident;
mod scratch;
mod session;
pub mod shuffle;
mod skip;
mod stdio;
mod task;
mod tree;
mod workdir;

use std::path::PathBuf;
use std::time::Duration;

pub use blocks::BlockStore;
pub use error::{AgentError, WorkdirError};
pub use file_error::FileError;
pub use session::run;

/// Bytes written before the first frame, so that the driver can skip
/// whatever a remote login shell printed first (motd, rc-file noise).
pub const START_MARKER: &[u8] = b"\x00SHOAL-AGENT\x00";

/// Options of `shoal agent`, set by the driver that starts it.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// Absolute work dir: `bin/`, `blocks/`, `runs/` live here.
    pub workdir: PathBuf,
    /// Silence from the driver longer than this ends the agent.
    pub lease: Duration,
    /// Upper bound of the block cache in bytes.
    pub cache_bytes: u64,
}

/// The first SIGTERM, SIGHUP or SIGINT: whoever sends it wants the agent
/// gone, and it goes the way it does at EOF, ending what it started.
pub(crate) async fn asked_to_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut watched: Vec<_> =
        [SignalKind::terminate(), SignalKind::hangup(), SignalKind::interrupt()].into_iter().filter_map(|k| signal(k).ok()).collect();
    let [term, hup, int] = &mut watched[..] else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = hup.recv() => {}
        _ = int.recv() => {}
    }
}
