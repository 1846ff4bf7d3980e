//! The scheduler's state and its transitions (the rules are in `mod.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Action, AttemptId, Event, FailureKind, HostId, Progress, SchedulerConfig, TaskId, TaskSpec, TaskState};

struct Task {
    spec: TaskSpec,
    /// Position in the launch order.
    rank: usize,
    state: TaskState,
    collected: bool,
    charged: u32,
    failed_on: Vec<HostId>,
    dependents: Vec<TaskId>,
    /// When it last became pending, for the locality wait.
    pending_since: Duration,
}

struct Attempt {
    task: TaskId,
    host: HostId,
    started: Duration,
    /// False once lost, killed or superseded: its reports no longer count.
    live: bool,
}

struct Host {
    slots: u32,
    running: u32,
    live: bool,
    excluded: bool,
    streak: u32,
}

/// The scheduler of one run.
pub struct Scheduler {
    tasks: Vec<Task>,
    attempts: Vec<Attempt>,
    hosts: BTreeMap<HostId, Host>,
    /// Pending tasks by launch rank.
    pending: BTreeSet<(usize, TaskId)>,
    config: SchedulerConfig,
    /// Durations of successful attempts, per stage (for speculation).
    durations: BTreeMap<u32, Vec<Duration>>,
    failed_attempts: u32,
    finished: bool,
    /// The latest time any event carried.
    now: Duration,
}

impl Scheduler {
    /// Tasks launch in the order given.
    pub fn new(tasks: Vec<TaskSpec>, config: SchedulerConfig) -> Self {
        let order = (0..tasks.len() as u32).map(TaskId).collect();
        Self::with_order(tasks, order, config)
    }

    /// Tasks launch in `order` (a permutation of the task ids: the seeded
    /// shuffle), while ids stay partition numbers.
    pub fn with_order(specs: Vec<TaskSpec>, order: Vec<TaskId>, config: SchedulerConfig) -> Self {
        let mut rank = vec![usize::MAX; specs.len()];
        for (r, t) in order.iter().enumerate() {
            if let Some(slot) = rank.get_mut(t.0 as usize) {
                *slot = r;
            }
        }
        let mut tasks: Vec<Task> = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Task {
                spec,
                rank: if rank[i] == usize::MAX { i } else { rank[i] },
                state: TaskState::Pending,
                collected: false,
                charged: 0,
                failed_on: vec![],
                dependents: vec![],
                pending_since: Duration::ZERO,
            })
            .collect();
        for i in 0..tasks.len() {
            for d in tasks[i].spec.deps.clone() {
                if let Some(dep) = tasks.get_mut(d.0 as usize) {
                    dep.dependents.push(TaskId(i as u32));
                }
            }
        }
        let pending = tasks.iter().enumerate().map(|(i, t)| (t.rank, TaskId(i as u32))).collect();
        Scheduler {
            tasks,
            attempts: vec![],
            hosts: BTreeMap::new(),
            pending,
            config,
            durations: BTreeMap::new(),
            failed_attempts: 0,
            finished: false,
            now: Duration::ZERO,
        }
    }

    /// Marks a task done by an earlier run (resume): its output is already
    /// with the driver.
    pub fn restore_done(&mut self, task: TaskId) {
        let t = &mut self.tasks[task.0 as usize];
        self.pending.remove(&(t.rank, task));
        t.state = TaskState::Done { attempt: AttemptId(u32::MAX), host: None };
        t.collected = true;
    }

    pub fn task_state(&self, task: TaskId) -> &TaskState {
        &self.tasks[task.0 as usize].state
    }

    pub fn progress(&self) -> Progress {
        Progress {
            total: self.tasks.len(),
            done: self.tasks.iter().filter(|t| matches!(t.state, TaskState::Done { .. })).count(),
            running: self.attempts.iter().filter(|a| a.live).count(),
            failed_attempts: self.failed_attempts,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Work remains but no host can take it.
    pub fn is_stalled(&self) -> bool {
        !self.finished && !self.all_done() && !self.hosts.values().any(|h| h.live && !h.excluded)
    }

    /// Feeds one event; returns what the driver must do.
    pub fn on_event(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if let Event::HostUp { now, .. }
        | Event::HostLost { now, .. }
        | Event::TaskSucceeded { now, .. }
        | Event::TaskFailed { now, .. }
        | Event::Tick { now } = event
        {
            self.now = self.now.max(now);
        }
        if self.finished {
            if let Event::TaskSucceeded { task, attempt, .. } = event {
                self.discard(task, attempt, &mut out);
            }
            return out;
        }
        match event {
            Event::HostUp { host, slots, .. } => self.host_up(host, slots),
            Event::HostLost { host, .. } => self.host_lost(host),
            Event::TaskSucceeded { task, attempt, now } => self.succeeded(task, attempt, now, &mut out),
            Event::TaskFailed { task, attempt, kind, .. } => self.failed(task, attempt, kind, &mut out),
            Event::Collected { task } => self.tasks[task.0 as usize].collected = true,
            Event::Tick { now } => self.speculate(now, &mut out),
            Event::Cancel => return self.cancel(),
        }
        if !self.finished {
            self.fill_slots(&mut out);
            self.check_done(&mut out);
        }
        out
    }

    fn host_up(&mut self, host: HostId, slots: u32) {
        let h = self.hosts.entry(host).or_insert(Host { slots, running: 0, live: true, excluded: false, streak: 0 });
        if !h.live {
            h.running = 0;
            h.streak = 0;
        }
        h.live = true;
        h.slots = slots.max(1);
    }

    fn host_lost(&mut self, host: HostId) {
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        h.live = false;
        h.running = 0;
        let lost: Vec<usize> = (0..self.attempts.len()).filter(|&i| self.attempts[i].live && self.attempts[i].host == host).collect();
        for i in lost {
            self.attempts[i].live = false;
            let task = self.attempts[i].task;
            self.forget_attempt(task, AttemptId(i as u32));
        }
        for t in 0..self.tasks.len() {
            let on_host = matches!(self.tasks[t].state, TaskState::Done { host: Some(h), .. } if h == host);
            if on_host && self.output_needed(t) {
                self.tasks[t].collected = false;
                self.make_pending(TaskId(t as u32));
            }
        }
    }

    /// Still needed: not yet collected, or read by an unfinished task.
    fn output_needed(&self, t: usize) -> bool {
        let task = &self.tasks[t];
        (task.spec.needs_collect && !task.collected)
            || task.dependents.iter().any(|d| !matches!(self.tasks[d.0 as usize].state, TaskState::Done { .. }))
    }

    fn make_pending(&mut self, task: TaskId) {
        let t = &mut self.tasks[task.0 as usize];
        t.state = TaskState::Pending;
        t.pending_since = self.now;
        self.pending.insert((t.rank, task));
    }

    /// Removes a no-longer-live attempt from its task; the task goes back
    /// to pending when nothing else runs it.
    fn forget_attempt(&mut self, task: TaskId, attempt: AttemptId) {
        let t = &mut self.tasks[task.0 as usize];
        if let TaskState::Running { attempts } = &mut t.state {
            attempts.retain(|a| *a != attempt);
            if attempts.is_empty() {
                self.make_pending(task);
            }
        }
    }

    /// Ends an attempt's hold on its slot (when its host is still up).
    fn release(&mut self, attempt: AttemptId) {
        let a = &mut self.attempts[attempt.0 as usize];
        if !a.live {
            return;
        }
        a.live = false;
        if let Some(h) = self.hosts.get_mut(&a.host) {
            if h.live {
                h.running = h.running.saturating_sub(1);
            }
        }
    }

    fn is_current(&self, task: TaskId, attempt: AttemptId) -> bool {
        self.attempts.get(attempt.0 as usize).is_some_and(|a| a.live && a.task == task)
    }

    fn discard(&mut self, task: TaskId, attempt: AttemptId, out: &mut Vec<Action>) {
        if let Some(a) = self.attempts.get(attempt.0 as usize) {
            out.push(Action::Discard { task, attempt, host: a.host });
        }
    }

    fn succeeded(&mut self, task: TaskId, attempt: AttemptId, now: Duration, out: &mut Vec<Action>) {
        if !self.is_current(task, attempt) || matches!(self.tasks[task.0 as usize].state, TaskState::Done { .. }) {
            self.release(attempt);
            return self.discard(task, attempt, out);
        }
        let (host, started) = (self.attempts[attempt.0 as usize].host, self.attempts[attempt.0 as usize].started);
        self.release(attempt);
        if let Some(h) = self.hosts.get_mut(&host) {
            h.streak = 0;
        }
        let others = match &self.tasks[task.0 as usize].state {
            TaskState::Running { attempts } => attempts.iter().copied().filter(|a| *a != attempt).collect(),
            _ => vec![],
        };
        for other in others {
            let h = self.attempts[other.0 as usize].host;
            self.release(other);
            out.push(Action::Kill { task, attempt: other, host: h });
        }
        let t = &mut self.tasks[task.0 as usize];
        t.state = TaskState::Done { attempt, host: Some(host) };
        self.durations.entry(t.spec.stage).or_default().push(now.saturating_sub(started));
        out.push(Action::Commit { task, attempt, host });
    }

    fn failed(&mut self, task: TaskId, attempt: AttemptId, kind: FailureKind, out: &mut Vec<Action>) {
        if !self.is_current(task, attempt) {
            self.release(attempt);
            return;
        }
        let host = self.attempts[attempt.0 as usize].host;
        self.release(attempt);
        self.forget_attempt(task, attempt);
        match kind {
            FailureKind::Killed => {}
            FailureKind::FetchFailed { from_task } => self.lose_output(from_task),
            FailureKind::Exit | FailureKind::HostTrouble => self.charge(task, host, out),
        }
    }

    /// A consumer could not read `producer`'s output: recompute it.
    fn lose_output(&mut self, producer: TaskId) {
        if let Some(t) = self.tasks.get(producer.0 as usize) {
            if matches!(t.state, TaskState::Done { .. }) {
                self.tasks[producer.0 as usize].collected = false;
                self.make_pending(producer);
            }
        }
    }

    fn charge(&mut self, task: TaskId, host: HostId, out: &mut Vec<Action>) {
        self.failed_attempts += 1;
        let t = &mut self.tasks[task.0 as usize];
        t.charged += 1;
        t.failed_on.push(host);
        let (charged, failed_on) = (t.charged, t.failed_on.clone());
        // Never exclude the last usable host: with nowhere else to go, the
        // task keeps its attempts and fails with its own error.
        let others = self.hosts.iter().any(|(&id, h)| id != host && h.live && !h.excluded);
        if let Some(h) = self.hosts.get_mut(&host) {
            h.streak += 1;
            if h.streak >= self.config.exclude_after && !h.excluded && others {
                h.excluded = true;
                out.push(Action::Exclude { host });
            }
        }

        if charged >= self.config.max_attempts {
            let hosts: Vec<String> = failed_on.iter().map(|h| h.0.to_string()).collect();
            let reason = format!(
                "task {} failed {charged} times (max_attempts = {}), on hosts {}",
                task.0,
                self.config.max_attempts,
                hosts.join(", ")
            );
            self.kill_all(out);
            self.finished = true;
            out.push(Action::Fail { task, reason });
        }
    }

    fn kill_all(&mut self, out: &mut Vec<Action>) {
        for i in 0..self.attempts.len() {
            if self.attempts[i].live {
                let (task, host) = (self.attempts[i].task, self.attempts[i].host);
                self.release(AttemptId(i as u32));
                out.push(Action::Kill { task, attempt: AttemptId(i as u32), host });
            }
        }
    }

    fn cancel(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.kill_all(&mut out);
        self.finished = true;
        out.push(Action::Cancelled);
        out
    }

    fn all_done(&self) -> bool {
        self.tasks.iter().all(|t| matches!(t.state, TaskState::Done { .. }) && (t.collected || !t.spec.needs_collect))
    }

    fn check_done(&mut self, out: &mut Vec<Action>) {
        if self.all_done() {
            self.finished = true;
            out.push(Action::Done);
        }
    }

    fn usable(&self, h: HostId) -> bool {
        self.hosts.get(&h).is_some_and(|h| h.live && !h.excluded)
    }

    /// Known, and lost or excluded: its pinned or local tasks may go elsewhere.
    fn gone(&self, h: HostId) -> bool {
        self.hosts.get(&h).is_some_and(|h| !h.live || h.excluded)
    }

    fn runnable(&self, t: TaskId) -> bool {
        self.tasks[t.0 as usize].spec.deps.iter().all(|d| matches!(self.tasks[d.0 as usize].state, TaskState::Done { .. }))
    }

    /// May `task` run on `host` now?
    fn allowed(&self, task: TaskId, host: HostId) -> bool {
        let t = &self.tasks[task.0 as usize];
        // A pin holds until the host is gone or the task failed there once:
        // then the retry may go anywhere, like any other task.
        if let Some(p) = t.spec.pinned_host.filter(|p| !t.failed_on.contains(p)) {
            if p != host && !self.gone(p) {
                return false;
            }
        }
        if !t.failed_on.contains(&host) {
            return true;
        }
        // Retry where it failed only when no usable host is left where it did not.
        !self.hosts.keys().any(|&h| h != host && self.usable(h) && !t.failed_on.contains(&h))
    }

    /// The best task for a free slot on `host`.
    fn pick(&self, host: HostId) -> Option<TaskId> {
        let candidates = || self.pending.iter().map(|(_, t)| *t).filter(|&t| self.runnable(t) && self.allowed(t, host));
        let spec = |t: TaskId| &self.tasks[t.0 as usize].spec;
        candidates()
            .find(|&t| spec(t).pinned_host == Some(host))
            .or_else(|| candidates().find(|&t| spec(t).preferred_hosts.contains(&host)))
            .or_else(|| candidates().find(|&t| self.may_leave_its_data(t)))
    }

    /// A task whose input sits on other hosts waits for them (its data need
    /// not travel) unless they are gone or it has waited `locality_wait`.
    fn may_leave_its_data(&self, t: TaskId) -> bool {
        let task = &self.tasks[t.0 as usize];
        task.spec.preferred_hosts.iter().all(|&p| self.gone(p)) || self.now.saturating_sub(task.pending_since) >= self.config.locality_wait
    }

    fn full(&self, h: HostId) -> bool {
        self.hosts.get(&h).is_none_or(|h| h.running >= h.slots)
    }

    fn fill_slots(&mut self, out: &mut Vec<Action>) {
        let hosts: Vec<HostId> = self.hosts.keys().copied().collect();
        for host in hosts {
            while self.usable(host) && !self.full(host) {
                let Some(task) = self.pick(host) else { break };
                self.launch(task, host, false, out);
            }
        }
    }

    fn launch(&mut self, task: TaskId, host: HostId, speculative: bool, out: &mut Vec<Action>) {
        let attempt = AttemptId(self.attempts.len() as u32);
        let now = self.last_now();
        self.attempts.push(Attempt { task, host, started: now, live: true });
        if let Some(h) = self.hosts.get_mut(&host) {
            h.running += 1;
        }
        let t = &mut self.tasks[task.0 as usize];
        self.pending.remove(&(t.rank, task));
        match &mut t.state {
            TaskState::Running { attempts } => attempts.push(attempt),
            state => *state = TaskState::Running { attempts: vec![attempt] },
        }
        out.push(Action::Launch { task, attempt, host, speculative });
    }

    fn last_now(&self) -> Duration {
        self.now
    }

    /// Starts copies of stragglers (see the module doc for the rule).
    fn speculate(&mut self, now: Duration, out: &mut Vec<Action>) {
        if !self.config.speculate {
            return;
        }
        for (stage, durations) in self.durations.clone() {
            let total = self.tasks.iter().filter(|t| t.spec.stage == stage).count();
            if (durations.len() as f64) < self.config.speculation_quantile * total as f64 {
                continue;
            }
            let mut sorted = durations;
            sorted.sort();
            let limit = sorted[sorted.len() / 2].mul_f64(self.config.speculation_multiplier).max(self.config.speculation_min_runtime);
            for task in self.stragglers(stage, now, limit) {
                let running_on = self.running_hosts(task);
                let target = self.hosts.keys().copied().find(|&h| self.usable(h) && !self.full(h) && !running_on.contains(&h));
                if let Some(host) = target {
                    self.launch(task, host, true, out);
                }
            }
        }
    }

    /// Tasks of `stage` with a single attempt running longer than `limit`.
    fn stragglers(&self, stage: u32, now: Duration, limit: Duration) -> Vec<TaskId> {
        (0..self.tasks.len())
            .filter(|&t| self.tasks[t].spec.stage == stage && self.runnable(TaskId(t as u32)))
            .filter_map(|t| match &self.tasks[t].state {
                TaskState::Running { attempts } if attempts.len() == 1 => {
                    let a = &self.attempts[attempts[0].0 as usize];
                    (now.saturating_sub(a.started) > limit).then_some(TaskId(t as u32))
                }
                _ => None,
            })
            .collect()
    }

    fn running_hosts(&self, task: TaskId) -> Vec<HostId> {
        match &self.tasks[task.0 as usize].state {
            TaskState::Running { attempts } => attempts.iter().map(|a| self.attempts[a.0 as usize].host).collect(),
            _ => vec![],
        }
    }
}

#[cfg(test)]
impl Scheduler {
    /// Internal state, for test failure messages.
    pub(super) fn debug_state(&self) -> String {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|(id, h)| format!("{}:slots={} running={} live={} excluded={}", id.0, h.slots, h.running, h.live, h.excluded))
            .collect();
        let pend: Vec<String> = self
            .pending
            .iter()
            .map(|(_, t)| {
                let task = &self.tasks[t.0 as usize];
                format!(
                    "{}(runnable={} pinned={:?} pref={:?} failed_on={:?})",
                    t.0,
                    self.runnable(*t),
                    task.spec.pinned_host,
                    task.spec.preferred_hosts,
                    task.failed_on
                )
            })
            .collect();
        format!(
            "hosts [{}] pending [{}] live attempts {}",
            hosts.join(", "),
            pend.join(", "),
            self.attempts.iter().filter(|a| a.live).count()
        )
    }
}
