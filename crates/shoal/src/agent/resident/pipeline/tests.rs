//! Table tests of the resident executors' rules: events in, expected
//! decisions out. Attempts are numbers; executor N runs in group 100 + N
//! with a stdin pipe of 1000 bytes; a made attempt's frame is 100 bytes.

use super::*;

const A: Kind = [1; 32];
const RUN: &str = "r1";
const PIPE: usize = 1000;
const FRAME: usize = 100;

#[derive(Debug, Clone)]
struct T {
    attempt: u32,
    slots: u32,
    timeout_ms: Option<u64>,
    frame: usize,
}

/// The host's slots only count when a kind is made: decisions are
/// compared without them.
impl PartialEq for T {
    fn eq(&self, other: &T) -> bool {
        (self.attempt, self.timeout_ms, self.frame) == (other.attempt, other.timeout_ms, other.frame)
    }
}

impl Job for T {
    fn attempt(&self) -> u32 {
        self.attempt
    }
    fn run(&self) -> &str {
        RUN
    }
    fn slots(&self) -> u32 {
        self.slots
    }
    fn timeout_ms(&self) -> Option<u64> {
        self.timeout_ms
    }
    fn frame(&self) -> usize {
        self.frame
    }
}

type P = Pipeline<T, ()>;
type D = Decision<T, ()>;
type E = Event<T>;

/// An attempt as queued, on a host of one slot.
fn t(a: u32) -> T {
    T { attempt: a, slots: 1, timeout_ms: None, frame: 0 }
}

/// The same attempt once made (its frame known).
fn made(a: u32) -> T {
    T { frame: FRAME, ..t(a) }
}

fn ts(attempts: &[u32]) -> Vec<T> {
    attempts.iter().map(|&a| t(a)).collect()
}

fn mades(attempts: &[u32]) -> Vec<T> {
    attempts.iter().map(|&a| made(a)).collect()
}

fn queued(a: u32) -> E {
    Event::Queued { kind: A, job: t(a) }
}

/// Queued on a host of `slots` slots.
fn queued_on(slots: u32, a: u32) -> E {
    Event::Queued { kind: A, job: T { slots, ..t(a) } }
}

fn spawned(x: ExecId) -> E {
    Event::Spawned { exec: x, group: group(x), pipe_bytes: PIPE }
}

fn ready(x: ExecId) -> E {
    Event::Ready { exec: x }
}

/// Every lent attempt made and written.
fn written(x: ExecId, sent: &[u32]) -> E {
    Event::Written { exec: x, sent: mades(sent), back: vec![] }
}

fn answered(x: ExecId, a: u32) -> E {
    Event::Answered { exec: x, attempt: a }
}

fn crashed(x: ExecId) -> E {
    Event::Exited { exec: x, timed_out: false, clean: false, unsent: vec![] }
}

fn gone(x: ExecId) -> E {
    Event::Gone { exec: x }
}

fn kill(a: u32) -> E {
    Event::Kill { attempt: a }
}

fn group(x: ExecId) -> Group {
    100 + x as Group
}

fn start(x: ExecId) -> D {
    Decision::Start { kind: A, exec: x }
}

fn stop(x: ExecId) -> D {
    Decision::Stop { group: group(x) }
}

/// Lent to `x`, whose pipe holds `in_pipe` made attempts.
fn write(x: ExecId, attempts: &[u32], in_pipe: usize, check_alive: bool) -> D {
    let room = Room { jobs: in_pipe, unanswered: in_pipe * FRAME, capacity: PIPE };
    Decision::Write { exec: x, jobs: ts(attempts), room, check_alive }
}

fn read(x: ExecId) -> D {
    Decision::Read { exec: x, timeout_ms: None }
}

fn idle(x: ExecId) -> D {
    Decision::Idle { exec: x, waker: () }
}

fn done(x: ExecId, a: u32) -> D {
    Decision::Done { exec: x, job: made(a) }
}

fn fail(x: ExecId, a: u32, cause: Cause) -> D {
    Decision::Fail { exec: x, job: made(a), cause }
}

fn killed(a: u32) -> D {
    Decision::Killed { attempt: a }
}

/// Feeds events one by one and checks the decisions after each; returns
/// the machine for further checks.
fn table(mut p: P, steps: Vec<(E, Vec<D>)>) -> P {
    for (i, (event, want)) in steps.into_iter().enumerate() {
        let shown = format!("{event:?}");
        let got = p.on_event(event);
        assert_eq!(got, want, "step {i}: {shown}");
        if let Err(e) = p.check_bookkeeping() {
            panic!("step {i}: {shown}: {e}");
        }
    }
    p
}

/// Executor 0 started for `attempts` (one slot) with all of them written.
fn running(attempts: &[u32]) -> P {
    let mut steps = vec![(queued(attempts[0]), vec![start(0)])];
    steps.extend(attempts[1..].iter().map(|&a| (queued(a), vec![])));
    steps.extend([(spawned(0), vec![]), (ready(0), vec![write(0, attempts, 0, false)]), (written(0, attempts), vec![read(0)])]);
    table(P::default(), steps)
}

#[test]
fn a_kind_has_at_most_the_hosts_slots_of_executors() {
    let p = table(P::default(), vec![(queued_on(2, 1), vec![start(0)]), (queued_on(2, 2), vec![start(1)]), (queued_on(2, 3), vec![])]);
    assert_eq!(p.queue(&A), [1, 2, 3]);
    // A host that says it has no slots still runs one executor.
    table(P::default(), vec![(queued_on(0, 1), vec![start(0)]), (queued_on(0, 2), vec![])]);
}

#[test]
fn a_task_queued_while_an_executor_idles_wakes_it_instead_of_starting_another() {
    table(
        P::default(),
        vec![
            (queued_on(2, 1), vec![start(0)]),
            (spawned(0), vec![]),
            (ready(0), vec![write(0, &[1], 0, false)]),
            (written(0, &[1]), vec![read(0)]),
            (answered(0, 1), vec![done(0, 1)]),
            (ready(0), vec![idle(0)]),
            (queued_on(2, 2), vec![Decision::Wake { waker: () }]),
            (ready(0), vec![write(0, &[2], 0, true)]),
        ],
    );
}

#[test]
fn executors_take_a_fair_share_of_the_queue_and_at_most_a_pipe_depth() {
    table(
        P::default(),
        vec![
            (queued_on(2, 1), vec![start(0)]),
            (queued_on(2, 2), vec![start(1)]),
            (queued_on(2, 3), vec![]),
            (spawned(0), vec![]),
            (spawned(1), vec![]),
            // Two long tasks go to two executors, not both into one pipe.
            (ready(0), vec![write(0, &[1, 2], 0, false)]),
            (ready(1), vec![write(1, &[3], 0, false)]),
        ],
    );
    let many: Vec<u32> = (1..=40).collect();
    let mut steps = vec![(queued(1), vec![start(0)])];
    steps.extend(many[1..].iter().map(|&a| (queued(a), vec![])));
    steps.extend([(spawned(0), vec![]), (ready(0), vec![write(0, &many[..PIPE_DEPTH], 0, false)])]);
    let p = table(P::default(), steps);
    assert_eq!(p.queue(&A), &many[PIPE_DEPTH..]);
}

#[test]
fn fair_share_rounds_up_and_stops_at_the_room() {
    assert_eq!(fair_share(2, 2, 32), 1, "two long tasks go to two executors");
    assert_eq!(fair_share(3, 2, 32), 2);
    assert_eq!(fair_share(1, 2, 32), 1, "a lone task is taken");
    assert_eq!(fair_share(500, 2, 32), 32, "no more than the pipe holds");
    assert_eq!(fair_share(5, 0, 32), 5, "an executor alone takes what there is");
    assert_eq!(fair_share(0, 2, 32), 0);
}

#[test]
fn answers_come_in_order_and_any_other_answer_distrusts_the_executor() {
    let p = table(
        running(&[1, 2, 3]),
        vec![
            (answered(0, 1), vec![done(0, 1)]),
            (answered(0, 3), vec![Decision::Distrust { exec: 0 }]),
            (crashed(0), vec![fail(0, 2, Cause::Crashed)]),
        ],
    );
    assert_eq!(p.queue(&A), [3]);
}

#[test]
fn a_crash_mid_task_fails_that_task_and_requeues_the_ones_behind_it_first_in_order() {
    let p =
        table(running(&[1, 2, 3]), vec![(queued(4), vec![]), (crashed(0), vec![fail(0, 1, Cause::Crashed)]), (gone(0), vec![start(1)])]);
    assert_eq!(p.queue(&A), [2, 3, 4]);
}

#[test]
fn a_timeout_fails_the_running_task_as_timed_out() {
    let p = table(
        running(&[1, 2]),
        vec![(Event::Exited { exec: 0, timed_out: true, clean: false, unsent: vec![] }, vec![fail(0, 1, Cause::TimedOut)])],
    );
    assert_eq!(p.queue(&A), [2]);
}

#[test]
fn an_exit_with_0_mid_task_fails_that_task_for_it() {
    let p = table(
        running(&[1, 2]),
        vec![(Event::Exited { exec: 0, timed_out: false, clean: true, unsent: vec![] }, vec![fail(0, 1, Cause::ExitedZero)])],
    );
    assert_eq!(p.queue(&A), [2]);
}

#[test]
fn an_executor_dying_during_a_write_fails_the_first_task_written() {
    // Written is fed before the bytes go out: a broken pipe is a death
    // with these attempts in it.
    let p = table(
        running(&[1]),
        vec![
            (answered(0, 1), vec![done(0, 1)]),
            (queued(2), vec![]),
            (queued(3), vec![]),
            (ready(0), vec![write(0, &[2, 3], 0, true)]),
            (written(0, &[2, 3]), vec![read(0)]),
            (crashed(0), vec![fail(0, 2, Cause::Crashed)]),
        ],
    );
    assert_eq!(p.queue(&A), [3]);
}

#[test]
fn an_executor_found_dead_while_idle_charges_nothing_and_its_tasks_go_back() {
    let p = table(
        running(&[1]),
        vec![
            (answered(0, 1), vec![done(0, 1)]),
            (queued(2), vec![]),
            (queued(3), vec![]),
            (ready(0), vec![write(0, &[2, 3], 0, true)]),
            (Event::Exited { exec: 0, timed_out: false, clean: false, unsent: ts(&[2, 3]) }, vec![]),
            (gone(0), vec![start(1)]),
        ],
    );
    assert_eq!(p.queue(&A), [2, 3]);
}

#[test]
fn a_new_executor_is_not_checked_before_its_first_write_so_its_death_charges_its_first_task() {
    // Else a program that cannot start would be started again forever.
    table(
        P::default(),
        vec![
            (queued(1), vec![start(0)]),
            (spawned(0), vec![]),
            (ready(0), vec![write(0, &[1], 0, false)]),
            (written(0, &[1]), vec![read(0)]),
            (crashed(0), vec![fail(0, 1, Cause::Crashed)]),
        ],
    );
}

#[test]
fn a_kill_stops_the_executor_running_the_task_and_charges_it() {
    let p =
        table(running(&[1, 2]), vec![(kill(1), vec![stop(0)]), (crashed(0), vec![fail(0, 1, Cause::Crashed)]), (gone(0), vec![start(1)])]);
    assert_eq!(p.queue(&A), [2]);
}

#[test]
fn a_kill_meant_for_a_task_answered_just_before_charges_nothing() {
    let p = table(running(&[1, 2, 3]), vec![(kill(1), vec![stop(0)]), (answered(0, 1), vec![done(0, 1)]), (crashed(0), vec![])]);
    assert_eq!(p.queue(&A), [2, 3], "the one it ran since runs again");
}

#[test]
fn a_timeout_is_charged_even_after_a_kill_meant_for_another_task() {
    table(
        running(&[1, 2]),
        vec![
            (kill(1), vec![stop(0)]),
            (answered(0, 1), vec![done(0, 1)]),
            (Event::Exited { exec: 0, timed_out: true, clean: false, unsent: vec![] }, vec![fail(0, 2, Cause::TimedOut)]),
        ],
    );
}

#[test]
fn a_kill_of_a_queued_task_takes_it_out_and_reports_it() {
    let p = table(running(&[1]), vec![(queued(2), vec![]), (queued(3), vec![]), (kill(2), vec![killed(2)])]);
    assert_eq!(p.queue(&A), [3]);
}

#[test]
fn a_kill_of_a_task_answered_or_written_behind_the_running_one_does_nothing() {
    // The one behind runs and the driver discards it.
    table(
        running(&[1, 2, 3]),
        vec![
            (kill(2), vec![]),
            (answered(0, 1), vec![done(0, 1)]),
            (kill(1), vec![]),
            (kill(99), vec![]),
            (crashed(0), vec![fail(0, 2, Cause::Crashed)]),
        ],
    );
}

#[test]
fn a_kill_during_the_write_into_an_empty_pipe_reaches_the_first_task() {
    table(
        P::default(),
        vec![
            (queued(1), vec![start(0)]),
            (queued(2), vec![]),
            (spawned(0), vec![]),
            (ready(0), vec![write(0, &[1, 2], 0, false)]),
            (kill(2), vec![]),
            (kill(1), vec![stop(0)]),
            (written(0, &[1, 2]), vec![read(0)]),
            (crashed(0), vec![fail(0, 1, Cause::Crashed)]),
        ],
    );
}

#[test]
fn a_batch_that_all_fails_to_prepare_leaves_nothing_running() {
    table(
        P::default(),
        vec![
            (queued(1), vec![start(0)]),
            (queued(2), vec![]),
            (spawned(0), vec![]),
            (ready(0), vec![write(0, &[1, 2], 0, false)]),
            (Event::Written { exec: 0, sent: vec![], back: vec![] }, vec![]),
            (kill(1), vec![]),
            (ready(0), vec![idle(0)]),
        ],
    );
}

#[test]
fn tasks_that_do_not_fit_the_pipe_go_back_to_the_front_of_the_queue() {
    let p = table(
        running(&[1]),
        vec![
            (queued(2), vec![]),
            (queued(3), vec![]),
            (ready(0), vec![write(0, &[2, 3], 1, false)]),
            (queued(4), vec![]),
            (Event::Written { exec: 0, sent: mades(&[2]), back: mades(&[3]) }, vec![read(0)]),
        ],
    );
    assert_eq!(p.queue(&A), [3, 4]);
}

#[test]
fn the_pipe_holds_at_most_its_size_unanswered_but_a_larger_frame_goes_alone() {
    let empty = Room { jobs: 0, unanswered: 0, capacity: PIPE };
    let table = [
        (empty, PIPE + 1, true, "a frame larger than the pipe, into an empty one"),
        (Room { jobs: 1, unanswered: 900, ..empty }, 100, true, "exactly full"),
        (Room { jobs: 1, unanswered: 900, ..empty }, 101, false, "one byte over"),
        (Room { jobs: 1, unanswered: 10, ..empty }, PIPE, false, "a large frame behind another"),
    ];
    for (mut room, frame, admitted, what) in table {
        let before = room;
        assert_eq!(room.admit(frame), admitted, "{what}");
        let want = if admitted { Room { jobs: before.jobs + 1, unanswered: before.unanswered + frame, ..before } } else { before };
        assert_eq!(room, want, "{what}");
    }
    let mut room = empty;
    assert!(room.admit(PIPE + 1) && !room.admit(1), "nothing goes behind a frame larger than the pipe");
}

#[test]
fn the_end_of_a_run_stops_its_executors_drops_its_queue_and_kills_what_comes_back() {
    let p = table(
        running(&[1, 2]),
        vec![
            (queued(3), vec![]),
            (Event::RunEnded { run: RUN.into() }, vec![stop(0), Decision::WakeAll { waker: () }]),
            (ready(0), vec![read(0)]),
            (crashed(0), vec![fail(0, 1, Cause::Crashed), killed(2)]),
            (gone(0), vec![]),
            (queued(4), vec![killed(4)]),
        ],
    );
    assert_eq!(p.queue(&A), Vec::<u32>::new(), "queued ones are not reported");
}

#[test]
fn the_end_of_a_run_ends_its_idle_executors_and_stops_one_still_starting() {
    table(
        running(&[1]),
        vec![
            (answered(0, 1), vec![done(0, 1)]),
            (ready(0), vec![idle(0)]),
            (Event::RunEnded { run: RUN.into() }, vec![stop(0), Decision::WakeAll { waker: () }]),
            (ready(0), vec![Decision::End { exec: 0 }]),
            (gone(0), vec![]),
        ],
    );
    table(
        P::default(),
        vec![
            (queued(1), vec![start(0)]),
            (Event::RunEnded { run: RUN.into() }, vec![Decision::WakeAll { waker: () }]),
            (spawned(0), vec![stop(0), Decision::End { exec: 0 }]),
            (gone(0), vec![]),
        ],
    );
}

#[test]
fn tasks_not_yet_written_when_the_run_ends_are_killed() {
    table(
        running(&[1]),
        vec![
            (queued(2), vec![]),
            (queued(3), vec![]),
            (ready(0), vec![write(0, &[2, 3], 1, false)]),
            (Event::RunEnded { run: RUN.into() }, vec![stop(0), Decision::WakeAll { waker: () }]),
            (Event::Written { exec: 0, sent: mades(&[2]), back: mades(&[3]) }, vec![killed(3), read(0)]),
        ],
    );
}

#[test]
fn shutdown_stops_every_executor() {
    let p = table(running(&[1]), vec![(Event::Shutdown, vec![stop(0), Decision::WakeAll { waker: () }]), (ready(0), vec![read(0)])]);
    assert!(!p.may_wait(0));
}

#[test]
fn a_gone_executor_is_replaced_only_while_tasks_wait() {
    table(
        running(&[1]),
        vec![(answered(0, 1), vec![done(0, 1)]), (ready(0), vec![idle(0)]), (gone(0), vec![]), (queued(2), vec![start(1)])],
    );
}

#[test]
fn the_queue_fails_only_when_no_executor_of_its_kind_could_start() {
    table(
        P::default(),
        vec![
            (queued_on(2, 1), vec![start(0)]),
            (queued_on(2, 2), vec![start(1)]),
            (queued_on(2, 3), vec![]),
            (Event::SpawnFailed { exec: 0 }, vec![]),
            (Event::SpawnFailed { exec: 1 }, vec![Decision::NoExecutor { jobs: ts(&[1, 2, 3]) }]),
            (queued_on(2, 4), vec![start(2)]),
        ],
    );
}

#[test]
fn an_executor_whose_tasks_were_killed_before_it_started_just_goes() {
    let p = table(P::default(), vec![(queued(1), vec![start(0)]), (kill(1), vec![killed(1)])]);
    assert!(p.first_queued(&A).is_none(), "nothing to start it for");
    table(p, vec![(gone(0), vec![]), (queued(2), vec![start(1)])]);
}

#[test]
fn the_deadline_is_the_running_tasks_timeout() {
    let (slow, slower) = (T { timeout_ms: Some(5), ..t(1) }, T { timeout_ms: Some(7), ..t(2) });
    let room = Room { jobs: 0, unanswered: 0, capacity: PIPE };
    table(
        P::default(),
        vec![
            (Event::Queued { kind: A, job: slow.clone() }, vec![start(0)]),
            (Event::Queued { kind: A, job: slower.clone() }, vec![]),
            (spawned(0), vec![]),
            (ready(0), vec![Decision::Write { exec: 0, jobs: vec![slow.clone(), slower.clone()], room, check_alive: false }]),
            (
                Event::Written { exec: 0, sent: vec![slow.clone(), slower], back: vec![] },
                vec![Decision::Read { exec: 0, timeout_ms: Some(5) }],
            ),
            (answered(0, 1), vec![Decision::Done { exec: 0, job: slow }]),
            (ready(0), vec![Decision::Read { exec: 0, timeout_ms: Some(7) }]),
        ],
    );
}
