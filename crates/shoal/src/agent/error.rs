//! Why an agent ended before its driver let it go: its work dir, its
//! block store, its link to the driver. The binary (`shoal agent`, or a
//! Dataset program started as an agent) prints it and exits 1; the driver
//! sees the agent's stderr tail with this message.

use std::time::Duration;

use shoal_wire::WireError;

pub use super::private::WorkdirError;

/// What ended an agent with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The work dir is missing, cannot be made, or is open to others.
    #[error(transparent)]
    Workdir(#[from] WorkdirError),
    /// The block cache under the work dir cannot be opened.
    #[error("cannot open the block store {path}: {source}")]
    Blocks {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The start marker could not be written to stdout.
    #[error("cannot write to the driver: {0}")]
    Announce(#[source] std::io::Error),
    /// The link to the driver broke, or the driver speaks another protocol.
    #[error(transparent)]
    Link(#[from] WireError),
    /// The driver's first message was not a `Hello`.
    #[error("expected a hello from the driver, got {got}")]
    NoHello { got: String },
    /// The driver was silent for longer than the lease.
    #[error("no word from the driver for {lease:?}: lease expired")]
    LeaseExpired { lease: Duration },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_ended_the_agent() {
        let lease = AgentError::LeaseExpired { lease: Duration::from_secs(30) };
        assert_eq!(lease.to_string(), "no word from the driver for 30s: lease expired");
        let hello = AgentError::NoHello { got: "None".into() };
        assert_eq!(hello.to_string(), "expected a hello from the driver, got None");
        let version = AgentError::from(WireError::Version { ours: 7, theirs: 9 });
        assert_eq!(version.to_string(), "protocol version mismatch: we speak 7, the peer speaks 9");
        let blocks = AgentError::Blocks { path: "/w/blocks".into(), source: std::io::Error::other("read-only file system") };
        assert_eq!(blocks.to_string(), "cannot open the block store /w/blocks: read-only file system");
    }
}
