//! A seeded random simulation of whole runs through the run book and its
//! scheduler together: a fake layer carries out the book's effects (some
//! at once, some a few steps later, as transfers do) and a fake cluster
//! reports at random: successes with inline, large or stored outputs and
//! shuffle buckets, exits, host trouble, SIGKILLs from outside, reports
//! from the wrong host and second end reports, kills that race with a
//! success, failed launches, fetches from lost hosts, host losses and
//! Ctrl-C. After every call it checks the book's invariants, and at the
//! end what the run left behind.
//!
//! Replay one seed: `SHOAL_BOOK_SEED=<n> cargo test -p shoal --lib
//! book_random_runs`; add `SHOAL_BOOK_TRACE=1` to print every call and
//! its effects.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shoal_core::scheduler::{SchedulerConfig, TaskState};
use shoal_core::sim::{Check, Paths, Simulation, Trace};
use shoal_core::sim_ensure as ensure;
use shoal_wire::{SkippedRecord, TaskReport};

use super::tests::{book, bucket, exit, ok_inline, ok_stored, plan, show, sigkill, Input};
use super::*;
use crate::driver::run::journal::DATA_MAX;

const SEEDS: u64 = 1500;
/// Steps with faults; after them nothing fails, so every run can end.
const CHAOS_STEPS: usize = 150;
/// A run that has not ended after this many steps is a failure.
const MAX_STEPS: usize = 5000;

/// An attempt started on a host, which will report.
#[derive(Clone, Copy, Debug)]
struct Running {
    task: u32,
    attempt: u32,
    host: usize,
    /// The driver sent a kill.
    killed: bool,
}

/// Work the fake layer finishes a few steps later.
#[derive(Debug)]
enum Work {
    Upload(Launch),
    Stage(Launch, Vec<Needed>),
    Fetch { task: u32, attempt: u32, host: usize },
    Write { task: u32, attempt: u32, size: u64 },
    Held(usize, TaskReport),
}

struct Sim {
    rng: ChaCha8Rng,
    book: RunBook<'static>,
    maps: usize,
    shuffle: bool,
    up: Vec<bool>,
    running: Vec<Running>,
    /// Attempts that reported their end, with their host.
    ended: Vec<(usize, u32)>,
    work: Vec<Work>,
    /// Journal lines per task.
    journaled: Vec<u32>,
    /// Ignored effects the current call may give.
    may_ignore: bool,
    now: u64,
    paths: Paths,
    trace: Trace<String>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let hosts = rng.gen_range(1..=3usize);
        let maps = rng.gen_range(1..=12usize);
        let reduces = if rng.gen_bool(0.4) { rng.gen_range(1..=3) } else { 0 };
        let inputs: Vec<Input> = (0..maps)
            .map(|_| match rng.gen_range(0..3) {
                0 => Input::None,
                1 => Input::Inline(rng.gen_range(1..100)),
                _ => Input::Stored { offset: rng.gen_range(0..1000), len: rng.gen_range(1..1000) },
            })
            .collect();
        let plan = plan(&inputs, reduces);
        let strict = rng.gen_bool(0.5);
        let config = SchedulerConfig {
            max_attempts: if strict { rng.gen_range(2..=5) } else { 10_000 },
            exclude_after: if strict { rng.gen_range(1..=4) } else { 10_000 },
            speculate: rng.gen_bool(0.3),
            ..SchedulerConfig::default()
        };
        let rules = Rules {
            skip_bad_records: if rng.gen_bool(0.3) { rng.gen_range(1..=20) } else { 0 },
            exclude_after: config.exclude_after,
            shuffle: reduces > 0,
            resident: rng.gen_bool(0.3),
        };
        let slots: Vec<u32> = (0..hosts).map(|_| rng.gen_range(1..=3)).collect();
        Sim {
            book: book(plan, rules, &slots, config),
            rng,
            maps,
            shuffle: reduces > 0,
            up: vec![true; hosts],
            running: vec![],
            ended: vec![],
            work: vec![],
            journaled: vec![0; plan.tasks.len()],
            may_ignore: false,
            now: 0,
            paths: Paths::default(),
            trace: Trace::new(16, "SHOAL_BOOK_TRACE", String::clone),
        }
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.now)
    }

    /// Carries out effects as the async layer would, then checks.
    fn carry_out(&mut self, call: &str, effects: Vec<Effect>) -> Check {
        self.effects(call, effects)?;
        self.check()
    }

    /// Carries out effects, and those they lead to, in order.
    fn effects(&mut self, call: &str, effects: Vec<Effect>) -> Check {
        let lines: Vec<String> = effects.iter().map(show).collect();
        self.trace.note(format!("{call}\n    -> {lines:?}"));
        for effect in effects {
            self.effect(effect)?;
        }
        Ok(())
    }

    fn effect(&mut self, effect: Effect) -> Check {
        match effect {
            Effect::Start(l) => self.started(l)?,
            Effect::Upload(l) => self.work.push(Work::Upload(l)),
            Effect::Stage { launch, buckets } => {
                ensure!(buckets.len() == self.maps, "reduce t{} staged {} buckets of {} maps", launch.task, buckets.len(), self.maps);
                self.work.push(Work::Stage(launch, buckets));
            }
            Effect::Kill { host, attempt } => {
                ensure!(
                    self.book.attempts.get(&attempt).is_some_and(|a| a.outcome == Outcome::Killed),
                    "a{attempt} killed but not so recorded"
                );
                if let Some(r) = self.running.iter_mut().find(|r| r.attempt == attempt && r.host == host) {
                    r.killed = true;
                }
            }
            Effect::Fetch { task, attempt, host, .. } => self.work.push(Work::Fetch { task, attempt, host }),
            Effect::Write { task, attempt, data, .. } => {
                ensure!(data.len() > DATA_MAX, "an output of {} bytes written, not kept", data.len());
                self.work.push(Work::Write { task, attempt, size: data.len() as u64 });
            }
            Effect::Journal(c) => return self.journal(c),
            Effect::HoldBack { host, report } => {
                self.paths.hit("held_back", 1);
                self.work.push(Work::Held(host, *report));
            }
            Effect::Ignored(i) => {
                ensure!(self.may_ignore, "ignored a report nobody forged: {i:?}");
                self.paths.hit("ignored", 1);
            }
            Effect::Note(_) => {}
        }
        Ok(())
    }

    fn started(&mut self, l: Launch) -> Check {
        ensure!(self.up[l.host], "a{} started on lost host h{}", l.attempt, l.host);
        self.paths.hit("skip_mode", u64::from(l.skip_bad.is_some()));
        // A kill may overtake an upload: the attempt then runs, killed.
        let killed = self.book.attempts.get(&l.attempt).is_some_and(|a| a.killed);
        self.running.push(Running { task: l.task, attempt: l.attempt, host: l.host, killed });
        Ok(())
    }

    /// Writes the journal line: each task exactly once, from the attempt
    /// the scheduler committed.
    fn journal(&mut self, c: Committed) -> Check {
        let t = c.task as usize;
        ensure!(self.journaled[t] == 0, "task {t} journaled twice (again by a{})", c.attempt);
        let state = self.book.sched().task_state(TaskId(c.task));
        ensure!(
            matches!(state, TaskState::Done { attempt, .. } if attempt.0 == c.attempt),
            "a{} journaled for task {t}, which is {state:?}",
            c.attempt
        );
        self.journaled[t] += 1;
        self.paths.hit("journaled", 1);
        let now = self.now();
        let more = self.book.on_journaled(c, now);
        self.effects("journaled", more)
    }

    /// What must hold after every call.
    fn check(&self) -> Check {
        ensure!(self.book.pending.is_empty(), "pending records left after the call: {:?}", self.book.pending.keys());
        let running = self.book.attempts.values().filter(|a| a.outcome == Outcome::Running).count();
        let sched = self.book.sched().progress().running;
        ensure!(self.book.is_over() || running == sched, "the book has {running} attempts running, the scheduler {sched}");
        for r in self.running.iter().filter(|r| !r.killed) {
            let outcome = self.book.attempts.get(&r.attempt).map(|a| a.outcome);
            ensure!(outcome == Some(Outcome::Running), "a{} runs on h{} but is {outcome:?}", r.attempt, r.host);
        }
        Ok(())
    }
}

// The random events.
impl Sim {
    fn step(&mut self, i: usize) -> Check {
        let chaos = i < CHAOS_STEPS;
        match self.rng.gen_range(0..100) {
            0 if chaos && self.rng.gen_bool(0.1) => self.cancel(),
            1..=3 if chaos => self.lose_host(),
            4..=7 if chaos => self.forged_report(),
            8..=30 if !self.work.is_empty() => self.finish_work(chaos),
            31..=40 => self.tick(),
            _ => self.report_one(chaos),
        }
    }

    fn tick(&mut self) -> Check {
        self.now += self.rng.gen_range(100..=2000);
        let effects = self.book.on_tick(self.now());
        self.carry_out("tick", effects)
    }

    fn cancel(&mut self) -> Check {
        let effects = self.book.on_cancel(self.now());
        self.carry_out("cancel", effects)
    }

    /// A host goes; one is always left.
    fn lose_host(&mut self) -> Check {
        let up: Vec<usize> = (0..self.up.len()).filter(|&h| self.up[h]).collect();
        if up.len() < 2 {
            return self.tick();
        }
        let h = up[self.rng.gen_range(0..up.len())];
        self.up[h] = false;
        self.running.retain(|r| r.host != h);
        let effects = self.book.on_host_lost(h, "gone".into(), self.now());
        self.carry_out(&format!("lost h{h}"), effects)
    }

    /// A report from the wrong host, or a second end report.
    fn forged_report(&mut self) -> Check {
        let (host, attempt) = if !self.ended.is_empty() && self.rng.gen_bool(0.5) {
            self.ended[self.rng.gen_range(0..self.ended.len())]
        } else if let Some(r) = self.running.first().copied().filter(|_| self.up.len() > 1) {
            ((r.host + 1) % self.up.len(), r.attempt)
        } else {
            (0, 1_000_000)
        };
        self.may_ignore = true;
        let effects = self.book.on_report(host, ok_inline(attempt, b"forged"), self.now());
        let ignored = effects.iter().any(|e| matches!(e, Effect::Ignored(_)));
        let checked = self.carry_out(&format!("forged a{attempt} from h{host}"), effects);
        self.may_ignore = false;
        ensure!(ignored, "a forged report for a{attempt} from h{host} was believed");
        checked
    }

    /// A running attempt on a live host ends.
    fn report_one(&mut self, chaos: bool) -> Check {
        if self.running.is_empty() {
            return self.tick();
        }
        let r = self.running.remove(self.rng.gen_range(0..self.running.len()));
        self.now += self.rng.gen_range(0..50);
        let report = if r.killed && self.rng.gen_bool(0.7) { sigkill(r.attempt) } else { self.random_report(r, chaos) };
        self.ended.push((r.host, r.attempt));
        let superseded = self.book.attempts.values().filter(|a| a.outcome == Outcome::Superseded).count();
        let effects = self.book.on_report(r.host, report, self.now());
        let checked = self.carry_out(&format!("report a{} t{} from h{}", r.attempt, r.task, r.host), effects);
        let now_superseded = self.book.attempts.values().filter(|a| a.outcome == Outcome::Superseded).count();
        self.paths.hit("superseded", (now_superseded - superseded) as u64);
        checked
    }

    fn random_report(&mut self, r: Running, chaos: bool) -> TaskReport {
        let wall_us = self.rng.gen_range(10..200_000);
        let fail = chaos && self.rng.gen_bool(0.25);
        let report = match self.rng.gen_range(0..10) {
            0 if fail => sigkill(r.attempt),
            1..=2 if fail => TaskReport { host_trouble: Some("disk full".into()), ..exit(r.attempt, 1) },
            _ if fail => exit(r.attempt, 1),
            0..=5 => ok_inline(r.attempt, &vec![b'o'; self.rng.gen_range(0..=DATA_MAX)]),
            6 => ok_inline(r.attempt, &vec![b'o'; DATA_MAX + 1 + self.rng.gen_range(0..100)]),
            _ => ok_stored(r.attempt, self.rng.gen_range(0..1 << 20)),
        };
        let is_map = (r.task as usize) < self.maps;
        let buckets = if self.shuffle && is_map && report.output.is_some() {
            (0..self.book.stage_size(1)).map(|b| bucket(b as u8, self.rng.gen_range(0..100))).collect()
        } else {
            vec![]
        };
        let skipped = if report.output.is_some() && self.rng.gen_bool(0.05) {
            vec![SkippedRecord { offset: 1, len: 1, head: "x".into() }]
        } else {
            vec![]
        };
        TaskReport { wall_us, buckets, skipped, ..report }
    }

    /// Transfers end: uploads start their attempt, stages start the reduce
    /// or find a map's host lost, fetches from lost hosts fail.
    fn finish_work(&mut self, chaos: bool) -> Check {
        let work = self.work.remove(self.rng.gen_range(0..self.work.len()));
        let now = self.now();
        let label = format!("{work:?}");
        let ev = match work {
            Work::Upload(l) if !self.up[l.host] => {
                Internal::LaunchFailed { task: l.task, attempt: l.attempt, why: "gone".into(), gone: true }
            }
            Work::Upload(l) if chaos && self.rng.gen_bool(0.1) => {
                Internal::LaunchFailed { task: l.task, attempt: l.attempt, why: "cannot read".into(), gone: false }
            }
            Work::Upload(l) => {
                self.started(l)?;
                Internal::Uploaded { host: l.host, sent: 10, skipped: 0 }
            }
            Work::Stage(l, _) if !self.up[l.host] => {
                Internal::LaunchFailed { task: l.task, attempt: l.attempt, why: "gone".into(), gone: true }
            }
            Work::Stage(l, buckets) => match buckets.iter().find(|n| !self.up[n.from]) {
                Some(n) => {
                    self.paths.hit("fetch_failures", 1);
                    Internal::FetchFailed { task: l.task, attempt: l.attempt, from_task: n.map }
                }
                None => {
                    self.started(l)?;
                    Internal::Shuffled { relayed: buckets.iter().map(|n| n.bucket.block.size).sum(), direct: 0 }
                }
            },
            Work::Fetch { host, .. } if !self.up[host] => Internal::CollectFailed { host, why: "gone".into() },
            Work::Fetch { task, attempt, .. } => {
                Internal::Collected { task, attempt, file: "/p".into(), size: 1, hash: "h".into(), data: None }
            }
            Work::Write { task, attempt, size } => {
                Internal::Collected { task, attempt, file: "/p".into(), size, hash: "h".into(), data: None }
            }
            Work::Held(host, _) if !self.up[host] => return Ok(()),
            Work::Held(host, report) => {
                let effects = self.book.on_held_report(host, report, now);
                return self.carry_out(&label, effects);
            }
        };
        let effects = self.book.on_internal(ev, now);
        self.carry_out(&label, effects)
    }
}

/// Runs one whole run to its end, then lets every late report and
/// transfer arrive, and checks what it left behind.
fn simulate(sim: &mut Sim) -> Check {
    let first = sim.book.start(Duration::ZERO);
    sim.carry_out("start", first)?;
    let mut steps = 0;
    while !sim.book.is_over() {
        ensure!(steps < MAX_STEPS, "the run did not end in {MAX_STEPS} steps; running {:?}, work {:?}", sim.running, sim.work);
        sim.step(steps)?;
        steps += 1;
    }
    while !sim.running.is_empty() || !sim.work.is_empty() {
        if sim.work.is_empty() || (!sim.running.is_empty() && sim.rng.gen_bool(0.5)) {
            sim.report_one(false)?;
        } else {
            sim.finish_work(false)?;
        }
    }
    ended_well(sim)
}

/// After the end: nothing runs, nothing is pending, and a run that is
/// done holds every task's output exactly once.
fn ended_well(sim: &mut Sim) -> Check {
    let running: Vec<u32> = sim.book.attempts.iter().filter(|(_, a)| a.outcome == Outcome::Running).map(|(id, _)| id).collect();
    ensure!(running.is_empty(), "attempts still running after the end: {running:?}");
    ensure!(sim.book.pending.is_empty(), "pending records after the end");
    match sim.book.ending() {
        Some(Ending::Done) => {
            sim.paths.hit("done", 1);
            for t in 0..sim.journaled.len() {
                let collect = !sim.shuffle || t >= sim.maps;
                ensure!(sim.journaled[t] == u32::from(collect), "task {t} journaled {} times", sim.journaled[t]);
                ensure!(sim.book.parts.get(&(t as u32)).is_some() == collect, "task {t}'s part is wrong");
            }
        }
        Some(Ending::Failed(_)) => sim.paths.hit("failed", 1),
        Some(Ending::Interrupted) => sim.paths.hit("interrupted", 1),
        None => return Err("no ending".into()),
    }
    Ok(())
}

#[test]
fn book_random_runs_keep_the_invariants_and_end() {
    let sim = Simulation {
        what: "the run book",
        seeds: SEEDS,
        seed_var: "SHOAL_BOOK_SEED",
        trace_var: "SHOAL_BOOK_TRACE",
        command: "cargo test -p shoal --lib book_random_runs",
        required: &["done", "failed", "interrupted", "journaled", "superseded", "fetch_failures", "held_back", "ignored", "skip_mode"],
    };
    sim.run(|seed| {
        let mut sim = Sim::new(seed);
        simulate(&mut sim).map_err(|e| format!("{e}\nlast calls:\n{}", sim.trace.dump()))?;
        Ok(sim.paths)
    });
}
