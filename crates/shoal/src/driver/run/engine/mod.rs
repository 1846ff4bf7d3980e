//! The run loop: host messages and timers in, scheduler events out, its
//! actions carried out.
//!
//! The scheduler (pure, in `shoal-core`) decides what runs where, what is
//! retried and which attempt commits; this loop only does I/O: it uploads
//! inputs and starts attempts, turns agent reports into events, fetches
//! committed outputs into the run dir and journals them, and kills what
//! the scheduler says to kill.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_core::job::JobSpec;
use shoal_core::scheduler::{Action, AttemptId, Event, HostId, Scheduler, TaskId};
use shoal_wire::{hex, Message, TaskRequest};
use tokio::sync::mpsc;

mod dense;
mod pacing;
mod reports;
mod shuffle;

pub use self::dense::Dense;
use self::shuffle::{stage_buckets, MapOutput, StageError};

use super::journal::{Entry, Journal};
use super::logs::LogSink;
use super::output::Part;
use super::prepare::{Plan, PARAMS_PATH};
use super::private;
use super::progress::Progress;
use super::summary::{HostSummary, SkippedSummary};
use crate::driver::{blocks, Host, HostEvent};

/// What happened to one attempt, as the driver saw it.
#[derive(Clone, Debug)]
pub struct AttemptInfo {
    pub task: u32,
    pub host: usize,
    pub started: Instant,
    pub ended: Option<Instant>,
    pub status: Option<std::borrow::Cow<'static, str>>,
    pub stderr_tail: String,
    pub speculative: bool,
    pub killed: bool,
    pub outcome: &'static str,
    pub cpu_ms: u64,
}

enum Internal {
    /// A report of an attempt SIGKILLed by someone else, held back a moment.
    OutsideKill {
        host: usize,
        report: shoal_wire::TaskReport,
    },
    /// A reduce could not get its input: map `from_task`'s host is gone.
    FetchFailed {
        task: u32,
        attempt: u32,
        from_task: u32,
    },
    Shuffled {
        bytes: u64,
    },
    Uploaded {
        host: usize,
        sent: u64,
        skipped: u64,
    },
    Collected {
        task: u32,
        attempt: u32,
        file: PathBuf,
        size: u64,
        hash: String,
        data: Option<Arc<[u8]>>,
    },
    CollectFailed {
        host: usize,
        why: String,
    },
    /// The driver cannot write an output into its own run dir: the run
    /// cannot commit, so it stops.
    CannotKeep {
        why: String,
    },
    LaunchFailed {
        task: u32,
        attempt: u32,
        why: String,
        gone: bool,
    },
}

/// How the loop ended.
pub enum Ending {
    Done,
    Failed(String),
    Interrupted,
}

pub struct Engine<'a> {
    pub job: &'a JobSpec,
    pub plan: &'a Plan,
    pub hosts: Vec<Arc<Host>>,
    pub sched: Scheduler,
    pub started: Instant,
    pub attempts: Dense<AttemptInfo>,
    pub parts: Dense<Part>,
    pub host_stats: Vec<HostSummary>,
    pub excluded: Vec<String>,
    pub lost: Vec<(String, String)>,
    pub reused: usize,
    pub bytes_sent: u64,
    pub bytes_skipped: u64,
    pub input_sent: u64,
    pub input_skipped: u64,
    journal: Journal,
    logs: Option<LogSink>,
    progress: Progress,
    by_spec_index: HashMap<usize, usize>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    ending: Option<Ending>,
    interrupts: u32,
    /// Outputs of finished attempts, until the scheduler commits or discards them.
    pending_outputs: HashMap<u32, shoal_wire::BlockRef>,
    /// The bytes of those outputs that came inline.
    pending_data: HashMap<u32, Vec<u8>>,
    /// Shuffle buckets of finished map attempts, likewise.
    pending_buckets: HashMap<u32, Vec<shoal_wire::Bucket>>,
    /// Committed map outputs of a shuffle, by map task.
    map_outputs: HashMap<u32, MapOutput>,
    /// Shuffle bytes that crossed the driver.
    pub shuffled_via_driver: u64,
    /// Hadoop-style counters from `reporter:counter:group,name,amount`.
    pub counters: BTreeMap<String, i64>,
    /// Failures of each task's command (exits, not host trouble or loss):
    /// after two, its next attempt runs in skip mode.
    exit_failures: HashMap<u32, u32>,
    /// Records left out by finished attempts in skip mode, until commit.
    pending_skipped: HashMap<u32, Vec<shoal_wire::SkippedRecord>>,
    /// Records left out by committed attempts.
    pub skipped: Vec<SkippedSummary>,
    /// Tasks in the map and the reduce stage.
    stage_sizes: [usize; 2],
    /// Attempts per slot (`Pipeline`), from how long attempts run.
    pacing: pacing::Pacing,
    /// The id of each host's `RunEnv`, once sent.
    env_ids: HashMap<usize, u64>,
    /// Where committed outputs go: `<run dir>/parts`.
    parts_dir: PathBuf,
}

impl<'a> Engine<'a> {
    pub fn new(job: &'a JobSpec, plan: &'a Plan, hosts: Vec<Arc<Host>>, sched: Scheduler, journal: Journal, quiet: bool) -> Self {
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let names: Vec<String> = hosts.iter().map(|h| h.name().to_string()).collect();
        let started = Instant::now();
        Engine {
            job,
            plan,
            by_spec_index: hosts.iter().enumerate().map(|(i, h)| (h.index, i)).collect(),
            host_stats: hosts.iter().map(|h| HostSummary { host: h.name().to_string(), slots: h.slots(), ..Default::default() }).collect(),
            progress: Progress::new(plan.tasks.len() as u64, &names, quiet),
            logs: Some(LogSink::new(plan.run_dir.join("logs"), started)),
            hosts,
            sched,
            started,
            attempts: Dense::with_capacity(plan.tasks.len()),
            parts: Dense::with_capacity(plan.tasks.len()),
            excluded: Vec::new(),
            lost: Vec::new(),
            reused: 0,
            bytes_sent: 0,
            bytes_skipped: 0,
            input_sent: 0,
            input_skipped: 0,
            journal,
            internal_tx,
            internal_rx,
            ending: None,
            interrupts: 0,
            pending_outputs: HashMap::new(),
            pending_data: HashMap::new(),
            pending_buckets: HashMap::new(),
            map_outputs: HashMap::new(),
            shuffled_via_driver: 0,
            counters: BTreeMap::new(),
            exit_failures: HashMap::new(),
            pending_skipped: HashMap::new(),
            skipped: Vec::new(),
            stage_sizes: [0, 1].map(|s| plan.tasks.iter().filter(|t| t.stage == s).count()),
            pacing: pacing::Pacing::new(job.map.resident || job.reduce.as_ref().is_some_and(|r| r.step.resident)),
            env_ids: HashMap::new(),
            parts_dir: plan.run_dir.join("parts"),
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Registers a part reused from an earlier run.
    pub fn reuse(&mut self, task: u32, part: Part) {
        self.parts.insert(task, part);
        self.reused += 1;
    }

    /// Runs until the scheduler says done or failed, or the user interrupts.
    pub async fn run(&mut self, events: &mut mpsc::UnboundedReceiver<HostEvent>) -> Ending {
        let ups: Vec<Event> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| Event::HostUp { host: HostId(i as u32), slots: h.slots(), now: self.now() })
            .collect();
        for ev in ups {
            self.feed(ev);
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        use tokio::signal::unix::{signal, SignalKind};
        let (mut int, mut term) = (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok());
        while self.ending.is_none() {
            tokio::select! {
                Some(ev) = events.recv() => {
                    self.on_host_event(ev);
                    // Reports come in bursts: handle what is already queued
                    // before looking at the other sources again.
                    for _ in 0..BURST {
                        let Ok(ev) = events.try_recv() else { break };
                        if self.ending.is_some() {
                            break;
                        }
                        self.on_host_event(ev);
                    }
                }
                Some(ev) = self.internal_rx.recv() => self.on_internal(ev),
                _ = tick.tick() => self.on_tick(),
                Some(()) = next_signal(&mut int) => self.on_interrupt(),
                Some(()) = next_signal(&mut term) => self.on_interrupt(),
            }
        }
        self.finish_display();
        self.ending.take().unwrap_or(Ending::Done)
    }

    fn finish_display(&mut self) {
        if let Err(e) = self.journal.sync() {
            eprintln!("shoal: cannot sync the run journal {}: {e}", self.journal.path.display());
        }
        if let Some(logs) = self.logs.take() {
            logs.finish();
        }
        let p = std::mem::replace(&mut self.progress, Progress::new(0, &[], true));
        p.finish();
    }

    fn feed(&mut self, ev: Event) {
        let actions = self.sched.on_event(ev);
        for a in actions {
            self.apply(a);
        }
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Launch { task, attempt, host, speculative } => self.launch(task, attempt, host, speculative),
            Action::Kill { attempt, host, .. } => self.kill(attempt, host),
            Action::Commit { task, attempt, host } => self.collect(task, attempt, host),
            Action::Discard { attempt, .. } => {
                // A duplicate's output is never committed: drop what it holds.
                self.pending_outputs.remove(&attempt.0);
                self.pending_data.remove(&attempt.0);
                self.pending_buckets.remove(&attempt.0);
                self.pending_skipped.remove(&attempt.0);
                self.set_outcome(attempt.0, "superseded")
            }
            Action::Exclude { host } => self.exclude(host),
            Action::Fail { task, reason } => self.ending = Some(Ending::Failed(self.failure_message(task.0, &reason))),
            Action::Done => self.ending = Some(Ending::Done),
            Action::Cancelled => self.ending = Some(Ending::Interrupted),
        }
    }

    fn launch(&mut self, task: TaskId, attempt: AttemptId, host: HostId, speculative: bool) {
        let h = self.hosts[host.0 as usize].clone();
        let plan = self.plan;
        let planned = &plan.tasks[task.0 as usize];
        self.attempts.insert(
            attempt.0,
            AttemptInfo {
                task: task.0,
                host: host.0 as usize,
                started: Instant::now(),
                ended: None,
                status: None,
                stderr_tail: String::new(),
                speculative,
                killed: false,
                outcome: "running",
                cpu_ms: 0,
            },
        );
        self.host_stats[host.0 as usize].tasks += 1;
        let req = self.request(&h, task.0, attempt.0);
        if planned.stage == 1 {
            return self.launch_reduce(h, task.0, attempt.0, req);
        }
        let hidx = host.0 as usize;
        match &planned.input {
            Some(src) if src.data.is_none() => self.upload_and_start(h, hidx, src.clone(), req),
            // Nothing to upload (inline input, or none): start it now.
            inline => {
                let sent = inline.as_ref().map_or(0, |s| s.len);
                self.host_stats[hidx].bytes_in += sent;
                self.input_sent += sent;
                if let Err(e) = h.send_now(Message::RunTask(req)) {
                    let (why, gone) = (e.to_string(), e.is_gone());
                    let _ = self.internal_tx.send(Internal::LaunchFailed { task: task.0, attempt: attempt.0, why, gone });
                }
            }
        }
    }

    /// Uploads the input block if the host lacks it, then starts the task.
    fn upload_and_start(&self, h: Arc<Host>, hidx: usize, src: blocks::Source, req: TaskRequest) {
        let tx = self.internal_tx.clone();
        let (task, attempt) = (req.task, req.attempt);
        tokio::spawn(async move {
            let sent = blocks::ensure(&h, &[&src]).await.map(|(sent, skipped)| {
                let _ = tx.send(Internal::Uploaded { host: hidx, sent, skipped });
            });
            let result = match sent {
                Ok(_) => h.send(Message::RunTask(req)).await.map_err(|e| (e.to_string(), e.is_gone())),
                Err(e) => Err((e.to_string(), h.is_lost())),
            };
            if let Err((why, gone)) = result {
                let _ = tx.send(Internal::LaunchFailed { task, attempt, why, gone });
            }
        });
    }

    /// Stages the reducer's buckets on its host, then starts it.
    fn launch_reduce(&mut self, h: Arc<Host>, task: u32, attempt: u32, req: TaskRequest) {
        let needed = self.needed_buckets(self.plan.tasks[task as usize].partition);
        let dir = self.plan.run_dir.join("shuffle");
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let msg = match stage_buckets(&h, needed, dir).await {
                Ok(bytes) => {
                    let _ = tx.send(Internal::Shuffled { bytes });
                    match h.send(Message::RunTask(req)).await {
                        Ok(()) => return,
                        Err(e) => Internal::LaunchFailed { task, attempt, why: e.to_string(), gone: e.is_gone() },
                    }
                }
                Err(StageError::Lost { map }) => Internal::FetchFailed { task, attempt, from_task: map },
                Err(StageError::Gone) => Internal::LaunchFailed { task, attempt, why: "host gone".into(), gone: true },
                Err(StageError::Other(why)) => Internal::LaunchFailed { task, attempt, why, gone: false },
            };
            let _ = tx.send(msg);
        });
    }

    /// `skip_bad` of a map task's next attempt: skip mode once its command
    /// failed twice, when the job allows skipping and the task reads lines.
    fn skip_mode(&self, task: u32) -> Option<u32> {
        let limit = self.job.job.skip_bad_records;
        let planned = &self.plan.tasks[task as usize];
        let failed = self.exit_failures.get(&task).copied().unwrap_or(0);
        (limit > 0 && planned.stage == 0 && planned.input.is_some() && failed >= 2).then_some(limit)
    }

    /// Records what a committed attempt skipped, at its offset in the
    /// input file, and stops the run when the job skipped more than
    /// `[job] skip_bad_records` in all.
    fn note_skipped(&mut self, task: u32, records: Vec<shoal_wire::SkippedRecord>) {
        let planned = &self.plan.tasks[task as usize];
        let base = planned.input.as_ref().map_or(0, |s| s.offset);
        for r in records {
            self.note(&format!(
                "task {task} (input {}) skipped a bad record at byte {}: {:?}",
                planned.input_name,
                base + r.offset,
                r.head
            ));
            let input = planned.input_name.to_string();
            self.skipped.push(SkippedSummary {
                task,
                partition: planned.partition,
                input,
                offset: base + r.offset,
                len: r.len,
                head: r.head,
            });
        }
        let limit = self.job.job.skip_bad_records;
        if self.skipped.len() > limit as usize && self.ending.is_none() {
            self.ending = Some(Ending::Failed(format!(
                "{} bad records were skipped, more than [job] skip_bad_records = {limit} allows; they are listed above and in the summary",
                self.skipped.len()
            )));
        }
    }

    fn request(&mut self, h: &Host, task: u32, attempt: u32) -> TaskRequest {
        let plan = self.plan;
        let planned = &plan.tasks[task as usize];
        if planned.stage == 1 {
            return self.reduce_request(h, task, attempt);
        }
        let mut command = self.job.command_for(&self.job.map, h.name()).to_string();
        if planned.arg.is_some() {
            command = crate::argument::bind(&command);
        }
        TaskRequest {
            run: self.plan.run_id.clone(),
            task,
            attempt,
            command,
            arg: planned.arg.clone(),
            env_id: self.run_env(h),
            env: Default::default(),
            partition: planned.partition,
            stage: 0,
            partitions: self.stage_sizes[0] as u32,
            inputs: planned.input.iter().filter(|s| s.data.is_none()).map(|s| s.hash).collect(),
            input_data: planned.input.as_ref().and_then(|s| s.data.as_deref()).map(<[u8]>::to_vec),
            stdin: true,
            stdout_is_output: true,
            timeout_ms: self.job.map.timeout.map(|t| t.as_millis() as u64),
            shuffle_out: self.shuffle_out(),
            merge_in: None,
            container: self.container(&self.job.map, attempt),
            resident: self.job.map.resident,
            slots: h.slots(),
            skip_bad: self.skip_mode(task),
        }
    }

    fn reduce_request(&mut self, h: &Host, task: u32, attempt: u32) -> TaskRequest {
        let planned = &self.plan.tasks[task as usize];
        let job = self.job;
        let reduce = job.reduce.as_ref().expect("reduce tasks exist only with [reduce]");
        TaskRequest {
            run: self.plan.run_id.clone(),
            task,
            attempt,
            command: self.job.command_for(&reduce.step, h.name()).to_string(),
            arg: None,
            env_id: self.run_env(h),
            env: Default::default(),
            partition: planned.partition,
            stage: 1,
            partitions: self.stage_sizes[1] as u32,
            inputs: self.needed_buckets(planned.partition).iter().map(|n| n.bucket.block.hash).collect(),
            input_data: None,
            stdin: true,
            stdout_is_output: true,
            timeout_ms: reduce.step.timeout.map(|t| t.as_millis() as u64),
            shuffle_out: None,
            merge_in: self.key_format(),
            container: self.container(&reduce.step, attempt),
            resident: reduce.step.resident,
            slots: h.slots(),
            skip_bad: None,
        }
    }

    /// The container of a step that names an image.
    fn container(&self, step: &shoal_core::job::StepSpec, attempt: u32) -> Option<shoal_wire::Container> {
        let image = step.image.clone()?;
        Some(shoal_wire::Container {
            image,
            name: format!("shoal-{}-{attempt}", self.plan.run_id),
            memory: step.memory,
            cpus: step.cpus,
            network: step.network,
        })
    }

    /// The id of the variables every task of the run gets on host `h`;
    /// the first call sends them (`RunEnv`, ahead of any task naming it:
    /// both travel in the link's ordered control queue).
    fn run_env(&mut self, h: &Host) -> u64 {
        if let Some(id) = self.env_ids.get(&h.index) {
            return *id;
        }
        let mut env: Vec<(String, String)> = h.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let work = format!("{}/runs/{}/work", h.info.workdir, self.plan.run_id);
        env.extend([
            ("SHOAL_HOST".into(), h.name().to_string()),
            ("SHOAL_RUN".into(), self.plan.run_id.clone()),
            ("SHOAL_SEED".into(), self.job.job.seed.to_string()),
            ("SHOAL_PARAMS".into(), format!("{work}/{PARAMS_PATH}")),
        ]);
        for (k, v) in &self.job.params {
            env.push((format!("SHOAL_PARAM_{}", k.to_ascii_uppercase()), v.to_env()));
        }
        let id = h.next_id();
        // A host that is gone gets no task either; its loss is reported on its own.
        if let Err(e) = h.send_now(Message::RunEnv { run: self.plan.run_id.clone(), id, env, params: self.plan.params.clone() }) {
            if !e.is_gone() {
                let why =
                    format!("the run's task variables (the host's env and [params]) are too large: {e}; put big data in a [sync] file");
                self.ending = Some(Ending::Failed(why));
            }
        }
        self.env_ids.insert(h.index, id);
        id
    }

    fn kill(&mut self, attempt: AttemptId, host: HostId) {
        if let Some(a) = self.attempts.get_mut(&attempt.0) {
            a.killed = true;
            // Killed as far as the run is concerned, as the scheduler sees
            // it, even if the run ends before the agent confirms.
            if a.outcome == "running" {
                a.outcome = "killed";
                a.ended = Some(Instant::now());
            }
        }
        let h = self.hosts[host.0 as usize].clone();
        tokio::spawn(async move {
            let _ = h.send(Message::KillTask { attempt: attempt.0 }).await;
        });
    }

    fn collect(&mut self, task: TaskId, attempt: AttemptId, host: HostId) {
        if let Some(records) = self.pending_skipped.remove(&attempt.0) {
            self.note_skipped(task.0, records);
        }
        if self.plan.tasks[task.0 as usize].stage == 0 && self.job.reduce.is_some() {
            // A map output of a shuffle stays on its host as buckets.
            let buckets = self.pending_buckets.remove(&attempt.0).unwrap_or_default();
            self.pending_outputs.remove(&attempt.0);
            self.pending_data.remove(&attempt.0);
            self.map_outputs.insert(task.0, MapOutput { host: host.0 as usize, buckets });
            self.host_stats[host.0 as usize].done += 1;
            return;
        }
        let Some(output) = self.pending_outputs.remove(&attempt.0) else {
            return;
        };
        let file = self.parts_dir.join(format!("part-{:05}", task.0));
        if let Some(data) = self.pending_data.remove(&attempt.0) {
            return self.collect_inline(task.0, attempt.0, file, output.hash, data);
        }
        let h = self.hosts[host.0 as usize].clone();
        let tx = self.internal_tx.clone();
        let hidx = host.0 as usize;
        let dir = self.parts_dir.clone();
        tokio::spawn(async move {
            let _ = private::dir(&dir);
            let tmp = dir.join(format!(".part-{:05}.{}", task.0, attempt.0));
            let msg = match blocks::fetch(&h, output.hash, &tmp).await {
                Ok(size) => match tokio::fs::rename(&tmp, &file).await {
                    Ok(()) => Internal::Collected { task: task.0, attempt: attempt.0, file, size, hash: hex(&output.hash), data: None },
                    Err(e) => Internal::CollectFailed { host: hidx, why: e.to_string() },
                },
                Err(e) => Internal::CollectFailed { host: hidx, why: e.to_string() },
            };
            let _ = tx.send(msg);
        });
    }

    /// Commits an output that came inline: a small one stays in memory
    /// (and in its journal line); a larger one is written to its part file
    /// and synced, off the run loop (as a fetched one is), before it is
    /// journaled.
    fn collect_inline(&mut self, task: u32, attempt: u32, file: PathBuf, hash: shoal_wire::Hash, data: Vec<u8>) {
        let hash = hex(&hash);
        let size = data.len() as u64;
        if data.len() <= super::journal::DATA_MAX {
            return self.on_collected(task, attempt, file, size, hash, Some(data.into()));
        }
        let tx = self.internal_tx.clone();
        tokio::task::spawn_blocking(move || {
            let written = private::dir(file.parent().unwrap_or(&file)).and_then(|()| {
                let tmp = file.with_extension(format!("{attempt}.tmp"));
                let mut f = private::create(&tmp)?;
                std::io::Write::write_all(&mut f, &data)?;
                f.sync_data()?;
                std::fs::rename(&tmp, &file)
            });
            let msg = match written {
                Ok(()) => Internal::Collected { task, attempt, file, size, hash, data: None },
                Err(e) => Internal::CannotKeep { why: format!("cannot write the output of task {task} to {}: {e}", file.display()) },
            };
            let _ = tx.send(msg);
        });
    }
}

/// Host events handled in one go before the loop looks at its other
/// sources (internal completions, the clock, signals) again.
const BURST: usize = 256;

/// The next delivery of a signal, or never when it could not be watched.
async fn next_signal(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

impl Engine<'_> {
    /// Records a task reused from an earlier run in this run's journal.
    pub fn journal_reuse(&mut self, task: u32, entry: Entry, part: Part) -> crate::Result<()> {
        let entry = Entry { task, ..entry };
        self.journal.append(&entry).map_err(|e| crate::Error::io("cannot write the run journal", e))?;
        self.sched.restore_done(TaskId(task));
        self.reuse(task, part);
        Ok(())
    }
}
