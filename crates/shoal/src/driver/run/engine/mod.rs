//! The run loop: the async layer around the run book.
//!
//! The run book (`run/book/`, pure) decides and records; this loop owns
//! what it cannot: the hosts' links, the journal, the log sink, the
//! progress display, timers and signals. It turns host messages, timers,
//! Ctrl-C and the completions of its own transfers into book calls, and
//! carries out the effects each call returns: it builds and sends task
//! requests (`request.rs`), uploads inputs, stages shuffle buckets
//! (`shuffle.rs`), fetches and writes outputs into the run dir, journals
//! commits, kills, and prints notes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_core::job::JobSpec;
use shoal_core::scheduler::Scheduler;
use shoal_wire::{hex, Message, TaskReport};
use tokio::sync::mpsc;

mod events;
mod request;
mod shuffle;

pub use super::book::Ending;
use super::book::{Committed, Effect, Internal, Launch, Needed, Rules, RunBook};
use super::concat::Streamed;
use super::journal::{Entry, Journal};
use super::logs::LogSink;
use super::output::Part;
use super::prepare::Plan;
use super::private;
use super::progress::Progress;
use crate::driver::mesh::Mesh;
use crate::driver::{blocks, Host, HostEvent};
use shuffle::{fetch_from_peer, stage, StageError, Wanted};

/// What comes back to the loop from work it started elsewhere.
enum Back {
    /// For the book.
    Book(Internal),
    /// A report of an attempt SIGKILLed by someone else, held back a moment.
    Held { host: usize, report: Box<TaskReport> },
    /// A line for the user.
    Note(String),
}

pub struct Engine<'a> {
    pub job: &'a JobSpec,
    pub plan: &'a Plan,
    pub hosts: Vec<Arc<Host>>,
    /// What the run knows and decides.
    pub book: RunBook<'a>,
    started: Instant,
    journal: Journal,
    logs: Option<LogSink>,
    progress: Progress,
    /// Host list index by the host's index in the cluster spec.
    by_spec_index: std::collections::HashMap<usize, usize>,
    back_tx: mpsc::UnboundedSender<Back>,
    back_rx: mpsc::UnboundedReceiver<Back>,
    interrupts: u32,
    /// The id of each host's `RunEnv`, once sent.
    env_ids: std::collections::HashMap<usize, u64>,
    /// Which pairs of hosts move shuffle data directly.
    mesh: Arc<Mesh>,
    /// The merged output, written as parts commit (`merge = "concat"`).
    concat: Option<Streamed>,
    /// Hosts that held each task's input when the run began.
    holders: Vec<Vec<usize>>,
}

impl<'a> Engine<'a> {
    pub fn new(job: &'a JobSpec, plan: &'a Plan, hosts: Vec<Arc<Host>>, sched: Scheduler, journal: Journal, quiet: bool) -> Self {
        let (back_tx, back_rx) = mpsc::unbounded_channel();
        let names: Vec<(String, u32)> = hosts.iter().map(|h| (h.name().to_string(), h.slots())).collect();
        let started = Instant::now();
        let progress_names: Vec<String> = names.iter().map(|(n, _)| n.clone()).collect();
        Engine {
            job,
            plan,
            by_spec_index: hosts.iter().enumerate().map(|(i, h)| (h.index, i)).collect(),
            progress: Progress::new(plan.tasks.len() as u64, &progress_names, quiet),
            logs: Some(LogSink::new(plan.run_dir.logs(), started)),
            book: RunBook::new(plan, Rules::of(job), &names, sched),
            hosts,
            started,
            journal,
            back_tx,
            back_rx,
            interrupts: 0,
            env_ids: Default::default(),
            mesh: Arc::new(Mesh::relay(&plan.run_id.to_string(), names.len())),
            concat: None,
            holders: Vec::new(),
        }
    }

    /// The hosts that hold each task's input (locality), from which a host
    /// that lacks it fetches it directly.
    pub fn set_holders(&mut self, holders: Vec<Vec<usize>>) {
        self.holders = holders;
    }

    /// Writes the merged output while the run goes (see `concat.rs`).
    pub fn stream_output(&mut self, s: Streamed) {
        self.concat = Some(s);
    }

    /// The merged output written so far, for the commit.
    pub fn take_stream(&mut self) -> Option<Streamed> {
        self.concat.take()
    }

    fn offer_output(&mut self) {
        if let Some(s) = &mut self.concat {
            s.offer(&self.book.parts);
        }
    }

    /// Ordered pairs of hosts that moved shuffle data directly (at the end).
    pub fn direct_pairs(&self) -> usize {
        self.mesh.direct_pairs()
    }

    /// Moves shuffle data directly between the pairs `mesh` allows.
    pub fn set_mesh(&mut self, mesh: Mesh) {
        self.mesh = Arc::new(mesh);
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs until the book says the run ended (the scheduler's done or
    /// failed, or the user interrupts).
    pub async fn run(&mut self, events: &mut mpsc::UnboundedReceiver<HostEvent>) -> Ending {
        let first = self.book.start(self.now());
        self.carry_out(first);
        // Parts an earlier run committed (`--resume`).
        self.offer_output();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        use tokio::signal::unix::{signal, SignalKind};
        let (mut int, mut term) = (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok());
        // On a standing cluster, the coordinator's share of each worker.
        let mut shares = crate::standing::link::current().map(|a| a.shares.clone());
        while !self.book.is_over() && !self.abandoned() {
            tokio::select! {
                Some(ev) = events.recv() => {
                    self.on_host_event(ev);
                    // Reports come in bursts: handle what is already queued
                    // before looking at the other sources again.
                    for _ in 0..BURST {
                        let Ok(ev) = events.try_recv() else { break };
                        if self.book.is_over() {
                            break;
                        }
                        self.on_host_event(ev);
                    }
                }
                Some(back) = self.back_rx.recv() => self.on_back(back),
                _ = tick.tick() => self.on_tick(),
                Some(grants) = next_share(&mut shares) => self.on_share(&grants),
                Some(()) = next_signal(&mut int) => self.on_interrupt(),
                Some(()) = next_signal(&mut term) => self.on_interrupt(),
            }
        }
        if self.abandoned() {
            return Ending::Interrupted;
        }
        self.finish_display();
        self.book.take_ending().unwrap_or(Ending::Done)
    }

    /// A standing cluster's coordinator divided the workers anew: each
    /// host's slots become its new share (0: no new task there).
    fn on_share(&mut self, grants: &[crate::standing::proto::Grant]) {
        for i in 0..self.hosts.len() {
            let slots = grants.iter().find(|g| g.worker == self.hosts[i].name()).map_or(0, |g| g.slots);
            let now = self.now();
            let effects = self.book.on_slots(i, slots, now);
            self.carry_out(effects);
        }
    }

    /// The user interrupted twice: the run is left as it is, nothing more
    /// is waited for (the journal keeps what committed, for `--resume`),
    /// and the caller returns [`crate::Error::Interrupted`] at once, whose
    /// exit code the binary uses.
    pub fn abandoned(&self) -> bool {
        self.interrupts > 1
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

    /// Carries out the book's effects, in order.
    fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Start(launch) => self.start(launch),
                Effect::Upload(launch) => self.upload_and_start(launch),
                Effect::Stage { launch, buckets } => self.stage_and_start(launch, buckets),
                Effect::Kill { host, attempt } => self.kill(host, attempt),
                Effect::Fetch { task, attempt, host, hash, size, .. } if self.job.output.held => {
                    // The part stays in its host's store: the run only
                    // records where it is.
                    let file = std::path::PathBuf::from(format!("{}:", self.hosts[host].name()));
                    let c = Internal::Collected { task, attempt, file, size, hash: hex(&hash), data: None };
                    let _ = self.back_tx.send(Back::Book(c));
                }
                Effect::Fetch { task, attempt, host, hash, file, .. } if !self.job.output.on_hosts => {
                    self.fetch(task, attempt, host, hash, file)
                }
                Effect::Fetch { task, attempt, host, hash, size, .. } => self.place(task, attempt, host, hash, size),
                Effect::Write { task, attempt, hash, data, file } => self.write(task, attempt, hash, data, file),
                Effect::Journal(c) => self.journal_commit(c),
                Effect::HoldBack { host, report } => self.hold_back(host, report),
                Effect::Ignored(i) => {
                    tracing::warn!(host = self.hosts[i.host].name(), attempt = i.attempt, "ignored a report for {}", i.why)
                }
                Effect::Note(line) => self.note(&line),
            }
        }
    }

    /// Starts an attempt whose input travels inline, or that has none.
    fn start(&mut self, launch: Launch) {
        let h = self.hosts[launch.host].clone();
        let req = self.request(&h, launch, &[]);
        if let Err(e) = h.send_now(Message::RunTask(req)) {
            let (why, gone) = (e.to_string(), e.is_gone());
            let _ = self.back_tx.send(Back::Book(Internal::LaunchFailed { task: launch.task, attempt: launch.attempt, why, gone }));
        }
    }

    /// Uploads the input block if the host lacks it, then starts the task.
    fn upload_and_start(&mut self, launch: Launch) {
        let h = self.hosts[launch.host].clone();
        if let Some(holder) = self.held_input(launch.task) {
            let holder = self.hosts.iter().position(|x| x.name() == holder);
            return self.fetch_held_and_start(launch, holder);
        }
        if self.reads_in_place(&h, launch.task) {
            // Nothing to upload: the host reads the input itself.
            return self.start(launch);
        }
        let req = self.request(&h, launch, &[]);
        let Some(src) = self.plan.tasks[launch.task as usize].input.clone() else {
            return;
        };
        let tx = self.back_tx.clone();
        let Launch { task, attempt, host, .. } = launch;
        // A peer that holds the partition already (an earlier job sent it
        // there) gives it instead of the driver, where the two reach each
        // other.
        let peers = self.holders.get(task as usize).map(Vec::as_slice).unwrap_or_default();
        let peer =
            peers.iter().copied().find(|&from| from != host && !self.hosts[from].is_lost() && self.mesh.direct(host, from).is_some());
        let mesh = self.mesh.clone();
        tokio::spawn(async move {
            if let Some(from) = peer {
                if blocks::missing(&h, vec![src.hash]).await.is_ok_and(|m| !m.is_empty()) {
                    if let Some(direct) = fetch_from_peer(&h, host, from, src.hash, src.len, &mesh).await {
                        let _ = tx.send(Back::Book(Internal::InputMoved { relayed: 0, direct }));
                    }
                }
            }
            let sent = blocks::ensure(&h, &[&src]).await.map(|(sent, skipped)| {
                let _ = tx.send(Back::Book(Internal::Uploaded { host, sent, skipped }));
            });
            let result = match sent {
                Ok(_) => h.send(Message::RunTask(req)).await.map_err(|e| (e.to_string(), e.is_gone())),
                Err(e) => Err((e.to_string(), h.is_lost())),
            };
            if let Err((why, gone)) = result {
                let _ = tx.send(Back::Book(Internal::LaunchFailed { task, attempt, why, gone }));
            }
        });
    }

    /// Stages the reducer's buckets on its host, then starts it.
    fn stage_and_start(&mut self, launch: Launch, buckets: Vec<Needed>) {
        let h = self.hosts[launch.host].clone();
        let req = self.request(&h, launch, &buckets);
        let needed: Vec<(Wanted, Arc<Host>)> = buckets.into_iter().map(|n| (n.into(), self.hosts[n.from].clone())).collect();
        let dir = self.plan.run_dir.shuffle();
        let tx = self.back_tx.clone();
        let mesh = self.mesh.clone();
        let names: Vec<String> = self.hosts.iter().map(|h| h.name().to_string()).collect();
        let Launch { task, attempt, host: to, .. } = launch;
        tokio::spawn(async move {
            let msg = match stage(&h, to, needed, dir, &mesh).await {
                Ok(staged) => {
                    for (from, why) in staged.fell_back {
                        let why = crate::printable::printable(&why);
                        let line = format!(
                            "{} could not fetch from {} directly ({why}): that pair's shuffle data goes through the driver from now on",
                            names[to], names[from]
                        );
                        let _ = tx.send(Back::Note(line));
                    }
                    let _ = tx.send(Back::Book(Internal::Shuffled { relayed: staged.relayed, direct: staged.direct }));
                    match h.send(Message::RunTask(req)).await {
                        Ok(()) => return,
                        Err(e) => Internal::LaunchFailed { task, attempt, why: e.to_string(), gone: e.is_gone() },
                    }
                }
                Err(StageError::Lost { owner }) => Internal::FetchFailed { task, attempt, from_task: owner },
                Err(StageError::Gone) => Internal::LaunchFailed { task, attempt, why: "host gone".into(), gone: true },
                Err(StageError::Other(why)) => Internal::LaunchFailed { task, attempt, why, gone: false },
            };
            let _ = tx.send(Back::Book(msg));
        });
    }

    /// Makes the task's host hold its input, a cached part that only host
    /// `holder` has (`None`: a host not in this run), then starts it: from
    /// the holder directly where the pair reaches each other, else through
    /// the driver. A part nobody can give any more ends the run with
    /// `InputLost`, so that the program makes it again.
    fn fetch_held_and_start(&mut self, launch: Launch, holder: Option<usize>) {
        let h = self.hosts[launch.host].clone();
        let req = self.request(&h, launch, &[]);
        let Some(src) = self.plan.tasks[launch.task as usize].input.clone() else {
            return;
        };
        let wanted = holder.map(|from| (Wanted { hash: src.hash, size: src.len, from, owner: launch.task }, self.hosts[from].clone()));
        let holder_name = wanted.as_ref().map(|(_, x)| x.name().to_string());
        let (dir, tx, mesh) = (self.plan.run_dir.shuffle(), self.back_tx.clone(), self.mesh.clone());
        let Launch { task, attempt, host: to, .. } = launch;
        tokio::spawn(async move {
            let lost = |why: String| Internal::InputLost { hash: src.hash, why };
            let has = blocks::missing(&h, vec![src.hash]).await.map(|m| m.is_empty());
            let msg = match (has, wanted) {
                (Err(_), _) => Internal::LaunchFailed { task, attempt, why: "host gone".into(), gone: true },
                (Ok(true), _) => return start_when_staged(&h, req, task, attempt, &tx).await,
                (Ok(false), None) => lost(format!("task {task}'s input is a cached part held by a host that is not in this run")),
                (Ok(false), Some((w, from))) if w.from == to => {
                    lost(format!("host `{}` no longer holds task {task}'s input, a cached part it made", from.name()))
                }
                (Ok(false), Some(wanted)) => match stage(&h, to, vec![wanted], dir, &mesh).await {
                    Ok(staged) => {
                        let _ = tx.send(Back::Book(Internal::InputMoved { relayed: staged.relayed, direct: staged.direct }));
                        return start_when_staged(&h, req, task, attempt, &tx).await;
                    }
                    Err(StageError::Gone) => Internal::LaunchFailed { task, attempt, why: "host gone".into(), gone: true },
                    Err(StageError::Lost { .. }) => {
                        lost(format!("host `{}`, which held task {task}'s input (a cached part), is lost", holder_name.unwrap_or_default()))
                    }
                    Err(StageError::Other(why)) => lost(format!("task {task}'s input, a cached part, cannot be had: {why}")),
                },
            };
            let _ = tx.send(Back::Book(msg));
        });
    }

    fn kill(&self, host: usize, attempt: u32) {
        let h = self.hosts[host].clone();
        tokio::spawn(async move {
            let _ = h.send(Message::KillTask { attempt }).await;
        });
    }

    /// Fetches a committed output block into its part file.
    fn fetch(&self, task: u32, attempt: u32, host: usize, hash: shoal_wire::Hash, file: std::path::PathBuf) {
        let h = self.hosts[host].clone();
        let tx = self.back_tx.clone();
        tokio::spawn(async move {
            let dir = file.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            let _ = private::dir(&dir);
            let tmp = dir.join(format!(".part-{task:05}.{attempt}"));
            let msg = match blocks::fetch(&h, hash, &tmp).await {
                Ok(size) => match tokio::fs::rename(&tmp, &file).await {
                    Ok(()) => Internal::Collected { task, attempt, file, size, hash: hex(&hash), data: None },
                    Err(e) => Internal::CollectFailed { host, why: e.to_string() },
                },
                Err(e) => Internal::CollectFailed { host, why: e.to_string() },
            };
            let _ = tx.send(Back::Book(msg));
        });
    }

    /// Commits an output on the host that made it (`[output] on_hosts`):
    /// its block is copied to the part's path there, by temp file and
    /// rename, and the driver keeps only where it is.
    fn place(&self, task: u32, attempt: u32, host: usize, hash: shoal_wire::Hash, size: u64) {
        let h = self.hosts[host].clone();
        let path = self.part_on_host(task, h.name());
        let tx = self.back_tx.clone();
        tokio::spawn(async move {
            let id = h.next_id();
            let msg = match h.request(id, Message::PlaceBlock { id, hash, path: path.clone() }).await {
                Ok(Message::Placed { error: None, .. }) => {
                    let file = std::path::PathBuf::from(format!("{}:{path}", h.name()));
                    Internal::Collected { task, attempt, file, size, hash: hex(&hash), data: None }
                }
                Ok(Message::Placed { error: Some(why), .. }) => {
                    Internal::CannotKeep { why: format!("cannot put the output of task {task} at {path} on `{}`: {why}", h.name()) }
                }
                Ok(other) => Internal::CollectFailed { host, why: format!("unexpected answer {other:?}") },
                Err(e) => Internal::CollectFailed { host, why: e.to_string() },
            };
            let _ = tx.send(Back::Book(msg));
        });
    }

    /// Where task `task`'s part lives on host `host` (`[output] on_hosts`):
    /// the output path with `{host}` filled in, relative paths under the
    /// home directory, and the part's name.
    pub fn part_on_host(&self, task: u32, host: &str) -> String {
        let planned = &self.plan.tasks[task as usize];
        let dir = self.job.output.path.replace(shoal_core::job::HOST_PATTERN, host);
        let dir = if dir.starts_with('/') || dir.starts_with("~/") { dir } else { format!("~/{dir}") };
        let name = super::output::part_name(self.job.output.name.as_deref(), planned.partition, &planned.input_name);
        format!("{}/{name}", dir.trim_end_matches('/'))
    }

    /// Writes an output that came inline to its part file and syncs it,
    /// off the run loop (as a fetched one is), before it is journaled.
    fn write(&self, task: u32, attempt: u32, hash: shoal_wire::Hash, data: Vec<u8>, file: std::path::PathBuf) {
        let (hash, size) = (hex(&hash), data.len() as u64);
        let tx = self.back_tx.clone();
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
            let _ = tx.send(Back::Book(msg));
        });
    }

    /// Journals a commit; the book hears of it once the line is written.
    fn journal_commit(&mut self, c: Committed) {
        let identity = &self.plan.tasks[c.task as usize].identity;
        let host = self.hosts[c.host].name();
        match self.journal.commit(c.task, identity, &c.hash, c.size, host, c.data.as_deref()) {
            Ok(()) => {
                let more = self.book.on_journaled(c, self.now());
                self.offer_output();
                self.carry_out(more);
            }
            Err(e) => self.book.fail(format!("cannot write the run journal {}: {e}", self.journal.path.display())),
        }
    }

    /// Hands a SIGKILLed attempt's report back after a moment.
    fn hold_back(&self, host: usize, report: Box<TaskReport>) {
        let tx = self.back_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = tx.send(Back::Held { host, report });
        });
    }

    fn note(&self, line: &str) {
        self.progress.println(&format!("shoal: {line}"));
    }
}

/// Sends a task whose input its host now holds.
async fn start_when_staged(h: &Host, req: shoal_wire::TaskRequest, task: u32, attempt: u32, tx: &mpsc::UnboundedSender<Back>) {
    if let Err(e) = h.send(Message::RunTask(req)).await {
        let _ = tx.send(Back::Book(Internal::LaunchFailed { task, attempt, why: e.to_string(), gone: e.is_gone() }));
    }
}

/// Host events handled in one go before the loop looks at its other
/// sources (internal completions, the clock, signals) again.
const BURST: usize = 256;

/// The next delivery of a signal, or never when it could not be watched.
/// The next share of a standing cluster's application; never, without one.
async fn next_share(
    shares: &mut Option<tokio::sync::watch::Receiver<Vec<crate::standing::proto::Grant>>>,
) -> Option<Vec<crate::standing::proto::Grant>> {
    match shares {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

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
        self.book.reuse(task, part);
        Ok(())
    }
}
