//! The peer layer over real TCP on loopback: what is admitted, what is
//! refused before a byte of it is parsed, and that a fetched block is
//! checked against its hash before it is stored.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_wire::{Hash, PeerBlock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::channel::{Channel, ChannelError, PATTERN};
use super::fetch::{fetch_all, probe};
use super::serve::{Listener, OnRefused};
use super::*;
use crate::agent::BlockStore;

const RUN: &str = "20261203-170000-wc-1a2b";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Peer {
    listener: Listener,
    refused: Arc<Mutex<Vec<(SocketAddr, String)>>>,
    _dir: tempfile::TempDir,
}

/// A listener for `RUN` with `key` over a fresh store holding `blocks`.
fn peer(key: RunKey, blocks: &[&[u8]]) -> (Peer, Vec<PeerBlock>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BlockStore::open(dir.path().join("blocks")).unwrap());
    let listener_refused = Arc::new(Mutex::new(Vec::new()));
    let r = listener_refused.clone();
    let on_refused: OnRefused = Arc::new(move |from, why| r.lock().unwrap().push((from, why)));
    let listener = Listener::start(LOOPBACK, RUN.into(), key, store.clone(), on_refused).unwrap();
    let mut refs = Vec::new();
    for (i, data) in blocks.iter().enumerate() {
        let file = dir.path().join(format!("out{i}"));
        std::fs::write(&file, data).unwrap();
        let b = store.insert_file(&file).unwrap();
        refs.push(PeerBlock { hash: b.hash, size: b.size, from: listener.addr.to_string() });
    }
    (Peer { listener, refused: listener_refused, _dir: dir }, refs)
}

fn empty_store() -> (Arc<BlockStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(BlockStore::open(dir.path().join("blocks")).unwrap()), dir)
}

/// Waits until the listener has refused `n` connections.
async fn refused(p: &Peer, n: usize) -> Vec<String> {
    for _ in 0..200 {
        if p.refused.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p.refused.lock().unwrap().iter().map(|(_, why)| why.clone()).collect()
}

fn assert_nothing_decoded(p: &Peer) {
    assert_eq!(p.listener.counts.requests.load(Ordering::Relaxed), 0, "a request reached the decoder");
    assert_eq!(p.listener.counts.bytes.load(Ordering::Relaxed), 0, "block bytes were sent");
}

#[tokio::test]
async fn a_peer_with_the_run_key_fetches_blocks_verified_and_counted() {
    let key = new_key();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (p, blocks) = peer(key, &[b"apple\t1\n", &big, b""]);
    let (store, _d) = empty_store();
    probe(&p.listener.addr.to_string(), RUN, &key).await.unwrap();
    let (bytes, failed) = fetch_all(RUN, &key, blocks.clone(), store.clone()).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(bytes, 8 + 300_000);
    for (b, data) in blocks.iter().zip([&b"apple\t1\n"[..], &big, b""]) {
        assert_eq!(std::fs::read(store.verified(&b.hash).unwrap()).unwrap(), data);
    }
    assert_eq!(p.listener.counts.bytes.load(Ordering::Relaxed), 300_008);
    assert!(p.refused.lock().unwrap().is_empty());
    // Held already: fetched again, nothing moves.
    let (bytes, failed) = fetch_all(RUN, &key, blocks, store).await;
    assert_eq!((bytes, failed.len()), (0, 0));
}

#[tokio::test]
async fn a_block_the_peer_lacks_fails_with_its_name_and_the_rest_still_come() {
    let key = new_key();
    let (p, mut blocks) = peer(key, &[b"one\n"]);
    blocks.insert(0, PeerBlock { hash: [7; 32], size: 3, from: p.listener.addr.to_string() });
    let (store, _d) = empty_store();
    let (bytes, failed) = fetch_all(RUN, &key, blocks.clone(), store.clone()).await;
    assert_eq!(bytes, 4);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, [7; 32]);
    assert!(failed[0].1.contains("does not hold block 0707"), "{}", failed[0].1);
    assert!(store.has(&blocks[1].hash));
}

#[tokio::test]
async fn a_peer_that_sends_other_bytes_than_the_hash_names_stores_nothing() {
    // A peer of the run (it holds the key) that lies about a block.
    let key = new_key();
    let socket = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = socket.accept().await.unwrap();
        let mut ch = Channel::accept(stream, RUN, &key).await.unwrap();
        let mut req = Vec::new();
        ch.recv(&mut req).await.unwrap();
        let mut head = vec![FOUND];
        head.extend_from_slice(&5u64.to_le_bytes());
        ch.send(&head).await.unwrap();
        ch.send(b"evil\n").await.unwrap();
    });
    let hash: Hash = *blake3::hash(b"good\n").as_bytes();
    let (store, _d) = empty_store();
    let (bytes, failed) = fetch_all(RUN, &key, vec![PeerBlock { hash, size: 5, from: addr.to_string() }], store.clone()).await;
    assert_eq!(bytes, 0);
    assert!(failed[0].1.contains("does not match its hash"), "{}", failed[0].1);
    assert!(!store.has(&hash));
}

#[tokio::test]
async fn garbage_is_refused_before_anything_is_decoded() {
    let (p, _) = peer(new_key(), &[b"secret\n"]);
    let mut s = TcpStream::connect(p.listener.addr).await.unwrap();
    // A length prefix that claims a short message, then junk; then an
    // HTTP request on a second connection.
    let junk = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789abcdef0123456789";
    s.write_all(&frame(junk)).await.unwrap();
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back).await;
    assert!(back.is_empty(), "the listener answered garbage with {back:?}");
    let mut s = TcpStream::connect(p.listener.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    s.shutdown().await.unwrap();
    let why = refused(&p, 2).await;
    assert_eq!(why.len(), 2, "{why:?}");
    assert!(why[0].contains("not a peer of this run"), "{why:?}");
    assert!(why[1].contains("closed before the handshake ended"), "{why:?}");
    assert_eq!(p.listener.counts.refused.load(Ordering::Relaxed), 2);
    assert_nothing_decoded(&p);
}

#[tokio::test]
async fn a_wrong_key_or_another_runs_key_is_refused_on_both_sides() {
    let (key, other) = (new_key(), new_key());
    let (p, blocks) = peer(key, &[b"secret\n"]);
    let addr = p.listener.addr.to_string();
    let wrong = probe(&addr, RUN, &other).await.unwrap_err();
    assert!(wrong.to_string().contains("does not hold this run's key"), "{wrong}");
    // The right key, but for another run: the run id is part of the handshake.
    let other_run = probe(&addr, "20261203-170001-sort-9f9f", &key).await.unwrap_err();
    assert!(other_run.to_string().starts_with(&format!("cannot reach the peer at {addr}")), "{other_run}");
    let (store, _d) = empty_store();
    let (bytes, failed) = fetch_all(RUN, &other, blocks.clone(), store.clone()).await;
    assert_eq!((bytes, failed.len()), (0, 1));
    assert!(!store.has(&blocks[0].hash));
    let why = refused(&p, 3).await;
    assert_eq!(why.len(), 3, "{why:?}");
    assert!(why.iter().all(|w| w.contains("not a peer of this run")), "{why:?}");
    assert_nothing_decoded(&p);
}

#[tokio::test]
async fn a_replayed_handshake_and_request_get_no_block() {
    let key = new_key();
    let (p, blocks) = peer(key, &[b"secret\n"]);
    // A genuine peer's first two messages, recorded on the wire.
    let prologue = [&b"shoal-peer-1\0"[..], RUN.as_bytes()].concat();
    let mut hs =
        snow::Builder::new(PATTERN.parse().unwrap()).psk(0, &key.0).unwrap().prologue(&prologue).unwrap().build_initiator().unwrap();
    let mut buf = vec![0u8; 65535];
    let n = hs.write_message(&[], &mut buf).unwrap();
    let first = buf[..n].to_vec();
    let mut s = TcpStream::connect(p.listener.addr).await.unwrap();
    s.write_all(&frame(&first)).await.unwrap();
    let answer = read_frame(&mut s).await;
    hs.read_message(&answer, &mut [0u8; 64]).unwrap();
    let mut t = hs.into_transport_mode().unwrap();
    let mut req = vec![FETCH];
    req.extend_from_slice(&blocks[0].hash);
    let n = t.write_message(&req, &mut buf).unwrap();
    let request = buf[..n].to_vec();
    s.write_all(&frame(&request)).await.unwrap();
    assert!(!read_frame(&mut s).await.is_empty(), "the genuine request is answered");
    drop(s);
    let served = p.listener.counts.requests.load(Ordering::Relaxed);
    // An eavesdropper replays both on a new connection.
    let mut s = TcpStream::connect(p.listener.addr).await.unwrap();
    s.write_all(&frame(&first)).await.unwrap();
    let _ = read_frame(&mut s).await;
    s.write_all(&frame(&request)).await.unwrap();
    let mut back = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut back)).await.expect("the listener closes the session");
    assert!(back.is_empty(), "a replayed request was answered");
    assert_eq!(p.listener.counts.requests.load(Ordering::Relaxed), served, "the replayed request reached the decoder");
}

#[tokio::test]
async fn a_peer_that_never_finishes_the_handshake_is_cut_off() {
    let (p, _) = peer(new_key(), &[]);
    let mut s = TcpStream::connect(p.listener.addr).await.unwrap();
    s.write_all(b"\x00\x40half").await.unwrap();
    let why = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(w) = p.refused.lock().unwrap().first() {
                return w.1.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert!(why.contains("no handshake within 5s"), "{why}");
    assert_nothing_decoded(&p);
}

#[tokio::test]
async fn nothing_listens_once_the_run_is_over() {
    let key = new_key();
    let (p, _) = peer(key, &[]);
    let addr = p.listener.addr.to_string();
    probe(&addr, RUN, &key).await.unwrap();
    drop(p);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = probe(&addr, RUN, &key).await.unwrap_err();
    assert!(matches!(e, fetch::FetchError::Connect { source: ChannelError::Io(_), .. }), "{e}");
}

fn frame(msg: &[u8]) -> Vec<u8> {
    [&(msg.len() as u16).to_be_bytes()[..], msg].concat()
}

async fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    if s.read_exact(&mut len).await.is_err() {
        return Vec::new();
    }
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg).await.unwrap();
    msg
}
