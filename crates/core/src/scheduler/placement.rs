//! What runs where: filling free slots, and speculative copies (the rules
//! are in `mod.rs`).

use std::collections::BTreeSet;
use std::time::Duration;

use super::state::{Attempt, Phase};
use super::{Action, AttemptId, AttemptRecord, HostId, Outcome, Scheduler, TaskId};

impl Scheduler {
    /// Gives every free slot of every usable host a task, one per host per
    /// round so that work spreads over the hosts.
    pub(super) fn fill_slots(&mut self, out: &mut Vec<Action>) {
        if self.pending.is_empty() {
            return;
        }
        let hosts: Vec<HostId> = self.hosts.keys().copied().collect();
        loop {
            let mut launched = false;
            for &host in &hosts {
                if !self.free(host) {
                    continue;
                }
                if let Some(task) = self.pick(host) {
                    self.launch(task, host, false, out);
                    launched = true;
                }
            }
            if !launched {
                return;
            }
        }
    }

    /// The best pending task for a free slot on `host`: pinned here, else
    /// local here, else one that may run anywhere; first in launch order.
    fn pick(&self, host: HostId) -> Option<TaskId> {
        let (mut local, mut any) = (None, None);
        for &(_, t) in &self.pending {
            if self.task(t).unready > 0 || !self.allowed(t, host) {
                continue;
            }
            if self.pin(t) == Some(host) {
                return Some(t);
            }
            if self.task(t).spec.preferred_hosts.contains(&host) {
                local = local.or(Some(t));
            } else if any.is_none() && self.may_leave_its_data(t) {
                any = Some(t);
            }
            if any.is_some() && self.pending_with_prefs == 0 {
                break; // no pending task prefers any host: none is more local
            }
        }
        local.or(any)
    }

    /// The host `t` is held to: its pin, while that host is usable and the
    /// task has not failed there.
    fn pin(&self, t: TaskId) -> Option<HostId> {
        let task = self.task(t);
        if task.spec.pinned_only {
            return task.spec.pinned_host;
        }
        task.spec.pinned_host.filter(|p| !self.gone(*p) && !task.failed_on.contains(p))
    }

    /// May `t` run on `host`? Not when pinned elsewhere, nor where it
    /// failed while a usable host where it did not fail exists.
    fn allowed(&self, t: TaskId, host: HostId) -> bool {
        if let Some(p) = self.pin(t) {
            return p == host;
        }
        let failed_on = &self.task(t).failed_on;
        !failed_on.contains(&host) || !self.hosts.iter().any(|(h, info)| *h != host && info.usable() && !failed_on.contains(h))
    }

    /// A task whose input sits on other hosts waits `locality_wait` for
    /// them, unless none of them can take it any more.
    fn may_leave_its_data(&self, t: TaskId) -> bool {
        let task = self.task(t);
        let unreachable = |h: &HostId| self.gone(*h) || task.failed_on.contains(h);
        task.spec.preferred_hosts.iter().all(unreachable) || self.now.saturating_sub(task.pending_since) >= self.config.locality_wait
    }

    pub(super) fn launch(&mut self, task: TaskId, host: HostId, speculative: bool, out: &mut Vec<Action>) {
        let attempt = AttemptId(self.attempts.len() as u32);
        let index = self.task(task).history.len();
        self.attempts.push(Attempt { task, index, stale: false, launch_seq: self.commits });
        let record = AttemptRecord { attempt, host, started: self.now, ended: None, outcome: Outcome::Running, speculative };
        self.task_mut(task).history.push(record);
        if let Some(h) = self.hosts.get_mut(&host) {
            h.running += 1;
        }
        if let Phase::Running(attempts) = &mut self.task_mut(task).phase {
            attempts.push(attempt);
        } else {
            self.set_phase(task, Phase::Running(vec![attempt]));
        }
        out.push(Action::Launch { task, attempt, host, speculative });
    }

    /// Copies stragglers into slots that no pending task could take (it
    /// runs after `fill_slots`).
    pub(super) fn speculate(&mut self, out: &mut Vec<Action>) {
        if !self.config.speculate {
            return;
        }
        let stages: BTreeSet<u32> = self.tasks.iter().map(|t| t.spec.stage).collect();
        for stage in stages {
            let Some(limit) = self.straggler_limit(stage) else {
                continue;
            };
            for task in self.stragglers(stage, limit) {
                if let Some(host) = self.copy_host(task) {
                    self.launch(task, host, true, out);
                }
            }
        }
    }

    /// How long a task of `stage` may run before it is copied, once enough
    /// of the stage is done: the multiple of the (upper) median committed
    /// duration, and at least `speculation_min_runtime`.
    fn straggler_limit(&self, stage: u32) -> Option<Duration> {
        let in_stage = self.tasks.iter().filter(|t| t.spec.stage == stage);
        let (total, done) = in_stage.fold((0usize, 0usize), |(n, d), t| (n + 1, d + usize::from(t.phase.is_done())));
        let enough = self.config.speculation_quantile * total as f64;
        if enough.is_nan() || (done as f64) < enough {
            return None;
        }
        let mut durations = self.durations.get(&stage)?.clone();
        durations.sort_unstable();
        let median = *durations.get(durations.len() / 2)?;
        let scaled = Duration::try_from_secs_f64(median.as_secs_f64() * self.config.speculation_multiplier).unwrap_or(Duration::MAX);
        Some(scaled.max(self.config.speculation_min_runtime))
    }

    /// Tasks of `stage` whose only attempt has run longer than `limit`,
    /// longest first. Stale attempts (their copy could not commit either)
    /// and pinned tasks are left alone.
    fn stragglers(&self, stage: u32, limit: Duration) -> Vec<TaskId> {
        let mut found: Vec<(Duration, TaskId)> = vec![];
        for (i, task) in self.tasks.iter().enumerate() {
            let t = TaskId(i as u32);
            let Phase::Running(attempts) = &task.phase else { continue };
            let [only] = attempts.as_slice() else { continue };
            let started = self.record(*only).started;
            let copyable = task.spec.stage == stage && task.unready == 0 && !self.attempts[only.0 as usize].stale && self.pin(t).is_none();
            if copyable && self.now.saturating_sub(started) > limit {
                found.push((started, t));
            }
        }
        found.sort_unstable();
        found.into_iter().map(|(_, t)| t).collect()
    }

    /// A usable host with a free slot, other than the one running `t`, where
    /// `t` has not failed; one holding its input if possible.
    fn copy_host(&self, t: TaskId) -> Option<HostId> {
        let running_on: Vec<HostId> = self.running_attempts(t).iter().map(|&a| self.record(a).host).collect();
        let task = self.task(t);
        let fits = |h: &HostId| self.free(*h) && !running_on.contains(h) && !task.failed_on.contains(h);
        let candidates: Vec<HostId> = self.hosts.keys().copied().filter(fits).collect();
        candidates.iter().copied().find(|h| task.spec.preferred_hosts.contains(h)).or(candidates.first().copied())
    }
}
