//! The run book: everything the driver knows about one run, and its rules,
//! with no I/O.
//!
//! It owns the scheduler and feeds it; it records every attempt (with a
//! typed [`Outcome`]), what a finished attempt holds until the scheduler
//! commits or discards it (one [`Pending`] record per attempt), the
//! committed outputs, the shuffle's map outputs, and the summary's
//! [`Facts`]. Agent reports, host losses, the clock and the completions of
//! work done elsewhere come in as calls (time as an argument: the book
//! reads no clock); each returns the [`Effect`]s the async layer
//! (`engine/`) must carry out: send, upload, stage, fetch, write, kill,
//! journal, note. The run ends when [`RunBook::ending`] says so.
//!
//! What it does not do: talk to hosts, build task requests (the host's
//! `RunEnv` and names are the layer's), write files, or print.
//!
//! # Rules, and why
//!
//! - **Only the host an attempt was sent to speaks for it, and its end
//!   counts once**: a report names its attempt by id, which a confused or
//!   hostile agent could name for an attempt it never ran.
//! - **A SIGKILL the driver did not send is held back** before it is
//!   charged: the host may be going down, and a loss seen meanwhile wins
//!   (the attempt goes with its host, uncharged).
//! - **A kill ends the attempt for the run** at once (outcome `killed`), as
//!   the scheduler frees its slot at once, even if the agent never confirms.
//! - **A pending record lives from a success report to the scheduler's
//!   answer**: `Commit` turns it into the task's output (a shuffle map's
//!   buckets stay on their host and are kept as the map output), `Discard`
//!   drops it (outcome `superseded`).
//! - **Skip mode** (`[job] skip_bad_records`): after two command failures
//!   (exits, not host trouble, loss or kills) a map task with line input
//!   runs its next attempts in skip mode; what committed attempts skipped
//!   is counted, and the run fails past the job's limit.
//! - **Pacing**: the run time of successful attempts sets the attempts per
//!   slot (`Pipeline`), see [`pacing`].
//! - **Stalls**: when the scheduler has tasks but no usable host, the run
//!   fails with the hosts lost and excluded.

mod attempt;
mod commit;
pub mod dense;
mod effect;
mod facts;
mod messages;
pub mod pacing;
mod reports;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use shoal_core::job::JobSpec;
use shoal_core::scheduler::{Action, Event, HostId, Scheduler, TaskId};
use shoal_wire::{BlockRef, Bucket, SkippedRecord};

pub use self::attempt::{Attempt, Outcome};
pub use self::dense::Dense;
pub use self::effect::{Committed, Effect, Ignored, Internal, Launch, Needed};
pub use self::facts::Facts;
use super::output::Part;
use super::prepare::Plan;

/// How the run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    Done,
    Failed(String),
    Interrupted,
}

/// What of the job the book's rules depend on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rules {
    /// `[job] skip_bad_records`; 0: never skip.
    pub skip_bad_records: u32,
    /// `[job] exclude_after`, for the note about an excluded host.
    pub exclude_after: u32,
    /// The job has a `[reduce]`: map outputs stay on their hosts as buckets.
    pub shuffle: bool,
    /// Its tasks are resident (see [`pacing`]).
    pub resident: bool,
}

impl Rules {
    pub fn of(job: &JobSpec) -> Self {
        Rules {
            skip_bad_records: job.job.skip_bad_records,
            exclude_after: job.job.exclude_after,
            shuffle: job.reduce.is_some(),
            resident: job.map.resident || job.reduce.as_ref().is_some_and(|r| r.step.resident),
        }
    }
}

/// What a successful attempt holds until the scheduler commits or
/// discards it.
#[derive(Debug)]
struct Pending {
    output: BlockRef,
    /// The output's bytes, when they came inline.
    data: Option<Vec<u8>>,
    /// A shuffle map's buckets.
    buckets: Vec<Bucket>,
    /// Records skipped in skip mode.
    skipped: Vec<SkippedRecord>,
}

/// Where a committed map output of a shuffle lives.
#[derive(Clone, Debug)]
struct MapOutput {
    host: usize,
    buckets: Vec<Bucket>,
}

pub struct RunBook<'a> {
    plan: &'a Plan,
    rules: Rules,
    sched: Scheduler,
    /// Every attempt, by id.
    pub attempts: Dense<Attempt>,
    /// Committed outputs the driver holds, by task.
    pub parts: Dense<Part>,
    /// By attempt.
    pending: HashMap<u32, Pending>,
    /// By map task.
    map_outputs: HashMap<u32, MapOutput>,
    /// Command failures (exits) of each task, for skip mode.
    exit_failures: HashMap<u32, u32>,
    pacing: pacing::Pacing,
    /// Tasks in the map and the reduce stage.
    stage_sizes: [usize; 2],
    pub facts: Facts,
    ending: Option<Ending>,
    /// The time of the call being handled, since the run started.
    now: Duration,
    /// Effects of the call being handled.
    out: Vec<Effect>,
}

impl<'a> RunBook<'a> {
    /// The book of a run of `plan` on `hosts` (name, slots), in host order.
    pub fn new(plan: &'a Plan, rules: Rules, hosts: &[(String, u32)], sched: Scheduler) -> Self {
        RunBook {
            plan,
            rules,
            sched,
            attempts: Dense::with_capacity(plan.tasks.len()),
            parts: Dense::with_capacity(plan.tasks.len()),
            pending: HashMap::new(),
            map_outputs: HashMap::new(),
            exit_failures: HashMap::new(),
            pacing: pacing::Pacing::new(rules.resident),
            stage_sizes: [0, 1].map(|s| plan.tasks.iter().filter(|t| t.stage == s).count()),
            facts: Facts::new(hosts),
            ending: None,
            now: Duration::ZERO,
            out: Vec::new(),
        }
    }

    /// Every host is up: the first launches.
    pub fn start(&mut self, now: Duration) -> Vec<Effect> {
        self.now = now;
        for h in 0..self.facts.hosts.len() {
            let slots = self.facts.hosts[h].slots;
            self.feed(Event::HostUp { host: HostId(h as u32), slots, now });
        }
        self.effects()
    }

    /// A host's share of slots changed (a standing cluster's coordinator
    /// divided them anew): new tasks go there only while it has room.
    pub fn on_slots(&mut self, host: usize, slots: u32, now: Duration) -> Vec<Effect> {
        self.now = now;
        self.feed(Event::Slots { host: HostId(host as u32), slots });
        self.effects()
    }

    /// Time passes: locality waits, speculation, stalls.
    pub fn on_tick(&mut self, now: Duration) -> Vec<Effect> {
        self.now = now;
        self.feed(Event::Tick { now });
        self.check_stalled();
        self.effects()
    }

    /// The user interrupted: every attempt is killed and the run ends.
    pub fn on_cancel(&mut self, now: Duration) -> Vec<Effect> {
        self.now = now;
        self.note("interrupted: stopping every task (press Ctrl-C again to exit at once)".into());
        self.feed(Event::Cancel);
        if self.ending.is_none() {
            self.ending = Some(Ending::Interrupted);
        }
        self.effects()
    }

    /// Host `h` is gone with everything it held.
    pub fn on_host_lost(&mut self, h: usize, reason: String, now: Duration) -> Vec<Effect> {
        self.now = now;
        let name = self.facts.name(h).to_string();
        self.note(format!("host `{name}` lost: {reason}; its tasks will run elsewhere"));
        self.facts.lost.push((name, reason));
        for a in self.attempts.values_mut().filter(|a| a.host == h && a.ended.is_none()) {
            a.end(now, Outcome::Lost);
        }
        self.feed(Event::HostLost { host: HostId(h as u32), now });
        self.check_stalled();
        self.effects()
    }

    /// Work the layer did off the run loop ended.
    pub fn on_internal(&mut self, ev: Internal, now: Duration) -> Vec<Effect> {
        self.now = now;
        match ev {
            Internal::Shuffled { relayed, direct } => {
                self.facts.shuffled_via_driver += relayed;
                self.facts.shuffled_direct += direct;
            }
            Internal::InputMoved { relayed, direct } => {
                self.facts.inputs_via_driver += relayed;
                self.facts.inputs_direct += direct;
            }
            Internal::InputLost { hash, why } => {
                self.facts.lost_inputs.push(hash);
                self.fail(why);
            }
            Internal::PeerRefused => self.facts.peer_refused += 1,
            Internal::FetchFailed { task, attempt, from_task } => self.fetch_failed(task, attempt, from_task),
            Internal::Uploaded { host, sent, skipped } => {
                self.facts.hosts[host].bytes_in += sent;
                self.facts.input_sent += sent;
                self.facts.input_skipped += skipped;
            }
            Internal::Collected { task, attempt, file, size, hash, data } => self.collected(task, attempt, file, size, hash, data),
            Internal::CannotKeep { why } => self.fail(why),
            Internal::CollectFailed { host, why } => {
                self.note(format!("fetching an output from `{}` failed: {why}", self.facts.name(host)));
            }
            Internal::LaunchFailed { task, attempt, why, gone } => self.launch_failed(task, attempt, why, gone),
        }
        self.effects()
    }

    /// Registers a task committed by an earlier run, whose output is `part`.
    pub fn reuse(&mut self, task: u32, part: Part) {
        self.sched.restore_done(TaskId(task));
        self.parts.insert(task, part);
        self.facts.reused += 1;
    }

    /// Marks a task done without an output of its own (a map whose
    /// readers were all reused).
    pub fn restore_done(&mut self, task: u32) {
        self.sched.restore_done(TaskId(task));
    }

    pub fn sched(&self) -> &Scheduler {
        &self.sched
    }

    /// Ends the run as failed with `why` (a later failure replaces an
    /// earlier one, as the scheduler's `Fail` does).
    pub fn fail(&mut self, why: String) {
        self.ending = Some(Ending::Failed(why));
    }

    pub fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }

    pub fn is_over(&self) -> bool {
        self.ending.is_some()
    }

    pub fn take_ending(&mut self) -> Option<Ending> {
        self.ending.take()
    }

    /// Tasks in stage `s` (0 = map, 1 = reduce).
    pub fn stage_size(&self, s: u32) -> usize {
        self.stage_sizes.get(s as usize).copied().unwrap_or(0)
    }

    fn effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.out)
    }

    fn note(&mut self, line: String) {
        self.out.push(Effect::Note(line));
    }

    fn feed(&mut self, ev: Event) {
        for action in self.sched.on_event(ev) {
            self.apply(action);
        }
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Launch { task, attempt, host, speculative } => self.launch(task.0, attempt.0, host.0 as usize, speculative),
            Action::Kill { attempt, host, .. } => self.kill(attempt.0, host.0 as usize),
            Action::Commit { task, attempt, host } => self.commit(task.0, attempt.0, host.0 as usize),
            Action::Discard { attempt, .. } => {
                // A duplicate's output is never committed: drop what it holds.
                self.pending.remove(&attempt.0);
                self.set_outcome(attempt.0, Outcome::Superseded);
            }
            Action::Exclude { host } => self.exclude(host.0 as usize),
            Action::Fail { task, reason } => self.ending = Some(Ending::Failed(self.failure_message(task.0, &reason))),
            Action::Done => self.ending = Some(Ending::Done),
            Action::Cancelled => self.ending = Some(Ending::Interrupted),
        }
    }

    fn launch(&mut self, task: u32, attempt: u32, host: usize, speculative: bool) {
        self.attempts.insert(attempt, Attempt::new(task, host, self.now, speculative));
        self.facts.hosts[host].tasks += 1;
        let planned = &self.plan.tasks[task as usize];
        let launch = Launch { task, attempt, host, skip_bad: self.skip_mode(task) };
        if planned.stage == 1 {
            let buckets = self.needed_buckets(planned.partition);
            return self.out.push(Effect::Stage { launch, buckets });
        }
        match &planned.input {
            Some(src) if src.data.is_none() => self.out.push(Effect::Upload(launch)),
            // Nothing to upload (inline input, or none): start it now.
            inline => {
                let sent = inline.as_ref().map_or(0, |s| s.len);
                self.facts.hosts[host].bytes_in += sent;
                self.facts.input_sent += sent;
                self.out.push(Effect::Start(launch));
            }
        }
    }

    fn kill(&mut self, attempt: u32, host: usize) {
        if let Some(a) = self.attempts.get_mut(&attempt) {
            a.killed = true;
            // Killed as far as the run is concerned, as the scheduler sees
            // it, even if the run ends before the agent confirms.
            if a.outcome == Outcome::Running {
                a.end(self.now, Outcome::Killed);
            }
        }
        self.out.push(Effect::Kill { host, attempt });
    }

    fn exclude(&mut self, host: usize) {
        let name = self.facts.name(host).to_string();
        self.note(format!("host `{name}` is excluded for the rest of the run: {} task failures in a row", self.rules.exclude_after));
        self.facts.excluded.push(name);
    }

    fn check_stalled(&mut self) {
        if self.ending.is_none() && self.sched.is_stalled() {
            self.ending = Some(Ending::Failed(self.stalled_message()));
        }
    }

    fn set_outcome(&mut self, attempt: u32, outcome: Outcome) {
        if let Some(a) = self.attempts.get_mut(&attempt) {
            a.outcome = outcome;
        }
    }
}
