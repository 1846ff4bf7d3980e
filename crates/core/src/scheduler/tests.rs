//! Table tests of the scheduler's rules: events in, expected actions out.
//! (The seeded random simulation is in `sim_tests.rs`.)

use std::time::Duration;

use super::*;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` independent map tasks whose outputs the driver collects.
fn maps(n: usize) -> Vec<TaskSpec> {
    (0..n).map(|_| TaskSpec { needs_collect: true, ..Default::default() }).collect()
}

/// `m` map tasks and `r` reduce tasks that read every map output.
fn map_reduce(m: u32, r: u32) -> Vec<TaskSpec> {
    let mut tasks: Vec<TaskSpec> = (0..m).map(|_| TaskSpec::default()).collect();
    let deps: Vec<TaskId> = (0..m).map(TaskId).collect();
    tasks.extend((0..r).map(|_| TaskSpec { stage: 1, deps: deps.clone(), needs_collect: true, ..Default::default() }));
    tasks
}

fn sched(tasks: Vec<TaskSpec>) -> Scheduler {
    Scheduler::new(tasks, SchedulerConfig::default())
}

fn up(h: u32, slots: u32) -> Event {
    Event::HostUp { host: HostId(h), slots, now: s(0) }
}

fn lost(h: u32) -> Event {
    Event::HostLost { host: HostId(h), now: s(1) }
}

fn ok(t: u32, a: u32, now: u64) -> Event {
    Event::TaskSucceeded { task: TaskId(t), attempt: AttemptId(a), now: s(now) }
}

fn failed(t: u32, a: u32, kind: FailureKind) -> Event {
    Event::TaskFailed { task: TaskId(t), attempt: AttemptId(a), now: s(1), kind }
}

fn exit(t: u32, a: u32) -> Event {
    failed(t, a, FailureKind::Exit)
}

fn fetch_failed(t: u32, a: u32, from: u32) -> Event {
    failed(t, a, FailureKind::FetchFailed { from_task: TaskId(from) })
}

fn collected(t: u32) -> Event {
    Event::Collected { task: TaskId(t) }
}

fn tick(now: u64) -> Event {
    Event::Tick { now: s(now) }
}

fn launch(t: u32, a: u32, h: u32) -> Action {
    Action::Launch { task: TaskId(t), attempt: AttemptId(a), host: HostId(h), speculative: false }
}

fn copy(t: u32, a: u32, h: u32) -> Action {
    Action::Launch { task: TaskId(t), attempt: AttemptId(a), host: HostId(h), speculative: true }
}

fn commit(t: u32, a: u32, h: u32) -> Action {
    Action::Commit { task: TaskId(t), attempt: AttemptId(a), host: HostId(h) }
}

fn kill(t: u32, a: u32, h: u32) -> Action {
    Action::Kill { task: TaskId(t), attempt: AttemptId(a), host: HostId(h) }
}

fn discard(t: u32, a: u32, h: u32) -> Action {
    Action::Discard { task: TaskId(t), attempt: AttemptId(a), host: HostId(h) }
}

fn exclude(h: u32) -> Action {
    Action::Exclude { host: HostId(h) }
}

fn fail(t: u32, reason: &str) -> Action {
    Action::Fail { task: TaskId(t), reason: reason.into() }
}

/// Feeds events one by one and checks the actions after each; returns
/// the scheduler for further checks.
fn table(mut sched: Scheduler, steps: &[(Event, Vec<Action>)]) -> Scheduler {
    for (i, (event, want)) in steps.iter().enumerate() {
        let got = sched.on_event(event.clone());
        assert_eq!(&got, want, "step {i}: {event:?}");
        if let Err(e) = sched.check_bookkeeping() {
            panic!("step {i}: {event:?}: {e}");
        }
    }
    sched
}

#[test]
fn pipelining_lets_each_slot_hold_more_attempts_and_lowering_it_kills_nothing() {
    table(
        sched(maps(6)),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (Event::Pipeline { per_slot: 3 }, vec![launch(1, 1, 0), launch(2, 2, 0)]),
            (ok(0, 0, 1), vec![commit(0, 0, 0), launch(3, 3, 0)]),
            (Event::Pipeline { per_slot: 1 }, vec![]),
            (ok(1, 1, 1), vec![commit(1, 1, 0)]),
            (ok(2, 2, 1), vec![commit(2, 2, 0)]),
            (ok(3, 3, 1), vec![commit(3, 3, 0), launch(4, 4, 0)]),
            (Event::Pipeline { per_slot: 0 }, vec![]),
        ],
    );
}

#[test]
fn fills_every_slot_then_commits_and_finishes_when_collected() {
    table(
        sched(maps(3)),
        &[
            (up(0, 2), vec![launch(0, 0, 0), launch(1, 1, 0)]),
            (up(1, 1), vec![launch(2, 2, 1)]),
            (ok(0, 0, 1), vec![commit(0, 0, 0)]),
            (collected(0), vec![]),
            (ok(1, 1, 1), vec![commit(1, 1, 0)]),
            (ok(2, 2, 2), vec![commit(2, 2, 1)]),
            (collected(1), vec![]),
            (collected(2), vec![Action::Done]),
        ],
    );
}

#[test]
fn free_slots_are_filled_one_task_per_host_per_round() {
    // Both reduces become runnable at once: they spread over the hosts.
    table(
        sched(map_reduce(1, 2)),
        &[(up(0, 2), vec![launch(0, 0, 0)]), (up(1, 2), vec![]), (ok(0, 0, 1), vec![commit(0, 0, 0), launch(1, 1, 0), launch(2, 2, 1)])],
    );
}

#[test]
fn no_tasks_is_done_at_once() {
    table(sched(vec![]), &[(up(0, 1), vec![Action::Done])]);
}

#[test]
fn a_slot_takes_pinned_then_local_then_any_task() {
    let mut tasks = maps(3);
    tasks[1].preferred_hosts = vec![HostId(0)];
    tasks[2].pinned_host = Some(HostId(0));
    table(
        sched(tasks),
        &[
            (up(0, 1), vec![launch(2, 0, 0)]),
            (ok(2, 0, 1), vec![commit(2, 0, 0), launch(1, 1, 0)]),
            (ok(1, 1, 1), vec![commit(1, 1, 0), launch(0, 2, 0)]),
        ],
    );
}

#[test]
fn tasks_launch_in_the_given_order_and_go_where_their_input_is() {
    let mut tasks = maps(3);
    tasks[2].preferred_hosts = vec![HostId(1)];
    let sched = Scheduler::with_order(tasks, vec![TaskId(2), TaskId(1), TaskId(0)], SchedulerConfig::default());
    table(
        sched,
        &[(up(0, 1), vec![launch(1, 0, 0)]), (up(1, 1), vec![launch(2, 1, 1)]), (ok(1, 0, 1), vec![commit(1, 0, 0), launch(0, 2, 0)])],
    );
}

#[test]
fn a_task_waits_for_its_busy_data_host_until_the_locality_wait_ends() {
    let mut tasks = maps(2);
    tasks[0].preferred_hosts = vec![HostId(0)];
    tasks[1].preferred_hosts = vec![HostId(0)];
    table(sched(tasks), &[(up(0, 1), vec![launch(0, 0, 0)]), (up(1, 1), vec![]), (tick(2), vec![]), (tick(3), vec![launch(1, 1, 1)])]);
}

#[test]
fn a_task_whose_data_host_is_lost_runs_elsewhere_at_once() {
    let mut tasks = maps(2);
    tasks[0].preferred_hosts = vec![HostId(1)];
    tasks[1].preferred_hosts = vec![HostId(1)];
    table(
        sched(tasks),
        &[
            (up(1, 1), vec![launch(0, 0, 1)]),
            (up(0, 1), vec![]),
            (lost(1), vec![launch(0, 1, 0)]),
            (ok(0, 1, 2), vec![commit(0, 1, 0), launch(1, 2, 0)]),
        ],
    );
}

#[test]
fn pinned_tasks_wait_for_their_host_until_it_is_lost() {
    let mut tasks = maps(2);
    tasks[0].pinned_host = Some(HostId(1));
    tasks[1].pinned_host = Some(HostId(1));
    table(
        sched(tasks),
        &[
            (up(0, 1), vec![]),
            (up(1, 1), vec![launch(0, 0, 1)]),
            (lost(1), vec![launch(0, 1, 0)]),
            (ok(0, 1, 2), vec![commit(0, 1, 0), launch(1, 2, 0)]),
            (up(1, 1), vec![]),
        ],
    );
}

#[test]
fn a_pin_lapses_when_the_task_failed_on_its_host() {
    let mut tasks = maps(1);
    tasks[0].pinned_host = Some(HostId(0));
    table(sched(tasks), &[(up(0, 1), vec![launch(0, 0, 0)]), (up(1, 1), vec![]), (exit(0, 0), vec![launch(0, 1, 1)])]);
}

#[test]
fn a_retry_waits_for_a_host_where_the_task_has_not_failed() {
    let cfg = SchedulerConfig { max_attempts: 3, exclude_after: 10, ..Default::default() };
    table(
        Scheduler::new(maps(2), cfg),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![launch(1, 1, 1)]),
            // Host 0 is free, but the task failed there and host 1 has not seen it fail.
            (exit(0, 0), vec![]),
            (ok(1, 1, 2), vec![commit(1, 1, 1), launch(0, 2, 1)]),
            // It failed everywhere: any host will do.
            (exit(0, 2), vec![launch(0, 3, 0)]),
            (exit(0, 3), vec![fail(0, "task 0 failed 3 times (max_attempts = 3), on hosts 0 and 1.")]),
        ],
    );
}

#[test]
fn the_task_out_of_attempts_fails_the_run_and_everything_else_is_killed() {
    let cfg = SchedulerConfig { max_attempts: 1, ..Default::default() };
    let sched = table(
        Scheduler::new(maps(2), cfg),
        &[
            (up(0, 2), vec![launch(0, 0, 0), launch(1, 1, 0)]),
            (exit(0, 0), vec![kill(1, 1, 0), fail(0, "task 0 failed 1 time (max_attempts = 1), on host 0.")]),
            (ok(1, 1, 2), vec![discard(1, 1, 0)]),
            (up(1, 1), vec![]),
        ],
    );
    assert!(sched.is_finished());
    assert_eq!(sched.task_state(TaskId(0)), TaskState::Failed);
}

#[test]
fn the_failure_names_every_host_once_in_order() {
    let cfg = SchedulerConfig { max_attempts: 4, exclude_after: 0, ..Default::default() };
    table(
        Scheduler::new(maps(1), cfg),
        &[
            (up(2, 1), vec![launch(0, 0, 2)]),
            (up(0, 1), vec![]),
            (exit(0, 0), vec![launch(0, 1, 0)]),
            (exit(0, 1), vec![launch(0, 2, 0)]),
            (up(1, 1), vec![]),
            (exit(0, 2), vec![launch(0, 3, 1)]),
            (exit(0, 3), vec![fail(0, "task 0 failed 4 times (max_attempts = 4), on hosts 2, 0 and 1.")]),
        ],
    );
}

#[test]
fn a_host_with_a_failure_streak_is_excluded() {
    let cfg = SchedulerConfig { max_attempts: 10, exclude_after: 2, ..Default::default() };
    let sched = table(
        Scheduler::new(maps(3), cfg),
        &[
            (up(0, 2), vec![launch(0, 0, 0), launch(1, 1, 0)]),
            (up(1, 1), vec![launch(2, 2, 1)]),
            (exit(0, 0), vec![]),
            (exit(1, 1), vec![exclude(0)]),
            (ok(2, 2, 2), vec![commit(2, 2, 1), launch(0, 3, 1)]),
            (ok(0, 3, 3), vec![commit(0, 3, 1), launch(1, 4, 1)]),
            // Excluded for good, even after a reconnect.
            (lost(0), vec![]),
            (up(0, 2), vec![]),
        ],
    );
    assert!(!sched.is_stalled());
}

#[test]
fn host_trouble_is_charged_to_the_host_and_retried_elsewhere() {
    let cfg = SchedulerConfig { exclude_after: 1, ..Default::default() };
    table(
        Scheduler::new(maps(2), cfg),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![launch(1, 1, 1)]),
            (failed(0, 0, FailureKind::HostTrouble), vec![exclude(0)]),
            (ok(1, 1, 2), vec![commit(1, 1, 1), launch(0, 2, 1)]),
        ],
    );
}

#[test]
fn a_success_ends_the_streak() {
    let cfg = SchedulerConfig { max_attempts: 10, exclude_after: 2, ..Default::default() };
    table(
        Scheduler::new(maps(3), cfg),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (exit(0, 0), vec![launch(0, 1, 0)]),
            (up(1, 1), vec![launch(1, 2, 1)]),
            (ok(0, 1, 1), vec![commit(0, 1, 0), launch(2, 3, 0)]),
            (exit(2, 3), vec![]),
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
            (exit(0, 0), vec![launch(0, 1, 0)]),
            (exit(0, 1), vec![launch(0, 2, 0)]),
            (exit(0, 2), vec![fail(0, "task 0 failed 3 times (max_attempts = 3), on host 0.")]),
        ],
    );
}

#[test]
fn host_loss_is_not_charged() {
    let cfg = SchedulerConfig { max_attempts: 1, ..Default::default() };
    let sched = table(
        Scheduler::new(maps(1), cfg),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (lost(0), vec![]),
            (up(1, 1), vec![launch(0, 1, 1)]),
            (ok(0, 0, 2), vec![discard(0, 0, 0)]),
            (ok(0, 1, 3), vec![commit(0, 1, 1)]),
        ],
    );
    let history = sched.attempts(TaskId(0));
    let outcomes: Vec<(HostId, Outcome)> = history.iter().map(|r| (r.host, r.outcome)).collect();
    assert_eq!(outcomes, [(HostId(0), Outcome::Lost), (HostId(1), Outcome::Committed)]);
    assert_eq!((history[1].started, history[1].ended), (s(1), Some(s(3))));
    let p = sched.progress();
    assert_eq!((p.done, p.running, p.failed_attempts, p.lost_attempts), (1, 0, 0, 1));
}

#[test]
fn a_kill_the_agent_reports_is_not_charged() {
    let cfg = SchedulerConfig { max_attempts: 1, ..Default::default() };
    table(Scheduler::new(maps(1), cfg), &[(up(0, 1), vec![launch(0, 0, 0)]), (failed(0, 0, FailureKind::Killed), vec![launch(0, 1, 0)])]);
}

#[test]
fn a_lost_host_back_again_is_a_fresh_host() {
    let mut sched = table(sched(maps(1)), &[(up(0, 1), vec![launch(0, 0, 0)]), (lost(0), vec![])]);
    assert!(sched.is_stalled());
    sched = table(sched, &[(up(0, 1), vec![launch(0, 1, 0)]), (ok(0, 0, 2), vec![discard(0, 0, 0)])]);
    assert!(!sched.is_stalled());
}

#[test]
fn an_uncollected_output_on_a_lost_host_is_recomputed() {
    table(
        sched(maps(2)),
        &[
            (up(0, 2), vec![launch(0, 0, 0), launch(1, 1, 0)]),
            (ok(0, 0, 1), vec![commit(0, 0, 0)]),
            (ok(1, 1, 1), vec![commit(1, 1, 0)]),
            (collected(0), vec![]),
            (lost(0), vec![]),
            (up(1, 1), vec![launch(1, 2, 1)]),
            (ok(1, 2, 2), vec![commit(1, 2, 1)]),
            (collected(1), vec![Action::Done]),
        ],
    );
}

#[test]
fn a_fetch_failure_reruns_the_lost_map_without_charging_the_reduce() {
    let cfg = SchedulerConfig { max_attempts: 1, ..Default::default() };
    table(
        Scheduler::new(map_reduce(2, 1), cfg),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![launch(1, 1, 1)]),
            (ok(0, 0, 1), vec![commit(0, 0, 0)]),
            (ok(1, 1, 1), vec![commit(1, 1, 1), launch(2, 2, 0)]),
            (fetch_failed(2, 2, 1), vec![launch(1, 3, 0)]),
            (ok(1, 3, 3), vec![commit(1, 3, 0), launch(2, 4, 0)]),
            (ok(2, 4, 4), vec![commit(2, 4, 0)]),
            (collected(2), vec![Action::Done]),
        ],
    );
}

#[test]
fn map_outputs_lost_before_the_reduce_ran_are_recomputed() {
    table(
        sched(map_reduce(2, 1)),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (ok(0, 0, 1), vec![commit(0, 0, 0), launch(1, 1, 0)]),
            (lost(0), vec![]),
            (up(1, 1), vec![launch(0, 2, 1)]),
            (ok(0, 2, 2), vec![commit(0, 2, 1), launch(1, 3, 1)]),
            (ok(1, 3, 3), vec![commit(1, 3, 1), launch(2, 4, 1)]),
        ],
    );
}

#[test]
fn a_reduce_whose_input_vanished_while_it_ran_cannot_commit() {
    let mut tasks = map_reduce(1, 1);
    tasks[1].preferred_hosts = vec![HostId(1)];
    table(
        sched(tasks),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![]),
            (ok(0, 0, 1), vec![commit(0, 0, 0), launch(1, 1, 1)]),
            (lost(0), vec![]),
            // It may have read the output before the loss, but that instance
            // is gone: its result is dropped and it runs again on the new one.
            (ok(1, 1, 2), vec![discard(1, 1, 1), launch(0, 2, 1)]),
            (ok(0, 2, 3), vec![commit(0, 2, 1), launch(1, 3, 1)]),
            (ok(1, 3, 4), vec![commit(1, 3, 1)]),
            (collected(1), vec![Action::Done]),
        ],
    );
}

#[test]
fn a_stale_fetch_failure_does_not_throw_away_the_new_output() {
    let mut tasks = map_reduce(1, 1);
    tasks[1].preferred_hosts = vec![HostId(1)];
    let sched = table(
        sched(tasks),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![]),
            (ok(0, 0, 1), vec![commit(0, 0, 0), launch(1, 1, 1)]),
            (lost(0), vec![]),
            (up(2, 1), vec![launch(0, 2, 2)]),
            (ok(0, 2, 2), vec![commit(0, 2, 2)]),
            (fetch_failed(1, 1, 0), vec![launch(1, 3, 1)]),
        ],
    );
    assert_eq!(sched.task_state(TaskId(0)), TaskState::Done { attempt: AttemptId(2), host: HostId(2) });
}

#[test]
fn a_stale_reader_still_reports_a_current_output_lost() {
    let mut tasks = map_reduce(2, 1);
    tasks[2].preferred_hosts = vec![HostId(2)];
    table(
        sched(tasks),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![launch(1, 1, 1)]),
            (up(2, 1), vec![]),
            (ok(0, 0, 1), vec![commit(0, 0, 0)]),
            (ok(1, 1, 1), vec![commit(1, 1, 1), launch(2, 2, 2)]),
            (lost(0), vec![launch(0, 3, 1)]),
            // Map 1's output is still the one the reduce read: it is lost too.
            (fetch_failed(2, 2, 1), vec![launch(1, 4, 2)]),
        ],
    );
}

#[test]
fn a_reopened_reduce_reopens_the_lost_maps_it_needs() {
    table(
        sched(map_reduce(1, 1)),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (ok(0, 0, 1), vec![commit(0, 0, 0), launch(1, 1, 0)]),
            (ok(1, 1, 2), vec![commit(1, 1, 0)]),
            (lost(0), vec![]),
            (up(1, 1), vec![launch(0, 2, 1)]),
            (ok(0, 2, 3), vec![commit(0, 2, 1), launch(1, 3, 1)]),
        ],
    );
}

#[test]
fn an_output_nobody_needs_any_more_is_not_recomputed() {
    let tasks = vec![
        TaskSpec::default(),
        TaskSpec { stage: 1, deps: vec![TaskId(0)], needs_collect: true, preferred_hosts: vec![HostId(1)], ..Default::default() },
        TaskSpec { needs_collect: true, pinned_host: Some(HostId(1)), ..Default::default() },
    ];
    let sched = table(
        sched(tasks),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 2), vec![launch(2, 1, 1)]),
            (ok(0, 0, 1), vec![commit(0, 0, 0), launch(1, 2, 1)]),
            (ok(1, 2, 2), vec![commit(1, 2, 1)]),
            (collected(1), vec![]),
            (lost(0), vec![]),
            (ok(2, 1, 3), vec![commit(2, 1, 1)]),
            (collected(2), vec![Action::Done]),
        ],
    );
    assert_eq!(sched.task_state(TaskId(0)), TaskState::Done { attempt: AttemptId(0), host: HostId(0) });
}

#[test]
fn a_late_success_of_a_superseded_attempt_is_discarded_and_a_repeat_ignored() {
    table(
        sched(maps(1)),
        &[
            (up(0, 1), vec![launch(0, 0, 0)]),
            (up(1, 1), vec![]),
            (lost(0), vec![launch(0, 1, 1)]),
            (ok(0, 1, 2), vec![commit(0, 1, 1)]),
            (ok(0, 0, 3), vec![discard(0, 0, 0)]),
            // The committed attempt's report, twice: its output must stay.
            (ok(0, 1, 3), vec![]),
            (exit(0, 1), vec![]),
            (collected(0), vec![Action::Done]),
            (ok(0, 1, 4), vec![]),
            (ok(0, 0, 4), vec![discard(0, 0, 0)]),
        ],
    );
}

#[test]
fn speculation_copies_a_straggler_and_the_loser_is_killed() {
    let cfg = SchedulerConfig { speculate: true, ..Default::default() };
    let sched = table(
        Scheduler::new(maps(4), cfg),
        &[
            (up(0, 4), vec![launch(0, 0, 0), launch(1, 1, 0), launch(2, 2, 0), launch(3, 3, 0)]),
            (up(1, 1), vec![]),
            (ok(0, 0, 2), vec![commit(0, 0, 0)]),
            (ok(1, 1, 2), vec![commit(1, 1, 0)]),
            (tick(3), vec![]), // only half the stage is done
            (ok(2, 2, 3), vec![commit(2, 2, 0)]),
            (tick(3), vec![]), // 1.5 x the median of 2 s: not yet
            (tick(4), vec![copy(3, 4, 1)]),
            (tick(9), vec![]), // one copy is enough
            (ok(3, 4, 10), vec![commit(3, 4, 1), kill(3, 3, 0)]),
            (ok(3, 3, 11), vec![discard(3, 3, 0)]),
        ],
    );
    assert!(sched.attempts(TaskId(3))[1].speculative);
    assert_eq!(sched.attempts(TaskId(3))[0].outcome, Outcome::Killed);
}

#[test]
fn tiny_tasks_are_never_copied() {
    let cfg = SchedulerConfig { speculate: true, speculation_min_runtime: s(5), ..Default::default() };
    table(
        Scheduler::new(maps(4), cfg),
        &[
            (up(0, 4), vec![launch(0, 0, 0), launch(1, 1, 0), launch(2, 2, 0), launch(3, 3, 0)]),
            (up(1, 1), vec![]),
            (ok(0, 0, 0), vec![commit(0, 0, 0)]),
            (ok(1, 1, 0), vec![commit(1, 1, 0)]),
            (ok(2, 2, 0), vec![commit(2, 2, 0)]),
            (tick(5), vec![]),
            (tick(6), vec![copy(3, 4, 1)]),
        ],
    );
}

#[test]
fn without_speculation_stragglers_are_left_alone() {
    table(
        sched(maps(2)),
        &[
            (up(0, 2), vec![launch(0, 0, 0), launch(1, 1, 0)]),
            (up(1, 1), vec![]),
            (ok(0, 0, 1), vec![commit(0, 0, 0)]),
            (tick(100), vec![]),
        ],
    );
}

#[test]
fn cancel_kills_everything_and_later_outputs_are_discarded() {
    let sched = table(
        sched(maps(3)),
        &[
            (up(0, 2), vec![launch(0, 0, 0), launch(1, 1, 0)]),
            (Event::Cancel, vec![kill(0, 0, 0), kill(1, 1, 0), Action::Cancelled]),
            (ok(1, 1, 2), vec![discard(1, 1, 0)]),
            (up(1, 1), vec![]),
            (Event::Cancel, vec![]),
        ],
    );
    assert!(sched.is_finished() && !sched.is_stalled());
}

#[test]
fn restored_tasks_are_not_run_again() {
    let mut sched = sched(map_reduce(2, 1));
    sched.restore_done(TaskId(0));
    let sched = table(
        sched,
        &[
            (up(0, 2), vec![launch(1, 0, 0)]),
            (ok(1, 0, 1), vec![commit(1, 0, 0), launch(2, 1, 0)]),
            (ok(2, 1, 2), vec![commit(2, 1, 0)]),
            (collected(2), vec![Action::Done]),
        ],
    );
    assert_eq!(sched.task_state(TaskId(0)), TaskState::Restored);
    assert!(sched.attempts(TaskId(0)).is_empty());
}

#[test]
fn events_about_unknown_tasks_attempts_and_hosts_are_ignored() {
    table(
        sched(maps(2)),
        &[
            (ok(7, 7, 1), vec![]),
            (exit(7, 0), vec![]),
            (collected(9), vec![]),
            (lost(5), vec![]),
            (up(0, 1), vec![launch(0, 0, 0)]),
            (ok(1, 0, 1), vec![]), // attempt 0 belongs to task 0
            (fetch_failed(0, 0, 9), vec![launch(0, 1, 0)]),
        ],
    );
}

#[test]
fn progress_counts_what_happened() {
    let mut sched = sched(maps(3));
    sched.on_event(up(0, 2));
    sched.on_event(exit(0, 0));
    let p = sched.progress();
    assert_eq!(p, Progress { total: 3, done: 0, running: 2, pending: 1, failed_attempts: 1, lost_attempts: 0 });
    assert_eq!(sched.task_state(TaskId(1)), TaskState::Running { attempts: vec![AttemptId(1)] });
    assert_eq!(sched.task_state(TaskId(0)), TaskState::Running { attempts: vec![AttemptId(2)] });
    let (task, record) = sched.attempt(AttemptId(0)).unwrap();
    assert_eq!((task, record.outcome), (TaskId(0), Outcome::Failed(FailureKind::Exit)));
}

#[test]
fn a_task_pinned_only_to_its_host_retries_there_and_fails_the_run_when_that_host_is_lost() {
    let only_on_1 = TaskSpec { needs_collect: true, pinned_host: Some(HostId(1)), pinned_only: true, ..Default::default() };
    let mut s = table(
        sched(vec![only_on_1.clone()]),
        &[
            (up(0, 1), vec![]),
            (up(1, 1), vec![launch(0, 0, 1)]),
            // A failure there does not send it elsewhere: its data is there.
            (exit(0, 0), vec![launch(0, 1, 1)]),
        ],
    );
    let out = s.on_event(lost(1));
    assert_eq!(
        out,
        vec![Action::Fail {
            task: TaskId(0),
            reason: "it can only run on host 1, where its data lives, and that host is lost or excluded.".into()
        }]
    );
    assert_eq!(s.task_state(TaskId(0)), TaskState::Failed);
}

#[test]
fn a_host_whose_share_drops_to_zero_takes_no_new_task_until_it_grows_again() {
    let slots = |h: u32, n: u32| Event::Slots { host: HostId(h), slots: n };
    table(
        sched(maps(4)),
        &[
            (up(0, 2), vec![launch(0, 0, 0), launch(1, 1, 0)]),
            // Another application came: this one keeps what runs, starts nothing more.
            (slots(0, 0), vec![]),
            (ok(0, 0, 1), vec![commit(0, 0, 0)]),
            (collected(0), vec![]),
            // It went: room again, for one task.
            (slots(0, 2), vec![launch(2, 2, 0)]),
            (ok(1, 1, 2), vec![commit(1, 1, 0), launch(3, 3, 0)]),
        ],
    );
}
