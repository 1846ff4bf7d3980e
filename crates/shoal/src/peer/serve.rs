//! The listener an agent keeps for one run: it admits only the run's
//! peers (see [`super::channel`]) and serves them blocks from the
//! agent's store by hash.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::channel::{Channel, ChannelError, MAX_PLAIN};
use super::{RunKey, FETCH, FOUND, NOT_FOUND, PING};
use crate::agent::BlockStore;

/// Most connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;

/// Told of every refused connection: who, and why.
pub type OnRefused = Arc<dyn Fn(SocketAddr, String) + Send + Sync>;

/// What a listener did, for logs and tests.
#[derive(Debug, Default)]
pub struct Counts {
    /// Connections refused before or during the handshake.
    pub refused: AtomicU64,
    /// Requests read from admitted peers: the only bytes ever parsed.
    pub requests: AtomicU64,
    /// Block bytes sent.
    pub bytes: AtomicU64,
}

/// A run's listener; dropping it stops accepting and ends its sessions.
pub struct Listener {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Listens on `ip` (a port the system picks) for the peers of `run`.
    /// Must be called within the runtime (it spawns the accept loop).
    pub fn start(ip: IpAddr, run: String, key: RunKey, store: Arc<BlockStore>, on_refused: OnRefused) -> std::io::Result<Listener> {
        let socket = std::net::TcpListener::bind((ip, 0))?;
        socket.set_nonblocking(true)?;
        let socket = TcpListener::from_std(socket)?;
        let addr = socket.local_addr()?;
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(accept_loop(socket, Arc::new(Served { run, key, store, counts: counts.clone(), on_refused })));
        Ok(Listener { addr, counts, task })
    }
}

struct Served {
    run: String,
    key: RunKey,
    store: Arc<BlockStore>,
    counts: Arc<Counts>,
    on_refused: OnRefused,
}

async fn accept_loop(socket: TcpListener, served: Arc<Served>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let (stream, from) = match socket.accept().await {
            Ok(c) => c,
            Err(_) => {
                // Out of descriptors, say: try again in a moment.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let served = served.clone();
        sessions.spawn(async move {
            serve(stream, from, &served).await;
            drop(permit);
        });
        while sessions.try_join_next().is_some() {}
    }
}

async fn serve(stream: TcpStream, from: SocketAddr, s: &Served) {
    let mut ch = match Channel::accept(stream, &s.run, &s.key).await {
        Ok(ch) => ch,
        Err(e) => {
            s.counts.refused.fetch_add(1, Ordering::Relaxed);
            return (s.on_refused)(from, e.to_string());
        }
    };
    let mut req = Vec::new();
    loop {
        // A session idle (or stalled) past `MESSAGE_LIMIT` is closed.
        if !matches!(ch.recv(&mut req).await, Ok(true)) {
            return;
        }
        s.counts.requests.fetch_add(1, Ordering::Relaxed);
        let answered = match (req.first(), req.get(1..33)) {
            (Some(&PING), _) => ch.send(&[FOUND]).await,
            (Some(&FETCH), Some(hash)) => send_block(&mut ch, s, hash.try_into().expect("32 bytes")).await,
            _ => return,
        };
        if answered.is_err() {
            return;
        }
    }
}

/// Answers a fetch: the header, then the block in messages.
async fn send_block(ch: &mut Channel, s: &Served, hash: [u8; 32]) -> Result<(), ChannelError> {
    let store = s.store.clone();
    let found = tokio::task::spawn_blocking(move || store.verified(&hash)).await.map_err(|e| ChannelError::Io(std::io::Error::other(e)))?;
    let opened = match found {
        Ok(path) => tokio::fs::File::open(&path).await,
        Err(e) => Err(e),
    };
    let (mut file, size) = match opened {
        Ok(f) => match f.metadata().await {
            Ok(m) => (f, m.len()),
            Err(e) => return not_found(ch, &e).await,
        },
        Err(e) => return not_found(ch, &e).await,
    };
    let mut head = vec![FOUND];
    head.extend_from_slice(&size.to_le_bytes());
    ch.send(&head).await?;
    let mut buf = vec![0u8; MAX_PLAIN];
    let mut left = size;
    while left > 0 {
        let n = (left as usize).min(MAX_PLAIN);
        file.read_exact(&mut buf[..n]).await?;
        ch.send(&buf[..n]).await?;
        left -= n as u64;
        s.counts.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    Ok(())
}

async fn not_found(ch: &mut Channel, e: &std::io::Error) -> Result<(), ChannelError> {
    let mut msg = vec![NOT_FOUND];
    let text = e.to_string();
    msg.extend_from_slice(&text.as_bytes()[..text.len().min(1024)]);
    ch.send(&msg).await
}
