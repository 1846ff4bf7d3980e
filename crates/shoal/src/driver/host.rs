//! The driver's handle on one connected host.
//!
//! A receive task per host reads the agent's messages and routes them:
//! replies to the request that waits for them (by id), chunks to the fetch
//! stream they belong to, task reports to the driver's event channel. When
//! the link ends (ssh exits, agent EOF) or stays silent past the heartbeat
//! timeout (a frozen agent or a cut link, where ssh keepalives may not help
//! for a while), the host is declared lost exactly once: the agent is
//! asked to stop (its stdin closed, then SIGTERM, and only then SIGKILL,
//! see [`transport::stop`]), every waiting request fails, and a
//! [`HostEvent::Lost`] is sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_core::cluster::HostSpec;
use shoal_wire::{FrameReader, Hash, HostInfo, Message, Outbox, WireError};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};

use crate::transport::{self, ConnectStats, Link, StderrTail, STOP_GRACE};

/// Something a host reported that the run loop must handle.
#[derive(Debug)]
pub enum HostEvent {
    /// Task messages (progress, log, done) from host `host`, in the order
    /// they came: every one that was already read arrives in one event.
    Task { host: usize, msgs: Vec<Message> },
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
    /// The stop of a lost host's agent, which [`Host::close`] waits for.
    stopping: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stderr: StderrTail,
}

/// The host went away while we waited for it.
#[derive(Debug, thiserror::Error)]
#[error("host `{host}` is gone")]
pub struct HostGone {
    pub host: String,
}

/// Why a message or a request to a host failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Gone(#[from] HostGone),
    /// Too large for one frame: only this message failed; the link goes on.
    #[error("cannot send to host `{host}`: {why}")]
    Unsendable { host: String, why: WireError },
    /// The agent answered the request with an error.
    #[error("host `{host}`: {message}")]
    Refused { host: String, message: String },
}

impl RequestError {
    pub fn is_gone(&self) -> bool {
        matches!(self, RequestError::Gone(_))
    }
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
            child: Mutex::new(child),
            stopping: Mutex::new(None),
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
    pub async fn send(&self, msg: Message) -> Result<(), RequestError> {
        if self.is_lost() {
            return Err(self.gone().into());
        }
        self.outbox.send(msg).await.map_err(|e| self.send_error(e))
    }

    /// Queues a control message without waiting (never a bulk chunk).
    pub fn send_now(&self, msg: Message) -> Result<(), RequestError> {
        if self.is_lost() {
            return Err(self.gone().into());
        }
        self.outbox.send_now(msg).map_err(|e| self.send_error(e))
    }

    fn send_error(&self, e: WireError) -> RequestError {
        match e {
            why @ WireError::Unsendable { .. } => RequestError::Unsendable { host: self.spec.name.clone(), why },
            _ => self.gone().into(),
        }
    }

    /// Sends a request carrying `id` and waits for the reply with that id;
    /// an `Error` reply is [`RequestError::Refused`].
    pub async fn request(&self, id: u64, msg: Message) -> Result<Message, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id, tx);
        if let Err(e) = self.send(msg).await {
            self.waiters.lock().unwrap().remove(&id);
            return Err(e);
        }
        match rx.await {
            Ok(Message::Error { message, .. }) => Err(RequestError::Refused { host: self.spec.name.clone(), message }),
            Ok(reply) => Ok(reply),
            Err(_) => Err(self.gone().into()),
        }
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

    /// Runs a shell command on the host; whether it succeeded, and its
    /// stderr, trimmed.
    /// Runs `command` in the agent's work dir; whether it succeeded, its
    /// stdout and its stderr (their last 1 MiB each).
    pub async fn exec_output(&self, command: String) -> Result<(bool, String, String), HostGone> {
        let id = self.next_id();
        match self.request(id, Message::Exec { id, command }).await {
            Ok(Message::ExecDone { status, stdout, stderr, .. }) => {
                Ok((status.success(), String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).trim().to_string()))
            }
            _ => Err(self.gone()),
        }
    }

    pub async fn exec(&self, command: String) -> Result<(bool, String), HostGone> {
        let id = self.next_id();
        match self.request(id, Message::Exec { id, command }).await {
            Ok(Message::ExecDone { status, stderr, .. }) => Ok((status.success(), String::from_utf8_lossy(&stderr).trim().to_string())),
            _ => Err(self.gone()),
        }
    }

    /// Whether Docker works there for this user: `docker info` succeeds
    /// within 10 s (a hung daemon counts as unusable).
    async fn docker_usable(&self) -> bool {
        let probe = self.exec("docker info --format '{{.ServerVersion}}' >/dev/null".to_string());
        matches!(tokio::time::timeout(Duration::from_secs(10), probe).await, Ok(Ok((true, _))))
    }

    /// Declares the host lost (once): stops the transport and fails waiters.
    pub fn mark_lost(&self, reason: &str, events: &mpsc::UnboundedSender<HostEvent>) {
        if self.lost.swap(true, Ordering::SeqCst) {
            return;
        }
        self.outbox.close();
        if let Some(child) = self.child.lock().unwrap().take() {
            *self.stopping.lock().unwrap() = Some(tokio::spawn(transport::stop(child, STOP_GRACE)));
        }
        self.waiters.lock().unwrap().clear();
        self.streams.lock().unwrap().clear();
        self.uploads.lock().unwrap().clear();
        let _ = events.send(HostEvent::Lost { host: self.index, reason: reason.to_string() });
    }

    /// Closes the link politely: the agent sees EOF, cleans up and exits
    /// (or is made to, see [`transport::stop`]). Waits for the stop of a
    /// lost host's agent too, so that the driver does not exit before it.
    pub async fn close(&self) {
        self.lost.store(true, Ordering::SeqCst);
        self.outbox.close();
        let child = self.child.lock().unwrap().take();
        if let Some(child) = child {
            transport::stop(child, STOP_GRACE).await;
        }
        let stopping = self.stopping.lock().unwrap().take();
        if let Some(stopping) = stopping {
            let _ = stopping.await;
        }
    }

    /// Delivers a reply or a chunk to whoever waits for it; gives back a
    /// task message, which goes to the run loop.
    async fn route(&self, msg: Message) -> Option<Message> {
        match msg {
            Message::Heartbeat => {}
            Message::ExecDone { id, .. }
            | Message::MissingBlocks { id, .. }
            | Message::WorkdirReady { id, .. }
            | Message::Placed { id, .. }
            | Message::PeerListening { id, .. }
            | Message::PeerProbed { id, .. }
            | Message::PeerFetched { id, .. }
            | Message::Error { id, .. } => self.answer(id, msg),
            Message::Chunk { stream, .. } | Message::FetchFailed { id: stream, .. } => self.to_stream(stream, msg).await,
            Message::BlockStored { hash, error } => self.stored(hash, error),
            msg => return Some(msg),
        }
        None
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

/// The hosts (by index) where Docker works, all asked at once. Asked
/// only by jobs and checks that need it, so that connecting costs no
/// process.
pub async fn docker_usable(hosts: &[Arc<Host>]) -> std::collections::HashSet<usize> {
    let mut probes = tokio::task::JoinSet::new();
    for h in hosts {
        let h = Arc::clone(h);
        probes.spawn(async move { (h.index, h.docker_usable().await) });
    }
    let mut usable = std::collections::HashSet::new();
    while let Some(Ok((index, ok))) = probes.join_next().await {
        if ok {
            usable.insert(index);
        }
    }
    usable
}

async fn receive(host: Arc<Host>, mut reader: FrameReader<transport::LinkReader>, events: mpsc::UnboundedSender<HostEvent>) {
    let limit = host.spec.heartbeat_timeout;
    // One timer for the link, pushed back only when it fires early, not a
    // timer per message (thousands of task reports a second).
    let mut heard = tokio::time::Instant::now();
    let silence = tokio::time::sleep(limit);
    tokio::pin!(silence);
    let reason = loop {
        tokio::select! {
            // What the agent sent wins over the timer: after the thread
            // was busy elsewhere for a while, its heartbeats are waiting.
            biased;
            // Cancel-safe: a frame is taken from the buffer only when whole.
            read = reader.read_message() => match read {
                Ok(Some(msg)) => {
                    // Whole frames already buffered go along in the same
                    // event: one wake-up of the run loop per read, not per
                    // report. A broken frame stays for the next read.
                    let mut msgs = Vec::new();
                    let mut next = Some(msg);
                    while let Some(msg) = next {
                        if matches!(msg, Message::Chunk { .. }) && !msgs.is_empty() {
                            // A chunk may wait for its consumer: what came
                            // before it goes first.
                            let _ = events.send(HostEvent::Task { host: host.index, msgs: std::mem::take(&mut msgs) });
                        }
                        msgs.extend(host.route(msg).await);
                        next = reader.try_read_as().ok().flatten();
                    }
                    if !msgs.is_empty() {
                        let _ = events.send(HostEvent::Task { host: host.index, msgs });
                    }
                    heard = tokio::time::Instant::now();
                }
                Ok(None) => break format!("the connection closed{}", host.stderr.suffix()),
                Err(e) => break format!("the connection failed: {e}{}", host.stderr.suffix()),
            },
            () = &mut silence => {
                if heard.elapsed() >= limit {
                    break format!("no heartbeat for {}s", limit.as_secs_f64());
                }
                silence.as_mut().reset(heard + limit);
            }
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
