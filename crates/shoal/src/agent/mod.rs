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
pub use shoal_wire::agent_args::AgentArgs;

/// Bytes written before the first frame, so that the driver can skip
/// whatever a remote login shell printed first (motd, rc-file noise).
pub const START_MARKER: &[u8] = b"\x00SHOAL-AGENT\x00";

/// Options of `shoal agent`, set by the driver that starts it. Its command
/// line is [`AgentArgs`] (the contract with the transports); this is what
/// the agent makes of it.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// Absolute work dir: `bin/`, `blocks/`, `runs/` live here.
    pub workdir: PathBuf,
    /// Silence from the driver longer than this ends the agent.
    pub lease: Duration,
    /// Upper bound of the block cache in bytes.
    pub cache_bytes: u64,
}

/// The agent's work dir cannot be made or found.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the work dir {}: {source}; give the host a `workdir` in the cluster file that this user may create", path.display())]
pub struct MakeWorkdirError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl AgentOptions {
    /// The options of an agent started with `args`: the work dir is
    /// created if missing and made absolute, since the agent later runs
    /// tasks in other directories.
    pub fn from_args(args: AgentArgs) -> Result<AgentOptions, MakeWorkdirError> {
        let fail = |source| MakeWorkdirError { path: args.workdir.clone(), source };
        std::fs::create_dir_all(&args.workdir).map_err(fail)?;
        let workdir = args.workdir.canonicalize().map_err(fail)?;
        Ok(AgentOptions { workdir, lease: args.lease, cache_bytes: args.cache_bytes })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_dir_is_created_and_made_absolute() {
        let d = tempfile::tempdir().unwrap();
        let args = AgentArgs::new(d.path().join("a/../w")).with_lease(Duration::from_millis(5));
        let o = AgentOptions::from_args(args).unwrap();
        assert_eq!(o.workdir, d.path().canonicalize().unwrap().join("w"));
        assert_eq!((o.lease, o.cache_bytes), (Duration::from_millis(5), AgentArgs::DEFAULT_CACHE_BYTES));
    }

    #[test]
    fn a_work_dir_that_cannot_be_made_is_named() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("file"), "").unwrap();
        let bad = d.path().join("file/w");
        let err = AgentOptions::from_args(AgentArgs::new(&bad)).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("cannot create the work dir {}: Not a directory (os error 20); give the host a `workdir` in the cluster file that this user may create", bad.display())
        );
    }
}
