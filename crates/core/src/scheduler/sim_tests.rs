//! A seeded random simulation of whole runs: a fake driver and cluster
//! feed the scheduler random legal events (successes, failures, fetch
//! failures, lost hosts and their return, late reports of killed or lost
//! attempts, ticks, collections, cancels) and check after every step that
//! what the scheduler asked for made sense, judged from the driver's own
//! records rather than the scheduler's.
//!
//! Replay one seed: `SHOAL_SCHED_SEED=<n> cargo test -p shoal-core --lib
//! random_runs`; add `SHOAL_SCHED_TRACE=1` to print every event and the
//! actions it produced.

use std::collections::HashSet;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::sim::{Check, Paths, Simulation, Trace};
use crate::sim_ensure as ensure;

/// Seeds run by default; each is one whole run.
const SEEDS: u64 = 3000;
/// Steps with faults; after them hosts come back and nothing fails, so
/// that every run can end.
const CHAOS_STEPS: usize = 200;
/// A run that has not ended after this many steps is a failure.
const MAX_STEPS: usize = 5000;

/// An attempt the driver believes is running.
#[derive(Clone, Debug)]
struct Run {
    task: TaskId,
    attempt: AttemptId,
    host: HostId,
    /// The committed instance of each dep when it launched: what it reads.
    read: Vec<AttemptId>,
    speculative: bool,
}

struct Sim {
    rng: ChaCha8Rng,
    sched: Scheduler,
    max_attempts: u32,
    // The cluster.
    slots: Vec<u32>,
    /// Attempts per slot allowed now (`Pipeline`), and the most ever
    /// allowed (lowering it kills nothing, so that bounds what runs).
    per_slot: u32,
    per_slot_high: u32,
    up: Vec<bool>,
    excluded: Vec<bool>,
    // The job.
    deps: Vec<Vec<TaskId>>,
    needs_collect: Vec<bool>,
    // The driver's records.
    running: Vec<Run>,
    /// Killed or lost attempts that may still report.
    zombies: Vec<Run>,
    /// The running attempt whose report is being fed.
    reporting: Option<Run>,
    /// The current committed instance of each task, and its host.
    committed: Vec<Option<(AttemptId, HostId)>>,
    collected: Vec<bool>,
    /// Instances whose output is gone (host lost, or unfetchable).
    gone: HashSet<AttemptId>,
    launched: HashSet<AttemptId>,
    ever_committed: HashSet<AttemptId>,
    paths: Paths,
    now: u64,
    ended: Option<Action>,
    /// The last events and their actions, for the failure message.
    trace: Trace<(Event, Vec<Action>)>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let hosts = rng.gen_range(1..=4u32);
        let tasks = random_job(&mut rng, hosts);
        let cfg = random_config(&mut rng);
        let n = tasks.len();
        Sim {
            max_attempts: cfg.max_attempts,
            slots: (0..hosts).map(|_| rng.gen_range(1..=3)).collect(),
            up: vec![false; hosts as usize],
            excluded: vec![false; hosts as usize],
            deps: tasks.iter().map(|t| t.deps.clone()).collect(),
            needs_collect: tasks.iter().map(|t| t.needs_collect).collect(),
            sched: Scheduler::new(tasks, cfg),
            rng,
            running: vec![],
            zombies: vec![],
            reporting: None,
            committed: vec![None; n],
            collected: vec![false; n],
            gone: HashSet::new(),
            launched: HashSet::new(),
            ever_committed: HashSet::new(),
            paths: Paths::default(),
            now: 0,
            per_slot: 1,
            per_slot_high: 1,
            ended: None,
            trace: Trace::new(12, "SHOAL_SCHED_TRACE", |(e, a)| format!("{e:?}\n    -> {a:?}")),
        }
    }

    fn now(&self) -> Duration {
        Duration::from_secs(self.now)
    }

    /// Feeds one event and checks every action it produced.
    fn feed(&mut self, event: Event) -> Check {
        let actions = self.sched.on_event(event.clone());
        self.trace.note((event.clone(), actions.clone()));
        for action in actions {
            self.apply(&event, action)?;
        }
        self.check_state()
    }
}

fn random_job(rng: &mut ChaCha8Rng, hosts: u32) -> Vec<TaskSpec> {
    let maps = rng.gen_range(1..=30u32);
    let reduces = if rng.gen_bool(0.5) { rng.gen_range(1..=5) } else { 0 };
    let mut tasks: Vec<TaskSpec> =
        (0..maps).map(|_| TaskSpec { needs_collect: reduces == 0 || rng.gen_bool(0.2), ..Default::default() }).collect();
    let deps: Vec<TaskId> = (0..maps).map(TaskId).collect();
    tasks.extend((0..reduces).map(|_| TaskSpec { stage: 1, deps: deps.clone(), needs_collect: true, ..Default::default() }));
    for t in &mut tasks {
        if rng.gen_bool(0.2) {
            t.preferred_hosts = vec![HostId(rng.gen_range(0..hosts))];
        }
        if rng.gen_bool(0.15) {
            t.pinned_host = Some(HostId(rng.gen_range(0..hosts)));
        }
    }
    tasks
}

/// Half the runs may fail (few attempts, quick exclusion), half cannot.
fn random_config(rng: &mut ChaCha8Rng) -> SchedulerConfig {
    let strict = rng.gen_bool(0.5);
    SchedulerConfig {
        max_attempts: if strict { rng.gen_range(2..=5) } else { 10_000 },
        exclude_after: if strict { rng.gen_range(1..=4) } else { 10_000 },
        speculate: rng.gen_bool(0.5),
        speculation_min_runtime: Duration::from_secs(1),
        ..Default::default()
    }
}

// Checking the actions against the driver's records.
impl Sim {
    fn apply(&mut self, event: &Event, action: Action) -> Check {
        ensure!(self.ended.is_none() || matches!(action, Action::Discard { .. }), "{action:?} after the run ended");
        match action {
            Action::Launch { task, attempt, host, speculative } => self.launched(task, attempt, host, speculative),
            Action::Kill { task, attempt, host } => self.killed(task, attempt, host),
            Action::Commit { task, attempt, host } => self.committed(event, task, attempt, host),
            Action::Discard { task, attempt, .. } => {
                let reported = matches!(event, Event::TaskSucceeded { attempt: a, .. } if *a == attempt);
                ensure!(reported, "discard of attempt {} without its success report", attempt.0);
                ensure!(!self.ever_committed.contains(&attempt), "the committed output of task {} was discarded", task.0);
                self.paths.hit("stale_discards", u64::from(self.reporting.is_some()));
                Ok(())
            }
            Action::Exclude { host } => {
                ensure!(!self.excluded[host.0 as usize], "host {} excluded twice", host.0);
                self.excluded[host.0 as usize] = true;
                self.paths.hit("exclusions", 1);
                Ok(())
            }
            Action::Fail { task, .. } => self.failed_run(task, action),
            Action::Done => self.done(),
            Action::Cancelled => {
                ensure!(self.running.is_empty(), "cancelled with attempts still running: {:?}", self.running);
                self.paths.hit("cancelled", 1);
                self.ended = Some(action);
                Ok(())
            }
        }
    }

    fn launched(&mut self, task: TaskId, attempt: AttemptId, host: HostId, speculative: bool) -> Check {
        let h = host.0 as usize;
        ensure!(self.up[h] && !self.excluded[h], "launch on host {h}, which is lost or excluded");
        ensure!(self.launched.insert(attempt), "attempt id {} reused", attempt.0);
        let mut read = vec![];
        for d in &self.deps[task.0 as usize] {
            let instance = self.committed[d.0 as usize].filter(|c| !self.gone.contains(&c.0));
            ensure!(instance.is_some(), "task {} launched before the output of task {} was there", task.0, d.0);
            read.extend(instance.map(|c| c.0));
        }
        let copies: Vec<HostId> = self.running.iter().filter(|r| r.task == task).map(|r| r.host).collect();
        if speculative {
            ensure!(copies.len() == 1 && copies[0] != host, "speculative copy of task {} next to {copies:?}", task.0);
        } else {
            ensure!(copies.is_empty(), "task {} launched again while running on {copies:?}", task.0);
        }
        self.running.push(Run { task, attempt, host, read, speculative });
        let on_host = self.running.iter().filter(|r| r.host == host).count() as u32;
        let room = self.slots[h] * self.per_slot;
        ensure!(on_host <= room, "launch makes {on_host} attempts on host {h}, which has room for {room}");
        Ok(())
    }

    fn killed(&mut self, task: TaskId, attempt: AttemptId, host: HostId) -> Check {
        let i = self.running.iter().position(|r| r.attempt == attempt);
        ensure!(i.is_some(), "kill of attempt {}, which is not running", attempt.0);
        let run = self.running.remove(i.unwrap_or_default());
        ensure!(run.task == task && run.host == host, "kill names the wrong task or host: {run:?}");
        // The kill may race with the end: the attempt can still report.
        self.zombies.push(run);
        Ok(())
    }

    fn committed(&mut self, event: &Event, task: TaskId, attempt: AttemptId, host: HostId) -> Check {
        let reported = matches!(event, Event::TaskSucceeded { attempt: a, .. } if *a == attempt);
        ensure!(reported, "commit of attempt {} without its success report", attempt.0);
        let run = self.reporting.clone().filter(|r| r.attempt == attempt);
        ensure!(run.is_some(), "commit of attempt {}, which was not running (killed or lost)", attempt.0);
        ensure!(run.as_ref().is_some_and(|r| r.host == host), "commit of attempt {} on the wrong host", attempt.0);
        let t = task.0 as usize;
        if let Some((old, _)) = self.committed[t] {
            ensure!(self.gone.contains(&old), "task {t} committed again while its output {} is still there", old.0);
            self.paths.hit("recommits", 1);
        }
        let run = run.expect("checked above");
        self.paths.hit("speculative_commits", u64::from(run.speculative));
        // Now and then the agent's report arrives twice.
        if self.rng.gen_bool(0.1) {
            self.zombies.push(run.clone());
        }
        let read = run.read;
        for (d, seen) in self.deps[t].iter().zip(&read) {
            let current = self.committed[d.0 as usize].map(|c| c.0);
            ensure!(current == Some(*seen) && !self.gone.contains(seen), "task {t} committed from a lost output of task {}", d.0);
        }
        self.committed[t] = Some((attempt, host));
        self.ever_committed.insert(attempt);
        self.collected[t] = false;
        Ok(())
    }

    fn failed_run(&mut self, task: TaskId, action: Action) -> Check {
        let charged = |r: &&AttemptRecord| matches!(r.outcome, Outcome::Failed(FailureKind::Exit | FailureKind::HostTrouble));
        let n = self.sched.attempts(task).iter().filter(charged).count() as u32;
        ensure!(n >= self.max_attempts, "task {} failed the run after {n} failures", task.0);
        ensure!(self.running.is_empty(), "failed with attempts still running: {:?}", self.running);
        self.paths.hit("failed", 1);
        self.ended = Some(action);
        Ok(())
    }

    fn done(&mut self) -> Check {
        for t in 0..self.committed.len() {
            ensure!(self.committed[t].is_some(), "done, but task {t} never committed");
            ensure!(!self.needs_collect[t] || self.collected[t], "done, but the output of task {t} was not collected");
        }
        ensure!(self.running.is_empty(), "done with attempts still running: {:?}", self.running);
        self.paths.hit("done", 1);
        self.ended = Some(Action::Done);
        Ok(())
    }

    /// The scheduler's view agrees with the driver's.
    fn check_state(&self) -> Check {
        self.sched.check_bookkeeping()?;
        for (h, &slots) in self.slots.iter().enumerate() {
            let n = self.running.iter().filter(|r| r.host.0 as usize == h).count() as u32;
            let room = slots * self.per_slot_high;
            ensure!(n <= room, "host {h} runs {n} attempts in {slots} slots of {} attempts", self.per_slot_high);
        }
        ensure!(self.sched.progress().running == self.running.len(), "the scheduler and the driver disagree on what runs");
        for r in &self.running {
            let record = self.sched.attempt(r.attempt).map(|(_, rec)| rec.outcome);
            ensure!(record == Some(Outcome::Running), "attempt {} runs for the driver but is {record:?}", r.attempt.0);
        }
        Ok(())
    }
}

// The random events.
impl Sim {
    fn step(&mut self, i: usize) -> Check {
        let chaos = i < CHAOS_STEPS;
        let down: Vec<usize> = (0..self.up.len()).filter(|&h| !self.up[h]).collect();
        let roll = self.rng.gen_range(0..100);
        if !down.is_empty() && (!chaos || roll < 8 || down.len() == self.up.len()) {
            let h = down[self.rng.gen_range(0..down.len())];
            return self.host_up(h);
        }
        match roll {
            0..=1 if chaos && self.rng.gen_bool(0.05) => self.feed(Event::Cancel),
            2..=3 if chaos => self.pipeline(),
            8..=11 if chaos => self.lose_host(),
            12..=21 if chaos => self.fail_one(),
            22..=29 if !self.zombies.is_empty() => self.zombie_reports(),
            30..=44 => self.tick(),
            45..=59 => self.collect_one(),
            _ => self.finish_one(chaos),
        }
    }

    fn pipeline(&mut self) -> Check {
        self.per_slot = self.rng.gen_range(1..=3);
        self.per_slot_high = self.per_slot_high.max(self.per_slot);
        self.feed(Event::Pipeline { per_slot: self.per_slot })
    }

    fn host_up(&mut self, h: usize) -> Check {
        self.up[h] = true;
        let (host, slots, now) = (HostId(h as u32), self.slots[h], self.now());
        self.feed(Event::HostUp { host, slots, now })
    }

    fn lose_host(&mut self) -> Check {
        let up: Vec<usize> = (0..self.up.len()).filter(|&h| self.up[h]).collect();
        if up.is_empty() {
            return self.tick();
        }
        let h = up[self.rng.gen_range(0..up.len())];
        self.up[h] = false;
        let (gone, kept): (Vec<Run>, Vec<Run>) = self.running.drain(..).partition(|r| r.host.0 as usize == h);
        self.running = kept;
        self.zombies.extend(gone);
        for c in self.committed.iter().flatten() {
            if c.1 .0 as usize == h {
                self.gone.insert(c.0);
            }
        }
        let now = self.now();
        self.feed(Event::HostLost { host: HostId(h as u32), now })
    }

    /// A running attempt fails by itself, or (rarely) cannot fetch an input
    /// that looked fine.
    fn fail_one(&mut self) -> Check {
        if self.running.is_empty() {
            return self.tick();
        }
        let run = self.running.remove(self.rng.gen_range(0..self.running.len()));
        let kind = match self.rng.gen_range(0..20) {
            0..=11 => FailureKind::Exit,
            12..=15 => FailureKind::HostTrouble,
            16..=17 => FailureKind::Killed,
            _ if run.read.is_empty() => FailureKind::Exit,
            _ => {
                let i = self.rng.gen_range(0..run.read.len());
                self.gone.insert(run.read[i]);
                self.paths.hit("fetch_failures", 1);
                FailureKind::FetchFailed { from_task: self.deps[run.task.0 as usize][i] }
            }
        };
        let now = self.now();
        self.feed(Event::TaskFailed { task: run.task, attempt: run.attempt, now, kind })
    }

    /// A running attempt ends well; one that read an output since lost may
    /// fail to fetch it, or may have fetched it in time and succeed.
    fn finish_one(&mut self, chaos: bool) -> Check {
        if self.running.is_empty() {
            return self.tick();
        }
        let run = self.running.remove(self.rng.gen_range(0..self.running.len()));
        let lost_input = run.read.iter().position(|a| self.gone.contains(a));
        let now = self.now();
        let (task, attempt) = (run.task, run.attempt);
        let event = match lost_input {
            Some(i) if !chaos || self.rng.gen_bool(0.5) => {
                self.paths.hit("fetch_failures", 1);
                Event::TaskFailed { task, attempt, now, kind: FailureKind::FetchFailed { from_task: self.deps[task.0 as usize][i] } }
            }
            _ => Event::TaskSucceeded { task, attempt, now },
        };
        self.reporting = Some(run);
        let fed = self.feed(event);
        self.reporting = None;
        fed
    }

    /// A killed or lost attempt reports late; nothing it says may count.
    fn zombie_reports(&mut self) -> Check {
        let run = self.zombies.remove(self.rng.gen_range(0..self.zombies.len()));
        let now = self.now();
        let (task, attempt) = (run.task, run.attempt);
        let event = if self.rng.gen_bool(0.5) {
            Event::TaskSucceeded { task, attempt, now }
        } else {
            Event::TaskFailed { task, attempt, now, kind: FailureKind::Killed }
        };
        self.feed(event)
    }

    fn tick(&mut self) -> Check {
        self.now += self.rng.gen_range(1..=2);
        let now = self.now();
        self.feed(Event::Tick { now })
    }

    fn collect_one(&mut self) -> Check {
        let ready: Vec<usize> = (0..self.committed.len())
            .filter(|&t| self.needs_collect[t] && !self.collected[t])
            .filter(|&t| self.committed[t].is_some_and(|c| !self.gone.contains(&c.0)))
            .collect();
        if ready.is_empty() {
            return self.tick();
        }
        let t = ready[self.rng.gen_range(0..ready.len())];
        self.collected[t] = true;
        self.feed(Event::Collected { task: TaskId(t as u32) })
    }
}

/// Runs one whole run to its end, then lets every late report arrive.
fn simulate(sim: &mut Sim) -> Check {
    for i in 0..MAX_STEPS {
        if sim.ended.is_some() {
            while !sim.zombies.is_empty() {
                sim.zombie_reports()?;
            }
            return Ok(());
        }
        sim.step(i)?;
    }
    Err(format!("the run did not end in {MAX_STEPS} steps; the driver sees running {:?}", sim.running))
}

#[test]
fn random_runs_keep_the_invariants_and_end() {
    let sim = Simulation {
        what: "the scheduler",
        seeds: SEEDS,
        seed_var: "SHOAL_SCHED_SEED",
        trace_var: "SHOAL_SCHED_TRACE",
        command: "cargo test -p shoal-core --lib random_runs",
        required: &["done", "failed", "cancelled", "exclusions", "fetch_failures", "stale_discards", "recommits", "speculative_commits"],
    };
    sim.run(|seed| {
        let mut sim = Sim::new(seed);
        simulate(&mut sim).map_err(|e| format!("{e}\nlast events:\n{}", sim.trace.dump()))?;
        Ok(sim.paths)
    });
}
