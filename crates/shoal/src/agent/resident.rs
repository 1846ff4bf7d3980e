//! Resident executors: Dataset programs that stay up and run the tasks of
//! their run one after another, so that a task costs a few messages
//! instead of a process (see `shoal_wire::executor` for the protocol, and
//! `crate::dataset` for the program's side).
//!
//! Attempts marked `resident` join the queue of their *kind* (the same
//! run, command and environment). A kind has at most the host's slots of
//! executors, each started like a task (`/bin/sh -c COMMAND` in the work
//! dir, its own process group) with `SHOAL_EXECUTOR=1`, and each driven by
//! one async loop here that keeps up to [`PIPE_DEPTH`] attempts written
//! into its stdin, so that the executor never waits for the agent either.
//! The executor runs them in order; the first one not yet answered is the
//! one running, and the only one a kill, a timeout or a crash can take
//! down: the attempts behind it go back to the queue, untouched.
//!
//! An executor's stderr is a log file of its own. Each reply says where
//! the file ended after that task, so the agent forwards exactly that
//! range as the attempt's log; the file is emptied whenever the executor
//! is idle. Executors of a run go when the run ends or the agent exits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_wire::executor::{ExecDone, ExecInput, ExecOutput, ExecTask, EXECUTOR_ENV};
use shoal_wire::{ExitStatus, FrameReader, LogStream, Message, Outbox, TaskReport, TaskRequest, INLINE_MAX};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Notify;

use super::task::{self, FinishArgs, LogCap, Tail, TaskPlace, LOG_CAP, TAIL_BYTES};
use super::tree::{self, Mark};
use super::{private, BlockStore};

/// Attempts written ahead into one executor's stdin.
pub const PIPE_DEPTH: usize = 32;

/// Which tasks an executor can run: a hash of run, command and the
/// variables they share (its copy of the per-task ones is its first
/// task's: the program reads those from its requests).
type Kind = [u8; 32];

/// The resident executors of an agent.
pub struct Executors {
    state: Mutex<State>,
    store: Arc<BlockStore>,
    outbox: Outbox,
    started: AtomicU64,
}

#[derive(Default)]
struct State {
    kinds: HashMap<Kind, KindState>,
    /// The attempt each executor is running now, by attempt: its group.
    running: HashMap<u32, i32>,
    /// The attempt a kill was meant for, by the group it killed: only
    /// that attempt is charged when the executor dies of it.
    kills: HashMap<i32, u32>,
    ended: HashSet<String>,
}

/// The queue and the executors of one kind.
struct KindState {
    run: String,
    slots: u32,
    queue: VecDeque<Job>,
    /// Executors alive (or starting), and how many of them wait for work.
    live: u32,
    idle: u32,
    /// Wakes an idle executor when work arrives or the run ends.
    wake: Arc<Notify>,
    /// Process groups of the kind's executors, by executor number.
    groups: HashMap<u64, i32>,
}

/// An attempt waiting for, or written to, an executor.
struct Job {
    req: TaskRequest,
    place: TaskPlace,
    /// What the executor is sent, once made.
    task: Option<ExecTask>,
    /// The bytes of its frame, once written.
    frame: usize,
}

/// One running executor process and the pipes to it.
struct Executor {
    id: u64,
    /// Killed when dropped (a leftover never outlives its handle).
    child: Child,
    requests: ChildStdin,
    replies: FrameReader<ChildStdout>,
    /// Its stderr, and how much of it was forwarded.
    log: File,
    log_start: u64,
    pgid: i32,
    /// What its stdin pipe holds: the agent never has more unanswered
    /// bytes in it, so that a write never waits for the executor while the
    /// executor waits for the agent to read its replies.
    pipe_bytes: usize,
    /// Dropped with the executor: what it left running is ended.
    _mark: Mark,
}

impl Executors {
    pub fn new(store: Arc<BlockStore>, outbox: Outbox) -> Self {
        Executors { state: Mutex::default(), store, outbox, started: AtomicU64::new(0) }
    }

    /// Queues an attempt with its kind; starts an executor for it while
    /// the kind has fewer than the host's slots, else wakes an idle one.
    pub fn start(self: &Arc<Self>, req: TaskRequest, place: TaskPlace) {
        let kind = kind_of(&req);
        let (spawn, wake) = {
            let mut st = self.state.lock().unwrap();
            if st.ended.contains(&req.run) {
                drop(st);
                return self.report(task::killed(req.attempt));
            }
            let k = st.kinds.entry(kind).or_insert_with(|| KindState {
                run: req.run.clone(),
                slots: req.slots.max(1),
                queue: VecDeque::new(),
                live: 0,
                idle: 0,
                wake: Arc::new(Notify::new()),
                groups: HashMap::new(),
            });
            k.queue.push_back(Job { req, place, task: None, frame: 0 });
            let spawn = k.idle == 0 && k.live < k.slots;
            if spawn {
                k.live += 1;
            }
            (spawn, k.wake.clone())
        };
        // Also when spawning: an executor about to wait finds the permit.
        wake.notify_one();
        if spawn {
            self.launch(kind);
        }
    }

    /// Kills an attempt: the executor running it, or its place in the
    /// queue. One written to an executor but not started runs and is
    /// discarded by the driver.
    pub fn kill(&self, attempt: u32) {
        let mut st = self.state.lock().unwrap();
        if let Some(pgid) = st.running.get(&attempt).copied() {
            st.kills.insert(pgid, attempt);
            tree::kill_running(pgid, None);
            return;
        }
        let mut dropped = None;
        for k in st.kinds.values_mut() {
            if let Some(i) = k.queue.iter().position(|j| j.req.attempt == attempt) {
                dropped = k.queue.remove(i);
            }
        }
        drop(st);
        if dropped.is_some() {
            self.report(task::killed(attempt));
        }
    }

    /// The run is over: its executors are stopped and its queue dropped.
    pub fn end_run(&self, run: &str) {
        let mut st = self.state.lock().unwrap();
        st.ended.insert(run.to_string());
        let kinds: Vec<Kind> = st.kinds.iter().filter(|(_, k)| k.run == run).map(|(kind, _)| *kind).collect();
        for kind in kinds {
            if let Some(k) = st.kinds.remove(&kind) {
                k.groups.values().for_each(|g| tree::kill_running(*g, None));
                k.wake.notify_waiters();
            }
        }
    }

    /// The agent is exiting: every executor is stopped.
    pub fn shutdown(&self) {
        let mut st = self.state.lock().unwrap();
        for (_, k) in st.kinds.drain() {
            k.groups.values().for_each(|g| tree::kill_running(*g, None));
            k.wake.notify_waiters();
        }
    }

    /// Sends a report; one that follows log lines queues behind them.
    fn report(&self, report: TaskReport) {
        if report.stderr_tail.is_empty() {
            return task::send_report_now(&self.outbox, report);
        }
        let outbox = self.outbox.clone();
        tokio::spawn(async move { task::send_report(&outbox, report).await });
    }

    /// Starts an executor for `kind` (its slot is already counted) and
    /// the loop that drives it.
    fn launch(self: &Arc<Self>, kind: Kind) {
        let first = {
            let st = self.state.lock().unwrap();
            st.kinds.get(&kind).and_then(|k| k.queue.front()).map(|j| (j.req.clone(), j.place.clone()))
        };
        let Some((req, place)) = first else {
            // The queue emptied meanwhile: nothing to start it for.
            return self.gone(kind, None);
        };
        match self.spawn(&req, &place) {
            Ok(exec) => {
                let mut st = self.state.lock().unwrap();
                match st.kinds.get_mut(&kind) {
                    Some(k) => {
                        k.groups.insert(exec.id, exec.pgid);
                    }
                    None => return tree::kill_running(exec.pgid, None), // the run ended meanwhile
                }
                drop(st);
                let me = self.clone();
                tokio::spawn(async move {
                    let id = me.drive(kind, exec).await;
                    me.gone(kind, Some(id));
                });
            }
            Err(e) => {
                let why = format!("cannot start the program in {}: {e}", place.work.display());
                self.cannot_start(kind, &why);
            }
        }
    }

    /// No executor of `kind` could start: with none left to run them, its
    /// queued attempts fail for the host's sake.
    fn cannot_start(self: &Arc<Self>, kind: Kind, why: &str) {
        let failed: Vec<Job> = {
            let mut st = self.state.lock().unwrap();
            let Some(k) = st.kinds.get_mut(&kind) else { return };
            k.live = k.live.saturating_sub(1);
            if k.live > 0 {
                return;
            }
            k.queue.drain(..).collect()
        };
        for j in failed {
            self.report(task::trouble(j.req.attempt, Instant::now(), why.to_string()));
        }
    }

    /// An executor is gone: its slot frees up, and a new one starts when
    /// attempts still wait.
    fn gone(self: &Arc<Self>, kind: Kind, id: Option<u64>) {
        let respawn = {
            let mut st = self.state.lock().unwrap();
            let State { kinds, kills, .. } = &mut *st;
            let Some(k) = kinds.get_mut(&kind) else { return };
            if let Some(pgid) = id.and_then(|id| k.groups.remove(&id)) {
                kills.remove(&pgid);
            }
            k.live = k.live.saturating_sub(1);
            let respawn = !k.queue.is_empty() && k.live < k.slots;
            if respawn {
                k.live += 1;
            }
            respawn
        };
        if respawn {
            self.launch(kind);
        }
    }

    fn spawn(&self, req: &TaskRequest, place: &TaskPlace) -> io::Result<Executor> {
        let run_dir = place.work.parent().unwrap_or(&place.work);
        let dir = run_dir.join("executors");
        private::create_dir(&dir)?;
        let id = self.started.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{id}.log"));
        // The executor appends: after the agent empties the file, its next
        // write lands at the new start.
        let stderr = OpenOptions::new().create_new(true).append(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&path)?;
        let log = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW).open(&path)?;
        let (input, output, progress) = (place.scratch.join("input"), place.scratch.join("output"), place.scratch.join("progress"));
        let mut cmd = tokio::process::Command::from(task::shell(req, place, &input, &output, &progress));
        let mark = Mark::new();
        cmd.env(tree::MARK_ENV, mark.value())
            .env(EXECUTOR_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let pgid = child.id().map(|p| p as i32).ok_or_else(|| io::Error::other("the program exited at once"))?;
        let requests = child.stdin.take().ok_or_else(|| io::Error::other("no stdin"))?;
        let replies = FrameReader::new(child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?);
        // SAFETY: fcntl on a pipe this process holds open.
        let capacity = unsafe { libc::fcntl(requests.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let pipe_bytes = usize::try_from(capacity).ok().filter(|&c| c > 0).unwrap_or(4096);
        Ok(Executor { id, child, requests, replies, log, log_start: 0, pgid, pipe_bytes, _mark: mark })
    }
}

// The loop that drives one executor.
impl Executors {
    /// Feeds the executor from its kind's queue and reports what it
    /// answers, until the run ends or the executor dies.
    async fn drive(self: &Arc<Self>, kind: Kind, mut exec: Executor) -> u64 {
        let mut sent: VecDeque<Job> = VecDeque::new();
        // When the oldest attempt in the pipe started running.
        let mut since = Instant::now();
        let mut answered_any = false;
        loop {
            let fresh = self.take(&kind, PIPE_DEPTH - sent.len());
            if sent.is_empty() && fresh.is_empty() {
                exec.idle();
                match self.wait_for_work(&kind).await {
                    true => continue,
                    false => return exec.id,
                }
            }
            // One that died while idle (an OOM kill, a thread of the
            // program) is no fault of the attempts about to be written:
            // they go back to the queue, for a new executor.
            if sent.is_empty() && answered_any && matches!(exec.child.try_wait(), Ok(Some(_))) {
                self.requeue(&kind, fresh);
                return exec.id;
            }
            let first = fresh.first().map(|j| j.req.attempt);
            let was_empty = sent.is_empty();
            if was_empty {
                since = Instant::now();
                self.set_running(first, exec.pgid, None);
            }
            if !self.write(&kind, &mut exec, fresh, &mut sent).await {
                return self.died(exec, sent, since, false).await;
            }
            let Some(front) = sent.front() else {
                // Every fresh attempt failed before it could be sent.
                self.set_running(None, exec.pgid, first);
                continue;
            };
            if was_empty && Some(front.req.attempt) != first {
                self.set_running(Some(front.req.attempt), exec.pgid, first);
            }
            let timeout = front.req.timeout_ms.map(Duration::from_millis).unwrap_or(Duration::MAX);
            let deadline = since.checked_add(timeout);
            let reply = tokio::select! {
                r = exec.replies.read_as::<ExecDone>() => Some(r.ok().flatten()),
                _ = sleep_until(deadline) => None,
            };
            let mut reply = match reply {
                Some(Some(done)) => done,
                Some(None) => return self.died(exec, sent, since, false).await,
                None => return self.died(exec, sent, since, true).await,
            };
            // Every reply already here, before the pipe is refilled in one write.
            loop {
                if sent.front().map(|j| j.req.attempt) != Some(reply.attempt) {
                    // Not the reply to the task it runs: it cannot be trusted.
                    return self.died(exec, sent, since, false).await;
                }
                let job = sent.pop_front().expect("checked");
                let next = sent.front().map(|j| j.req.attempt);
                self.set_running(next, exec.pgid, Some(job.req.attempt));
                let tail = exec.forward_log(reply.log_end, job.req.attempt, &self.outbox).await;
                self.answered(reply, tail, since, job);
                answered_any = true;
                since = Instant::now();
                match exec.replies.try_read_as::<ExecDone>() {
                    Ok(Some(r)) => reply = r,
                    Ok(None) => break,
                    Err(_) => return self.died(exec, sent, since, false).await,
                }
            }
        }
    }

    /// Up to `n` queued attempts of `kind`, and never more than a fair
    /// share of the queue among the kind's executors: two long tasks must
    /// go to two executors, not both into one pipe while the other idles.
    fn take(&self, kind: &Kind, n: usize) -> Vec<Job> {
        let mut st = self.state.lock().unwrap();
        let Some(k) = st.kinds.get_mut(kind) else { return vec![] };
        let n = fair_share(k.queue.len(), k.live, n);
        k.queue.drain(..n).collect()
    }

    /// Puts attempts back at the front of their kind's queue, in order.
    fn requeue(&self, kind: &Kind, jobs: impl IntoIterator<Item = Job, IntoIter: DoubleEndedIterator>) {
        let mut st = self.state.lock().unwrap();
        let dropped: Vec<u32> = match st.kinds.get_mut(kind) {
            Some(k) => {
                jobs.into_iter().rev().for_each(|j| k.queue.push_front(j));
                vec![]
            }
            // The run ended meanwhile: they are killed, as queued ones are.
            None => jobs.into_iter().map(|j| j.req.attempt).collect(),
        };
        drop(st);
        for attempt in dropped {
            self.report(task::killed(attempt));
        }
    }

    /// Waits for work; false when the run ended.
    async fn wait_for_work(&self, kind: &Kind) -> bool {
        let wake = {
            let mut st = self.state.lock().unwrap();
            match st.kinds.get_mut(kind) {
                Some(k) if !k.queue.is_empty() => return true,
                Some(k) => {
                    k.idle += 1;
                    k.wake.clone()
                }
                None => return false,
            }
        };
        // Listen before looking again: an end of the run (notify_waiters,
        // which leaves no permit) between the look above and the wait
        // would otherwise be missed.
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let ended = !self.state.lock().unwrap().kinds.contains_key(kind);
        if !ended {
            notified.await;
        }
        let mut st = self.state.lock().unwrap();
        match st.kinds.get_mut(kind) {
            Some(k) => {
                k.idle -= 1;
                true
            }
            None => false,
        }
    }

    /// Records which attempt an executor runs now (what a kill reaches).
    fn set_running(&self, now: Option<u32>, pgid: i32, before: Option<u32>) {
        let mut st = self.state.lock().unwrap();
        if let Some(b) = before {
            st.running.remove(&b);
        }
        if let Some(a) = now {
            st.running.insert(a, pgid);
        }
    }

    /// Writes `fresh` into the executor's stdin, in one write, as far as
    /// its pipe holds them (the rest go back to the queue); false when the
    /// executor is gone.
    async fn write(&self, kind: &Kind, exec: &mut Executor, fresh: Vec<Job>, sent: &mut VecDeque<Job>) -> bool {
        let mut frames = Vec::new();
        let mut unanswered: usize = sent.iter().map(|j| j.frame).sum();
        let mut fresh = fresh.into_iter();
        while let Some(mut job) = fresh.next() {
            if job.task.is_none() {
                match exec_task(&mut job.req, &job.place, &self.store).await {
                    Ok(t) => job.task = Some(t),
                    Err(why) => {
                        self.report(task::trouble(job.req.attempt, Instant::now(), why));
                        continue;
                    }
                }
            }
            let payload = postcard::to_stdvec(job.task.as_ref().expect("made above")).unwrap_or_default();
            let start = frames.len();
            if shoal_wire::frame::encode(&payload, &mut frames).is_err() {
                self.report(task::trouble(job.req.attempt, Instant::now(), "the task's input is too large to send".into()));
                continue;
            }
            job.frame = frames.len() - start;
            // A frame larger than the pipe goes alone, into an executor
            // that has answered everything and so only reads.
            if !sent.is_empty() && unanswered + job.frame > exec.pipe_bytes {
                frames.truncate(start);
                self.requeue(kind, std::iter::once(job).chain(fresh).collect::<Vec<_>>());
                break;
            }
            unanswered += job.frame;
            sent.push_back(job);
        }
        frames.is_empty() || exec.requests.write_all(&frames).await.is_ok()
    }

    /// The executor died (or is killed, for a timeout): the attempt it was
    /// running fails with what it wrote; the ones behind it go back to the
    /// front of the queue.
    async fn died(self: &Arc<Self>, mut exec: Executor, mut sent: VecDeque<Job>, since: Instant, timed_out: bool) -> u64 {
        // Its pipe closes while a panic unwinds, a moment before it exits:
        // let it finish, so that its own exit status is what is reported.
        if timed_out {
            tree::kill_running(exec.pgid, None);
        }
        let status = match tokio::time::timeout(Duration::from_secs(2), exec.child.wait()).await {
            Ok(Ok(s)) => exit_status(s),
            _ => {
                task::kill_group(exec.pgid);
                exec.child.wait().await.map(exit_status).unwrap_or(ExitStatus::Signal(libc::SIGKILL))
            }
        };
        // Whatever it started is not left behind.
        task::kill_group(exec.pgid);
        let meant = self.state.lock().unwrap().kills.remove(&exec.pgid);
        let Some(front) = sent.pop_front() else {
            return exec.id;
        };
        self.set_running(None, exec.pgid, Some(front.req.attempt));
        if meant.is_some_and(|a| a != front.req.attempt) && !timed_out {
            // Killed for an attempt it had answered just before: the one
            // it ran since is not charged, it runs again.
            sent.push_front(front);
            self.requeue(&kind_of(&sent[0].req), sent);
            return exec.id;
        }
        let mut tail = exec.forward_log(u64::MAX, front.req.attempt, &self.outbox).await;
        self.requeue(&kind_of(&front.req), sent);
        let attempt = front.req.attempt;
        let exited_cleanly = status.success();
        if exited_cleanly {
            // It exited with 0 in the middle of a task (a call to
            // `std::process::exit`): no output file there is the answer.
            let why = "shoal: the program exited (exit code 0) before it answered this task; \
                       a Dataset task must return, not call std::process::exit";
            tail = if tail.is_empty() { why.to_string() } else { format!("{}\n{why}", tail.trim_end()) };
        }
        let args = finish_args(&self.store, Ending { status, cpu_ms: 0, timed_out, tail, started: since }, front);
        if exited_cleanly {
            let _ = std::fs::remove_dir_all(&args.scratch);
            self.report(args.report());
            return exec.id;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let report = tokio::task::spawn_blocking(move || task::finish(args)).await.unwrap_or_else(|e| panicked(attempt, e));
            me.report(report);
        });
        exec.id
    }

    /// Reports an attempt the executor answered; outputs written to a file
    /// are kept (a block, or shuffle buckets) off the loop.
    fn answered(self: &Arc<Self>, done: ExecDone, tail: String, since: Instant, job: Job) {
        let attempt = job.req.attempt;
        let cpu_ms = done.cpu_us / 1000;
        let (status, tail) = match &done.result {
            Ok(_) => (ExitStatus::Code(0), tail),
            Err(why) if tail.is_empty() => (ExitStatus::Code(1), why.clone()),
            Err(why) => (ExitStatus::Code(1), format!("{}\n{why}", tail.trim_end())),
        };
        let args = finish_args(&self.store, Ending { status, cpu_ms, timed_out: false, tail, started: since }, job);
        if let Ok(ExecOutput::Data(data)) = done.result {
            let mut report = args.report();
            task::inline_output(&mut report, data);
            return self.report(report);
        }
        let me = self.clone();
        tokio::spawn(async move {
            let report = tokio::task::spawn_blocking(move || task::finish(args)).await.unwrap_or_else(|e| panicked(attempt, e));
            me.report(report);
        });
    }
}

impl Executor {
    /// Nothing is in its pipe: empty its log file, which it cannot be
    /// writing to now.
    fn idle(&mut self) {
        if self.log_start > 0 && self.log.set_len(0).is_ok() {
            self.log_start = 0;
        }
    }

    /// Forwards the executor's log up to `end` (where it ended after the
    /// task; `u64::MAX`: all of it) as the attempt's; returns the tail.
    async fn forward_log(&mut self, end: u64, attempt: u32, outbox: &Outbox) -> String {
        if end <= self.log_start {
            return String::new(); // the task printed nothing
        }
        let size = self.log.metadata().map(|m| m.len()).unwrap_or(0);
        let end = end.min(size);
        if end <= self.log_start {
            return String::new();
        }
        let mut tail = Tail::new(TAIL_BYTES);
        let mut cap = LogCap::new(LOG_CAP);
        let mut buf = vec![0u8; (end - self.log_start).min(64 << 10) as usize];
        while self.log_start < end {
            let want = ((end - self.log_start) as usize).min(buf.len());
            let n = match self.log.read_at(&mut buf[..want], self.log_start) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.log_start += n as u64;
            tail.push(&buf[..n]);
            match cap.admit(buf[..n].to_vec()) {
                Some(data) => {
                    let _ = outbox.send(Message::TaskLog { attempt, stream: LogStream::Stderr, data }).await;
                }
                // Past the cap only the tail is wanted: skip to it.
                None => self.log_start = self.log_start.max(end.saturating_sub(TAIL_BYTES as u64)),
            }
        }
        task::tail_text(tail)
    }
}

/// How many of `queued` attempts one of `executors` takes when its pipe
/// has `room`: its share, rounded up, so that nothing is left behind.
fn fair_share(queued: usize, executors: u32, room: usize) -> usize {
    queued.div_ceil(executors.max(1) as usize).min(room)
}

fn kind_of(req: &TaskRequest) -> Kind {
    let mut h = blake3::Hasher::new();
    for part in [req.run.as_str(), req.command.as_str()] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(&req.env_id.to_le_bytes());
    *h.finalize().as_bytes()
}

/// The task as the executor gets it: its input (inline, its one block, or
/// a file made from several), and where a large output goes.
async fn exec_task(req: &mut TaskRequest, place: &TaskPlace, store: &Arc<BlockStore>) -> Result<ExecTask, String> {
    let input = match (req.input_data.take(), req.inputs.as_slice()) {
        (Some(data), _) => ExecInput::Data(data),
        // The executor is the Dataset library, which only reads its input:
        // no copy, even of a large block.
        (None, [one]) if req.merge_in.is_none() => {
            ExecInput::File(store.verified(one).map_err(|e| format!("cannot prepare input: {e}"))?.display().to_string())
        }
        (None, _) => {
            // A reducer's merge of sorted runs, or several blocks: heavy
            // I/O, off the runtime's threads.
            let (r, scratch, store) = (req.clone(), place.scratch.clone(), store.clone());
            let made = tokio::task::spawn_blocking(move || {
                private::create_dir(&scratch)?;
                task::prepare_input(&r, &scratch, &store)
            })
            .await
            .map_err(|e| e.to_string())?;
            ExecInput::File(made.map_err(|e| format!("cannot prepare input: {e}"))?.display().to_string())
        }
    };
    // A shuffle's map output is cut into buckets from a file.
    let inline_max = if req.shuffle_out.is_some() { 0 } else { INLINE_MAX as u64 };
    Ok(ExecTask {
        attempt: req.attempt,
        stage: req.stage,
        partition: req.partition,
        input,
        output_path: place.scratch.join("output").display().to_string(),
        inline_max,
    })
}

/// What `task::finish` needs for an ended attempt.
struct Ending {
    status: ExitStatus,
    cpu_ms: u64,
    timed_out: bool,
    tail: String,
    started: Instant,
}

fn finish_args(store: &Arc<BlockStore>, e: Ending, job: Job) -> FinishArgs {
    let Ending { status, cpu_ms, timed_out, tail: stderr_tail, started } = e;
    let output = job.place.scratch.join("output");
    let (store, scratch, work) = (store.clone(), job.place.scratch, job.place.work);
    FinishArgs { status, cpu_ms, timed_out, stderr_tail, started, output, store, scratch, work, req: job.req }
}

impl FinishArgs {
    /// The report of an attempt whose output came inline: nothing to keep,
    /// no scratch made.
    fn report(self) -> TaskReport {
        TaskReport {
            attempt: self.req.attempt,
            status: self.status,
            output: None,
            output_data: None,
            stderr_tail: self.stderr_tail,
            wall_us: self.started.elapsed().as_micros() as u64,
            cpu_ms: self.cpu_ms,
            timed_out: false,
            host_trouble: None,
            buckets: vec![],
            records: 0,
            skipped: vec![],
        }
    }
}

fn panicked(attempt: u32, e: tokio::task::JoinError) -> TaskReport {
    task::trouble(attempt, Instant::now(), format!("finishing the task panicked: {e}"))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn exit_status(s: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, sig) => ExitStatus::Signal(sig.unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn executors_split_the_queue() {
        assert_eq!(fair_share(2, 2, 32), 1, "two long tasks go to two executors");
        assert_eq!(fair_share(3, 2, 32), 2);
        assert_eq!(fair_share(1, 2, 32), 1, "a lone task is taken");
        assert_eq!(fair_share(500, 2, 32), 32, "no more than the pipe holds");
        assert_eq!(fair_share(5, 0, 32), 5, "an executor alone takes what there is");
        assert_eq!(fair_share(0, 2, 32), 0);
    }
}
