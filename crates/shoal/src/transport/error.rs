//! Why a transport could not start an agent, one variant per way it
//! fails, so that a caller can tell a host that is down from a binary
//! built for another platform or a work dir that is not safe to use.
//!
//! The messages are the sentences the user sees after `host `NAME`: `
//! (the driver adds the host name): each says what failed and, where we
//! know, what to do. A remote stderr tail is kept as text and shown after
//! `; stderr: ` when there is any.

use std::path::PathBuf;
use std::process::ExitStatus;

use shoal_wire::WireError;

use crate::quote::QuoteError;

/// What a bootstrap or installer script refused to do with an unsafe
/// work dir (its `SHOAL-UNSAFE` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Start the agent binary that is there.
    Start,
    /// Upload the agent binary into the work dir.
    Upload,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Start => "started",
            Refused::Upload => "uploaded",
        })
    }
}

/// Why a transport failed; the driver adds the host name.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The driver cannot find its own executable (the local agent).
    #[error("cannot find our own executable: {0}")]
    OwnExecutable(#[source] std::io::Error),
    /// The binary to deploy (ours, or the host's `agent_binary`) cannot be read.
    #[error("cannot read the agent binary: {0}")]
    AgentBinary(#[source] std::io::Error),
    /// Reading the binary failed while it was being uploaded.
    #[error("cannot read {}: {source}", path.display())]
    ReadBinary {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A standing cluster's session could not be had (its sentence says why).
    #[error("{0}")]
    Standing(String),
    /// The local agent process could not be started.
    #[error("cannot start a local agent: {0}")]
    SpawnLocal(#[source] std::io::Error),
    /// The `ssh` client could not be started.
    #[error("cannot run the ssh client: {0}; is OpenSSH installed?")]
    SpawnSsh(#[source] std::io::Error),
    /// Waiting for the `ssh` client failed.
    #[error("cannot wait for the ssh client: {0}")]
    Wait(#[source] std::io::Error),
    /// A pipe of the child was not set up (a bug in shoal).
    #[error("{0} is not piped")]
    NotPiped(&'static str),
    /// A remote command line could not be quoted safely.
    #[error(transparent)]
    Quote(#[from] QuoteError),
    /// Reading the agent's first bytes failed.
    #[error("reading from the agent: {0}")]
    Read(#[source] std::io::Error),
    /// A login shell printed too much before the agent started.
    #[error("the remote shell printed 64 KiB without starting the agent; it began with: {head}")]
    Chatter { head: String },
    /// The bootstrap script refused an unsafe work dir (`SHOAL-UNSAFE`).
    #[error("the agent was not {refused}: {reason}")]
    Unsafe { refused: Refused, reason: String },
    /// The host's platform differs from this binary's.
    #[error(
        "the host runs `{remote}` but this shoal binary is built for `{local}`; build shoal for that platform and set `agent_binary = \"path/to/shoal\"` for this host in the cluster file"
    )]
    Arch { remote: String, local: String },
    /// The installer script failed.
    #[error("uploading the agent to {workdir}/bin failed ({status}){}", suffix(stderr))]
    Upload { workdir: String, status: ExitStatus, stderr: String },
    /// The binary was uploaded, and the bootstrap still did not find it.
    #[error("the agent binary was uploaded but still not found; is the work dir on a file system mounted noexec?")]
    StillMissing,
    /// No start marker (nor a request for the binary) in time.
    #[error("no answer within {secs}s; the host may be down or cut off{}", suffix(stderr))]
    Timeout { secs: u64, stderr: String },
    /// ssh itself failed (exit status 255): its last line and a hint.
    #[error("ssh to {address} failed: {message}{hint}")]
    Ssh { address: String, message: String, hint: &'static str },
    /// The remote command ended without starting the agent.
    #[error(
        "the agent did not start (exit status {}); stdout: {stdout:?}{}",
        status.map_or("none".into(), |c| c.to_string()),
        suffix(stderr)
    )]
    Bootstrap { status: Option<i32>, stdout: String, stderr: String },
    /// The local agent ended before its start marker.
    #[error("the local agent did not start{}", suffix(stderr))]
    LocalNoStart { stderr: String },
    /// The agent speaks another protocol version.
    #[error("protocol version mismatch: we speak {ours}, the peer speaks {theirs}{}", suffix(stderr))]
    VersionMismatch { ours: u32, theirs: u32, stderr: String },
    /// The link broke, or carried something that is not a frame, during
    /// the handshake.
    #[error("{source}{}", suffix(stderr))]
    Handshake {
        #[source]
        source: WireError,
        stderr: String,
    },
    /// The agent's first message was not a `Hello`.
    #[error("the agent's first message was not a hello: {got}")]
    NotHello { got: String },
    /// The agent's second message was not its `HostInfo`.
    #[error("expected host facts from the agent, got {got}")]
    NoHostInfo { got: String },
    /// The agent closed its stdout during the handshake.
    #[error("the agent exited during the handshake{}", suffix(stderr))]
    Exited { stderr: String },
}

impl TransportError {
    /// A wire error of the handshake, with the agent's stderr so far; a
    /// version mismatch gets a variant of its own.
    pub(crate) fn wire(e: WireError, stderr: String) -> Self {
        match e {
            WireError::Version { ours, theirs } => TransportError::VersionMismatch { ours, theirs, stderr },
            source => TransportError::Handshake { source, stderr },
        }
    }
}

/// `"; stderr: <text>"` when there is any, for appending to a message.
fn suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {stderr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_mismatch_is_its_own_variant_with_the_same_sentence() {
        let e = TransportError::wire(WireError::Version { ours: 7, theirs: 9 }, String::new());
        assert!(matches!(e, TransportError::VersionMismatch { ours: 7, theirs: 9, .. }));
        assert_eq!(e.to_string(), WireError::Version { ours: 7, theirs: 9 }.to_string());
        let e = TransportError::wire(WireError::Closed("mid-frame"), "agent: boom".into());
        assert!(matches!(e, TransportError::Handshake { source: WireError::Closed(_), .. }));
        assert_eq!(e.to_string(), "the connection closed mid-frame; stderr: agent: boom");
    }

    #[test]
    fn messages_keep_their_sentences() {
        let table: Vec<(TransportError, &str)> = vec![
            (
                TransportError::Unsafe { refused: Refused::Start, reason: "/w/bin is a symlink".into() },
                "the agent was not started: /w/bin is a symlink",
            ),
            (
                TransportError::Unsafe { refused: Refused::Upload, reason: "/w/bin is a symlink".into() },
                "the agent was not uploaded: /w/bin is a symlink",
            ),
            (
                TransportError::Timeout { secs: 70, stderr: String::new() },
                "no answer within 70s; the host may be down or cut off",
            ),
            (
                TransportError::Ssh {
                    address: "10.0.0.1".into(),
                    message: "Connection refused".into(),
                    hint: "; is sshd running on that host and port?",
                },
                "ssh to 10.0.0.1 failed: Connection refused; is sshd running on that host and port?",
            ),
            (
                TransportError::Bootstrap { status: Some(127), stdout: "".into(), stderr: "sh: 1: exec: nope".into() },
                "the agent did not start (exit status 127); stdout: \"\"; stderr: sh: 1: exec: nope",
            ),
            (
                TransportError::Bootstrap { status: None, stdout: "motd".into(), stderr: String::new() },
                "the agent did not start (exit status none); stdout: \"motd\"",
            ),
            (TransportError::Exited { stderr: "panic".into() }, "the agent exited during the handshake; stderr: panic"),
            (TransportError::LocalNoStart { stderr: String::new() }, "the local agent did not start"),
            (TransportError::NotPiped("ssh stdout"), "ssh stdout is not piped"),
            (
                TransportError::Arch { remote: "Linux aarch64".into(), local: "Linux x86_64".into() },
                "the host runs `Linux aarch64` but this shoal binary is built for `Linux x86_64`; build shoal for that platform and set `agent_binary = \"path/to/shoal\"` for this host in the cluster file",
            ),
            (
                TransportError::SpawnSsh(std::io::Error::from(std::io::ErrorKind::NotFound)),
                "cannot run the ssh client: entity not found; is OpenSSH installed?",
            ),
        ];
        for (e, want) in table {
            assert_eq!(e.to_string(), want, "{e:?}");
        }
    }
}
