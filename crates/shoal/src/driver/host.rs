//! The driver's handle on one connected host.
//!
//! A receive task per host reads the agent's messages and routes them:
//! replies to the request that waits for them (by id), chunks to the fetch
//! stream they belong to, task reports to the driver's event channel. When
//! the link ends (ssh exits, agent EOF) or stays silent past the heartbeat
//! timeout (a frozen agent or a cut link, where ssh keepalives may not help
//! for a while), the host is declared lost exactly once: the child is
//! killed, every waiting request fails, and a [`HostEvent::Lost`] is sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_core::cluster::HostSpec;
use shoal_wire::{FrameReader, Hash, HostInfo, Message, Outbox};
use tokio::process::{Child, ChildStdout};
use tokio::sync::{mpsc, oneshot};

use crate::transport::{ConnectStats, Link, StderrTail};

/// Something a host reported that the run loop must handle.
#[derive(Debug)]
pub enum HostEvent {
    /// A task message (progress, log, done) from host `host`.
    Task { host: usize, msg: Box<Message> },
    /// The host is gone; `reason` is a sentence.
    Lost { host: usize, reason: String },
}

type Waiters = Mutex<HashMap<u64, oneshot::Sender<Message>>>;
type Streams = Mutex<HashMap<u64, mpsc::Sender<Message>>>;
type Uploads = Mutex<HashMap<Hash, Vec<oneshot::Sender<Option<String>>>>>;

/// A connected host.
pub struct Host {
    pub index: usize,
    pub spec: HostSpec,
    pub info: HostInfo,
    pub stats: ConnectStats,
    outbox: Outbox,
    next_id: AtomicU64,
    waiters: Waiters,
    streams: Streams,
    uploads: Uploads,
    lost: AtomicBool,
    child: Mutex<Option<Child>>,
    stderr: StderrTail,
}

/// The host went away while we waited for it.
#[derive(Debug, thiserror::Error)]
#[error("host `{host}` is gone")]
pub struct HostGone {
    pub host: String,
}

impl Host {
    /// Wraps a fresh link and starts its receive and heartbeat tasks.
    pub fn start(index: usize, spec: HostSpec, link: Link, events: mpsc::UnboundedSender<HostEvent>) -> Arc<Host> {
        let Link { reader, outbox, child, stderr, info, stats } = link;
        let host = Arc::new(Host {
            index,
            spec,
            info,
            stats,
            outbox,
            next_id: AtomicU64::new(1),
            waiters: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
            lost: AtomicBool::new(false),
            child: Mutex::new(Some(child)),
            stderr,
        });
        tokio::spawn(receive(host.clone(), reader, events));
        tokio::spawn(heartbeat(host.clone()));
        host
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Slots: the cluster file's, or the detected core count.
    pub fn slots(&self) -> u32 {
        self.spec.slots.unwrap_or(self.info.cores.max(1))
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn gone(&self) -> HostGone {
        HostGone { host: self.spec.name.clone() }
    }

    /// Sends a message without waiting for an answer.
    pub async fn send(&self, msg: Message) -> Result<(), HostGone> {
        if self.is_lost() {
            return Err(self.gone());
        }
        self.outbox.send(msg).await.map_err(|_| self.gone())
    }

    /// Queues a control message without waiting (never a bulk chunk).
    pub fn send_now(&self, msg: Message) -> Result<(), HostGone> {
        if self.is_lost() {
            return Err(self.gone());
        }
        self.outbox.send_now(msg).map_err(|_| self.gone())
    }

    /// Sends a request carrying `id` and waits for the reply with that id.
    pub async fn request(&self, id: u64, msg: Message) -> Result<Message, HostGone> {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id, tx);
        self.send(msg).await?;
        rx.await.map_err(|_| self.gone())
    }

    /// Opens a stream for the chunks of fetch `id`.
    pub fn open_stream(&self, id: u64) -> mpsc::Receiver<Message> {
        let (tx, rx) = mpsc::channel(16);
        self.streams.lock().unwrap().insert(id, tx);
        rx
    }

    /// Waits for the agent to confirm an uploaded block.
    pub fn await_stored(&self, hash: Hash) -> oneshot::Receiver<Option<String>> {
        let (tx, rx) = oneshot::channel();
        self.uploads.lock().unwrap().entry(hash).or_default().push(tx);
        rx
    }

    /// Declares the host lost (once): kills the transport and fails waiters.
    pub fn mark_lost(&self, reason: &str, events: &mpsc::UnboundedSender<HostEvent>) {
        if self.lost.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.start_kill();
        }
        self.waiters.lock().unwrap().clear();
        self.streams.lock().unwrap().clear();
        self.uploads.lock().unwrap().clear();
        let _ = events.send(HostEvent::Lost { host: self.index, reason: reason.to_string() });
    }

    /// Closes the link politely: the agent sees EOF, cleans up and exits.
    pub async fn close(&self) {
        self.lost.store(true, Ordering::SeqCst);
        self.outbox.close();
        let child = self.child.lock().unwrap().take();
        if let Some(mut child) = child {
            // EOF on its stdin ends the agent; give it a moment to clean up.
            if tokio::time::timeout(Duration::from_secs(3), child.wait()).await.is_err() {
                let _ = child.start_kill();
            }
        }
    }

    async fn route(&self, msg: Message, events: &mpsc::UnboundedSender<HostEvent>) {
        match msg {
            Message::Heartbeat => {}
            Message::ExecDone { id, .. }
            | Message::MissingBlocks { id, .. }
            | Message::WorkdirReady { id, .. }
            | Message::Placed { id, .. }
            | Message::Error { id, .. } => self.answer(id, msg),
            Message::Chunk { stream, .. } | Message::FetchFailed { id: stream, .. } => self.to_stream(stream, msg).await,
            Message::BlockStored { hash, error } => self.stored(hash, error),
            msg => {
                let _ = events.send(HostEvent::Task { host: self.index, msg: Box::new(msg) });
            }
        }
    }

    fn answer(&self, id: u64, msg: Message) {
        if let Some(tx) = self.waiters.lock().unwrap().remove(&id) {
            let _ = tx.send(msg);
        }
    }

    async fn to_stream(&self, id: u64, msg: Message) {
        let done = matches!(msg, Message::Chunk { last: true, .. } | Message::FetchFailed { .. });
        let tx = {
            let mut streams = self.streams.lock().unwrap();
            if done {
                streams.remove(&id)
            } else {
                streams.get(&id).cloned()
            }
        };
        if let Some(tx) = tx {
            // The receive loop waits here when a fetch consumer lags: that
            // is the flow control of a fetch. The heartbeat clock only runs
            // while we wait for the agent, not while we wait for the disk.
            let _ = tx.send(msg).await;
        }
    }

    fn stored(&self, hash: Hash, error: Option<String>) {
        if let Some(waiters) = self.uploads.lock().unwrap().remove(&hash) {
            for w in waiters {
                let _ = w.send(error.clone());
            }
        }
    }
}

async fn receive(host: Arc<Host>, mut reader: FrameReader<ChildStdout>, events: mpsc::UnboundedSender<HostEvent>) {
    let limit = host.spec.heartbeat_timeout;
    let reason = loop {
        match tokio::time::timeout(limit, reader.read_message()).await {
            Ok(Ok(Some(msg))) => host.route(msg, &events).await,
            Ok(Ok(None)) => break format!("the connection closed{}", host.stderr.suffix()),
            Ok(Err(e)) => break format!("the connection failed: {e}{}", host.stderr.suffix()),
            Err(_) => break format!("no heartbeat for {}s", limit.as_secs_f64()),
        }
    };
    host.mark_lost(&reason, &events);
}

async fn heartbeat(host: Arc<Host>) {
    let every = (host.spec.heartbeat_timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(2));
    while !host.is_lost() && host.outbox.send_now(Message::Heartbeat).is_ok() {
        tokio::time::sleep(every).await;
    }
}
