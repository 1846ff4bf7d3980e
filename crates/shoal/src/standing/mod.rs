//! A standing cluster: the same agents with a longer lease.
//!
//! `shoal cluster up` starts a coordinator on this machine and a worker
//! daemon on every host of the cluster file (over ssh, with the usual
//! self-deploy); both survive the terminal. `shoal run ... --on NAME`
//! then applies to the coordinator, gets a share of the workers' slots,
//! and runs exactly as in ephemeral mode, except that each host's agent
//! is started by its worker through a session the coordinator bridges,
//! instead of by ssh: no connect, no deploy per job.
//!
//! - [`secure`]: the Noise `IK` connections (nothing is decoded before
//!   the handshake has authenticated the peer's key and role);
//! - [`access`]: the keys and access files, owner-only;
//! - [`proto`]: what is said on those connections;
//! - [`coordinator`], [`worker`]: the two daemons;
//! - [`link`]: the driver's side (the application, the `standing`
//!   transport);
//! - [`control`]: `up`, `status`, `down`;
//! - [`slurm`]: workers started by a Slurm allocation.

pub mod access;
pub mod control;
pub mod coordinator;
pub mod link;
pub mod proto;
pub mod secure;
pub mod slurm;
pub mod worker;

#[cfg(test)]
mod tests;

pub use access::{Access, AccessError, ClusterFiles};

/// Why a standing-cluster command failed: a sentence that says what and
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum StandingError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Secure(#[from] secure::SecureError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Said(String),
}

/// `Err(StandingError::Said(...))` from a format string.
macro_rules! said {
    ($($t:tt)*) => { $crate::standing::StandingError::Said(format!($($t)*)) };
}
pub(crate) use said;

/// A standing-cluster result.
pub type Result<T, E = StandingError> = std::result::Result<T, E>;
