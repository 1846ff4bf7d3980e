//! Errors of the wire layer: I/O, a malformed frame, an undecodable message,
//! or a peer that speaks another protocol.

use std::io;

/// Everything that can go wrong while moving messages.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection I/O failed: {0}")]
    Io(#[from] io::Error),
    #[error("invalid frame: {0}")]
    Frame(#[from] crate::frame::FrameError),
    #[error("undecodable message ({0}); the peer may run another version of shoal")]
    Decode(#[from] postcard::Error),
    #[error("the peer is not a shoal agent or driver: {0}")]
    NotShoal(String),
    #[error("protocol version mismatch: we speak {ours}, the peer speaks {theirs}")]
    Version { ours: u32, theirs: u32 },
    #[error("the connection closed {0}")]
    Closed(&'static str),
    /// A message too large for one frame. Only the message fails: it is
    /// refused before it is queued, and the link goes on.
    #[error("the {what} message is {len} bytes, over the link's limit of {max} bytes", max = crate::frame::MAX_FRAME)]
    Unsendable { what: &'static str, len: usize },
}
