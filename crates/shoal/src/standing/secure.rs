//! The standing cluster's connections: Noise `IK` over TCP.
//!
//! Every connection to the coordinator (a driver's, a link's, a worker's)
//! starts with a `Noise_IK_25519_ChaChaPoly_BLAKE2s` handshake by the
//! `snow` crate: the initiator knows the coordinator's static public key
//! (from its access file) and proves its own static key; the first
//! handshake message's payload, encrypted and authenticated with it, is
//! the role the initiator claims. The coordinator accepts a connection
//! only when the Noise implementation has authenticated that message and
//! the static key is the cluster's key for that role: a client key can
//! never act as a worker, nor a worker key submit work. Until then not a
//! byte the other side sent has been parsed by Shoal; the prologue binds
//! the session to the cluster's name.
//!
//! After the handshake, messages are sent as a 2-byte length and the
//! ciphertext (at most 65535 bytes). A typed message ([`Sender::send`])
//! is its postcard encoding behind a 4-byte length, cut into as many
//! Noise messages as it needs; raw byte streams (a bridged agent link)
//! go one chunk per Noise message. A replayed handshake gets an answer
//! its sender cannot use, and its next message fails authentication.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The Noise protocol of every standing-cluster connection.
pub const PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";

/// Most bytes of plain text in one Noise message.
pub const MAX_PLAIN: usize = 65535 - 16;

/// Largest typed message accepted (a status of thousands of hosts fits).
const MAX_MESSAGE: usize = 64 << 20;

/// How long a handshake may take.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(5);

/// The role a connection claims in its first handshake message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A driver, a link, `shoal cluster status/down`: holds the client key.
    Client,
    /// A worker daemon, or one of its agent sessions: holds the worker key.
    Worker,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Client => 1,
            Role::Worker => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Role> {
        match b {
            1 => Some(Role::Client),
            2 => Some(Role::Worker),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Worker => "worker",
        }
    }
}

/// Why a connection was refused or broke.
#[derive(Debug, thiserror::Error)]
pub enum SecureError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The first handshake message did not authenticate: garbage, not
    /// Shoal, or a key for another coordinator (another cluster).
    #[error("the handshake did not authenticate (garbage, not Shoal, or another cluster's key)")]
    NotAuthentic,
    /// It authenticated, but with a key this cluster does not hold for
    /// the role it claimed.
    #[error("a {claimed} connection with a key that is not this cluster's {claimed} key")]
    WrongKey { claimed: &'static str },
    #[error("no handshake within {0}s")]
    Slow(u64),
    /// Authenticated, then silent: nothing asked within the limit.
    #[error("it said nothing within {0}s of its handshake")]
    Silent(u64),
    /// The coordinator hung up during the handshake: it refused our key.
    #[error("the coordinator refused the handshake: this access file's key is not one it accepts (an old access file of a cluster brought up again, or another cluster's)")]
    Refused,
    #[error("the connection closed during the handshake")]
    Closed,
    /// A message after the handshake failed authentication (a replay, a
    /// tampered or injected message).
    #[error("a message failed authentication: the session is broken")]
    Broken,
    #[error("a message cannot be read: {0}")]
    Decode(String),
    #[error("a message of {0} bytes is larger than any this protocol sends")]
    TooLarge(usize),
}

/// A static X25519 key pair.
#[derive(Clone)]
pub struct KeyPair {
    pub private: [u8; 32],
    pub public: [u8; 32],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair {{ public: {}, private: (hidden) }}", shoal_wire::hex(&self.public))
    }
}

impl KeyPair {
    /// A fresh key pair from the OS's random source.
    pub fn generate() -> KeyPair {
        let kp = builder().generate_keypair().expect("x25519 key generation");
        let mut out = KeyPair { private: [0; 32], public: [0; 32] };
        out.private.copy_from_slice(&kp.private);
        out.public.copy_from_slice(&kp.public);
        out
    }
}

fn builder<'a>() -> snow::Builder<'a> {
    snow::Builder::new(PATTERN.parse().expect("a valid Noise pattern"))
}

fn prologue(cluster: &str) -> Vec<u8> {
    let mut p = b"shoal-cluster-1\0".to_vec();
    p.extend_from_slice(cluster.as_bytes());
    p
}

/// What the coordinator accepts: its own key, and per role the one
/// public key allowed to claim it.
pub struct Acceptor {
    pub cluster: String,
    pub own: KeyPair,
    pub client: [u8; 32],
    pub worker: [u8; 32],
}

/// An established session, before it is split.
pub struct Secure {
    stream: TcpStream,
    noise: snow::TransportState,
}

/// Connects to the coordinator at `addr` as `role` and completes the
/// handshake.
pub async fn connect(addr: &str, cluster: &str, own: &KeyPair, coordinator: &[u8; 32], role: Role) -> Result<Secure, SecureError> {
    tokio::time::timeout(HANDSHAKE_LIMIT, async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let p = prologue(cluster);
        let mut hs = builder()
            .local_private_key(&own.private)
            .and_then(|b| b.remote_public_key(coordinator))
            .and_then(|b| b.prologue(&p))
            .and_then(|b| b.build_initiator())
            .map_err(|_| SecureError::NotAuthentic)?;
        let mut wire = vec![0u8; 65535];
        let n = hs.write_message(&[role.byte()], &mut wire).map_err(|_| SecureError::NotAuthentic)?;
        write_raw(&mut stream, &wire[..n]).await?;
        let n = read_raw(&mut stream, &mut wire).await.map_err(|e| match e {
            SecureError::Closed => SecureError::Refused,
            e => e,
        })?;
        let mut payload = [0u8; 64];
        hs.read_message(&wire[..n], &mut payload).map_err(|_| SecureError::NotAuthentic)?;
        let noise = hs.into_transport_mode().map_err(|_| SecureError::NotAuthentic)?;
        Ok(Secure { stream, noise })
    })
    .await
    .map_err(|_| SecureError::Slow(HANDSHAKE_LIMIT.as_secs()))?
}

/// Completes the handshake of a connection that came in; returns the
/// session and the role it proved. A refused connection is closed
/// without an answer.
pub async fn accept(mut stream: TcpStream, acceptor: &Acceptor) -> Result<(Secure, Role), SecureError> {
    tokio::time::timeout(HANDSHAKE_LIMIT, async {
        stream.set_nodelay(true)?;
        let p = prologue(&acceptor.cluster);
        let mut hs = builder()
            .local_private_key(&acceptor.own.private)
            .and_then(|b| b.prologue(&p))
            .and_then(|b| b.build_responder())
            .map_err(|_| SecureError::NotAuthentic)?;
        let mut wire = vec![0u8; 65535];
        let n = read_raw(&mut stream, &mut wire).await?;
        let mut payload = [0u8; 64];
        let got = hs.read_message(&wire[..n], &mut payload).map_err(|_| SecureError::NotAuthentic)?;
        // Authenticated from here on: the payload and the static key are
        // the initiator's, proven by the Noise implementation.
        let role = (got == 1).then(|| Role::from_byte(payload[0])).flatten().ok_or(SecureError::NotAuthentic)?;
        let allowed = match role {
            Role::Client => &acceptor.client,
            Role::Worker => &acceptor.worker,
        };
        if hs.get_remote_static() != Some(allowed.as_slice()) {
            return Err(SecureError::WrongKey { claimed: role.name() });
        }
        let n = hs.write_message(&[], &mut wire).map_err(|_| SecureError::NotAuthentic)?;
        write_raw(&mut stream, &wire[..n]).await?;
        let noise = hs.into_transport_mode().map_err(|_| SecureError::NotAuthentic)?;
        Ok((Secure { stream, noise }, role))
    })
    .await
    .map_err(|_| SecureError::Slow(HANDSHAKE_LIMIT.as_secs()))?
}

async fn write_raw(stream: &mut TcpStream, msg: &[u8]) -> Result<(), SecureError> {
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    stream.write_all(&out).await?;
    Ok(())
}

async fn read_raw(stream: &mut TcpStream, wire: &mut [u8]) -> Result<usize, SecureError> {
    let closed = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => SecureError::Closed,
        _ => SecureError::Io(e),
    };
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(closed)?;
    let n = u16::from_be_bytes(len) as usize;
    stream.read_exact(&mut wire[..n]).await.map_err(closed)?;
    Ok(n)
}

impl Secure {
    /// The TCP stream under the session (for socket options).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Reading and writing halves that can be used at once.
    pub fn split(self) -> (Receiver, Sender) {
        let (r, w) = self.stream.into_split();
        let noise = Arc::new(Mutex::new(self.noise));
        (
            Receiver { stream: r, noise: noise.clone(), wire: vec![0u8; 65535], plain: Vec::new(), pending: Vec::new(), decoded: 0 },
            Sender { stream: w, noise, wire: vec![0u8; 65537] },
        )
    }
}

/// The sending half.
pub struct Sender {
    stream: OwnedWriteHalf,
    noise: Arc<Mutex<snow::TransportState>>,
    wire: Vec<u8>,
}

impl Sender {
    /// Sends raw bytes, cut into Noise messages.
    pub async fn send_bytes(&mut self, data: &[u8]) -> Result<(), SecureError> {
        for chunk in data.chunks(MAX_PLAIN) {
            let n = {
                let mut noise = self.noise.lock().expect("noise state");
                noise.write_message(chunk, &mut self.wire[2..]).map_err(|_| SecureError::Broken)?
            };
            self.wire[..2].copy_from_slice(&(n as u16).to_be_bytes());
            self.stream.write_all(&self.wire[..2 + n]).await?;
        }
        Ok(())
    }

    /// Sends one typed message.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), SecureError> {
        let body = postcard::to_allocvec(msg).map_err(|e| SecureError::Decode(e.to_string()))?;
        let mut framed = Vec::with_capacity(body.len() + 4);
        framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
        framed.extend_from_slice(&body);
        self.send_bytes(&framed).await
    }

    /// Closes the sending direction.
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// The receiving half.
pub struct Receiver {
    stream: OwnedReadHalf,
    noise: Arc<Mutex<snow::TransportState>>,
    wire: Vec<u8>,
    plain: Vec<u8>,
    /// Decrypted bytes not yet consumed by [`Receiver::recv`].
    pending: Vec<u8>,
    /// Messages handed to the decoder so far (all authenticated).
    decoded: u64,
}

impl Receiver {
    /// The next decrypted chunk of a raw stream; `None` at a clean end
    /// between messages.
    pub async fn recv_bytes(&mut self) -> Result<Option<&[u8]>, SecureError> {
        if !self.pending.is_empty() {
            self.plain = std::mem::take(&mut self.pending);
            return Ok(Some(&self.plain));
        }
        let mut len = [0u8; 2];
        match self.stream.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let n = u16::from_be_bytes(len) as usize;
        self.stream.read_exact(&mut self.wire[..n]).await?;
        self.plain.resize(MAX_PLAIN, 0);
        let got = {
            let mut noise = self.noise.lock().expect("noise state");
            noise.read_message(&self.wire[..n], &mut self.plain).map_err(|_| SecureError::Broken)?
        };
        self.plain.truncate(got);
        Ok(Some(&self.plain))
    }

    /// The next typed message; `None` at a clean end between messages.
    /// Only authenticated bytes reach the decoder.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, SecureError> {
        let mut buf = std::mem::take(&mut self.pending);
        while buf.len() < 4 {
            match self.recv_bytes().await? {
                Some(b) => buf.extend_from_slice(b),
                None if buf.is_empty() => return Ok(None),
                None => return Err(SecureError::Closed),
            }
        }
        let len = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_MESSAGE {
            return Err(SecureError::TooLarge(len));
        }
        while buf.len() < 4 + len {
            match self.recv_bytes().await? {
                Some(b) => buf.extend_from_slice(b),
                None => return Err(SecureError::Closed),
            }
        }
        self.pending = buf.split_off(4 + len);
        self.decoded += 1;
        postcard::from_bytes(&buf[4..]).map(Some).map_err(|e| SecureError::Decode(e.to_string()))
    }

    /// How many messages this connection has handed to the decoder.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Bytes already decrypted past the last typed message (the start
    /// of a raw stream that follows it).
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}
