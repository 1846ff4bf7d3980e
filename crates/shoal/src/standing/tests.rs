//! The coordinator in this process, driven by real Noise connections:
//! what a worker key may and may not do.

use std::sync::Arc;
use std::time::Duration;

use super::coordinator::{Coordinator, Settings, MAX_SLOTS};
use super::proto::{ClientHello, Join, Status, WorkerHello};
use super::secure::{self, Acceptor, KeyPair, Role};

struct Keys {
    coordinator: KeyPair,
    client: KeyPair,
    worker: KeyPair,
}

async fn start() -> (Keys, String, Arc<Coordinator>) {
    let keys = Keys { coordinator: KeyPair::generate(), client: KeyPair::generate(), worker: KeyPair::generate() };
    let acceptor = Acceptor { cluster: "t".into(), own: keys.coordinator.clone(), client: keys.client.public, worker: keys.worker.public };
    let settings = Settings { cluster: "t".into(), max_applications: 0, heartbeat_timeout: Duration::from_secs(5), relay: false };
    let c = Coordinator::new(settings, acceptor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(c.clone().serve(listener));
    (keys, addr, c)
}

async fn worker(keys: &Keys, addr: &str) -> (secure::Receiver, secure::Sender) {
    secure::connect(addr, "t", &keys.worker, &keys.coordinator.public, Role::Worker).await.unwrap().split()
}

fn join(name: &str, slots: u32) -> WorkerHello {
    WorkerHello::Join(Join { name: name.into(), slots, cores: 2, memory_bytes: 0, workdir: "/w".into(), pid: 1, started_by: String::new() })
}

async fn status(keys: &Keys, addr: &str) -> Status {
    let (mut rx, mut tx) = secure::connect(addr, "t", &keys.client, &keys.coordinator.public, Role::Client).await.unwrap().split();
    tx.send(&ClientHello::Status).await.unwrap();
    rx.recv::<Status>().await.unwrap().unwrap()
}

/// Waits until `pred` holds of the status (or fails after 5 s).
async fn until(keys: &Keys, addr: &str, pred: impl Fn(&Status) -> bool) -> Status {
    for _ in 0..100 {
        let s = status(keys, addr).await;
        if pred(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the coordinator never got there: {:?}", status(keys, addr).await.refusals);
}

#[tokio::test]
async fn a_session_with_a_token_the_coordinator_did_not_send_is_refused() {
    let (keys, addr, _c) = start().await;
    let (_rx, mut tx) = worker(&keys, &addr).await;
    tx.send(&WorkerHello::Session { session: 1, worker: "h1".into(), token: [7; 16] }).await.unwrap();
    let s = until(&keys, &addr, |s| s.refused == 1).await;
    assert!(s.refusals[0].contains("a worker's session 1 with a token that is not the one sent to worker h1"), "{:?}", s.refusals);
}

#[tokio::test]
async fn a_second_worker_cannot_take_the_name_of_a_live_one_and_names_and_slots_are_checked() {
    let (keys, addr, _c) = start().await;
    let (_rx1, mut tx1) = worker(&keys, &addr).await;
    tx1.send(&join("h1", 2)).await.unwrap();
    until(&keys, &addr, |s| s.workers.len() == 1).await;
    let (_rx2, mut tx2) = worker(&keys, &addr).await;
    tx2.send(&join("h1", 2)).await.unwrap();
    let s = until(&keys, &addr, |s| s.refused == 1).await;
    assert!(s.refusals[0].contains("a second worker named h1 while the first is alive"), "{:?}", s.refusals);
    let (_rx3, mut tx3) = worker(&keys, &addr).await;
    tx3.send(&join("../etc", 2)).await.unwrap();
    let s = until(&keys, &addr, |s| s.refused == 2).await;
    assert!(s.refusals[1].contains("a worker named \"../etc\""), "{:?}", s.refusals);
    let (_rx4, mut tx4) = worker(&keys, &addr).await;
    tx4.send(&join("big", u32::MAX)).await.unwrap();
    let s = until(&keys, &addr, |s| s.workers.len() == 2).await;
    let big = s.workers.iter().find(|w| w.name == "big").unwrap();
    assert_eq!(big.slots, MAX_SLOTS);
}

#[tokio::test]
async fn an_authenticated_connection_that_says_nothing_is_closed_and_counted() {
    let (keys, addr, _c) = start().await;
    let (mut rx, _tx) = secure::connect(&addr, "t", &keys.client, &keys.coordinator.public, Role::Client).await.unwrap().split();
    // The coordinator hangs up after its limit for the first message.
    let ended = tokio::time::timeout(Duration::from_secs(10), rx.recv_bytes()).await.expect("the coordinator kept a silent connection");
    assert!(matches!(ended, Ok(None) | Err(_)));
    let s = status(&keys, &addr).await;
    assert!(
        s.refusals.iter().any(|r| r.contains("a client's first message: it said nothing within 5s of its handshake")),
        "{:?}",
        s.refusals
    );
}
