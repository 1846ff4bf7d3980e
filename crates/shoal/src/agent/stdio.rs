//! The agent's link: its stdin and stdout, as async streams.
//!
//! tokio's own `stdin()`/`stdout()` do every read and write on a blocking
//! thread, which costs two thread hand-offs per call: at thousands of
//! small task messages a second, that was most of what the agent did. When
//! they are pipes (a local agent's always are; sshd gives a session pipes
//! too), they are read and written through the runtime's poller instead.
//! Anything else (a socket, a file, a terminal) falls back to tokio's
//! stdio, which works for every kind of descriptor.

use std::os::fd::{FromRawFd, OwnedFd};
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

pub type Reader = Pin<Box<dyn AsyncRead + Send>>;
pub type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// The agent's stdin and stdout. Call it inside the runtime.
pub fn link() -> (Reader, Writer) {
    let reader: Reader = match dup(0).and_then(|fd| pipe::Receiver::from_owned_fd(fd).ok()) {
        Some(r) => Box::pin(r),
        None => Box::pin(tokio::io::stdin()),
    };
    let writer: Writer = match dup(1).and_then(|fd| pipe::Sender::from_owned_fd(fd).ok()) {
        Some(w) => Box::pin(w),
        None => Box::pin(tokio::io::stdout()),
    };
    (reader, writer)
}

/// A descriptor of our own for `fd`, so that std's handles stay valid.
/// Close-on-exec: a task that inherited the link would hold the ssh
/// session open after the agent died, and the driver would learn of the
/// loss only from the heartbeat timeout.
fn dup(fd: i32) -> Option<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) returns a fresh descriptor we then own, or -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    // SAFETY: `new` is open and owned by nobody else.
    (new >= 0).then(|| unsafe { OwnedFd::from_raw_fd(new) })
}
