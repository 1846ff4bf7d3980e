//! How the book hears of attempts: an agent's end report (believed only
//! from the right host, once), log frames (for counters), and attempts
//! that failed before they ran (no input, no start).

use std::time::Duration;

use shoal_core::scheduler::{AttemptId, Event, FailureKind, TaskId, TaskState};
use shoal_wire::{ExitStatus, TaskReport};

use super::attempt::status_text;
use super::{Effect, Ignored, Outcome, Pending, RunBook};

impl RunBook<'_> {
    /// Host `h` reports the end of an attempt.
    pub fn on_report(&mut self, h: usize, report: TaskReport, now: Duration) -> Vec<Effect> {
        self.now = now;
        if let Err(ignored) = self.check_sender(h, report.attempt, true) {
            self.out.push(Effect::Ignored(ignored));
        } else if self.killed_from_outside(&report) {
            // SIGKILL that we did not send: the host may be going down
            // (everything on it killed at once). Wait before charging the
            // task, so that a host loss seen meanwhile wins. Its end is
            // reported all the same: a second report must not count.
            if let Some(a) = self.attempts.get_mut(&report.attempt) {
                a.held = true;
            }
            self.out.push(Effect::HoldBack { host: h, report: Box::new(report) });
        } else {
            self.ended(h, report);
        }
        self.effects()
    }

    /// A report held back by [`Effect::HoldBack`], its host still up.
    pub fn on_held_report(&mut self, h: usize, report: TaskReport, now: Duration) -> Vec<Effect> {
        self.now = now;
        self.ended(h, report);
        self.effects()
    }

    /// The task of `attempt`, whose log frame host `h` sent; a frame for an
    /// attempt sent elsewhere (or never) is ignored.
    pub fn log_task(&self, h: usize, attempt: u32) -> Result<u32, Ignored> {
        self.check_sender(h, attempt, false)?;
        Ok(self.attempts.get(&attempt).map_or(0, |a| a.task))
    }

    /// Adds a line of a task's log to the counters.
    pub fn count(&mut self, line: &str) {
        self.facts.count(line);
    }

    /// Whether `attempt` was sent to host `h` (and, for its end, has not
    /// reported one yet, held back or not).
    fn check_sender(&self, h: usize, attempt: u32, end: bool) -> Result<(), Ignored> {
        let why = match self.attempts.get(&attempt) {
            Some(a) if a.host == h && !(end && (a.status.is_some() || a.held)) => return Ok(()),
            None => "an attempt that was never sent".to_string(),
            Some(a) if a.host != h => format!("an attempt sent to `{}`", self.facts.name(a.host)),
            Some(_) => "an attempt that had already reported its end".to_string(),
        };
        Err(Ignored { host: h, attempt, why })
    }

    /// An attempt ended by SIGKILL that the driver did not ask for.
    fn killed_from_outside(&self, r: &TaskReport) -> bool {
        r.status == ExitStatus::Signal(9) && self.attempts.get(&r.attempt).is_some_and(|a| !a.killed)
    }

    /// Records an attempt's end and tells the scheduler.
    fn ended(&mut self, h: usize, mut r: TaskReport) {
        let now = self.now;
        let Some(a) = self.attempts.get_mut(&r.attempt) else {
            return;
        };
        // It started running on its host when it began, not when it was
        // sent (it may have waited there in a queue).
        let ran = Duration::from_micros(r.wall_us);
        a.started = a.started.max(now.checked_sub(ran).unwrap_or(a.started));
        a.ended = Some(now);
        a.status = Some(status_text(&r.status, r.timed_out));
        a.stderr_tail = std::mem::take(&mut r.stderr_tail);
        a.cpu_ms = r.cpu_ms;
        let (task, killed) = (TaskId(a.task), a.killed);
        let stats = &mut self.facts.hosts[h];
        stats.cpu_ms += r.cpu_ms;
        stats.busy_us += r.wall_us;
        stats.busy_ms = stats.busy_us / 1000;
        let attempt = AttemptId(r.attempt);
        if let (true, false, Some(output)) = (r.status.success(), r.timed_out, r.output) {
            let pending = Pending { output, data: r.output_data, buckets: r.buckets, skipped: r.skipped };
            self.pending.insert(r.attempt, pending);
            self.set_outcome(r.attempt, Outcome::Succeeded);
            self.feed(Event::TaskSucceeded { task, attempt, now });
            if let Some(per_slot) = self.pacing.observe(ran) {
                self.feed(Event::Pipeline { per_slot });
            }
            return;
        }
        self.facts.hosts[h].failures += 1;
        let kind = match (&r.host_trouble, killed) {
            (_, true) => FailureKind::Killed,
            (Some(_), _) => FailureKind::HostTrouble,
            (None, _) => FailureKind::Exit,
        };
        if let Some(why) = &r.host_trouble {
            self.note(format!("host `{}`: {why}", self.facts.name(h)));
        }
        if kind == FailureKind::Exit {
            *self.exit_failures.entry(task.0).or_default() += 1;
        }
        self.set_outcome(r.attempt, if killed { Outcome::Killed } else { Outcome::Failed });
        self.feed(Event::TaskFailed { task, attempt, now, kind });
    }

    /// A reduce could not get map `from_task`'s bucket: that map reruns.
    pub(super) fn fetch_failed(&mut self, task: u32, attempt: u32, from_task: u32) {
        if let Some(a) = self.attempts.get_mut(&attempt) {
            a.ended = Some(self.now);
            a.status = Some(format!("input from map task {from_task} lost").into());
        }
        self.set_outcome(attempt, Outcome::FetchFailed);
        let kind = FailureKind::FetchFailed { from_task: TaskId(from_task) };
        self.feed(Event::TaskFailed { task: TaskId(task), attempt: AttemptId(attempt), now: self.now, kind });
        // The map's output is gone only if the scheduler says so: a reduce
        // that was staging an instance since replaced (its host lost, the
        // map rerun) brings old news, and the new instance must stay, or
        // the next reduce would be staged without it.
        if !matches!(self.sched.task_state(TaskId(from_task)), TaskState::Done { .. }) {
            self.map_outputs.remove(&from_task);
        }
    }

    /// An attempt could not be started; one whose host is gone goes with
    /// the host's loss, reported on its own.
    pub(super) fn launch_failed(&mut self, task: u32, attempt: u32, why: String, gone: bool) {
        if gone {
            return;
        }
        if let Some(a) = self.attempts.get_mut(&attempt) {
            a.ended = Some(self.now);
            a.status = Some(why.clone().into());
            a.stderr_tail = why;
        }
        self.set_outcome(attempt, Outcome::Failed);
        let kind = FailureKind::HostTrouble;
        self.feed(Event::TaskFailed { task: TaskId(task), attempt: AttemptId(attempt), now: self.now, kind });
    }
}
