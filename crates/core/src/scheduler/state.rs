//! The scheduler's state, its queries, and the few primitives every
//! transition goes through (the rules are in `mod.rs`, the event handlers
//! in `events.rs`, the choice of what runs where in `placement.rs`).
//!
//! All changes of a task's phase go through [`Scheduler::set_phase`], which
//! keeps the derived bookkeeping (the pending set, each task's count of
//! unready inputs, the done count) in step, and all ends of attempts go
//! through [`Scheduler::end_attempt`], which frees the slot.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Action, AttemptId, AttemptRecord, Event, HostId, Outcome, Progress, SchedulerConfig, TaskId, TaskSpec, TaskState};

/// A task's place in its life cycle.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Phase {
    Pending,
    /// Its current attempts, oldest first.
    Running(Vec<AttemptId>),
    /// Committed. `available` turns false when the output is lost while
    /// nothing needs it (when something does, the task reopens instead).
    Done {
        attempt: AttemptId,
        host: HostId,
        available: bool,
    },
    Restored,
    Failed,
}

impl Phase {
    pub(super) fn is_done(&self) -> bool {
        matches!(self, Phase::Done { .. } | Phase::Restored)
    }

    /// Done with an output that readers can fetch.
    fn is_ready(&self) -> bool {
        matches!(self, Phase::Done { available: true, .. } | Phase::Restored)
    }
}

pub(super) struct Task {
    pub(super) spec: TaskSpec,
    /// Position in the launch order.
    pub(super) rank: usize,
    pub(super) phase: Phase,
    /// Tasks that read this one's output.
    pub(super) dependents: Vec<TaskId>,
    /// Deps whose output is not ready: runnable at 0.
    pub(super) unready: usize,
    /// The driver holds the current output.
    pub(super) collected: bool,
    /// The host of every charged failure, in order.
    pub(super) failed_on: Vec<HostId>,
    /// When it last became pending, for the locality wait.
    pub(super) pending_since: Duration,
    /// The run's commit count right after its last commit (0: never).
    pub(super) commit_seq: u64,
    pub(super) history: Vec<AttemptRecord>,
}

/// Where an attempt's record lives, and what the record does not say.
#[derive(Clone, Copy)]
pub(super) struct Attempt {
    pub(super) task: TaskId,
    /// Index in the task's history.
    pub(super) index: usize,
    /// An output it reads was declared lost after it started: its success
    /// cannot be trusted (see "Consistent inputs" in `mod.rs`).
    pub(super) stale: bool,
    /// The run's commit count when it started: it read the outputs of
    /// tasks whose `commit_seq` is not above this.
    pub(super) launch_seq: u64,
}

pub(super) struct Host {
    pub(super) slots: u32,
    pub(super) running: u32,
    pub(super) live: bool,
    pub(super) excluded: bool,
    /// Charged failures in a row.
    pub(super) streak: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    Done,
    Failed,
    Cancelled,
}

/// The scheduler of one run. See the module doc for its rules.
pub struct Scheduler {
    pub(super) tasks: Vec<Task>,
    /// Indexed by `AttemptId`.
    pub(super) attempts: Vec<Attempt>,
    pub(super) hosts: BTreeMap<HostId, Host>,
    /// Pending tasks by launch rank.
    pub(super) pending: BTreeSet<(usize, TaskId)>,
    /// Pending tasks with a pinned or preferred host. While there are none,
    /// the first runnable pending task is the best pick for any slot, and
    /// placement need not look further (which keeps a launch O(1) for a
    /// run of many thousand tasks).
    pub(super) pending_with_prefs: usize,
    /// Tasks that may only run on their pinned host, for `fail_stranded`.
    pinned_only: Vec<TaskId>,
    pub(super) config: SchedulerConfig,
    /// Durations of committed attempts, per stage (for speculation).
    pub(super) durations: BTreeMap<u32, Vec<Duration>>,
    pub(super) done: usize,
    /// Commits so far; orders commits against launches.
    pub(super) commits: u64,
    pub(super) failed_attempts: u32,
    pub(super) lost_attempts: u32,
    pub(super) ending: Option<Ending>,
    /// The latest time any event carried.
    pub(super) now: Duration,
    /// Attempts each slot may hold (see "Pipelining").
    pub(super) per_slot: u32,
}

impl Scheduler {
    /// Tasks launch in the order given.
    pub fn new(tasks: Vec<TaskSpec>, config: SchedulerConfig) -> Self {
        let order = (0..tasks.len() as u32).map(TaskId).collect();
        Self::with_order(tasks, order, config)
    }

    /// Tasks launch in `order` (the seeded shuffle: a permutation of the
    /// task ids), while ids stay partition numbers. Tasks missing from
    /// `order` come after it, by id. Deps on tasks that do not exist are
    /// ignored.
    pub fn with_order(specs: Vec<TaskSpec>, order: Vec<TaskId>, config: SchedulerConfig) -> Self {
        let n = specs.len();
        let mut rank: Vec<Option<usize>> = vec![None; n];
        for (r, t) in order.iter().enumerate() {
            if let Some(slot @ None) = rank.get_mut(t.0 as usize) {
                *slot = Some(r);
            }
        }
        let mut tasks: Vec<Task> =
            specs.into_iter().enumerate().map(|(i, spec)| Task::new(spec, rank[i].unwrap_or(order.len() + i))).collect();
        for i in 0..n {
            tasks[i].spec.deps.retain(|d| (d.0 as usize) < n && d.0 as usize != i);
            tasks[i].unready = tasks[i].spec.deps.len();
            for d in tasks[i].spec.deps.clone() {
                tasks[d.0 as usize].dependents.push(TaskId(i as u32));
            }
        }
        let pending = tasks.iter().enumerate().map(|(i, t)| (t.rank, TaskId(i as u32))).collect();
        let pending_with_prefs = tasks.iter().filter(|t| t.has_prefs()).count();
        let pinned_only = (0..n).filter(|&i| tasks[i].spec.pinned_only).map(|i| TaskId(i as u32)).collect();
        Scheduler {
            tasks,
            attempts: vec![],
            hosts: BTreeMap::new(),
            pending,
            pending_with_prefs,
            pinned_only,
            config,
            durations: BTreeMap::new(),
            done: 0,
            commits: 0,
            failed_attempts: 0,
            lost_attempts: 0,
            ending: None,
            now: Duration::ZERO,
            per_slot: 1,
        }
    }

    /// Marks a task done by an earlier run (resume): it needs no run and
    /// its output is already with the driver. Call it before the first
    /// event; it changes nothing for a task that has started.
    pub fn restore_done(&mut self, task: TaskId) {
        if self.tasks.get(task.0 as usize).is_some_and(|t| t.phase == Phase::Pending) {
            self.set_phase(task, Phase::Restored);
            self.task_mut(task).collected = true;
        }
    }

    /// Where `task` stands. Panics if it is not one of this run's tasks.
    pub fn task_state(&self, task: TaskId) -> TaskState {
        match &self.task(task).phase {
            Phase::Pending => TaskState::Pending,
            Phase::Running(attempts) => TaskState::Running { attempts: attempts.clone() },
            Phase::Done { attempt, host, .. } => TaskState::Done { attempt: *attempt, host: *host },
            Phase::Restored => TaskState::Restored,
            Phase::Failed => TaskState::Failed,
        }
    }

    /// Every attempt of `task`, oldest first (empty for an unknown task).
    pub fn attempts(&self, task: TaskId) -> &[AttemptRecord] {
        self.tasks.get(task.0 as usize).map_or(&[], |t| &t.history)
    }

    /// One attempt and its task, if it exists.
    pub fn attempt(&self, attempt: AttemptId) -> Option<(TaskId, &AttemptRecord)> {
        let a = self.attempts.get(attempt.0 as usize)?;
        Some((a.task, &self.task(a.task).history[a.index]))
    }

    pub fn progress(&self) -> Progress {
        Progress {
            total: self.tasks.len(),
            done: self.done,
            running: self.hosts.values().map(|h| h.running as usize).sum(),
            pending: self.pending.len(),
            failed_attempts: self.failed_attempts,
            lost_attempts: self.lost_attempts,
        }
    }

    /// The run ended: `Done`, `Fail` or `Cancelled` was emitted.
    pub fn is_finished(&self) -> bool {
        self.ending.is_some()
    }

    /// Tasks wait to run but no usable (live, not excluded) host is left.
    /// The scheduler itself just waits; the driver decides when to give up.
    pub fn is_stalled(&self) -> bool {
        !self.is_finished() && !self.pending.is_empty() && !self.hosts.values().any(Host::usable)
    }

    /// A `pinned_only` task that still has to run while its host is lost
    /// or excluded can run nowhere: the run fails, saying why.
    fn fail_stranded(&mut self, out: &mut Vec<Action>) {
        let stranded = self.pinned_only.iter().copied().find(|&t| {
            let task = self.task(t);
            task.spec.pinned_only && matches!(task.phase, Phase::Pending) && task.spec.pinned_host.is_some_and(|h| self.gone(h))
        });
        if let Some(task) = stranded {
            let host = self.task(task).spec.pinned_host.map_or(0, |h| h.0);
            let reason = format!("it can only run on host {host}, where its data lives, and that host is lost or excluded.");
            self.kill_all(out);
            self.set_phase(task, Phase::Failed);
            self.ending = Some(Ending::Failed);
            out.push(Action::Fail { task, reason });
        }
    }

    /// Feeds one event; returns what the driver must do, in order.
    pub fn on_event(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(now) = event_time(&event) {
            self.now = self.now.max(now);
        }
        if self.is_finished() {
            self.after_the_end(event, &mut out);
            return out;
        }
        let tick = matches!(event, Event::Tick { .. });
        match event {
            Event::HostUp { host, slots, .. } => self.host_up(host, slots),
            Event::Slots { host, slots } => {
                if let Some(h) = self.hosts.get_mut(&host) {
                    h.slots = slots;
                }
            }
            Event::HostLost { host, .. } => self.host_lost(host),
            Event::TaskSucceeded { task, attempt, .. } => self.succeeded(task, attempt, &mut out),
            Event::TaskFailed { task, attempt, kind, .. } => self.failed(task, attempt, kind, &mut out),
            Event::Collected { task } => self.collected(task),
            Event::Tick { .. } => {}
            Event::Pipeline { per_slot } => self.per_slot = per_slot.max(1),
            Event::Cancel => self.cancel(&mut out),
        }
        if !self.is_finished() {
            self.fail_stranded(&mut out);
        }
        if !self.is_finished() {
            self.fill_slots(&mut out);
            if tick {
                self.speculate(&mut out);
            }
            self.check_done(&mut out);
        }
        out
    }

    fn check_done(&mut self, out: &mut Vec<Action>) {
        let all_collected = || self.tasks.iter().all(|t| t.collected || !t.spec.needs_collect);
        if self.done == self.tasks.len() && all_collected() {
            self.ending = Some(Ending::Done);
            out.push(Action::Done);
        }
    }
}

fn event_time(event: &Event) -> Option<Duration> {
    match event {
        Event::HostUp { now, .. }
        | Event::HostLost { now, .. }
        | Event::TaskSucceeded { now, .. }
        | Event::TaskFailed { now, .. }
        | Event::Tick { now } => Some(*now),
        Event::Collected { .. } | Event::Pipeline { .. } | Event::Slots { .. } | Event::Cancel => None,
    }
}

impl Task {
    fn new(spec: TaskSpec, rank: usize) -> Task {
        Task {
            spec,
            rank,
            phase: Phase::Pending,
            dependents: vec![],
            unready: 0,
            collected: false,
            failed_on: vec![],
            pending_since: Duration::ZERO,
            commit_seq: 0,
            history: vec![],
        }
    }
}

impl Task {
    /// Placement may prefer some host for it.
    fn has_prefs(&self) -> bool {
        self.spec.pinned_host.is_some() || !self.spec.preferred_hosts.is_empty()
    }
}

impl Host {
    pub(super) fn new(slots: u32) -> Host {
        Host { slots: slots.max(1), running: 0, live: true, excluded: false, streak: 0 }
    }

    /// May get new tasks.
    pub(super) fn usable(&self) -> bool {
        self.live && !self.excluded
    }
}

// The primitives.
impl Scheduler {
    pub(super) fn task(&self, t: TaskId) -> &Task {
        &self.tasks[t.0 as usize]
    }

    pub(super) fn task_mut(&mut self, t: TaskId) -> &mut Task {
        &mut self.tasks[t.0 as usize]
    }

    pub(super) fn record(&self, a: AttemptId) -> &AttemptRecord {
        let at = self.attempts[a.0 as usize];
        &self.task(at.task).history[at.index]
    }

    /// The attempt, when it exists and belongs to `task`.
    pub(super) fn known_attempt(&self, task: TaskId, attempt: AttemptId) -> Option<Attempt> {
        self.attempts.get(attempt.0 as usize).copied().filter(|a| a.task == task)
    }

    /// Did attempt `a` read the output of `dep` that is current now? Not
    /// when `dep` was recommitted since `a` started, or is not ready.
    pub(super) fn read_current_output(&self, a: Attempt, dep: TaskId) -> bool {
        self.task(a.task).spec.deps.contains(&dep) && self.is_ready(dep) && self.task(dep).commit_seq <= a.launch_seq
    }

    pub(super) fn is_done(&self, t: TaskId) -> bool {
        self.task(t).phase.is_done()
    }

    pub(super) fn is_ready(&self, t: TaskId) -> bool {
        self.task(t).phase.is_ready()
    }

    pub(super) fn running_attempts(&self, t: TaskId) -> &[AttemptId] {
        match &self.task(t).phase {
            Phase::Running(attempts) => attempts,
            _ => &[],
        }
    }

    /// Moves `t` to `phase`, keeping the pending set, the done count and
    /// the dependents' unready counts in step.
    pub(super) fn set_phase(&mut self, t: TaskId, phase: Phase) {
        let (was_ready, was_done) = (self.is_ready(t), self.is_done(t));
        let now = self.now;
        let task = &mut self.tasks[t.0 as usize];
        let prefs = usize::from(task.has_prefs());
        if matches!(task.phase, Phase::Pending) {
            self.pending.remove(&(task.rank, t));
            self.pending_with_prefs -= prefs;
        }
        if matches!(phase, Phase::Pending) {
            self.pending.insert((task.rank, t));
            self.pending_with_prefs += prefs;
            task.pending_since = now;
        }
        task.phase = phase;
        let (ready, done) = (task.phase.is_ready(), task.phase.is_done());
        if done != was_done {
            self.done = if done { self.done + 1 } else { self.done - 1 };
        }
        if ready != was_ready {
            for i in 0..self.task(t).dependents.len() {
                let d = self.task(t).dependents[i];
                let unready = &mut self.task_mut(d).unready;
                *unready = if ready { *unready - 1 } else { *unready + 1 };
            }
        }
    }

    /// Ends a running attempt and frees its slot; its task goes back to
    /// pending when nothing else runs it. No-op for an ended attempt.
    pub(super) fn end_attempt(&mut self, a: AttemptId, outcome: Outcome) {
        let Attempt { task, index, .. } = self.attempts[a.0 as usize];
        let now = self.now;
        let record = &mut self.tasks[task.0 as usize].history[index];
        if !matches!(record.outcome, Outcome::Running) {
            return;
        }
        record.outcome = outcome;
        record.ended = Some(now);
        if let Some(h) = self.hosts.get_mut(&record.host) {
            h.running = h.running.saturating_sub(1);
        }
        if let Phase::Running(attempts) = &mut self.tasks[task.0 as usize].phase {
            attempts.retain(|x| *x != a);
            if attempts.is_empty() {
                self.set_phase(task, Phase::Pending);
            }
        }
    }

    /// Still needed: not yet collected, or read by a task not yet done.
    pub(super) fn needed(&self, t: TaskId) -> bool {
        let task = self.task(t);
        (task.spec.needs_collect && !task.collected) || task.dependents.iter().any(|&d| !self.is_done(d))
    }

    /// The output of `t` is gone (its host was lost, or a reader could not
    /// fetch it): rerun `t` if the output is still needed.
    pub(super) fn lose_output(&mut self, t: TaskId) {
        match self.task(t).phase {
            Phase::Done { attempt, host, available: true } => {
                self.mark_readers_stale(t);
                self.set_phase(t, Phase::Done { attempt, host, available: false });
                if self.needed(t) {
                    self.reopen(t);
                }
            }
            Phase::Restored => self.reopen(t),
            _ => {}
        }
    }

    /// Makes a done task pending again, and with it every producer whose
    /// output it needs but which is gone.
    pub(super) fn reopen(&mut self, t: TaskId) {
        if !self.is_done(t) {
            return;
        }
        if self.is_ready(t) {
            self.mark_readers_stale(t);
        }
        self.task_mut(t).collected = false;
        self.set_phase(t, Phase::Pending);
        for i in 0..self.task(t).spec.deps.len() {
            let d = self.task(t).spec.deps[i];
            if !self.is_ready(d) {
                self.reopen(d);
            }
        }
    }

    /// The running attempts that read `t`'s output can no longer trust it.
    fn mark_readers_stale(&mut self, t: TaskId) {
        for i in 0..self.task(t).dependents.len() {
            let d = self.task(t).dependents[i];
            if let Phase::Running(attempts) = &self.tasks[d.0 as usize].phase {
                for a in attempts {
                    self.attempts[a.0 as usize].stale = true;
                }
            }
        }
    }

    /// Known, and lost or excluded: pins and locality no longer hold to it.
    pub(super) fn gone(&self, h: HostId) -> bool {
        self.hosts.get(&h).is_some_and(|h| !h.usable())
    }

    /// Usable, with room for another attempt.
    pub(super) fn free(&self, h: HostId) -> bool {
        self.hosts.get(&h).is_some_and(|h| h.usable() && h.running < h.slots * self.per_slot)
    }
}

#[cfg(test)]
impl Scheduler {
    /// Checks the derived bookkeeping against the state it derives from;
    /// returns what is wrong. The simulation calls it after every step.
    pub(super) fn check_bookkeeping(&self) -> Result<(), String> {
        let mut running: BTreeMap<HostId, u32> = BTreeMap::new();
        let mut done = 0;
        for (i, t) in self.tasks.iter().enumerate() {
            let id = TaskId(i as u32);
            let unready = t.spec.deps.iter().filter(|&&d| !self.is_ready(d)).count();
            if unready != t.unready {
                return Err(format!("task {i}: unready {} but {unready} deps are not ready", t.unready));
            }
            let pending = matches!(t.phase, Phase::Pending);
            if pending != self.pending.contains(&(t.rank, id)) {
                return Err(format!("task {i}: phase {:?} disagrees with the pending set", t.phase));
            }
            if matches!(t.phase, Phase::Done { available: false, .. }) && self.needed(id) {
                return Err(format!("task {i}: its output is lost but still needed"));
            }
            let mut listed = self.running_attempts(id).iter();
            for r in t.history.iter().filter(|r| matches!(r.outcome, Outcome::Running)) {
                if listed.next() != Some(&r.attempt) {
                    return Err(format!("task {i}: attempt {} runs, but the phase is {:?}", r.attempt.0, t.phase));
                }
                *running.entry(r.host).or_default() += 1;
            }
            if listed.next().is_some() {
                return Err(format!("task {i}: the phase {:?} lists an attempt that ended", t.phase));
            }
            done += usize::from(t.phase.is_done());
        }
        for (id, h) in &self.hosts {
            let n = running.get(id).copied().unwrap_or(0);
            if n != h.running {
                return Err(format!("host {}: running {} but {n} attempts run there", id.0, h.running));
            }
            if n > 0 && !h.live {
                return Err(format!("host {}: lost, yet {n} attempts run there", id.0));
            }
        }
        if done != self.done {
            return Err(format!("done count {} but {done} tasks are done", self.done));
        }
        let with_prefs = self.pending.iter().filter(|(_, t)| self.task(*t).has_prefs()).count();
        if with_prefs != self.pending_with_prefs {
            return Err(format!("{} pending tasks counted with preferences, but {with_prefs} have them", self.pending_with_prefs));
        }
        Ok(())
    }
}
