//! One Noise session over TCP: a handshake bound to a run's key and id,
//! then encrypted messages, each sent as a 2-byte big-endian length and
//! the ciphertext.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::RunKey;

/// The Noise protocol of every peer connection: no static keys, both
/// sides authenticated by the pre-shared run key mixed in first (psk0),
/// which also makes the initiator's first message fail at once without it.
pub const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";

/// Most bytes of plain text in one message (Noise's limit less the tag).
pub const MAX_PLAIN: usize = 65535 - 16;

/// A message on the wire: its length, then at most 65535 bytes.
const WIRE: usize = 2 + 65535;

/// How long one message may take to arrive or to be sent once a session
/// is up: a peer that stalls longer is broken, and its blocks go through
/// the driver.
pub const MESSAGE_LIMIT: Duration = Duration::from_secs(60);

/// How long a peer may take to complete the handshake.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

/// Why a session could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The other side is not a peer of this run: the authentication of
    /// its handshake failed (a wrong key, another run's key, not Shoal).
    #[error("the handshake failed: not a peer of this run (wrong key, another run's key, or not a Shoal agent)")]
    NotAPeer,
    #[error("no handshake within {0}s")]
    Slow(u64),
    #[error("the peer stalled: nothing within {0}s")]
    Stalled(u64),
    #[error("the connection closed before the handshake ended")]
    Closed,
    /// The listener hung up on our handshake: it holds another key.
    #[error("the peer hung up on the handshake: it does not hold this run's key (another run, or not this run's peer)")]
    Rejected,
    #[error("a message failed authentication: the session is broken")]
    Broken,
}

/// An established session.
pub struct Channel {
    stream: TcpStream,
    noise: snow::TransportState,
    /// Ciphertext of the message being read or written.
    wire: Vec<u8>,
}

fn prologue(run: &str) -> Vec<u8> {
    let mut p = b"shoal-peer-1\0".to_vec();
    p.extend_from_slice(run.as_bytes());
    p
}

fn builder<'a>(key: &'a RunKey, prologue: &'a [u8]) -> snow::Builder<'a> {
    let params = PATTERN.parse().expect("a valid Noise pattern");
    snow::Builder::new(params).psk(0, &key.0).expect("psk location 0").prologue(prologue).expect("one prologue")
}

impl Channel {
    /// Connects to a peer of `run` at `addr` and completes the handshake,
    /// all within `limit`.
    pub async fn connect(addr: &str, run: &str, key: &RunKey, limit: Duration) -> Result<Channel, ChannelError> {
        tokio::time::timeout(limit, async {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let p = prologue(run);
            let mut hs = builder(key, &p).build_initiator().expect("initiator");
            let mut wire = vec![0u8; WIRE];
            let n = hs.write_message(&[], &mut wire).map_err(|_| ChannelError::NotAPeer)?;
            let mut ch = Handshaking { stream, wire };
            ch.write(n).await?;
            // A listener closes on a handshake it cannot authenticate.
            let n = ch.read().await.map_err(|e| match e {
                ChannelError::Closed => ChannelError::Rejected,
                e => e,
            })?;
            let mut payload = [0u8; 64];
            hs.read_message(&ch.wire[..n], &mut payload).map_err(|_| ChannelError::NotAPeer)?;
            let noise = hs.into_transport_mode().map_err(|_| ChannelError::NotAPeer)?;
            Ok(Channel { stream: ch.stream, noise, wire: ch.wire })
        })
        .await
        .map_err(|_| ChannelError::Slow(limit.as_secs()))?
    }

    /// Completes the handshake of a connection a peer opened. Nothing the
    /// peer sent is parsed before the Noise implementation has checked
    /// its first message against the run's key and id.
    pub async fn accept(stream: TcpStream, run: &str, key: &RunKey) -> Result<Channel, ChannelError> {
        tokio::time::timeout(HANDSHAKE_LIMIT, async {
            stream.set_nodelay(true)?;
            let p = prologue(run);
            let mut hs = builder(key, &p).build_responder().expect("responder");
            let mut ch = Handshaking { stream, wire: vec![0u8; WIRE] };
            let n = ch.read().await?;
            let mut payload = [0u8; 64];
            hs.read_message(&ch.wire[..n], &mut payload).map_err(|_| ChannelError::NotAPeer)?;
            let n = hs.write_message(&[], &mut ch.wire).map_err(|_| ChannelError::NotAPeer)?;
            ch.write(n).await?;
            let noise = hs.into_transport_mode().map_err(|_| ChannelError::NotAPeer)?;
            Ok(Channel { stream: ch.stream, noise, wire: ch.wire })
        })
        .await
        .map_err(|_| ChannelError::Slow(HANDSHAKE_LIMIT.as_secs()))?
    }

    /// Encrypts and sends one message of at most [`MAX_PLAIN`] bytes.
    pub async fn send(&mut self, plain: &[u8]) -> Result<(), ChannelError> {
        debug_assert!(plain.len() <= MAX_PLAIN);
        let n = self.noise.write_message(plain, &mut self.wire[2..]).map_err(|_| ChannelError::Broken)?;
        self.wire[..2].copy_from_slice(&(n as u16).to_be_bytes());
        match tokio::time::timeout(MESSAGE_LIMIT, self.stream.write_all(&self.wire[..2 + n])).await {
            Ok(written) => Ok(written?),
            Err(_) => Err(ChannelError::Stalled(MESSAGE_LIMIT.as_secs())),
        }
    }

    /// Receives and decrypts one message into `plain` (replacing what it
    /// held); `Ok(false)` at a clean end of the stream between messages.
    pub async fn recv(&mut self, plain: &mut Vec<u8>) -> Result<bool, ChannelError> {
        match tokio::time::timeout(MESSAGE_LIMIT, self.recv_now(plain)).await {
            Ok(got) => got,
            Err(_) => Err(ChannelError::Stalled(MESSAGE_LIMIT.as_secs())),
        }
    }

    async fn recv_now(&mut self, plain: &mut Vec<u8>) -> Result<bool, ChannelError> {
        let mut len = [0u8; 2];
        match self.stream.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let n = u16::from_be_bytes(len) as usize;
        self.stream.read_exact(&mut self.wire[..n]).await?;
        plain.resize(MAX_PLAIN, 0);
        let got = self.noise.read_message(&self.wire[..n], plain).map_err(|_| ChannelError::Broken)?;
        plain.truncate(got);
        Ok(true)
    }
}

/// A connection during its handshake: raw length-prefixed messages.
struct Handshaking {
    stream: TcpStream,
    wire: Vec<u8>,
}

impl Handshaking {
    async fn write(&mut self, n: usize) -> Result<(), ChannelError> {
        let mut out = Vec::with_capacity(n + 2);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&self.wire[..n]);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    async fn read(&mut self) -> Result<usize, ChannelError> {
        let mut len = [0u8; 2];
        let closed = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => ChannelError::Closed,
            _ => ChannelError::Io(e),
        };
        self.stream.read_exact(&mut len).await.map_err(closed)?;
        let n = u16::from_be_bytes(len) as usize;
        self.stream.read_exact(&mut self.wire[..n]).await.map_err(closed)?;
        Ok(n)
    }
}
