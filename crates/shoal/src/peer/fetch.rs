//! The fetching side: probes and block fetches from a run's peers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shoal_wire::{hex, Hash, PeerBlock};

use super::channel::{Channel, ChannelError};
use super::{RunKey, FETCH, FOUND, PING};
use crate::agent::BlockStore;

/// How long a probe or a fetch's connection may take to be established.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(3);

/// Peers fetched from at once by one reducer.
pub const PARALLEL_PEERS: usize = 4;

/// A block is never read whole into memory: it goes to the store in the
/// messages it came in.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach the peer at {addr}: {source}")]
    Connect { addr: String, source: ChannelError },
    #[error("the peer at {addr} broke off: {source}")]
    Broken { addr: String, source: ChannelError },
    #[error("the peer at {addr} does not hold block {hash}: {why}")]
    Missing { addr: String, hash: String, why: String },
    #[error("the peer at {addr} sent a malformed answer")]
    Malformed { addr: String },
    #[error("block {hash} from {addr} could not be stored: {source}")]
    Store { addr: String, hash: String, source: std::io::Error },
}

/// Connects to the peer at `addr`, completes the handshake and has one
/// round trip; `Err` says why it is not reachable.
pub async fn probe(addr: &str, run: &str, key: &RunKey) -> Result<(), FetchError> {
    let connect = |source| FetchError::Connect { addr: addr.to_string(), source };
    let mut ch = Channel::connect(addr, run, key, CONNECT_LIMIT).await.map_err(connect)?;
    let broken = |source| FetchError::Broken { addr: addr.to_string(), source };
    ch.send(&[PING]).await.map_err(broken)?;
    let mut answer = Vec::new();
    match tokio::time::timeout(CONNECT_LIMIT, ch.recv(&mut answer)).await {
        Ok(Ok(true)) if answer == [FOUND] => Ok(()),
        Ok(Err(e)) => Err(broken(e)),
        _ => Err(FetchError::Malformed { addr: addr.to_string() }),
    }
}

/// Fetches `blocks` into `store`, at most [`PARALLEL_PEERS`] peers at once
/// and one session per peer; blocks the store already holds are skipped.
/// Returns the bytes fetched and the blocks that failed, with why.
pub async fn fetch_all(run: &str, key: &RunKey, blocks: Vec<PeerBlock>, store: Arc<BlockStore>) -> (u64, Vec<(Hash, String)>) {
    let mut by_peer: BTreeMap<String, Vec<PeerBlock>> = BTreeMap::new();
    for b in blocks {
        by_peer.entry(b.from.clone()).or_default().push(b);
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL_PEERS));
    let mut set = tokio::task::JoinSet::new();
    for (addr, blocks) in by_peer {
        let (run, key, store, slots) = (run.to_string(), *key, store.clone(), slots.clone());
        set.spawn(async move {
            let _permit = slots.acquire_owned().await;
            from_peer(&addr, &run, &key, blocks, &store).await
        });
    }
    let (mut bytes, mut failed) = (0, Vec::new());
    while let Some(done) = set.join_next().await {
        if let Ok((b, f)) = done {
            bytes += b;
            failed.extend(f);
        }
    }
    (bytes, failed)
}

/// Fetches from one peer over one session; once the session is broken
/// (or never was), the rest fail with it.
async fn from_peer(addr: &str, run: &str, key: &RunKey, blocks: Vec<PeerBlock>, store: &Arc<BlockStore>) -> (u64, Vec<(Hash, String)>) {
    let mut bytes = 0;
    let mut failed: Vec<(Hash, String)> = Vec::new();
    let mut session: Option<Channel> = None;
    let mut dead: Option<String> = None;
    for b in blocks {
        if let Some(why) = &dead {
            failed.push((b.hash, why.clone()));
            continue;
        }
        let s = store.clone();
        if tokio::task::spawn_blocking(move || s.has(&b.hash)).await.unwrap_or(false) {
            continue;
        }
        if session.is_none() {
            match Channel::connect(addr, run, key, CONNECT_LIMIT).await {
                Ok(ch) => session = Some(ch),
                Err(source) => {
                    let why = FetchError::Connect { addr: addr.to_string(), source }.to_string();
                    failed.push((b.hash, why.clone()));
                    dead = Some(why);
                    continue;
                }
            }
        }
        match one(session.as_mut().expect("connected"), addr, &b, store).await {
            Ok(n) => bytes += n,
            Err(e) => {
                // A block the peer lacks, or one that did not match its
                // hash, leaves the session usable; anything else ends it.
                if !matches!(e, FetchError::Missing { .. } | FetchError::Store { .. }) {
                    dead = Some(e.to_string());
                }
                failed.push((b.hash, e.to_string()));
            }
        }
    }
    (bytes, failed)
}

/// Stream ids of peer fetches in the store, apart from the driver's.
fn stream_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1 << 63);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn one(ch: &mut Channel, addr: &str, b: &PeerBlock, store: &BlockStore) -> Result<u64, FetchError> {
    let broken = |source| FetchError::Broken { addr: addr.to_string(), source };
    let mut req = vec![FETCH];
    req.extend_from_slice(&b.hash);
    ch.send(&req).await.map_err(broken)?;
    let mut msg = Vec::new();
    if !ch.recv(&mut msg).await.map_err(broken)? {
        return Err(FetchError::Malformed { addr: addr.to_string() });
    }
    match msg.first() {
        Some(&FOUND) if msg.len() == 9 => {}
        Some(_) if msg.len() > 1 && msg[0] != FOUND => {
            let why = String::from_utf8_lossy(&msg[1..]).into_owned();
            return Err(FetchError::Missing { addr: addr.to_string(), hash: hex(&b.hash), why });
        }
        _ => return Err(FetchError::Malformed { addr: addr.to_string() }),
    }
    let size = u64::from_le_bytes(msg[1..9].try_into().expect("8 bytes"));
    if size != b.size {
        return Err(FetchError::Malformed { addr: addr.to_string() });
    }
    let stream = stream_id();
    let stored = receive(ch, addr, b, size, stream, store).await;
    if stored.is_err() {
        store.abandon(stream, b.hash);
    }
    stored
}

async fn receive(ch: &mut Channel, addr: &str, b: &PeerBlock, size: u64, stream: u64, store: &BlockStore) -> Result<u64, FetchError> {
    let broken = |source| FetchError::Broken { addr: addr.to_string(), source };
    let stored = |source| FetchError::Store { addr: addr.to_string(), hash: hex(&b.hash), source };
    let mut left = size;
    let mut msg = Vec::new();
    if size == 0 {
        store.receive_chunk(stream, b.hash, &[], true).map_err(stored)?;
        return Ok(0);
    }
    while left > 0 {
        if !ch.recv(&mut msg).await.map_err(broken)? || msg.is_empty() || msg.len() as u64 > left {
            return Err(FetchError::Malformed { addr: addr.to_string() });
        }
        left -= msg.len() as u64;
        store.receive_chunk(stream, b.hash, &msg, left == 0).map_err(stored)?;
    }
    Ok(size)
}
