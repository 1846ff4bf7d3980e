//! Table tests of the scheduler's rules, and a seeded random simulation
//! that checks its invariants over thousands of schedules.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn maps(n: usize) -> Vec<TaskSpec> {
    (0..n).map(|_| TaskSpec { needs_collect: true, ..Default::default() }).collect()
}

fn launch(t: u32, a: u32, h: u32) -> Action {
    Action::Launch { task: TaskId(t), attempt: AttemptId(a), host: HostId(h), speculative: false }
}

fn up(h: u32, slots: u32) -> Event {
    Event::HostUp { host: HostId(h), slots, now: s(0) }
}

fn ok(t: u32, a: u32, now: u64) -> Event {
    Event::TaskSucceeded { task: TaskId(t), attempt: AttemptId(a), now: s(now) }
}

fn fail(t: u32, a: u32) -> Event {
    Event::TaskFailed { task: TaskId(t), attempt: AttemptId(a), now: s(1), kind: FailureKind::Exit }
}

/// Feeds events one by one and checks the actions after each.
fn table(mut sched: Scheduler, steps: &[(Event, Vec<Action>)]) {
    for (i, (ev, want)) in steps.iter().enumerate() {
        let got = sched.on_event(ev.clone());
        assert_eq!(&got, want, "step {i}: {ev:?}");
    }
}

#[test]
fn fills_every_slot_then_commits_and_finishes() {
    table(
        Scheduler::new(maps(3), SchedulerConfig::default()),
        &[
            (up(0, 2), vec![launch(0, 0, 0), launch(1, 1, 0)]),
            (ok(0, 0, 1), vec![Action::Commit { task: TaskId(0), attempt: AttemptId(0), host: HostId(0) }, launch(2, 2, 0)]),
            (Event::Collected { task: TaskId(0) }, vec![]),
            (ok(1, 1, 1), vec![Action::Commit { task: TaskId(1), attempt: AttemptId(1), host: HostId(0) }]),
            (ok(2, 2, 2), vec![Action::Commit { task: TaskId(2), attempt: AttemptId(2), host: HostId(0) }]),
            (Event::Collected { task: TaskId(1) }, vec![]),
            (Event::Collected { task: TaskId(2) }, vec![Action::Done]),
        ],
    );
}

#[test]
fn seeded_order_and_locality() {
    let mut tasks = maps(3);
    tasks[2].preferred_hosts = vec![HostId(1)];
    let sched = Scheduler::with_order(tasks, vec![TaskId(2), TaskId(1), TaskId(0)], SchedulerConfig::default());
    table(sched, &[(up(0, 1), vec![launch(1, 0, 0)]), (up(1, 1), vec![launch(2, 1, 1)])]);
}

#[test]
fn pinned_tasks_wait_for_their_host_until_it_is_lost() {
    let mut tasks = maps(2);
    tasks[0].pinned_host = Some(HostId(1));
    tasks[1].pinned_host = Some(HostId(1));
    table(
        Scheduler::new(tasks, SchedulerConfig::default()),
        &[(up(0, 1), vec![]), (up(1, 1), vec![launch(0, 0, 1)]), (Event::HostLost { host: HostId(1), now: s(1) }, vec![launch(0, 1, 0)])],
    );
}

#[test]
fn retry_prefers_another_host_and_fails_at_max_attempts() {
    let cfg = SchedulerConfig { max_attempts: 2, exclude_after: 10, ..Default::default() };
    table(
        Scheduler::new(maps(1), cfg),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![]),
            (fail(0, 0), vec![launch(0, 1, 1)]),
            (fail(0, 1), vec![Action::Fail { task: TaskId(0), reason: "task 0 failed 2 times (max_attempts = 2), on hosts 0, 1".into() }]),
        ],
    );
}

#[test]
fn host_with_a_failure_streak_is_excluded() {
    let cfg = SchedulerConfig { max_attempts: 10, exclude_after: 2, ..Default::default() };
    table(
        Scheduler::new(maps(2), cfg),
        &[
            (up(0, 2), vec![launch(0, 0, 0), launch(1, 1, 0)]),
            (up(1, 1), vec![]),
            (fail(0, 0), vec![launch(0, 2, 1)]),
            (fail(1, 1), vec![Action::Exclude { host: HostId(0) }]),
            (ok(0, 2, 2), vec![Action::Commit { task: TaskId(0), attempt: AttemptId(2), host: HostId(1) }, launch(1, 3, 1)]),
        ],
    );
}

#[test]
fn host_loss_is_not_charged() {
    let cfg = SchedulerConfig { max_attempts: 1, ..Default::default() };
    table(
        Scheduler::new(maps(1), cfg),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (Event::HostLost { host: HostId(0), now: s(1) }, vec![]),
            (up(1, 1), vec![launch(0, 1, 1)]),
            (ok(0, 0, 2), vec![Action::Discard { task: TaskId(0), attempt: AttemptId(0), host: HostId(0) }]),
            (ok(0, 1, 2), vec![Action::Commit { task: TaskId(0), attempt: AttemptId(1), host: HostId(1) }]),
        ],
    );
}

#[test]
fn uncollected_output_on_a_lost_host_is_recomputed() {
    table(
        Scheduler::new(maps(1), SchedulerConfig::default()),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![]),
            (ok(0, 0, 1), vec![Action::Commit { task: TaskId(0), attempt: AttemptId(0), host: HostId(0) }]),
            (Event::HostLost { host: HostId(0), now: s(2) }, vec![launch(0, 1, 1)]),
        ],
    );
}

fn map_reduce(maps_n: u32) -> Vec<TaskSpec> {
    let mut tasks: Vec<TaskSpec> = (0..maps_n).map(|_| TaskSpec::default()).collect();
    tasks.push(TaskSpec { stage: 1, deps: (0..maps_n).map(TaskId).collect(), needs_collect: true, ..Default::default() });
    tasks
}

#[test]
fn reduce_waits_for_maps_and_fetch_failure_reruns_only_the_lost_map() {
    table(
        Scheduler::new(map_reduce(2), SchedulerConfig { max_attempts: 1, ..Default::default() }),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![launch(1, 1, 1)]),
            (ok(0, 0, 1), vec![Action::Commit { task: TaskId(0), attempt: AttemptId(0), host: HostId(0) }]),
            (ok(1, 1, 1), vec![Action::Commit { task: TaskId(1), attempt: AttemptId(1), host: HostId(1) }, launch(2, 2, 0)]),
            (
                Event::TaskFailed {
                    task: TaskId(2),
                    attempt: AttemptId(2),
                    now: s(2),
                    kind: FailureKind::FetchFailed { from_task: TaskId(1) },
                },
                vec![launch(1, 3, 0)],
            ),
            (ok(1, 3, 3), vec![Action::Commit { task: TaskId(1), attempt: AttemptId(3), host: HostId(0) }, launch(2, 4, 0)]),
        ],
    );
}

#[test]
fn map_outputs_lost_before_the_reduce_ran_are_recomputed() {
    table(
        Scheduler::new(map_reduce(1), SchedulerConfig::default()),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (ok(0, 0, 1), vec![Action::Commit { task: TaskId(0), attempt: AttemptId(0), host: HostId(0) }, launch(1, 1, 0)]),
            (Event::HostLost { host: HostId(0), now: s(2) }, vec![]),
            (up(1, 1), vec![launch(0, 2, 1)]),
        ],
    );
}

#[test]
fn speculation_copies_a_straggler_and_the_loser_is_killed() {
    let cfg = SchedulerConfig { speculate: true, speculation_min_runtime: s(1), ..Default::default() };
    let commit = |t, a, h| Action::Commit { task: TaskId(t), attempt: AttemptId(a), host: HostId(h) };
    table(
        Scheduler::new(maps(4), cfg),
        &[
            (up(0, 4), vec![launch(0, 0, 0), launch(1, 1, 0), launch(2, 2, 0), launch(3, 3, 0)]),
            (up(1, 1), vec![]),
            (ok(0, 0, 2), vec![commit(0, 0, 0)]),
            (ok(1, 1, 2), vec![commit(1, 1, 0)]),
            (ok(2, 2, 2), vec![commit(2, 2, 0)]),
            (Event::Tick { now: s(3) }, vec![]),
            (
                Event::Tick { now: s(4) },
                vec![Action::Launch { task: TaskId(3), attempt: AttemptId(4), host: HostId(1), speculative: true }],
            ),
            (ok(3, 4, 5), vec![Action::Kill { task: TaskId(3), attempt: AttemptId(3), host: HostId(0) }, commit(3, 4, 1)]),
            (ok(3, 3, 6), vec![Action::Discard { task: TaskId(3), attempt: AttemptId(3), host: HostId(0) }]),
        ],
    );
}

#[test]
fn cancel_kills_everything() {
    table(
        Scheduler::new(maps(2), SchedulerConfig::default()),
        &[
            (up(0, 2), vec![launch(0, 0, 0), launch(1, 1, 0)]),
            (
                Event::Cancel,
                vec![
                    Action::Kill { task: TaskId(0), attempt: AttemptId(0), host: HostId(0) },
                    Action::Kill { task: TaskId(1), attempt: AttemptId(1), host: HostId(0) },
                    Action::Cancelled,
                ],
            ),
        ],
    );
}

// ---- seeded random simulation ----

struct Sim {
    rng: ChaCha8Rng,
    sched: Scheduler,
    slots: Vec<u32>,
    hosts_up: Vec<bool>,
    /// (task, attempt, host) of attempts the driver believes are running.
    running: Vec<(TaskId, AttemptId, HostId)>,
    committed: Vec<Option<AttemptId>>,
    commits: Vec<u32>,
    to_collect: Vec<TaskId>,
    collected: Vec<bool>,
    stages: Vec<u32>,
    deps: Vec<Vec<TaskId>>,
    now: u64,
    ended: Option<Action>,
    pending_events: Vec<Event>,
    /// Attempts of lost hosts that may still report late.
    zombies: Vec<(TaskId, AttemptId, HostId)>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_maps = rng.gen_range(1..=30u32);
        let with_reduce = rng.gen_bool(0.5);
        let mut tasks: Vec<TaskSpec> = (0..n_maps).map(|_| TaskSpec { needs_collect: !with_reduce, ..Default::default() }).collect();
        if with_reduce {
            for _ in 0..rng.gen_range(1..=5) {
                tasks.push(TaskSpec { stage: 1, deps: (0..n_maps).map(TaskId).collect(), needs_collect: true, ..Default::default() });
            }
        }
        let hosts = rng.gen_range(1..=4usize);
        let slots: Vec<u32> = (0..hosts).map(|_| rng.gen_range(1..=3)).collect();
        for t in tasks.iter_mut() {
            if rng.gen_bool(0.2) {
                t.preferred_hosts = vec![HostId(rng.gen_range(0..hosts as u32))];
            }
            if rng.gen_bool(0.1) {
                t.pinned_host = Some(HostId(rng.gen_range(0..hosts as u32)));
            }
        }
        let cfg = SchedulerConfig {
            max_attempts: 1000,
            exclude_after: 1000,
            speculate: rng.gen_bool(0.5),
            speculation_min_runtime: Duration::from_secs(1),
            ..Default::default()
        };
        let n = tasks.len();
        let stages = tasks.iter().map(|t| t.stage).collect();
        let deps = tasks.iter().map(|t| t.deps.clone()).collect();
        Sim {
            rng,
            sched: Scheduler::new(tasks, cfg),
            slots,
            hosts_up: vec![false; hosts],
            running: vec![],
            committed: vec![None; n],
            commits: vec![0; n],
            to_collect: vec![],
            collected: vec![false; n],
            stages,
            deps,
            now: 0,
            ended: None,
            pending_events: vec![],
            zombies: vec![],
        }
    }

    fn feed(&mut self, ev: Event) {
        let trace = std::env::var("SHOAL_SCHED_TRACE").is_ok();
        if trace {
            eprintln!("EVENT {ev:?}");
        }
        let actions = self.sched.on_event(ev);
        if trace {
            eprintln!("  -> {actions:?}");
        }
        self.resync();
        for a in actions {
            self.apply(a);
        }
        self.check_invariants();
    }

    fn apply(&mut self, a: Action) {
        match a {
            Action::Launch { task, attempt, host, .. } => {
                assert!(self.hosts_up[host.0 as usize], "launch on a lost host");
                assert!(
                    self.deps[task.0 as usize].iter().all(|d| self.committed[d.0 as usize].is_some()),
                    "launched task {} before its deps committed: {:?} {}",
                    task.0,
                    self.committed,
                    self.sched.debug_state()
                );
                self.running.push((task, attempt, host));
            }
            Action::Kill { attempt, .. } => {
                // The kill lands: the agent reports the attempt as killed.
                if let Some(i) = self.running.iter().position(|r| r.1 == attempt) {
                    let (task, attempt, _) = self.running.remove(i);
                    let now = Duration::from_secs(self.now);
                    self.pending_events.push(Event::TaskFailed { task, attempt, now, kind: FailureKind::Killed });
                }
            }
            Action::Commit { task, attempt, .. } => {
                assert!(self.committed[task.0 as usize].is_none(), "task {} committed twice at once", task.0);
                self.committed[task.0 as usize] = Some(attempt);
                self.commits[task.0 as usize] += 1;
                if self.stages[task.0 as usize] == *self.stages.iter().max().unwrap() {
                    self.to_collect.push(task);
                }
            }
            Action::Discard { .. } | Action::Exclude { .. } => {}
            Action::Fail { .. } | Action::Done | Action::Cancelled => self.ended = Some(a),
        }
    }

    fn check_invariants(&self) {
        for (h, &slots) in self.slots.iter().enumerate() {
            let n = self.running.iter().filter(|r| r.2 .0 as usize == h).count() as u32;
            assert!(n <= slots || !self.hosts_up[h], "host {h} runs {n} > {slots} slots");
        }
    }
}

impl Sim {
    fn now(&self) -> Duration {
        Duration::from_secs(self.now)
    }

    /// One random step; faults only in the first `chaos` steps so that
    /// every run can finish.
    fn step(&mut self, i: usize, chaos: usize) {
        if let Some(ev) = self.pending_events.pop() {
            return self.feed(ev);
        }
        let down: Vec<usize> = (0..self.hosts_up.len()).filter(|&h| !self.hosts_up[h]).collect();
        let roll = self.rng.gen_range(0..100);
        if !down.is_empty() && (roll < 10 || down.len() == self.hosts_up.len()) {
            let h = down[self.rng.gen_range(0..down.len())];
            self.hosts_up[h] = true;
            let (host, slots, now) = (HostId(h as u32), self.slots[h], self.now());
            return self.feed(Event::HostUp { host, slots, now });
        }
        match roll {
            10..=14 if i < chaos => self.lose_host(),
            15..=19 if i < chaos && !self.zombies.is_empty() => self.zombie_reports(),
            20..=29 if i < chaos => self.finish_one(false),
            30..=39 => self.tick(),
            40..=54 => self.collect_one(),
            _ => self.finish_one(true),
        }
    }

    fn lose_host(&mut self) {
        let up: Vec<usize> = (0..self.hosts_up.len()).filter(|&h| self.hosts_up[h]).collect();
        if up.is_empty() {
            return;
        }
        let h = up[self.rng.gen_range(0..up.len())];
        self.hosts_up[h] = false;
        let (gone, keep): (Vec<_>, Vec<_>) = self.running.drain(..).partition(|r| r.2 .0 as usize == h);
        self.running = keep;
        self.zombies.extend(gone);
        let now = self.now();
        self.feed(Event::HostLost { host: HostId(h as u32), now });
    }

    /// Outputs the scheduler decided to recompute are no longer committed.
    fn resync(&mut self) {
        for t in 0..self.committed.len() {
            if self.committed[t].is_some() && !matches!(self.sched.task_state(TaskId(t as u32)), TaskState::Done { .. }) {
                self.committed[t] = None;
                self.collected[t] = false;
                self.to_collect.retain(|x| x.0 as usize != t);
            }
        }
    }

    fn zombie_reports(&mut self) {
        let i = self.rng.gen_range(0..self.zombies.len());
        let (task, attempt, _) = self.zombies.remove(i);
        let now = self.now();
        let actions = self.sched.on_event(Event::TaskSucceeded { task, attempt, now });
        assert!(actions.iter().all(|a| !matches!(a, Action::Commit { .. })), "a late success of a lost attempt was committed: {actions:?}");
        for a in actions {
            self.apply(a);
        }
    }

    fn finish_one(&mut self, success: bool) {
        if self.running.is_empty() {
            return self.tick();
        }
        let i = self.rng.gen_range(0..self.running.len());
        let (task, attempt, _) = self.running.remove(i);
        let now = self.now();
        let missing = self.deps[task.0 as usize].iter().copied().find(|d| self.committed[d.0 as usize].is_none());
        let ev = match (success, missing) {
            (_, Some(from_task)) => Event::TaskFailed { task, attempt, now, kind: FailureKind::FetchFailed { from_task } },
            (true, None) => Event::TaskSucceeded { task, attempt, now },
            (false, None) => Event::TaskFailed { task, attempt, now, kind: FailureKind::Exit },
        };
        self.feed(ev);
    }

    fn tick(&mut self) {
        self.now += self.rng.gen_range(1..3);
        let now = self.now();
        self.feed(Event::Tick { now });
    }

    fn collect_one(&mut self) {
        if self.to_collect.is_empty() {
            return self.tick();
        }
        let i = self.rng.gen_range(0..self.to_collect.len());
        let task = self.to_collect.remove(i);
        self.collected[task.0 as usize] = true;
        self.feed(Event::Collected { task });
    }
}

fn simulate(seed: u64) {
    let mut sim = Sim::new(seed);
    let chaos = 300;
    for i in 0..20_000 {
        if sim.ended.is_some() {
            break;
        }
        sim.step(i, chaos);
    }
    if sim.ended.is_none() {
        let states: Vec<String> = (0..sim.committed.len()).map(|t| format!("{t}:{:?}", sim.sched.task_state(TaskId(t as u32)))).collect();
        panic!(
            "the run did not finish: {} hosts up {:?}, driver running {:?}, to_collect {:?}, pending events {:?}, states {}",
            sim.sched.debug_state(),
            sim.hosts_up,
            sim.running,
            sim.to_collect,
            sim.pending_events,
            states.join(" ")
        );
    }
    assert_eq!(sim.ended, Some(Action::Done));
    for t in 0..sim.committed.len() {
        assert!(sim.committed[t].is_some(), "task {t} never committed");
    }
    let last = *sim.stages.iter().max().unwrap();
    for t in (0..sim.committed.len()).filter(|&t| sim.stages[t] == last) {
        assert!(sim.collected[t], "final task {t} was not collected");
    }
}

#[test]
fn random_schedules_commit_every_task_exactly_once_and_finish() {
    let seeds: Vec<u64> = match std::env::var("SHOAL_SCHED_SEED") {
        Ok(s) => vec![s.parse().expect("SHOAL_SCHED_SEED must be a number")],
        Err(_) => (0..3000).collect(),
    };
    for seed in seeds {
        let run = std::panic::catch_unwind(|| simulate(seed));
        if let Err(e) = run {
            let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            panic!("seed {seed} failed: {msg}\nreplay with: SHOAL_SCHED_SEED={seed} cargo test -p shoal-core random_schedules");
        }
    }
}

#[test]
fn a_task_waits_for_its_busy_data_host_until_the_locality_wait_ends() {
    let mut tasks = maps(2);
    tasks[0].preferred_hosts = vec![HostId(0)];
    tasks[1].preferred_hosts = vec![HostId(0)];
    table(
        Scheduler::new(tasks, SchedulerConfig::default()),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![]),
            (Event::Tick { now: s(2) }, vec![]),
            (Event::Tick { now: s(3) }, vec![launch(1, 1, 1)]),
        ],
    );
}

#[test]
fn the_last_usable_host_is_never_excluded() {
    let cfg = SchedulerConfig { max_attempts: 3, exclude_after: 1, ..Default::default() };
    table(
        Scheduler::new(maps(1), cfg),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (fail(0, 0), vec![launch(0, 1, 0)]),
            (fail(0, 1), vec![launch(0, 2, 0)]),
            (
                fail(0, 2),
                vec![Action::Fail { task: TaskId(0), reason: "task 0 failed 3 times (max_attempts = 3), on hosts 0, 0, 0".into() }],
            ),
        ],
    );
}
