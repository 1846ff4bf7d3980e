//! The agent's life: handshake, then serve the driver's requests until the
//! link ends or the lease runs out, then clean up.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_wire::bounded::{Tail, EXEC_OUTPUT_MAX};
use shoal_wire::hello::Role;
use shoal_wire::{frame, spawn_writer, ExitStatus, FrameReader, Hash, Hello, LogStream, Message, Outbox, RunKey, TaskRequest, WireError};
use tokio::io::AsyncReadExt;

use super::gate::{Entry, Gates, Permit};
use super::resident::Executors;
use super::scratch::{self, RunLock};
use super::task::{self, TaskPlace};
use super::tree;
use super::{guard, hostinfo, workdir, AgentError, AgentOptions, BlockStore, FileError, START_MARKER};
use crate::peer::serve::{Listener, OnRefused};

/// The variables of a run's tasks (or why its params file could not be
/// written), and that run.
type RunEnv = (String, Result<Arc<Vec<(String, String)>>, FileError>);

/// Shared state of one agent process.
struct Agent {
    opts: AgentOptions,
    outbox: Outbox,
    store: Arc<BlockStore>,
    /// Process groups of running attempts, by attempt id.
    running: Mutex<HashMap<u32, i32>>,
    /// Containers of running attempts, by attempt id.
    containers: Mutex<HashMap<u32, String>>,
    /// The runs this agent serves, each held by its scratch dir's lock.
    runs: Mutex<HashMap<String, RunLock>>,
    /// Idle resident executors (Dataset programs), by kind.
    executors: Arc<Executors>,
    /// Command attempts sent ahead wait here for one of the host's slots.
    gates: Arc<Gates>,
    /// The variables of each run's tasks (`RunEnv`), by id, with their run.
    envs: Mutex<HashMap<u64, RunEnv>>,
    /// Each run's key and peer listener, while the run lives.
    peers: Mutex<HashMap<String, (RunKey, Option<Listener>)>>,
}

/// Runs the agent on stdin/stdout until the driver goes away.
pub async fn run(opts: AgentOptions) -> Result<(), AgentError> {
    super::private::secure_workdir(&opts.workdir, &["bin", "blocks", "runs"])?;
    // Cleans up after us if we are killed: started first, so that it
    // carries neither our mark nor a copy of our link.
    let _guard = guard::start(&opts.workdir)
        .map_err(|e| {
            eprintln!("warning: cannot start the agent's guardian ({e}): if this agent is killed, its tasks run on until they end")
        })
        .ok();
    tree::mark_everything_started();
    // Orphans of tasks become ours, so that they can be found and ended.
    tree::become_subreaper();
    // What agents killed before us left: set aside before the driver
    // hears from us, so that by then no stale dir bears a run's name.
    scratch::sweep(&opts.workdir.join("runs"), false);
    let blocks = opts.workdir.join("blocks");
    let store = Arc::new(BlockStore::open(blocks.clone()).map_err(|source| AgentError::Blocks { path: blocks, source })?);
    announce().map_err(AgentError::Announce)?;
    let (stdin, stdout) = super::stdio::link();
    let (outbox, writer) = spawn_writer(stdout);
    let executors = Arc::new(Executors::new(store.clone(), outbox.clone()));
    let agent = Arc::new(Agent {
        opts,
        outbox,
        store,
        running: Mutex::new(HashMap::new()),
        containers: Mutex::new(HashMap::new()),
        runs: Mutex::new(HashMap::new()),
        executors,
        gates: Arc::new(Gates::default()),
        envs: Mutex::new(HashMap::new()),
        peers: Mutex::new(HashMap::new()),
    });
    let mut reader = FrameReader::new(stdin);
    let result = tokio::select! {
        r = serve(&agent, &mut reader) => r,
        () = super::asked_to_stop() => Ok(()),
    };
    agent.shutdown();
    agent.outbox.close();
    drop(agent);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    result
}

fn announce() -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(START_MARKER)?;
    out.flush()
}

async fn serve(agent: &Arc<Agent>, reader: &mut FrameReader<super::stdio::Reader>) -> Result<(), AgentError> {
    let hash = crate::binary::current().map(|b| b.hash.clone()).unwrap_or_default();
    agent.outbox.send_now(Message::Hello(Hello::new(Role::Agent, hash)))?;
    match next(agent, reader).await? {
        Some(Message::Hello(h)) => h.check()?,
        other => return Err(AgentError::NoHello { got: format!("{other:?}") }),
    }
    let info = hostinfo::gather(&agent.opts.workdir);
    agent.outbox.send_now(Message::HostInfo(info))?;
    tokio::spawn(heartbeat(agent.outbox.clone(), agent.opts.lease));
    while let Some(msg) = next(agent, reader).await? {
        agent.handle(msg);
    }
    Ok(())
}

/// Reads the next message, or ends the session when the lease expires.
async fn next(agent: &Agent, reader: &mut FrameReader<super::stdio::Reader>) -> Result<Option<Message>, AgentError> {
    match tokio::time::timeout(agent.opts.lease, reader.read_message()).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(AgentError::LeaseExpired { lease: agent.opts.lease }),
    }
}

async fn heartbeat(outbox: Outbox, lease: Duration) {
    let every = (lease / 4).clamp(Duration::from_millis(200), Duration::from_secs(2));
    while outbox.send_now(Message::Heartbeat).is_ok() {
        tokio::time::sleep(every).await;
    }
}

impl Agent {
    fn handle(self: &Arc<Self>, msg: Message) {
        match msg {
            Message::Heartbeat => {}
            Message::Exec { id, command } => self.spawn_exec(id, command),
            Message::QueryBlocks { id, hashes } => self.spawn_blocking(move |me| {
                // A block whose seal is broken is hashed again here.
                let hashes = hashes.into_iter().filter(|h| !me.store.has(h)).collect();
                me.reply(Message::MissingBlocks { id, hashes });
            }),
            Message::Chunk { stream, hash, data, last } => self.receive_chunk(stream, hash, &data, last),
            Message::MakeWorkdir { id, run, files, fresh } => self.spawn_blocking(move |me| me.make_workdir(id, run, files, fresh)),
            Message::RunEnv { run, id, env, params } => self.run_env(run, id, env, &params),
            Message::RunTask(req) => {
                super::failpoint::received(req.attempt);
                self.start_task(req)
            }
            Message::KillTask { attempt } => self.kill(attempt),
            Message::FetchBlock { id, hash } => self.spawn_fetch(id, hash),
            Message::EndRun { run } => self.end_run(&run),
            Message::PlaceBlock { id, hash, path } => {
                let error = self.place(hash, &path).err().map(|e| e.to_string());
                self.reply(Message::Placed { id, error });
            }
            Message::FetchPath { id, path } => self.spawn_fetch_path(id, path),
            Message::PeerListen { id, run, key } => self.peer_listen(id, run, key),
            Message::PeerProbe { id, run, peers } => self.spawn_peer_probe(id, run, peers),
            Message::PeerFetch { id, run, blocks } => self.spawn_peer_fetch(id, run, blocks),
            other => self.reply(Message::Error { id: 0, message: format!("unexpected message {other:?}") }),
        }
    }

    /// Runs file work (hashing, copying) off the runtime's threads, so
    /// that heartbeats and other requests never wait behind it.
    fn spawn_blocking(self: &Arc<Self>, work: impl FnOnce(&Agent) + Send + 'static) {
        let me = self.clone();
        tokio::task::spawn_blocking(move || work(&me));
    }

    fn reply(&self, msg: Message) {
        reply(&self.outbox, msg);
    }

    fn receive_chunk(&self, stream: u64, hash: Hash, data: &[u8], last: bool) {
        match self.store.receive_chunk(stream, hash, data, last) {
            Ok(true) => self.reply(Message::BlockStored { hash, error: None }),
            Ok(false) => {}
            Err(e) => self.reply(Message::BlockStored { hash, error: Some(e.to_string()) }),
        }
    }

    fn run_dir(&self, run: &str) -> Result<PathBuf, FileError> {
        workdir::confined(run)?;
        Ok(self.opts.workdir.join("runs").join(run))
    }

    /// A run's dir, held by this agent from the run's first message on
    /// (see `scratch`), so that no sweep takes it while the run lives.
    fn hold(&self, run: &str) -> Result<PathBuf, FileError> {
        let dir = self.run_dir(run)?;
        let mut runs = self.runs.lock().unwrap();
        if !runs.contains_key(run) {
            let lock = RunLock::take(&dir).map_err(|source| FileError::Scratch { path: dir.clone(), source })?;
            runs.insert(run.to_string(), lock);
        }
        Ok(dir)
    }

    /// Keeps a run's variables and writes its params file into the run's
    /// work dir: params may be secrets, so they are never a cached block
    /// (which outlives the run), and `EndRun` removes them with the run.
    fn run_env(&self, run: String, id: u64, env: Vec<(String, String)>, params: &[u8]) {
        let written = self.hold(&run).and_then(|dir| write_params(&dir.join("work"), params));
        self.envs.lock().unwrap().insert(id, (run, written.map(|()| Arc::new(env))));
    }

    fn make_workdir(&self, id: u64, run: String, files: Vec<shoal_wire::FileEntry>, fresh: bool) {
        let result = self.hold(&run).and_then(|dir| {
            files.iter().for_each(|f| self.store.pin(f.hash));
            if fresh {
                workdir::build(&dir.join("work"), &self.store, &files)
            } else {
                workdir::add(&dir.join("work"), &self.store, &files)
            }
        });
        self.reply(Message::WorkdirReady { id, error: result.err().map(|e| e.to_string()) });
    }

    fn start_task(self: &Arc<Self>, mut req: TaskRequest) {
        let attempt = req.attempt;
        match self.envs.lock().unwrap().get(&req.env_id) {
            Some((_, Ok(env))) => req.env = env.clone(),
            Some((_, Err(why))) => {
                return self.reply(Message::TaskDone(task::trouble(attempt, std::time::Instant::now(), why.to_string())))
            }
            None => {
                let why = format!("the driver named variables ({}) it never sent; the driver and this agent disagree", req.env_id);
                return self.reply(Message::TaskDone(task::trouble(attempt, std::time::Instant::now(), why)));
            }
        }
        let dir = match self.run_dir(&req.run) {
            Ok(d) => d,
            Err(e) => return self.reply(Message::Error { id: attempt as u64, message: e.to_string() }),
        };
        req.inputs.iter().for_each(|h| self.store.pin(*h));
        let place = TaskPlace { work: dir.join("work"), scratch: dir.join("tasks").join(attempt.to_string()) };
        if req.resident && req.container.is_none() {
            return self.executors.start(req, place);
        }
        match self.gates.enter(&req.run, req.slots, attempt) {
            Entry::Now(permit) => self.launch(req, place, permit),
            Entry::Later(wait) => {
                let me = self.clone();
                tokio::spawn(async move {
                    if let Some(permit) = wait.await {
                        me.launch(req, place, permit);
                    }
                });
            }
        }
    }

    /// Starts a command attempt that holds one of the host's slots (free
    /// again as soon as its process has ended).
    fn launch(self: &Arc<Self>, req: TaskRequest, place: TaskPlace, permit: Permit) {
        let attempt = req.attempt;
        if let Some(c) = &req.container {
            self.containers.lock().unwrap().insert(attempt, c.name.clone());
        }
        match task::start(req, place, permit, self.store.clone(), self.outbox.clone()) {
            Err(report) => {
                self.containers.lock().unwrap().remove(&attempt);
                self.reply(Message::TaskDone(*report))
            }
            Ok((pgid, handle)) => {
                self.running.lock().unwrap().insert(attempt, pgid);
                let me = self.clone();
                tokio::spawn(async move {
                    let report = handle.await;
                    me.running.lock().unwrap().remove(&attempt);
                    me.containers.lock().unwrap().remove(&attempt);
                    if let Ok(report) = report {
                        task::send_report(&me.outbox, report).await;
                    }
                });
            }
        }
    }

    fn kill(&self, attempt: u32) {
        if self.gates.cancel(attempt) {
            // It waited for a slot: it never started, and ends here.
            return self.reply(Message::TaskDone(task::killed(attempt)));
        }
        if let Some(pgid) = self.running.lock().unwrap().get(&attempt) {
            tree::kill_running(*pgid, None);
        }
        self.executors.kill(attempt);
        if let Some(name) = self.containers.lock().unwrap().get(&attempt).cloned() {
            std::thread::spawn(move || super::container::remove(&name));
        }
    }

    fn spawn_exec(self: &Arc<Self>, id: u64, command: String) {
        let me = self.clone();
        tokio::spawn(async move {
            let msg = me.exec(id, &command).await;
            reply(&me.outbox, msg);
        });
    }

    /// Runs a `shoal exec` command as a task's shell is run: in its own
    /// process group, registered so that shutdown kills it too, with a
    /// [`tree::Mark`] so that what it leaves behind ends with it. It is
    /// over when its shell ends: a pipe still held a moment later belongs
    /// to a leftover (a `setsid` child), which is ended, not waited for.
    /// Only the tail of each output stream is kept ([`EXEC_OUTPUT_MAX`]):
    /// what a command prints must never make a reply too large to send.
    async fn exec(&self, id: u64, command: &str) -> Message {
        let mark = tree::Mark::new();
        let spawned = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .current_dir(&self.opts.workdir)
            .env(tree::MARK_ENV, mark.value())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let status = ExitStatus::SpawnFailed(e.to_string());
                return Message::ExecDone { id, status, stdout: vec![], stderr: vec![], stdout_cut: 0, stderr_cut: 0 };
            }
        };
        let (pid, key) = (child.id() as i32, u32::MAX - (id as u32));
        self.running.lock().unwrap().insert(key, pid);
        let (tx, rx) = tokio::sync::mpsc::channel(task::LOG_QUEUE);
        let (ended, ended_rx) = tokio::sync::watch::channel(None);
        let drains = [
            task::drain(child.stdout.take(), LogStream::Stdout, tx.clone(), ended_rx.clone()),
            task::drain(child.stderr.take(), LogStream::Stderr, tx, ended_rx),
        ];
        let tails = tokio::spawn(exec_tails(rx));
        let (status, _cpu_ms) = task::wait_child(pid).await;
        self.running.lock().unwrap().remove(&key);
        // Its group may still hold background children that keep the pipes open.
        task::kill_group(pid);
        task::close_pipes(drains.into_iter().flatten().collect(), &mark, &ended).await;
        let (stdout, stderr) = tails.await.unwrap_or_else(|_| (Tail::new(0), Tail::new(0)));
        let ((stdout, stdout_cut), (stderr, stderr_cut)) = (stdout.finish(), stderr.finish());
        Message::ExecDone { id, status, stdout, stderr, stdout_cut, stderr_cut }
    }

    fn spawn_fetch(&self, id: u64, hash: Hash) {
        let outbox = self.outbox.clone();
        let path = self.store.path(&hash);
        tokio::spawn(async move {
            if let Err(e) = send_block(&outbox, id, hash, path).await {
                let _ = outbox.send_now(Message::FetchFailed { id, error: e.to_string() });
            }
        });
    }

    /// Resolves a user path: absolute as is, relative under the work dir.
    fn user_path(&self, path: &str) -> Result<PathBuf, FileError> {
        let p = std::path::Path::new(path);
        if p.is_absolute() {
            return Ok(p.to_path_buf());
        }
        if let (Some(rest), Some(home)) = (path.strip_prefix("~/"), std::env::var_os("HOME")) {
            workdir::confined(rest)?;
            return Ok(PathBuf::from(home).join(rest));
        }
        workdir::confined(path)?;
        Ok(self.opts.workdir.join(p))
    }

    /// Copies a cached block to a user path (`shoal push`), by a temp
    /// file with a random name, opened exclusively, and a rename: nothing
    /// planted beside the destination is written through.
    fn place(&self, hash: Hash, path: &str) -> Result<(), FileError> {
        let dest = self.user_path(path)?;
        let src = self.store.verified(&hash).map_err(FileError::Block)?;
        let parent = dest.parent().unwrap_or(std::path::Path::new("/"));
        std::fs::create_dir_all(parent).map_err(FileError::io("create", parent))?;
        let write = |source| FileError::Io { action: "write", path: dest.clone(), source };
        // The user's file, not ours: the usual mode (less the umask).
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o644);
        let mut tmp = tempfile::Builder::new().prefix(".shoal-").suffix(".tmp").permissions(mode).tempfile_in(parent).map_err(write)?;
        std::io::copy(&mut std::fs::File::open(src).map_err(write)?, tmp.as_file_mut()).map_err(write)?;
        tmp.persist(&dest).map_err(|e| write(e.error))?;
        Ok(())
    }

    fn spawn_fetch_path(&self, id: u64, path: String) {
        let outbox = self.outbox.clone();
        let resolved = self.user_path(&path);
        tokio::spawn(async move {
            let result = match resolved {
                Ok(p) => hash_and_send(&outbox, id, p).await.map_err(|e| format!("{path}: {e}")),
                Err(e) => Err(e.to_string()),
            };
            if let Err(error) = result {
                let _ = outbox.send_now(Message::FetchFailed { id, error });
            }
        });
    }

    /// Starts listening for the peers of `run` (see `crate::peer`): for
    /// as long as the run lives, admitting only those holding its key.
    fn peer_listen(&self, id: u64, run: String, key: RunKey) {
        let outbox = self.outbox.clone();
        let who = run.clone();
        let on_refused: OnRefused = Arc::new(move |from, why| {
            let _ = outbox.send_now(Message::PeerRefused { run: who.clone(), from: from.to_string(), why });
        });
        let started = Listener::start(crate::peer::own_ip(), run.clone(), key, self.store.clone(), on_refused);
        let addr = started.as_ref().map(|l| l.addr.to_string()).map_err(|e| format!("cannot listen for peers: {e}"));
        self.peers.lock().unwrap().insert(run, (key, started.ok()));
        self.reply(Message::PeerListening { id, addr });
    }

    fn run_key(&self, run: &str) -> Option<RunKey> {
        self.peers.lock().unwrap().get(run).map(|(key, _)| *key)
    }

    fn spawn_peer_probe(&self, id: u64, run: String, peers: Vec<String>) {
        let outbox = self.outbox.clone();
        let key = self.run_key(&run);
        tokio::spawn(async move {
            let mut unreachable = Vec::with_capacity(peers.len());
            match key {
                Some(key) => {
                    let mut set = tokio::task::JoinSet::new();
                    for (i, addr) in peers.into_iter().enumerate() {
                        let run = run.clone();
                        set.spawn(async move { (i, crate::peer::fetch::probe(&addr, &run, &key).await.err().map(|e| e.to_string())) });
                    }
                    let mut answers: Vec<(usize, Option<String>)> = Vec::new();
                    while let Some(Ok(a)) = set.join_next().await {
                        answers.push(a);
                    }
                    answers.sort_by_key(|(i, _)| *i);
                    unreachable.extend(answers.into_iter().map(|(_, a)| a));
                }
                None => unreachable.extend(peers.iter().map(|_| Some(NO_KEY.to_string()))),
            }
            reply(&outbox, Message::PeerProbed { id, unreachable });
        });
    }

    fn spawn_peer_fetch(&self, id: u64, run: String, blocks: Vec<shoal_wire::PeerBlock>) {
        let outbox = self.outbox.clone();
        let (key, store) = (self.run_key(&run), self.store.clone());
        blocks.iter().for_each(|b| self.store.pin(b.hash));
        tokio::spawn(async move {
            let (bytes, failed) = match key {
                Some(key) => crate::peer::fetch::fetch_all(&run, &key, blocks, store).await,
                None => (0, blocks.iter().map(|b| (b.hash, NO_KEY.to_string())).collect()),
            };
            reply(&outbox, Message::PeerFetched { id, bytes, failed });
        });
    }

    fn end_run(&self, run: &str) {
        // Its listener closes, and its key is forgotten.
        self.peers.lock().unwrap().remove(run);
        self.executors.end_run(run);
        self.gates.end_run(run);
        self.envs.lock().unwrap().retain(|_, (r, _)| r != run);
        let held = self.runs.lock().unwrap().remove(run);
        if let Some(lock) = held {
            lock.remove();
        }
        let _ = self.store.evict(self.opts.cache_bytes);
    }

    /// Kills every process we started, and theirs, and removes run scratch.
    fn shutdown(&self) {
        // Attempts that wait for a slot must not start (and make their
        // scratch again) while we end the others.
        self.runs.lock().unwrap().keys().for_each(|run| self.gates.end_run(run));
        self.executors.shutdown();
        for name in self.containers.lock().unwrap().values() {
            super::container::remove(name);
        }
        for pgid in self.running.lock().unwrap().values() {
            task::kill_group(*pgid);
        }
        // And whatever escaped its group: everything below the agent.
        tree::kill_all();
        let runs: Vec<RunLock> = self.runs.lock().unwrap().drain().map(|(_, lock)| lock).collect();
        runs.into_iter().for_each(RunLock::remove);
    }
}

/// Why a peer request of a run this agent has no key for fails.
const NO_KEY: &str = "this agent holds no key for the run (it was never asked to listen for its peers)";

/// Sends a reply to the driver. One too large to send (it should never
/// be: whatever a user controls is bounded before) is answered with an
/// `Error` for its request, so that the driver's caller hears why and the
/// link goes on.
fn reply(outbox: &Outbox, msg: Message) {
    let id = msg.reply_id();
    if let (Err(e @ WireError::Unsendable { .. }), Some(id)) = (outbox.send_now(msg), id) {
        let _ = outbox.send_now(Message::Error { id, message: format!("the agent cannot send its reply: {e}") });
    }
}

/// The last [`EXEC_OUTPUT_MAX`] bytes of an exec command's stdout and
/// of its stderr, from its drains.
async fn exec_tails(mut rx: tokio::sync::mpsc::Receiver<(LogStream, Vec<u8>)>) -> (Tail, Tail) {
    let (mut stdout, mut stderr) = (Tail::new(EXEC_OUTPUT_MAX), Tail::new(EXEC_OUTPUT_MAX));
    while let Some((stream, data)) = rx.recv().await {
        match stream {
            LogStream::Stdout => stdout.push(&data),
            LogStream::Stderr => stderr.push(&data),
        }
    }
    (stdout, stderr)
}

/// Streams a block in chunks; the bounded bulk queue paces us.
pub async fn send_block(outbox: &Outbox, stream: u64, hash: Hash, path: PathBuf) -> std::io::Result<()> {
    let mut file = tokio::fs::File::open(&path).await?;
    let size = file.metadata().await?.len() as usize;
    let mut buf = vec![0u8; size.clamp(1, frame::CHUNK)];
    loop {
        let n = read_full(&mut file, &mut buf).await?;
        let last = n < buf.len();
        let data = buf[..n].to_vec();
        outbox.send(Message::Chunk { stream, hash, data, last }).await.map_err(|e| std::io::Error::other(e.to_string()))?;
        if last {
            return Ok(());
        }
    }
}

async fn hash_and_send(outbox: &Outbox, id: u64, path: PathBuf) -> std::io::Result<()> {
    let p = path.clone();
    let hash = tokio::task::spawn_blocking(move || -> std::io::Result<Hash> {
        let mut h = blake3::Hasher::new();
        h.update_reader(std::fs::File::open(&p)?)?;
        Ok(*h.finalize().as_bytes())
    })
    .await
    .map_err(std::io::Error::other)??;
    send_block(outbox, id, hash, path).await
}

async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Writes `params` to the params file of work dir `work`, owner-only and
/// fresh (a stale file or a link planted there is removed, not followed).
fn write_params(work: &std::path::Path, params: &[u8]) -> Result<(), FileError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = work.join(shoal_wire::PARAMS_PATH);
    let why = |source| FileError::Params { path: path.clone(), source };
    let dir = path.parent().unwrap_or(work);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(why)?;
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(why)?;
    f.write_all(params).map_err(why)
}
