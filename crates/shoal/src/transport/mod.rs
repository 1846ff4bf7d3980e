//! Transports start an agent on a host and hand back a [`Link`]: a frame
//! reader, an outbox, and the child process that carries them.
//!
//! - [`local`]: `shoal agent` as a child process of the driver.
//! - [`ssh`]: the system `ssh` client (never a re-implementation, so the
//!   user's `~/.ssh/config`, agents, ProxyJump and ControlMaster keep
//!   working), with self-deploy of the agent binary by content hash.
//!
//! Both finish with the same [`handshake`]: skip to the agent's start
//! marker, exchange `Hello`s, read `HostInfo`.

mod error;
pub mod local;
pub mod ssh;
mod stderr;

use std::time::{Duration, Instant};

use shoal_core::cluster::{HostSpec, TransportKind};
use shoal_wire::hello::Role;
use shoal_wire::{spawn_writer, FrameReader, Hello, HostInfo, Message, Outbox, WireError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::process::Child;

use crate::agent::START_MARKER;
use crate::binary;
pub use stderr::StderrTail;

/// The agent's side of a link, read by the driver: a child's stdout, or
/// a standing cluster's session.
pub type LinkReader = Box<dyn AsyncRead + Unpin + Send>;

/// An established link to one agent.
pub struct Link {
    pub reader: FrameReader<LinkReader>,
    pub outbox: Outbox,
    /// The process that carries the link (the agent, or `ssh`); none for a
    /// standing cluster's session, which ends with its connection.
    pub child: Option<Child>,
    pub stderr: StderrTail,
    pub info: HostInfo,
    pub stats: ConnectStats,
}

/// What connecting cost.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ConnectStats {
    /// Bytes of agent binary uploaded (0 when the host had it already).
    pub uploaded_bytes: u64,
    pub connect_ms: u64,
}

pub use error::{Refused, TransportError};

/// Starts an agent on `host` with the given lease.
pub async fn connect(host: &HostSpec, lease: Duration) -> Result<Link, TransportError> {
    let started = Instant::now();
    let mut link = match host.transport {
        TransportKind::Local => local::start(host, lease).await?,
        TransportKind::Ssh => ssh::start(host, lease).await?,
        TransportKind::Standing => crate::standing::link::start(host, lease).await?,
    };
    link.stats.connect_ms = started.elapsed().as_millis() as u64;
    Ok(link)
}

/// What the agent's stdout began with.
pub(crate) enum Greeting {
    /// The agent is up; these bytes followed the start marker.
    Agent(Vec<u8>),
    /// The bootstrap script found no binary; it reports `uname -sm`.
    NeedBinary(String),
    /// The stream ended before either.
    Eof(Vec<u8>),
}

const NEED: &[u8] = b"SHOAL-NEED ";

/// Reads until the start marker or a `SHOAL-NEED` line, skipping whatever a
/// login shell printed first (at most 64 KiB of it).
pub(crate) async fn greet<R: AsyncRead + Unpin>(out: &mut R) -> Result<Greeting, TransportError> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(i) = find(&seen, START_MARKER) {
            return Ok(Greeting::Agent(seen[i + START_MARKER.len()..].to_vec()));
        }
        if let Some(i) = find(&seen, NEED) {
            if let Some(end) = seen[i..].iter().position(|b| *b == b'\n') {
                let uname = String::from_utf8_lossy(&seen[i + NEED.len()..i + end]);
                return Ok(Greeting::NeedBinary(uname.trim().to_string()));
            }
        }
        if seen.len() > 64 * 1024 {
            return Err(TransportError::Chatter { head: String::from_utf8_lossy(&seen[..200]).into_owned() });
        }
        let n = out.read(&mut buf).await.map_err(TransportError::Read)?;
        if n == 0 {
            return Ok(Greeting::Eof(seen));
        }
        seen.extend_from_slice(&buf[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How long an agent has to end on its own once its stdin is closed, and
/// again after SIGTERM, before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// Ends an agent's transport the polite way. The caller has closed its
/// stdin (EOF: the agent ends what it started and exits); one still
/// there after `grace` is continued (it may be frozen) and sent SIGTERM,
/// which it handles the same way; only one that survives that too is
/// killed, and then its tasks may be left to their own lease.
pub async fn stop(mut child: Child, grace: Duration) {
    if tokio::time::timeout(grace, child.wait()).await.is_ok() {
        return;
    }
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: plain syscalls on our own child, not yet reaped.
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(pid, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(grace, child.wait()).await.is_ok() {
        return;
    }
    let _ = child.kill().await;
}

/// Exchanges `Hello`s and reads `HostInfo` on a freshly started agent.
pub(crate) async fn handshake(
    mut child: Child,
    stdout: tokio::process::ChildStdout,
    prefix: Vec<u8>,
    stderr: StderrTail,
) -> Result<Link, TransportError> {
    let stdin = child.stdin.take().ok_or(TransportError::NotPiped("agent stdin"))?;
    handshake_over(Some(child), stdin, Box::new(stdout), prefix, stderr).await
}

/// [`handshake`] over any pair of streams to an agent.
pub(crate) async fn handshake_over<W: AsyncWrite + Unpin + Send + 'static>(
    child: Option<Child>,
    stdin: W,
    stdout: LinkReader,
    prefix: Vec<u8>,
    stderr: StderrTail,
) -> Result<Link, TransportError> {
    let (outbox, _writer) = spawn_writer(stdin);
    let mut reader = FrameReader::with_prefix(stdout, &prefix);
    let hash = binary::current().map(|b| b.hash.clone()).unwrap_or_default();
    outbox.send_now(Message::Hello(Hello::new(Role::Driver, hash))).map_err(|e| TransportError::wire(e, String::new()))?;
    let hello = expect(&mut reader, &stderr).await?;
    let Message::Hello(h) = hello else {
        return Err(TransportError::NotHello { got: format!("{hello:?}") });
    };
    h.check().map_err(|e| TransportError::wire(e, String::new()))?;
    let info = match expect(&mut reader, &stderr).await? {
        Message::HostInfo(i) => i,
        other => return Err(TransportError::NoHostInfo { got: format!("{other:?}") }),
    };
    Ok(Link { reader, outbox, child, stderr, info, stats: ConnectStats::default() })
}

async fn expect(reader: &mut FrameReader<LinkReader>, stderr: &StderrTail) -> Result<Message, TransportError> {
    let wrap = |e: WireError| TransportError::wire(e, stderr.text());
    loop {
        match reader.read_message().await.map_err(wrap)? {
            Some(Message::Heartbeat) => continue,
            Some(m) => return Ok(m),
            None => return Err(TransportError::Exited { stderr: stderr.text() }),
        }
    }
}
