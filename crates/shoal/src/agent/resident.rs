//! Resident executors: Dataset programs that stay up and run the tasks of
//! their run one after another, so that a task costs a few messages
//! instead of a process (see `shoal_wire::executor` for the protocol, and
//! `crate::dataset` for the program's side).
//!
//! Attempts marked `resident` join the queue of their *kind* (the same
//! run, command and environment). Who starts, which executor gets which
//! attempts, and which attempt a death or a kill is charged to are the
//! rules of [`pipeline`], a state machine without processes or I/O; this
//! module carries its decisions out. An executor is started like a task
//! (`/bin/sh -c COMMAND` in the work dir, its own process group) with
//! `SHOAL_EXECUTOR=1`, and driven by one async loop here that keeps up to
//! [`PIPE_DEPTH`](pipeline::PIPE_DEPTH) attempts written into its stdin,
//! so that the executor never waits for the agent either, and reads its
//! answers.
//!
//! An executor's stderr is a log file of its own. Each reply says where
//! the file ended after that task, so the agent forwards exactly that
//! range as the attempt's log; the file is emptied whenever the executor
//! is idle. Executors of a run go when the run ends or the agent exits.

mod pipeline;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_wire::executor::{ExecDone, ExecInput, ExecOutput, ExecTask};
use shoal_wire::task_env::{EXECUTOR_ENV, EXECUTOR_ON};
use shoal_wire::{ExitStatus, FrameReader, LogStream, Message, Outbox, TaskReport, TaskRequest, INLINE_MAX};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Notify;

use self::pipeline::{Cause, ExecId, Kind, Room};
use super::task::{self, FinishArgs, LogCap, Tail, TaskPlace, LOG_CAP, TAIL_BYTES};
use super::tree::{self, Mark};
use super::{private, BlockStore};

/// The machine as the agent runs it: a kind's idle executors wait on its `Notify`.
type Pipeline = pipeline::Pipeline<Job, Arc<Notify>>;
type Event = pipeline::Event<Job>;
type Decision = pipeline::Decision<Job, Arc<Notify>>;

/// The resident executors of an agent.
pub struct Executors {
    book: Mutex<Pipeline>,
    store: Arc<BlockStore>,
    outbox: Outbox,
}

/// An attempt waiting for, or written to, an executor.
struct Job {
    req: TaskRequest,
    place: TaskPlace,
    /// What the executor is sent, once made.
    task: Option<ExecTask>,
    /// The bytes of its frame, once made.
    frame: usize,
}

impl pipeline::Job for Job {
    fn attempt(&self) -> u32 {
        self.req.attempt
    }
    fn run(&self) -> &str {
        &self.req.run
    }
    fn slots(&self) -> u32 {
        self.req.slots
    }
    fn timeout_ms(&self) -> Option<u64> {
        self.req.timeout_ms
    }
    fn frame(&self) -> usize {
        self.frame
    }
}

/// One running executor process and the pipes to it.
struct Executor {
    id: ExecId,
    /// Killed when dropped (a leftover never outlives its handle).
    child: Child,
    requests: ChildStdin,
    replies: FrameReader<ChildStdout>,
    /// Its stderr, and how much of it was forwarded.
    log: File,
    log_start: u64,
    pgid: i32,
    /// How much its stdin pipe holds (see [`Room`]).
    pipe_bytes: usize,
    /// Dropped with the executor: what it left running is ended.
    _mark: Mark,
}

/// What an executor's loop does next.
enum Step {
    /// Read its answer to the running attempt, within this timeout.
    Read(Option<u64>),
    /// Ask again (it was idle, or every attempt lent failed to be made).
    Again,
    /// Its stdin is closed: it is dead.
    Broken,
    /// Its loop ends.
    End,
}

impl Executors {
    pub fn new(store: Arc<BlockStore>, outbox: Outbox) -> Self {
        Executors { book: Mutex::default(), store, outbox }
    }

    /// Queues an attempt with its kind.
    pub fn start(self: &Arc<Self>, req: TaskRequest, place: TaskPlace) {
        let kind = kind_of(&req);
        self.apply(Event::Queued { kind, job: Job { req, place, task: None, frame: 0 } });
    }

    /// Kills an attempt: the executor running it, or its place in the
    /// queue. One written to an executor but not started runs and is
    /// discarded by the driver.
    pub fn kill(self: &Arc<Self>, attempt: u32) {
        self.apply(Event::Kill { attempt });
    }

    /// The run is over: its executors are stopped and its queue dropped.
    pub fn end_run(self: &Arc<Self>, run: &str) {
        self.apply(Event::RunEnded { run: run.to_string() });
    }

    /// The agent is exiting: every executor is stopped.
    pub fn shutdown(self: &Arc<Self>) {
        self.apply(Event::Shutdown);
    }

    /// Feeds the machine an event and carries out the decisions that
    /// concern others; returns the one for the caller (an executor's loop,
    /// or `launch`), if any. The lock is held only for the event itself.
    fn apply(self: &Arc<Self>, event: Event) -> Option<Decision> {
        let decisions = self.book.lock().unwrap().on_event(event);
        let mut own = None;
        for decision in decisions {
            match decision {
                Decision::Start { kind, exec } => self.launch(kind, exec),
                Decision::Stop { group } => tree::kill_running(group, None),
                Decision::Wake { waker } => waker.notify_one(),
                Decision::WakeAll { waker } => waker.notify_waiters(),
                Decision::Killed { attempt } => self.report(task::killed(attempt)),
                mine => own = Some(mine),
            }
        }
        own
    }

    /// Sends a report; one that follows log lines queues behind them.
    fn report(&self, report: TaskReport) {
        if report.stderr_tail.is_empty() {
            return task::send_report_now(&self.outbox, report);
        }
        let outbox = self.outbox.clone();
        tokio::spawn(async move { task::send_report(&outbox, report).await });
    }

    /// Starts executor `id` for `kind` from its first queued attempt, and
    /// the loop that drives it.
    fn launch(self: &Arc<Self>, kind: Kind, id: ExecId) {
        let first = self.book.lock().unwrap().first_queued(&kind).map(|j| (j.req.clone(), j.place.clone()));
        let Some((req, place)) = first else {
            // The queue emptied meanwhile: nothing to start it for.
            self.apply(Event::Gone { exec: id });
            return;
        };
        let exec = match self.spawn(id, &req, &place) {
            Ok(exec) => exec,
            Err(e) => {
                let why = format!("cannot start the program in {}: {e}", place.work.display());
                return self.cannot_start(id, &why);
            }
        };
        if let Some(Decision::End { .. }) = self.apply(Event::Spawned { exec: id, group: exec.pgid, pipe_bytes: exec.pipe_bytes }) {
            drop(exec); // the run ended meanwhile
            self.apply(Event::Gone { exec: id });
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            me.drive(exec).await;
            me.apply(Event::Gone { exec: id });
        });
    }

    /// Executor `id` could not start: the attempts left without one fail
    /// for the host's sake.
    fn cannot_start(self: &Arc<Self>, id: ExecId, why: &str) {
        if let Some(Decision::NoExecutor { jobs }) = self.apply(Event::SpawnFailed { exec: id }) {
            for j in jobs {
                self.report(task::trouble(j.req.attempt, Instant::now(), why.to_string()));
            }
        }
    }

    fn spawn(&self, id: ExecId, req: &TaskRequest, place: &TaskPlace) -> io::Result<Executor> {
        let run_dir = place.work.parent().unwrap_or(&place.work);
        let dir = run_dir.join("executors");
        private::create_dir(&dir)?;
        let path = dir.join(format!("{id}.log"));
        // The executor appends: after the agent empties the file, its next
        // write lands at the new start.
        let stderr = OpenOptions::new().create_new(true).append(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&path)?;
        let log = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW).open(&path)?;
        let (input, output, progress) = (place.scratch.join("input"), place.scratch.join("output"), place.scratch.join("progress"));
        let mut cmd = tokio::process::Command::from(task::shell(req, place, &input, &output, &progress));
        let mark = Mark::new();
        cmd.env(tree::MARK_ENV, mark.value())
            .env(EXECUTOR_ENV, EXECUTOR_ON)
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
    /// Writes what the machine lends the executor and reports what it
    /// answers, until the run ends or the executor dies.
    async fn drive(self: &Arc<Self>, mut exec: Executor) {
        // When the oldest attempt in the pipe started running.
        let mut since = Instant::now();
        loop {
            let timeout_ms = match self.feed(&mut exec, &mut since).await {
                Step::Read(timeout_ms) => timeout_ms,
                Step::Again => continue,
                Step::Broken => return self.died(exec, since, false).await,
                Step::End => return,
            };
            if let Err(timed_out) = self.read_answers(&mut exec, &mut since, timeout_ms).await {
                return self.died(exec, since, timed_out).await;
            }
        }
    }

    /// Carries out the machine's next step for the executor: a write, a
    /// wait for work, or its end.
    async fn feed(self: &Arc<Self>, exec: &mut Executor, since: &mut Instant) -> Step {
        match self.apply(Event::Ready { exec: exec.id }) {
            Some(Decision::Write { jobs, room, check_alive, .. }) => {
                if room.is_empty() {
                    *since = Instant::now();
                }
                if check_alive {
                    if let Ok(Some(status)) = exec.child.try_wait() {
                        self.apply(Event::Exited { exec: exec.id, timed_out: false, clean: status.success(), unsent: jobs });
                        return Step::End;
                    }
                }
                self.write(exec, jobs, room).await
            }
            Some(Decision::Read { timeout_ms, .. }) => Step::Read(timeout_ms),
            Some(Decision::Idle { waker, .. }) => {
                exec.idle();
                self.wait(exec.id, &waker).await;
                Step::Again
            }
            _ => Step::End,
        }
    }

    /// Waits for the answer to the running attempt, then takes every
    /// answer already here, before the pipe is refilled in one write.
    /// Fails (timed out or not) when the executor must be taken for dead.
    async fn read_answers(self: &Arc<Self>, exec: &mut Executor, since: &mut Instant, timeout_ms: Option<u64>) -> Result<(), bool> {
        let deadline = timeout_ms.and_then(|ms| since.checked_add(Duration::from_millis(ms)));
        let mut reply = tokio::select! {
            r = exec.replies.read_as::<ExecDone>() => r.ok().flatten().ok_or(false)?,
            _ = sleep_until(deadline) => return Err(true),
        };
        loop {
            let Some(Decision::Done { job, .. }) = self.apply(Event::Answered { exec: exec.id, attempt: reply.attempt }) else {
                return Err(false);
            };
            let tail = exec.forward_log(reply.log_end, job.req.attempt, &self.outbox).await;
            self.answered(reply, tail, *since, job);
            *since = Instant::now();
            match exec.replies.try_read_as::<ExecDone>() {
                Ok(Some(r)) => reply = r,
                Ok(None) => return Ok(()),
                Err(_) => return Err(false),
            }
        }
    }

    /// Waits to be woken: for work, or for the end of the run.
    async fn wait(&self, id: ExecId, waker: &Notify) {
        // Listen before looking again: an end of the run (notify_waiters,
        // which leaves no permit) between the decision to idle and the
        // wait would otherwise be missed.
        let notified = waker.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.book.lock().unwrap().may_wait(id) {
            notified.await;
        }
    }

    /// Makes the attempts lent and writes them into the executor's stdin,
    /// in one write, as far as its pipe has room (the rest go back).
    async fn write(self: &Arc<Self>, exec: &mut Executor, jobs: Vec<Job>, mut room: Room) -> Step {
        let mut frames = Vec::new();
        let (mut sent, mut back) = (Vec::new(), Vec::new());
        let mut jobs = jobs.into_iter();
        while let Some(mut job) = jobs.next() {
            if job.task.is_none() {
                match exec_task(&mut job.req, &job.place, &self.store).await {
                    Ok(t) => job.task = Some(t),
                    Err(why) => {
                        self.report(task::trouble(job.req.attempt, Instant::now(), why.to_string()));
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
            if !room.admit(job.frame) {
                frames.truncate(start);
                back.push(job);
                back.extend(jobs);
                break;
            }
            sent.push(job);
        }
        // Told before the bytes go out: a kill or a death from now on
        // finds them in the pipe.
        let Some(Decision::Read { timeout_ms, .. }) = self.apply(Event::Written { exec: exec.id, sent, back }) else {
            return Step::Again;
        };
        if frames.is_empty() || exec.requests.write_all(&frames).await.is_ok() {
            Step::Read(timeout_ms)
        } else {
            Step::Broken
        }
    }

    /// The executor died (or is killed, for a timeout): the machine
    /// charges the attempt it was running, which fails with what it
    /// wrote, and puts the ones behind it back in the queue.
    async fn died(self: &Arc<Self>, mut exec: Executor, since: Instant, timed_out: bool) {
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
        let ended = Event::Exited { exec: exec.id, timed_out, clean: status.success(), unsent: vec![] };
        let Some(Decision::Fail { job, cause, .. }) = self.apply(ended) else { return };
        let attempt = job.req.attempt;
        let mut tail = exec.forward_log(u64::MAX, attempt, &self.outbox).await;
        let timed_out = cause == Cause::TimedOut;
        if cause == Cause::ExitedZero {
            // No output file there is the answer.
            let why = "shoal: the program exited (exit code 0) before it answered this task; \
                       a Dataset task must return, not call std::process::exit";
            tail = if tail.is_empty() { why.to_string() } else { format!("{}\n{why}", tail.trim_end()) };
        }
        let args = finish_args(&self.store, Ending { status, cpu_ms: 0, timed_out, tail, started: since }, job);
        if cause == Cause::ExitedZero {
            let _ = std::fs::remove_dir_all(&args.scratch);
            return self.report(args.report());
        }
        let me = self.clone();
        tokio::spawn(async move {
            let report = tokio::task::spawn_blocking(move || task::finish(args)).await.unwrap_or_else(|e| panicked(attempt, e));
            me.report(report);
        });
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
async fn exec_task(req: &mut TaskRequest, place: &TaskPlace, store: &Arc<BlockStore>) -> Result<ExecTask, InputTrouble> {
    let input = match (req.input_data.take(), req.inputs.as_slice()) {
        (Some(data), _) => ExecInput::Data(data),
        // A whole file read where it lives: the executor only reads it.
        (None, []) if req.input_file.as_ref().is_some_and(|f| f.offset == 0 && f.len == f.size && !f.lines) => {
            let f = req.input_file.as_ref().expect("checked");
            task::check_in_place(f).map_err(|e| InputTrouble::Prepare(io::Error::other(e)))?;
            ExecInput::File(f.path.clone())
        }
        // The executor is the Dataset library, which only reads its input:
        // no copy, even of a large block.
        (None, [one]) if req.merge_in.is_none() => {
            ExecInput::File(store.verified(one).map_err(InputTrouble::Prepare)?.display().to_string())
        }
        (None, _) => {
            // A reducer's merge of sorted runs, or several blocks: heavy
            // I/O, off the runtime's threads.
            let (r, scratch, store) = (req.clone(), place.scratch.clone(), store.clone());
            let made = tokio::task::spawn_blocking(move || {
                private::create_dir(&scratch)?;
                task::prepare_input(&r, &scratch, &store)
            })
            .await?;
            ExecInput::File(made.map_err(InputTrouble::Prepare)?.display().to_string())
        }
    };
    // A shuffle's map output is cut into buckets from a file.
    let inline_max = if req.shuffle_out.is_some() || req.keep_output { 0 } else { INLINE_MAX as u64 };
    Ok(ExecTask {
        attempt: req.attempt,
        stage: req.stage,
        partition: req.partition,
        input,
        output_path: place.scratch.join("output").display().to_string(),
        inline_max,
    })
}

/// Why a task's input could not be made ready for its executor.
#[derive(Debug, thiserror::Error)]
enum InputTrouble {
    #[error("cannot prepare input: {0}")]
    Prepare(#[source] io::Error),
    /// The blocking thread that merged the input panicked or was cancelled.
    #[error("{0}")]
    Join(#[from] tokio::task::JoinError),
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
