//! One handler per event (the rules they follow are in `mod.rs`).

use super::state::{Ending, Host, Phase};
use super::{Action, AttemptId, Event, FailureKind, HostId, Outcome, Scheduler, TaskId};

impl Scheduler {
    /// A new host, or a lost one back (fresh: nothing of its old attempts
    /// survives, but an exclusion stands).
    pub(super) fn host_up(&mut self, host: HostId, slots: u32) {
        let h = self.hosts.entry(host).or_insert_with(|| Host::new(slots));
        h.live = true;
        h.slots = slots.max(1);
    }

    /// Its attempts are lost, uncharged; its outputs are gone.
    pub(super) fn host_lost(&mut self, host: HostId) {
        match self.hosts.get_mut(&host) {
            Some(h) if h.live => h.live = false,
            _ => return,
        }
        for attempt in self.running_on(host) {
            self.end_attempt(attempt, Outcome::Lost);
            self.lost_attempts += 1;
        }
        for task in self.outputs_on(host) {
            self.lose_output(task);
        }
    }

    fn running_on(&self, host: HostId) -> Vec<AttemptId> {
        let running = self.tasks.iter().flat_map(|t| t.history.iter()).filter(|r| r.outcome == Outcome::Running);
        running.filter(|r| r.host == host).map(|r| r.attempt).collect()
    }

    fn outputs_on(&self, host: HostId) -> Vec<TaskId> {
        let on_host = |phase: &Phase| matches!(phase, Phase::Done { host: h, available: true, .. } if *h == host);
        (0..self.tasks.len()).filter(|&t| on_host(&self.tasks[t].phase)).map(|t| TaskId(t as u32)).collect()
    }

    /// The first success of a current attempt commits; any other is
    /// discarded, except a repeated report of the committed attempt.
    pub(super) fn succeeded(&mut self, task: TaskId, attempt: AttemptId, out: &mut Vec<Action>) {
        let Some(a) = self.known_attempt(task, attempt) else {
            return;
        };
        match self.record(attempt).outcome {
            Outcome::Committed => {}
            Outcome::Running if !a.stale && self.task(task).unready == 0 => self.commit(task, attempt, out),
            Outcome::Running => {
                self.end_attempt(attempt, Outcome::Discarded);
                self.discard(task, attempt, out);
            }
            _ => self.discard(task, attempt, out),
        }
    }

    fn commit(&mut self, task: TaskId, attempt: AttemptId, out: &mut Vec<Action>) {
        let host = self.record(attempt).host;
        let others: Vec<AttemptId> = self.running_attempts(task).iter().copied().filter(|&a| a != attempt).collect();
        // Done first, so that ending the attempts does not reopen the task.
        self.set_phase(task, Phase::Done { attempt, host, available: true });
        self.commits += 1;
        self.task_mut(task).commit_seq = self.commits;
        self.end_attempt(attempt, Outcome::Committed);
        self.note_duration(attempt);
        if let Some(h) = self.hosts.get_mut(&host) {
            h.streak = 0;
        }
        out.push(Action::Commit { task, attempt, host });
        for other in others {
            self.kill(other, out);
        }
    }

    fn note_duration(&mut self, attempt: AttemptId) {
        let (task, record) = self.attempt(attempt).expect("a committed attempt exists");
        let took = record.ended.unwrap_or(self.now).saturating_sub(record.started);
        let stage = self.task(task).spec.stage;
        self.durations.entry(stage).or_default().push(took);
    }

    fn discard(&self, task: TaskId, attempt: AttemptId, out: &mut Vec<Action>) {
        out.push(Action::Discard { task, attempt, host: self.record(attempt).host });
    }

    pub(super) fn kill(&mut self, attempt: AttemptId, out: &mut Vec<Action>) {
        let (task, host) = (self.attempts[attempt.0 as usize].task, self.record(attempt).host);
        self.end_attempt(attempt, Outcome::Killed);
        out.push(Action::Kill { task, attempt, host });
    }

    /// Charged when the attempt failed by itself and its inputs were sound;
    /// reports of attempts that already ended are ignored.
    pub(super) fn failed(&mut self, task: TaskId, attempt: AttemptId, kind: FailureKind, out: &mut Vec<Action>) {
        let Some(a) = self.known_attempt(task, attempt) else {
            return;
        };
        if self.record(attempt).outcome != Outcome::Running {
            return;
        }
        let host = self.record(attempt).host;
        match kind {
            FailureKind::Killed => self.end_attempt(attempt, Outcome::Killed),
            FailureKind::FetchFailed { from_task } => {
                self.end_attempt(attempt, Outcome::Failed(kind));
                // A complaint about an output already declared lost, maybe
                // replaced since, is not news.
                if self.read_current_output(a, from_task) {
                    self.lose_output(from_task);
                }
            }
            FailureKind::Exit | FailureKind::HostTrouble => {
                self.end_attempt(attempt, Outcome::Failed(kind));
                // A stale attempt probably failed because its input vanished.
                if !a.stale {
                    self.charge(task, host, out);
                }
            }
        }
    }

    fn charge(&mut self, task: TaskId, host: HostId, out: &mut Vec<Action>) {
        self.failed_attempts += 1;
        self.task_mut(task).failed_on.push(host);
        self.extend_streak(host, out);
        if self.task(task).failed_on.len() as u32 >= self.config.max_attempts.max(1) {
            self.fail_run(task, out);
        }
    }

    /// Excludes the host at `exclude_after` failures in a row, unless it is
    /// the last usable host.
    fn extend_streak(&mut self, host: HostId, out: &mut Vec<Action>) {
        let limit = self.config.exclude_after;
        let others = self.hosts.iter().any(|(&id, h)| id != host && h.usable());
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        h.streak += 1;
        if limit > 0 && h.streak >= limit && !h.excluded && others {
            h.excluded = true;
            out.push(Action::Exclude { host });
        }
    }

    fn fail_run(&mut self, task: TaskId, out: &mut Vec<Action>) {
        let reason = self.failure_reason(task);
        self.kill_all(out);
        self.set_phase(task, Phase::Failed);
        self.ending = Some(Ending::Failed);
        out.push(Action::Fail { task, reason });
    }

    /// "task 3 failed 4 times (max_attempts = 4), on hosts 0, 2 and 1."
    fn failure_reason(&self, task: TaskId) -> String {
        let failed_on = &self.task(task).failed_on;
        let mut hosts: Vec<String> = vec![];
        for (i, h) in failed_on.iter().enumerate() {
            if !failed_on[..i].contains(h) {
                hosts.push(h.0.to_string());
            }
        }
        let last = hosts.pop().unwrap_or_default();
        let list = if hosts.is_empty() { format!("host {last}") } else { format!("hosts {} and {last}", hosts.join(", ")) };
        let n = failed_on.len();
        format!(
            "task {} failed {n} {} (max_attempts = {}), on {list}.",
            task.0,
            if n == 1 { "time" } else { "times" },
            self.config.max_attempts.max(1)
        )
    }

    pub(super) fn kill_all(&mut self, out: &mut Vec<Action>) {
        let running: Vec<AttemptId> = (0..self.tasks.len() as u32).flat_map(|t| self.running_attempts(TaskId(t)).to_vec()).collect();
        for attempt in running {
            self.kill(attempt, out);
        }
    }

    pub(super) fn collected(&mut self, task: TaskId) {
        if self.tasks.get(task.0 as usize).is_some_and(|t| matches!(t.phase, Phase::Done { .. })) {
            self.task_mut(task).collected = true;
        }
    }

    pub(super) fn cancel(&mut self, out: &mut Vec<Action>) {
        self.kill_all(out);
        self.ending = Some(Ending::Cancelled);
        out.push(Action::Cancelled);
    }

    /// After the end only a success needs an answer: its output must go
    /// (every attempt has ended by then, most of them killed).
    pub(super) fn after_the_end(&self, event: Event, out: &mut Vec<Action>) {
        if let Event::TaskSucceeded { task, attempt, .. } = event {
            if self.known_attempt(task, attempt).is_some() && self.record(attempt).outcome != Outcome::Committed {
                self.discard(task, attempt, out);
            }
        }
    }
}
