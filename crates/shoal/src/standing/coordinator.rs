//! The coordinator: the standing cluster's one daemon on the driver's
//! side. It knows the workers (they join it and heartbeat), admits
//! applications (each a driver's run, for as long as its connection
//! stays open), divides the workers' slots between the running ones, and
//! bridges each of an application's links to a fresh agent on a worker.
//!
//! It holds no run state: each driver still plans, schedules within its
//! share, journals and commits its own run, exactly as in ephemeral mode.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tracing::{info, warn};

use super::proto::{
    AppEvent, AppStatus, Apply, AttachReply, ClientHello, FromWorker, Grant, Join, Status, ToWorker, WorkerHello, WorkerStatus,
};
use super::secure::{self, Acceptor, Receiver, Role, Sender};

/// How many refusal reasons `status` keeps.
const REFUSALS_KEPT: usize = 20;

/// How long a link waits for the worker to start its agent.
const SESSION_LIMIT: Duration = Duration::from_secs(15);

/// Handshakes in progress at once, in all and from one address (the
/// others wait their turn), and connections of one address waiting or
/// in a handshake at once (more are refused): a stranger can delay
/// others' handshakes, never exhaust the coordinator's memory.
const HANDSHAKES: usize = 256;
const HANDSHAKES_PER_IP: usize = 16;
const WAITING_PER_IP: usize = 4096;

/// How long an authenticated connection may take to say what it wants.
const FIRST_MESSAGE_LIMIT: Duration = Duration::from_secs(5);

/// Most slots a worker may declare.
pub const MAX_SLOTS: u32 = 4096;

/// Refusals logged one by one; after that, one line per thousand.
const REFUSALS_LOGGED: u64 = 200;

/// The coordinator's settings.
pub struct Settings {
    pub cluster: String,
    pub max_applications: u32,
    pub heartbeat_timeout: Duration,
    /// Workers reach the coordinator through ssh tunnels: they cannot be
    /// assumed to reach each other, so shuffle data goes through drivers.
    pub relay: bool,
}

struct Worker {
    join: Join,
    alive: bool,
    last_heartbeat: Instant,
    /// Each join of this worker gets a new generation: a stale control
    /// line that ends must not mark a rejoined worker lost.
    generation: u64,
    control: mpsc::UnboundedSender<ToWorker>,
}

struct App {
    apply: Apply,
    secret: [u8; 16],
    started: Instant,
    events: mpsc::UnboundedSender<AppEvent>,
    grants: Vec<Grant>,
    /// Whether `Granted` was sent (later changes are `Share`s, even
    /// from an empty share).
    granted: bool,
}

/// A session the coordinator asked a worker to open: only that worker's
/// connection showing this token is bridged.
struct Pending {
    worker: String,
    token: [u8; 16],
    bridge: oneshot::Sender<(Receiver, Sender)>,
}

#[derive(Default)]
struct State {
    workers: BTreeMap<String, Worker>,
    running: BTreeMap<u64, App>,
    queue: VecDeque<(u64, App)>,
    sessions: HashMap<u64, Pending>,
    /// Per address: the handshakes it may run at once, and how many of
    /// its connections are waiting or in one.
    handshaking: HashMap<std::net::IpAddr, (Arc<Semaphore>, usize)>,
    next_id: u64,
    refused: u64,
    refusals: VecDeque<String>,
    decoded_client: u64,
    decoded_worker: u64,
}

/// A running coordinator.
pub struct Coordinator {
    settings: Settings,
    acceptor: Acceptor,
    state: Mutex<State>,
    started: Instant,
    stop: Notify,
    handshakes: Arc<Semaphore>,
}

impl Coordinator {
    pub fn new(settings: Settings, acceptor: Acceptor) -> Arc<Coordinator> {
        let state = State { next_id: 1, ..State::default() };
        Arc::new(Coordinator {
            settings,
            acceptor,
            state: Mutex::new(state),
            started: Instant::now(),
            stop: Notify::new(),
            handshakes: Arc::new(Semaphore::new(HANDSHAKES)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("coordinator state")
    }

    /// Serves `listener` until `shoal cluster down` asks it to stop.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let watch = tokio::spawn(self.clone().watch_heartbeats());
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of descriptors, say: wait, do not spin.
                            warn!("cannot accept a connection: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let me = self.clone();
                    tokio::spawn(async move { me.connection(stream, peer).await });
                }
                () = self.stop.notified() => break,
            }
        }
        watch.abort();
        // Let the last answers (the `down` that asked) leave.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    async fn connection(self: Arc<Self>, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let Some(secure) = self.handshake(stream, peer).await else { return };
        let (secure, role) = secure;
        keepalive(&secure);
        let (mut rx, tx) = secure.split();
        match role {
            Role::Client => {
                let hello = first_message::<ClientHello>(&mut rx).await;
                self.lock().decoded_client += rx.decoded();
                match hello {
                    Ok(Some(ClientHello::Apply(apply))) => self.application(apply, rx, tx).await,
                    Ok(Some(ClientHello::Attach { app, secret, worker, binary_hash, lease_ms })) => {
                        self.attach(app, secret, &worker, binary_hash, lease_ms, rx, tx).await
                    }
                    Ok(Some(ClientHello::Status)) => {
                        let mut tx = tx;
                        let _ = tx.send(&self.status()).await;
                    }
                    Ok(Some(ClientHello::Shutdown)) => self.shutdown(tx).await,
                    Ok(None) => {}
                    Err(e) => self.refuse(peer, &format!("a client's first message: {e}")),
                }
            }
            Role::Worker => {
                let hello = first_message::<WorkerHello>(&mut rx).await;
                self.lock().decoded_worker += rx.decoded();
                match hello {
                    Ok(Some(WorkerHello::Join(join))) => self.worker(join, peer, rx, tx).await,
                    Ok(Some(WorkerHello::Session { session, worker, token })) => {
                        let mut s = self.lock();
                        let ours = s.sessions.get(&session).is_some_and(|p| p.worker == worker && p.token == token);
                        if !ours {
                            drop(s);
                            return self.refuse(
                                peer,
                                &format!("a worker's session {session} with a token that is not the one sent to worker {worker}"),
                            );
                        }
                        if let Some(p) = s.sessions.remove(&session) {
                            let _ = p.bridge.send((rx, tx));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => self.refuse(peer, &format!("a worker's first message: {e}")),
                }
            }
        }
    }

    /// The Noise handshake, within the limits on handshakes in progress;
    /// `None` when it was refused (and counted).
    async fn handshake(&self, stream: tokio::net::TcpStream, peer: SocketAddr) -> Option<(secure::Secure, Role)> {
        let ip = peer.ip();
        // One address's handshakes wait for each other (a driver opens a
        // link per worker at once), up to a bound on how many may wait.
        let own = {
            let mut s = self.lock();
            let (sem, users) = s.handshaking.entry(ip).or_insert_with(|| (Arc::new(Semaphore::new(HANDSHAKES_PER_IP)), 0));
            *users += 1;
            (*users <= WAITING_PER_IP).then(|| sem.clone())
        };
        let result = match own {
            None => Err(format!("more than {WAITING_PER_IP} connections at once from {ip}")),
            Some(sem) => {
                let waited = tokio::time::timeout(secure::HANDSHAKE_LIMIT, async {
                    let mine = sem.acquire_owned().await;
                    let all = self.handshakes.clone().acquire_owned().await;
                    (mine, all)
                })
                .await;
                match waited {
                    Ok((Ok(_mine), Ok(_all))) => secure::accept(stream, &self.acceptor).await.map_err(|e| e.to_string()),
                    _ => Err(format!("no room for its handshake within {}s (too many at once)", secure::HANDSHAKE_LIMIT.as_secs())),
                }
            }
        };
        {
            let mut s = self.lock();
            if let Some((_, users)) = s.handshaking.get_mut(&ip) {
                *users -= 1;
                if *users == 0 {
                    s.handshaking.remove(&ip);
                }
            }
        }
        match result {
            Ok(ok) => Some(ok),
            Err(why) => {
                self.refuse(peer, &why);
                None
            }
        }
    }

    fn refuse(&self, peer: SocketAddr, why: &str) {
        let mut s = self.lock();
        if s.refused < REFUSALS_LOGGED || s.refused.is_multiple_of(1000) {
            warn!("refused a connection from {peer}: {why} ({} refused so far)", s.refused + 1);
        }
        s.refused += 1;
        s.refusals.push_back(format!("{peer}: {why}"));
        while s.refusals.len() > REFUSALS_KEPT {
            s.refusals.pop_front();
        }
    }

    /// An application's connection: admitted now or queued; it ends when
    /// the driver's connection does.
    async fn application(&self, apply: Apply, mut rx: Receiver, mut tx: Sender) {
        let (events, mut outgoing) = mpsc::unbounded_channel();
        let id = {
            let mut s = self.lock();
            let id = s.next_id;
            s.next_id += 1;
            let mut secret = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            info!("application {id} ({}, {} pid {} on {}) arrived", apply.label, apply.user, apply.pid, apply.machine);
            s.queue.push_back((id, App { apply, secret, started: Instant::now(), events, grants: Vec::new(), granted: false }));
            self.admit(&mut s);
            id
        };
        let forward = async {
            while let Some(e) = outgoing.recv().await {
                if tx.send(&e).await.is_err() {
                    break;
                }
            }
        };
        // The driver sends nothing more: its connection's end is the signal.
        let ended = async { while let Ok(Some(_)) = rx.recv_bytes().await {} };
        tokio::select! {
            () = forward => {}
            () = ended => {}
        }
        let mut s = self.lock();
        let was_running = s.running.remove(&id).is_some();
        s.queue.retain(|(q, _)| *q != id);
        info!("application {id} ended");
        if was_running {
            self.rebalance(&mut s);
        }
        self.admit(&mut s);
    }

    /// Moves queued applications to running while the rules allow, then
    /// divides the slots anew.
    fn admit(&self, s: &mut State) {
        let total: u64 = s.workers.values().filter(|w| w.alive).map(|w| u64::from(w.join.slots)).sum();
        let mut changed = false;
        while let Some((_, _)) = s.queue.front() {
            let max = self.settings.max_applications;
            let n = s.running.len() as u32;
            if (max > 0 && n >= max) || u64::from(n) + 1 > total {
                break;
            }
            let (id, app) = s.queue.pop_front().expect("front");
            s.running.insert(id, app);
            changed = true;
        }
        if changed {
            self.rebalance(s);
        }
        let running = s.running.len() as u32;
        for (ahead, (_, app)) in s.queue.iter().enumerate() {
            let _ = app.events.send(AppEvent::Queued { ahead: ahead as u32, running });
        }
    }

    /// Divides the alive workers' slots between the running applications
    /// (equal shares, the earlier ones first for the remainder), each
    /// share spread over the least busy workers, and tells every
    /// application whose share changed.
    fn rebalance(&self, s: &mut State) {
        let workers: Vec<(String, u32, u32, String)> = s
            .workers
            .values()
            .filter(|w| w.alive)
            .map(|w| (w.join.name.clone(), w.join.slots, w.join.cores, w.join.workdir.clone()))
            .collect();
        let shares = divide(&workers.iter().map(|w| w.1).collect::<Vec<_>>(), s.running.len());
        for ((id, app), share) in s.running.iter_mut().zip(shares) {
            let grants: Vec<Grant> = workers
                .iter()
                .zip(share)
                .filter(|(_, n)| *n > 0)
                .map(|((name, _, cores, workdir), n)| Grant { worker: name.clone(), slots: n, cores: *cores, workdir: workdir.clone() })
                .collect();
            if app.granted && grants == app.grants {
                continue;
            }
            let first = !app.granted;
            app.granted = true;
            app.grants = grants.clone();
            let event = if first {
                AppEvent::Granted { app: *id, secret: app.secret, workers: grants, relay: self.settings.relay }
            } else {
                AppEvent::Share { workers: grants }
            };
            let _ = app.events.send(event);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attach(
        &self,
        app: u64,
        secret: [u8; 16],
        worker: &str,
        binary_hash: String,
        lease_ms: u64,
        link_rx: Receiver,
        mut link_tx: Sender,
    ) {
        let opened = {
            let mut s = self.lock();
            let known = s.running.get(&app).is_some_and(|a| a.secret == secret);
            let control = s.workers.get(worker).filter(|w| w.alive).map(|w| w.control.clone());
            match (known, control) {
                (false, _) => Err(format!("application {app} is not running on this cluster (it ended, or the coordinator restarted)")),
                (true, None) => Err(format!("worker {worker} is not in the cluster now")),
                (true, Some(control)) => {
                    let session = s.next_id;
                    s.next_id += 1;
                    let (tx, rx) = oneshot::channel();
                    let mut token = [0u8; 16];
                    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut token);
                    s.sessions.insert(session, Pending { worker: worker.to_string(), token, bridge: tx });
                    let _ = control.send(ToWorker::Open { session, token, binary_hash, lease_ms });
                    Ok((session, rx))
                }
            }
        };
        let (session, waiting) = match opened {
            Ok(o) => o,
            Err(why) => {
                let _ = link_tx.send(&AttachReply::Refused(why)).await;
                return;
            }
        };
        let worker_side = match tokio::time::timeout(SESSION_LIMIT, waiting).await {
            Ok(Ok(w)) => w,
            _ => {
                self.lock().sessions.remove(&session);
                let why = format!("worker {worker} did not start an agent within {}s", SESSION_LIMIT.as_secs());
                let _ = link_tx.send(&AttachReply::Refused(why)).await;
                return;
            }
        };
        if link_tx.send(&AttachReply::Bridged).await.is_err() {
            return;
        }
        bridge((link_rx, link_tx), worker_side).await;
    }

    /// A worker's control line: registered, heartbeats read, lost when it
    /// ends or falls silent.
    async fn worker(&self, mut join: Join, peer: SocketAddr, mut rx: Receiver, mut tx: Sender) {
        let name = join.name.clone();
        if !plain_name(&name) {
            return self.refuse(peer, &format!("a worker named {name:?}: names are letters, digits, '-', '_' and '.'"));
        }
        join.slots = join.slots.clamp(1, MAX_SLOTS);
        let (control, mut commands) = mpsc::unbounded_channel();
        let generation = {
            let mut s = self.lock();
            if s.workers.get(&name).is_some_and(|w| w.alive) {
                drop(s);
                return self
                    .refuse(peer, &format!("a second worker named {name} while the first is alive (give each worker its own --name)"));
            }
            let generation = s.next_id;
            s.next_id += 1;
            info!(
                "worker {name} joined ({} slots, pid {}, {})",
                join.slots,
                join.pid,
                if join.started_by.is_empty() { "ssh" } else { &join.started_by }
            );
            s.workers.insert(name.clone(), Worker { join, alive: true, last_heartbeat: Instant::now(), generation, control });
            self.rebalance(&mut s);
            self.admit(&mut s);
            generation
        };
        let send = async {
            while let Some(c) = commands.recv().await {
                if tx.send(&c).await.is_err() {
                    break;
                }
            }
        };
        let read = async {
            loop {
                let before = rx.decoded();
                let msg = rx.recv::<FromWorker>().await;
                let mut s = self.lock();
                s.decoded_worker += rx.decoded() - before;
                match msg {
                    Ok(Some(FromWorker::Heartbeat { .. })) => {
                        if let Some(w) = s.workers.get_mut(&name).filter(|w| w.generation == generation) {
                            w.last_heartbeat = Instant::now();
                            if !w.alive {
                                w.alive = true;
                                self.rebalance(&mut s);
                                self.admit(&mut s);
                            }
                        }
                    }
                    _ => break,
                }
            }
        };
        tokio::select! {
            () = send => {}
            () = read => {}
        }
        let mut s = self.lock();
        if s.workers.get(&name).is_some_and(|w| w.generation == generation) {
            self.lose(&mut s, &name, "its connection to the coordinator ended");
        }
    }

    fn lose(&self, s: &mut State, name: &str, reason: &str) {
        let Some(w) = s.workers.get_mut(name) else { return };
        if !w.alive {
            return;
        }
        w.alive = false;
        warn!("worker {name} lost: {reason}");
        for app in s.running.values() {
            let _ = app.events.send(AppEvent::Lost { worker: name.to_string(), reason: reason.to_string() });
        }
        self.rebalance(s);
    }

    async fn watch_heartbeats(self: Arc<Self>) {
        let timeout = self.settings.heartbeat_timeout;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let mut s = self.lock();
            let silent: Vec<String> =
                s.workers.values().filter(|w| w.alive && w.last_heartbeat.elapsed() > timeout).map(|w| w.join.name.clone()).collect();
            for name in silent {
                let why = format!("no heartbeat for {:.1}s", timeout.as_secs_f64());
                self.lose(&mut s, &name, &why);
            }
        }
    }

    pub fn status(&self) -> Status {
        let s = self.lock();
        let mut busy: HashMap<&str, u32> = HashMap::new();
        for app in s.running.values() {
            for g in &app.grants {
                *busy.entry(g.worker.as_str()).or_default() += g.slots;
            }
        }
        let app_status = |id: u64, a: &App| AppStatus {
            id,
            label: a.apply.label.clone(),
            user: a.apply.user.clone(),
            pid: a.apply.pid,
            machine: a.apply.machine.clone(),
            slots: a.grants.iter().map(|g| g.slots).sum(),
            age_ms: a.started.elapsed().as_millis() as u64,
        };
        Status {
            cluster: self.settings.cluster.clone(),
            coordinator_pid: std::process::id(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            workers: s
                .workers
                .values()
                .map(|w| WorkerStatus {
                    name: w.join.name.clone(),
                    alive: w.alive,
                    last_heartbeat_ms: w.last_heartbeat.elapsed().as_millis() as u64,
                    slots: w.join.slots,
                    busy: busy.get(w.join.name.as_str()).copied().unwrap_or(0),
                    cores: w.join.cores,
                    memory_bytes: w.join.memory_bytes,
                    started_by: w.join.started_by.clone(),
                    pid: w.join.pid,
                })
                .collect(),
            applications: s.running.iter().map(|(id, a)| app_status(*id, a)).collect(),
            queue: s.queue.iter().map(|(id, a)| app_status(*id, a)).collect(),
            refused: s.refused,
            refusals: s.refusals.iter().cloned().collect(),
            decoded_client: s.decoded_client,
            decoded_worker: s.decoded_worker,
            allocations: Vec::new(),
        }
    }

    async fn shutdown(&self, mut tx: Sender) {
        info!("stopping: shoal cluster down");
        {
            let s = self.lock();
            for w in s.workers.values() {
                let _ = w.control.send(ToWorker::Stop);
            }
            for app in s.running.values().chain(s.queue.iter().map(|(_, a)| a)) {
                let _ = app.events.send(AppEvent::Stopping);
            }
        }
        let _ = tx.send(&self.status()).await;
        // The workers' control lines carry `Stop` before the process ends.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.stop.notify_one();
    }
}

/// The first message of an authenticated connection, within its limit.
async fn first_message<T: serde::de::DeserializeOwned>(rx: &mut Receiver) -> Result<Option<T>, secure::SecureError> {
    match tokio::time::timeout(FIRST_MESSAGE_LIMIT, rx.recv::<T>()).await {
        Ok(got) => got,
        Err(_) => Err(secure::SecureError::Silent(FIRST_MESSAGE_LIMIT.as_secs())),
    }
}

/// A worker name that can be a host name everywhere (a directory name on
/// the driver).
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// TCP keepalive on an accepted connection, so that a driver or worker
/// whose machine vanished without closing it is noticed (its
/// application's slots freed) within about half a minute.
fn keepalive(conn: &secure::Secure) {
    let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(10)).with_interval(Duration::from_secs(5)).with_retries(3);
    let _ = socket2::SockRef::from(conn.stream()).set_tcp_keepalive(&ka);
}

/// Splits `slots` (one entry per worker) between `apps` applications:
/// equal totals (the first ones get the remainder), each placed one slot
/// at a time on the worker with the most slots still free.
pub fn divide(slots: &[u32], apps: usize) -> Vec<Vec<u32>> {
    let total: u32 = slots.iter().fold(0u32, |a, b| a.saturating_add(*b));
    let mut free = slots.to_vec();
    let mut out = vec![vec![0u32; slots.len()]; apps];
    if apps == 0 {
        return out;
    }
    let base = total / apps as u32;
    let extra = total % apps as u32;
    // Round-robin one slot at a time, so that every application spreads
    // over the least busy workers rather than filling one.
    let mut quota: Vec<u32> = (0..apps as u32).map(|i| base + u32::from(i < extra)).collect();
    loop {
        let mut placed = false;
        for (a, q) in quota.iter_mut().enumerate() {
            if *q == 0 {
                continue;
            }
            // The worker with the most free slots, and among those the one
            // where this application has the fewest.
            let best = (0..free.len()).filter(|&w| free[w] > 0).max_by_key(|&w| (free[w], std::cmp::Reverse(out[a][w])));
            if let Some(w) = best {
                free[w] -= 1;
                out[a][w] += 1;
                *q -= 1;
                placed = true;
            }
        }
        if !placed {
            return out;
        }
    }
}

/// Pumps bytes both ways between a link and a worker session until both
/// directions end; each direction's end is passed on (a shut-down write).
pub async fn bridge(a: (Receiver, Sender), b: (Receiver, Sender)) {
    let ((mut a_rx, mut a_tx), (mut b_rx, mut b_tx)) = (a, b);
    let first_a = a_rx.take_pending();
    let first_b = b_rx.take_pending();
    let up = async move {
        if !first_a.is_empty() && b_tx.send_bytes(&first_a).await.is_err() {
            return;
        }
        while let Ok(Some(chunk)) = a_rx.recv_bytes().await {
            if b_tx.send_bytes(chunk).await.is_err() {
                break;
            }
        }
        b_tx.shutdown().await;
    };
    let down = async move {
        if !first_b.is_empty() && a_tx.send_bytes(&first_b).await.is_err() {
            return;
        }
        while let Ok(Some(chunk)) = b_rx.recv_bytes().await {
            if a_tx.send_bytes(chunk).await.is_err() {
                break;
            }
        }
        a_tx.shutdown().await;
    };
    tokio::join!(up, down);
}

#[cfg(test)]
mod tests {
    use super::divide;

    #[test]
    fn one_application_gets_every_slot() {
        assert_eq!(divide(&[2, 2, 2], 1), vec![vec![2, 2, 2]]);
    }

    #[test]
    fn two_applications_split_every_worker() {
        assert_eq!(divide(&[2, 2, 2], 2), vec![vec![1, 1, 1], vec![1, 1, 1]]);
    }

    #[test]
    fn the_remainder_goes_to_the_earlier_applications_on_the_least_busy_workers() {
        let d = divide(&[1, 1, 1], 2);
        assert_eq!(d.iter().map(|a| a.iter().sum::<u32>()).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!((0..3).map(|w| d[0][w] + d[1][w]).collect::<Vec<_>>(), vec![1, 1, 1]);
        assert_eq!(divide(&[4, 0], 3).iter().map(|a| a[0]).collect::<Vec<_>>(), vec![2, 1, 1]);
    }

    #[test]
    fn no_application_no_share() {
        assert!(divide(&[3], 0).is_empty());
    }
}
