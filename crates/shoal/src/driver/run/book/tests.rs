//! Table tests of the run book's rules: calls in, effects out, no host.
//! Effects are shown as short lines (`start t0 a0 h0`) so that a table
//! reads as a run. (The seeded random simulation is in `sim_tests.rs`.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shoal_core::scheduler::{Scheduler, SchedulerConfig, TaskId, TaskSpec};
use shoal_wire::{BlockRef, Bucket, ExitStatus, SkippedRecord, TaskReport};

use super::*;
use crate::driver::blocks::Source;
use crate::driver::run::id::RunId;
use crate::driver::run::journal::DATA_MAX;
use crate::driver::run::prepare::{Plan, PlannedTask};
use crate::driver::state::StateDir;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// How a map task gets its input.
#[derive(Clone, Copy)]
pub(super) enum Input {
    None,
    /// Inside its request, this many bytes.
    Inline(u64),
    /// A block to upload, this many bytes from `offset` of its file.
    Stored {
        offset: u64,
        len: u64,
    },
}

fn source(input: Input) -> Option<Source> {
    let (offset, len, data) = match input {
        Input::None => return None,
        Input::Inline(len) => (0, len, Some(vec![b'x'; len as usize].into())),
        Input::Stored { offset, len } => (offset, len, None),
    };
    Some(Source { path: PathBuf::from("/data/in"), offset, len, hash: [7; 32], data })
}

/// A plan of maps with these inputs and `reduces` reduce tasks; it lives
/// as long as the test (the book borrows it).
pub(super) fn plan(maps: &[Input], reduces: u32) -> &'static Plan {
    let task = |stage, partition, input| PlannedTask {
        stage,
        partition,
        input,
        input_name: Arc::from(format!("in{partition}")),
        arg: None,
        identity: format!("id-{stage}-{partition}"),
        host: None,
    };
    let mut tasks: Vec<PlannedTask> = maps.iter().enumerate().map(|(p, i)| task(0, p as u32, source(*i))).collect();
    tasks.extend((0..reduces).map(|r| task(1, r, None)));
    let run_id = RunId::new("run", std::time::UNIX_EPOCH, 1);
    let run_dir = StateDir::new("/state").run(&run_id);
    let plan = Plan { run_id, run_dir, manifest: vec![], tasks, params: vec![], shared_input: false };
    Box::leak(Box::new(plan))
}

/// The scheduler's tasks for `plan`, as `run::scheduler` makes them.
pub(super) fn specs(plan: &Plan, shuffle: bool) -> Vec<TaskSpec> {
    let maps: Vec<TaskId> = (0..plan.tasks.iter().filter(|t| t.stage == 0).count() as u32).map(TaskId).collect();
    let spec = |t: &PlannedTask| TaskSpec {
        stage: t.stage,
        deps: if t.stage == 1 { maps.clone() } else { vec![] },
        needs_collect: t.stage == 1 || !shuffle,
        ..Default::default()
    };
    plan.tasks.iter().map(spec).collect()
}

/// A book of `plan` on hosts `h0`, `h1`, ... with these slots.
pub(super) fn book(plan: &'static Plan, rules: Rules, slots: &[u32], config: SchedulerConfig) -> RunBook<'static> {
    let hosts: Vec<(String, u32)> = slots.iter().enumerate().map(|(i, s)| (format!("h{i}"), *s)).collect();
    RunBook::new(plan, rules, &hosts, Scheduler::new(specs(plan, rules.shuffle), config))
}

fn maps_book(maps: &[Input], slots: &[u32]) -> RunBook<'static> {
    book(plan(maps, 0), Rules::default(), slots, SchedulerConfig::default())
}

pub(super) fn report(attempt: u32, status: ExitStatus) -> TaskReport {
    TaskReport {
        attempt,
        status,
        output: None,
        output_data: None,
        stderr_tail: String::new(),
        // A second: long enough that pacing keeps one attempt per slot.
        wall_us: 1_000_000,
        cpu_ms: 0,
        timed_out: false,
        host_trouble: None,
        buckets: vec![],
        records: 0,
        skipped: vec![],
    }
}

/// Success with `data` as the inline output.
pub(super) fn ok_inline(attempt: u32, data: &[u8]) -> TaskReport {
    let output = Some(BlockRef { hash: [attempt as u8; 32], size: data.len() as u64 });
    TaskReport { output, output_data: Some(data.to_vec()), ..report(attempt, ExitStatus::Code(0)) }
}

/// Success with an output kept as a block on the host.
pub(super) fn ok_stored(attempt: u32, size: u64) -> TaskReport {
    TaskReport { output: Some(BlockRef { hash: [attempt as u8; 32], size }), ..report(attempt, ExitStatus::Code(0)) }
}

pub(super) fn bucket(seed: u8, size: u64) -> Bucket {
    Bucket { block: BlockRef { hash: [seed; 32], size }, records: size / 10 }
}

pub(super) fn exit(attempt: u32, code: i32) -> TaskReport {
    report(attempt, ExitStatus::Code(code))
}

fn trouble(attempt: u32) -> TaskReport {
    TaskReport { host_trouble: Some("disk full".into()), ..report(attempt, ExitStatus::SpawnFailed("no space".into())) }
}

pub(super) fn sigkill(attempt: u32) -> TaskReport {
    report(attempt, ExitStatus::Signal(9))
}

/// One effect as a short line.
pub(super) fn show(e: &Effect) -> String {
    let launch = |verb: &str, l: &Launch| {
        let skip = l.skip_bad.map_or(String::new(), |n| format!(" skip={n}"));
        format!("{verb} t{} a{} h{}{skip}", l.task, l.attempt, l.host)
    };
    match e {
        Effect::Start(l) => launch("start", l),
        Effect::Upload(l) => launch("upload", l),
        Effect::Stage { launch: l, buckets } => {
            let from: Vec<String> = buckets.iter().map(|n| format!("m{}@h{}:{}", n.map, n.from, n.bucket.block.size)).collect();
            format!("{} [{}]", launch("stage", l), from.join(" "))
        }
        Effect::Kill { host, attempt } => format!("kill a{attempt} h{host}"),
        Effect::Fetch { task, attempt, host, file, .. } => format!("fetch t{task} a{attempt} h{host} -> {}", file.display()),
        Effect::Write { task, attempt, data, file, .. } => format!("write t{task} a{attempt} {} bytes -> {}", data.len(), file.display()),
        Effect::Journal(c) => {
            format!("journal t{} a{} h{} {} bytes{}", c.task, c.attempt, c.host, c.size, if c.data.is_some() { " kept" } else { "" })
        }
        Effect::HoldBack { host, report } => format!("hold back a{} h{host}", report.attempt),
        Effect::Ignored(i) => format!("ignore a{} from h{}: {}", i.attempt, i.host, i.why),
        Effect::Note(line) => format!("note: {line}"),
    }
}

pub(super) fn shown(effects: &[Effect]) -> Vec<String> {
    effects.iter().map(show).collect()
}

/// One call of a table and the effects it must give.
enum Call {
    Report(usize, TaskReport),
    Held(usize, TaskReport),
    Lost(usize, &'static str),
    Internal(Internal),
    Tick(u64),
    Cancel,
}

/// Makes each call at second `i + 1` and checks its effects (journal
/// effects are answered as the layer answers them, and what that gives is
/// listed after them). Returns the book for further checks.
fn table(mut book: RunBook<'static>, start: &[&str], steps: Vec<(Call, Vec<&str>)>) -> RunBook<'static> {
    let first = book.start(Duration::ZERO);
    assert_eq!(answered(&mut book, first), start, "start");
    for (i, (call, want)) in steps.into_iter().enumerate() {
        let now = s(i as u64 + 1);
        let effects = match call {
            Call::Report(h, r) => book.on_report(h, r, now),
            Call::Held(h, r) => book.on_held_report(h, r, now),
            Call::Lost(h, why) => book.on_host_lost(h, why.into(), now),
            Call::Internal(ev) => book.on_internal(ev, now),
            Call::Tick(at) => book.on_tick(s(at)),
            Call::Cancel => book.on_cancel(now),
        };
        assert_eq!(answered(&mut book, effects), want, "step {i}");
    }
    book
}

/// The effects as lines, with each journal line written at once and the
/// effects of that after it.
fn answered(book: &mut RunBook<'static>, effects: Vec<Effect>) -> Vec<String> {
    let mut lines = vec![];
    for e in effects {
        lines.push(show(&e));
        if let Effect::Journal(c) = e {
            let more = book.on_journaled(c, book.now);
            lines.extend(answered(book, more));
        }
    }
    lines
}

fn outcome(book: &RunBook<'_>, attempt: u32) -> Outcome {
    book.attempts.get(&attempt).map(|a| a.outcome).expect("a known attempt")
}

#[test]
fn every_slot_takes_a_task_and_inline_inputs_count_as_sent() {
    let book = table(
        maps_book(&[Input::Inline(10), Input::Stored { offset: 0, len: 500 }, Input::None], &[1, 2]),
        &["start t0 a0 h0", "upload t1 a1 h1", "start t2 a2 h1"],
        vec![],
    );
    assert_eq!((book.facts.input_sent, book.facts.hosts[0].bytes_in, book.facts.hosts[1].tasks), (10, 10, 2));
}

#[test]
fn a_report_from_the_wrong_host_is_ignored() {
    let book = table(
        maps_book(&[Input::None, Input::None], &[1, 1]),
        &["start t0 a0 h0", "start t1 a1 h1"],
        vec![
            (Call::Report(1, ok_inline(0, b"forged")), vec!["ignore a0 from h1: an attempt sent to `h0`"]),
            (Call::Report(1, ok_inline(7, b"forged")), vec!["ignore a7 from h1: an attempt that was never sent"]),
        ],
    );
    assert_eq!(outcome(&book, 0), Outcome::Running);
    assert!(book.pending.is_empty() && book.parts.is_empty());
    assert_eq!(book.log_task(1, 0), Err(Ignored { host: 1, attempt: 0, why: "an attempt sent to `h0`".into() }));
    assert_eq!(book.log_task(0, 0), Ok(0));
}

#[test]
fn a_second_end_report_is_ignored() {
    let book = table(
        maps_book(&[Input::None], &[1]),
        &["start t0 a0 h0"],
        vec![
            (Call::Report(0, exit(0, 1)), vec!["start t0 a1 h0"]),
            (Call::Report(0, ok_inline(0, b"late")), vec!["ignore a0 from h0: an attempt that had already reported its end"]),
        ],
    );
    assert_eq!((outcome(&book, 0), book.facts.hosts[0].failures), (Outcome::Failed, 1));
    assert!(book.pending.is_empty());
}

#[test]
fn a_small_output_is_kept_journaled_and_collected_and_the_run_ends() {
    let book = table(
        maps_book(&[Input::None], &[1]),
        &["start t0 a0 h0"],
        vec![(Call::Report(0, ok_inline(0, b"42\n")), vec!["journal t0 a0 h0 3 bytes kept"])],
    );
    assert_eq!(book.ending(), Some(&Ending::Done));
    assert_eq!(book.parts.get(&0).and_then(|p| p.data.as_deref()), Some(&b"42\n"[..]));
    assert_eq!((book.facts.hosts[0].done, book.facts.hosts[0].bytes_out), (1, 3));
    assert!(book.pending.is_empty());
}

#[test]
fn a_larger_inline_output_is_written_and_a_stored_one_fetched_before_the_journal() {
    let big = vec![b'y'; DATA_MAX + 1];
    let book = table(
        maps_book(&[Input::None, Input::None], &[2]),
        &["start t0 a0 h0", "start t1 a1 h0"],
        vec![
            (Call::Report(0, ok_inline(0, &big)), vec!["write t0 a0 4097 bytes -> /state/runs/19700101-000000-run-0001/parts/part-00000"]),
            (Call::Report(0, ok_stored(1, 1 << 20)), vec!["fetch t1 a1 h0 -> /state/runs/19700101-000000-run-0001/parts/part-00001"]),
            (
                Call::Internal(Internal::Collected {
                    task: 1,
                    attempt: 1,
                    file: "/p1".into(),
                    size: 1 << 20,
                    hash: "h".into(),
                    data: None,
                }),
                vec!["journal t1 a1 h0 1048576 bytes"],
            ),
            (Call::Internal(Internal::CannotKeep { why: "disk full".into() }), vec![]),
        ],
    );
    assert_eq!(book.ending(), Some(&Ending::Failed("disk full".into())));
    assert_eq!(book.parts.len(), 1);
}

#[test]
fn an_outside_sigkill_is_held_back_until_the_host_is_known_to_be_up() {
    let book = table(
        maps_book(&[Input::None], &[1]),
        &["start t0 a0 h0"],
        vec![(Call::Report(0, sigkill(0)), vec!["hold back a0 h0"]), (Call::Held(0, sigkill(0)), vec!["start t0 a1 h0"])],
    );
    assert_eq!(book.attempts.get(&0).and_then(|a| a.status.as_deref()), Some("killed by signal 9"));
    assert_eq!(outcome(&book, 0), Outcome::Failed);
}

#[test]
fn a_cancel_kills_what_runs_and_the_killed_attempts_report_is_not_held_back() {
    let book = table(
        maps_book(&[Input::None], &[1]),
        &["start t0 a0 h0"],
        vec![
            (Call::Cancel, vec!["note: interrupted: stopping every task (press Ctrl-C again to exit at once)", "kill a0 h0"]),
            (Call::Report(0, sigkill(0)), vec![]),
        ],
    );
    assert_eq!(book.ending(), Some(&Ending::Interrupted));
    assert_eq!((outcome(&book, 0), book.facts.hosts[0].failures), (Outcome::Killed, 1));
}

/// Four tasks on two one-slot hosts with speculation: task 3 runs long on
/// h1, its copy (attempt 4) commits on h0 and the original is killed.
fn speculated() -> RunBook<'static> {
    let config = SchedulerConfig { speculate: true, ..SchedulerConfig::default() };
    let book = book(plan(&[Input::None; 4], 0), Rules::default(), &[1, 1], config);
    table(
        book,
        &["start t0 a0 h0", "start t1 a1 h1"],
        vec![
            (Call::Report(0, ok_inline(0, b"0")), vec!["journal t0 a0 h0 1 bytes kept", "start t2 a2 h0"]),
            (Call::Report(1, ok_inline(1, b"1")), vec!["journal t1 a1 h1 1 bytes kept", "start t3 a3 h1"]),
            (Call::Report(0, ok_inline(2, b"2")), vec!["journal t2 a2 h0 1 bytes kept"]),
            (Call::Tick(30), vec!["start t3 a4 h0"]),
            (Call::Report(0, ok_inline(4, b"3")), vec!["journal t3 a4 h0 1 bytes kept", "kill a3 h1"]),
        ],
    )
}

#[test]
fn a_speculative_copy_commits_and_the_original_is_killed() {
    let book = speculated();
    assert_eq!(book.ending(), Some(&Ending::Done));
    assert_eq!((outcome(&book, 3), outcome(&book, 4)), (Outcome::Killed, Outcome::Succeeded));
    assert!(book.attempts.get(&4).is_some_and(|a| a.speculative));
}

#[test]
fn a_superseded_duplicates_pending_record_is_dropped() {
    let mut book = speculated();
    // The original finished before the kill reached it.
    let effects = book.on_report(1, ok_inline(3, b"3"), s(40));
    assert_eq!(shown(&effects), Vec::<String>::new());
    assert_eq!(outcome(&book, 3), Outcome::Superseded);
    assert!(book.pending.is_empty(), "{:?}", book.pending);
    assert_eq!(book.parts.get(&3).and_then(|p| p.data.as_deref()), Some(&b"3"[..]), "the copy's output stays");
}

#[test]
fn a_killed_attempts_report_is_not_held_back_and_not_charged() {
    let mut book = speculated();
    let effects = book.on_report(1, sigkill(3), s(40));
    assert_eq!(shown(&effects), Vec::<String>::new());
    assert_eq!(outcome(&book, 3), Outcome::Killed);
    assert!(book.exit_failures.is_empty());
}

#[test]
fn skip_mode_starts_after_two_command_failures_not_counting_host_trouble() {
    let rules = Rules { skip_bad_records: 5, ..Rules::default() };
    let config = SchedulerConfig { max_attempts: 10, exclude_after: 0, ..SchedulerConfig::default() };
    let book = book(plan(&[Input::Stored { offset: 0, len: 100 }, Input::None], 0), rules, &[2], config);
    let book = table(
        book,
        &["upload t0 a0 h0", "start t1 a1 h0"],
        vec![
            (Call::Report(0, exit(1, 1)), vec!["start t1 a2 h0"]),
            (Call::Report(0, exit(2, 1)), vec!["start t1 a3 h0"]),
            (Call::Report(0, exit(0, 1)), vec!["upload t0 a4 h0"]),
            (Call::Report(0, trouble(4)), vec!["note: host `h0`: disk full", "upload t0 a5 h0"]),
            (Call::Report(0, exit(5, 1)), vec!["upload t0 a6 h0 skip=5"]),
        ],
    );
    assert_eq!(book.exit_failures.get(&1), Some(&2), "a task without line input never skips");
}

#[test]
fn skipped_records_are_placed_in_the_input_file_and_past_the_limit_fail_the_run() {
    let rules = Rules { skip_bad_records: 1, ..Rules::default() };
    let book = book(plan(&[Input::Stored { offset: 1000, len: 100 }], 0), rules, &[1], SchedulerConfig::default());
    let skipped = vec![SkippedRecord { offset: 5, len: 3, head: "bad".into() }, SkippedRecord { offset: 50, len: 4, head: "worse".into() }];
    let book = table(
        book,
        &["upload t0 a0 h0"],
        vec![(
            Call::Report(0, TaskReport { skipped, ..ok_stored(0, 10) }),
            vec![
                "note: task 0 (input in0) skipped a bad record at byte 1005: \"bad\"",
                "note: task 0 (input in0) skipped a bad record at byte 1050: \"worse\"",
                "fetch t0 a0 h0 -> /state/runs/19700101-000000-run-0001/parts/part-00000",
            ],
        )],
    );
    assert_eq!(
        book.ending(),
        Some(&Ending::Failed(
            "2 bad records were skipped, more than [job] skip_bad_records = 1 allows; they are listed above and in the summary".into()
        ))
    );
    assert_eq!(book.facts.skipped.iter().map(|s| (s.offset, s.len)).collect::<Vec<_>>(), [(1005, 3), (1050, 4)]);
}

#[test]
fn commit_of_a_shuffle_map_keeps_its_buckets_for_the_reducers() {
    let rules = Rules { shuffle: true, ..Rules::default() };
    let book = book(plan(&[Input::None, Input::None], 2), rules, &[1, 1], SchedulerConfig::default());
    let with = |attempt, buckets: Vec<Bucket>| TaskReport { buckets, ..ok_stored(attempt, 0) };
    let mut book = table(
        book,
        &["start t0 a0 h0", "start t1 a1 h1"],
        vec![
            (Call::Report(0, with(0, vec![bucket(1, 100), bucket(2, 200)])), vec![]),
            (
                Call::Report(1, with(1, vec![bucket(3, 30), bucket(4, 40)])),
                vec!["stage t2 a2 h0 [m0@h0:100 m1@h1:30]", "stage t3 a3 h1 [m0@h0:200 m1@h1:40]"],
            ),
        ],
    );
    assert_eq!(book.partition_sizes(), [(130, 13), (240, 24)]);
    assert_eq!((book.facts.hosts[0].done, book.facts.hosts[1].done), (1, 1), "a map counts as done on its host");
    assert!(book.pending.is_empty() && book.parts.is_empty(), "buckets are no part of the output");
    // Map 1's host cannot serve its bucket: only that map reruns, uncharged.
    let effects = book.on_internal(Internal::FetchFailed { task: 2, attempt: 2, from_task: 1 }, s(5));
    assert_eq!(shown(&effects), ["start t1 a4 h0"]);
    assert_eq!(outcome(&book, 2), Outcome::FetchFailed);
    assert_eq!(book.attempts.get(&2).and_then(|a| a.status.as_deref()), Some("input from map task 1 lost"));
    assert_eq!(book.partition_sizes(), [(100, 10), (200, 20)], "map 1's output is forgotten");
}

#[test]
fn a_lost_host_ends_its_attempts_as_lost_and_they_run_elsewhere() {
    let book = table(
        maps_book(&[Input::None, Input::None], &[1, 1]),
        &["start t0 a0 h0", "start t1 a1 h1"],
        vec![
            (Call::Lost(0, "the link broke"), vec!["note: host `h0` lost: the link broke; its tasks will run elsewhere"]),
            (Call::Report(1, ok_inline(1, b"1")), vec!["journal t1 a1 h1 1 bytes kept", "start t0 a2 h1"]),
        ],
    );
    assert_eq!(outcome(&book, 0), Outcome::Lost);
    assert_eq!(book.facts.lost, [("h0".to_string(), "the link broke".to_string())]);
}

#[test]
fn no_usable_host_left_fails_the_run_naming_the_lost_hosts() {
    let book = table(
        maps_book(&[Input::None], &[1]),
        &["start t0 a0 h0"],
        vec![(Call::Lost(0, "the link broke"), vec!["note: host `h0` lost: the link broke; its tasks will run elsewhere"])],
    );
    let why = "no usable host is left (lost: 1, excluded: 0); the run stops here\n  h0: the link broke";
    assert_eq!(book.ending(), Some(&Ending::Failed(why.into())));
}

#[test]
fn a_task_out_of_attempts_fails_the_run_with_its_hosts_hint_and_stderr() {
    let config = SchedulerConfig { max_attempts: 2, exclude_after: 0, ..SchedulerConfig::default() };
    let book = book(plan(&[Input::None], 0), Rules::default(), &[1, 1], config);
    let not_found = |a| TaskReport { stderr_tail: "line 1\nsh: 1: wc2: not found\n".into(), ..exit(a, 127) };
    let book = table(
        book,
        &["start t0 a0 h0"],
        vec![(Call::Report(0, exit(0, 2)), vec!["start t0 a1 h1"]), (Call::Report(1, not_found(1)), vec![])],
    );
    let why = "task 0 (partition 0, input in0) failed 2 times, on: h0 (exit code 2), h1 (exit code 127)\n\
        hint: exit code 127 means the command was not found on that host; check [map] command, or set command_on for hosts whose interpreter lives elsewhere\n\
        last lines of its stderr:\n  | line 1\n  | sh: 1: wc2: not found";
    assert_eq!(book.ending(), Some(&Ending::Failed(why.into())));
}

#[test]
fn a_failed_launch_is_charged_unless_its_host_is_gone() {
    let book = table(
        maps_book(&[Input::Stored { offset: 0, len: 9 }], &[1]),
        &["upload t0 a0 h0"],
        vec![
            (Call::Internal(Internal::LaunchFailed { task: 0, attempt: 0, why: "host gone".into(), gone: true }), vec![]),
            (
                Call::Internal(Internal::LaunchFailed { task: 0, attempt: 0, why: "cannot read /data/in".into(), gone: false }),
                vec!["upload t0 a1 h0"],
            ),
            (Call::Internal(Internal::Uploaded { host: 0, sent: 9, skipped: 0 }), vec![]),
        ],
    );
    let a = book.attempts.get(&0).expect("attempt 0");
    assert_eq!(
        (a.outcome, a.status.as_deref(), a.stderr_tail.as_str()),
        (Outcome::Failed, Some("cannot read /data/in"), "cannot read /data/in")
    );
    assert_eq!((book.facts.input_sent, book.facts.hosts[0].bytes_in), (9, 9));
}

#[test]
fn an_attempt_started_when_it_began_on_its_host_not_when_it_was_sent() {
    let mut book = maps_book(&[Input::None], &[1]);
    book.start(s(1));
    book.on_report(0, TaskReport { wall_us: 2_000_000, ..exit(0, 1) }, s(10));
    let a = book.attempts.get(&0).expect("attempt 0");
    assert_eq!((a.started, a.ended), (s(8), Some(s(10))));
}

#[test]
fn counters_add_up_and_saturate() {
    let mut book = maps_book(&[Input::None], &[1]);
    for line in
        ["reporter:counter:words,seen,5", "reporter:counter:words,seen, 7", "not a counter", "reporter:counter:big,n,9223372036854775807"]
    {
        book.count(line);
    }
    book.count("reporter:counter:big,n,1");
    book.count("reporter:counter:words,seen,many");
    let totals: Vec<(&str, i64)> = book.facts.counters.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(totals, [("big,n", i64::MAX), ("words,seen", 12)]);
}

#[test]
fn an_excluded_host_is_noted_and_listed() {
    let rules = Rules { exclude_after: 1, ..Rules::default() };
    let config = SchedulerConfig { exclude_after: 1, ..SchedulerConfig::default() };
    let book = book(plan(&[Input::None, Input::None], 0), rules, &[1, 1], config);
    let book = table(
        book,
        &["start t0 a0 h0", "start t1 a1 h1"],
        vec![(Call::Report(0, exit(0, 1)), vec!["note: host `h0` is excluded for the rest of the run: 1 task failures in a row"])],
    );
    assert_eq!(book.facts.excluded, ["h0"]);
}

#[test]
fn a_second_end_report_while_the_first_is_held_back_is_ignored() {
    let book = table(
        maps_book(&[Input::None], &[1]),
        &["start t0 a0 h0"],
        vec![
            (Call::Report(0, sigkill(0)), vec!["hold back a0 h0"]),
            (Call::Report(0, ok_inline(0, b"after all")), vec!["ignore a0 from h0: an attempt that had already reported its end"]),
            (Call::Held(0, sigkill(0)), vec!["start t0 a1 h0"]),
        ],
    );
    assert!(book.parts.is_empty());
    assert_eq!((outcome(&book, 0), book.facts.hosts[0].failures), (Outcome::Failed, 1));
}

#[test]
fn a_fetch_failure_on_a_map_output_already_replaced_keeps_the_new_one() {
    let rules = Rules { shuffle: true, ..Rules::default() };
    let book = book(plan(&[Input::None, Input::None], 2), rules, &[1, 2], SchedulerConfig::default());
    let with = |attempt, buckets: Vec<Bucket>| TaskReport { buckets, ..ok_stored(attempt, 0) };
    let book = table(
        book,
        &["start t0 a0 h0", "start t1 a1 h1"],
        vec![
            (Call::Report(0, with(0, vec![bucket(1, 100), bucket(2, 200)])), vec![]),
            (
                Call::Report(1, with(1, vec![bucket(3, 30), bucket(4, 40)])),
                vec!["stage t2 a2 h0 [m0@h0:100 m1@h1:30]", "stage t3 a3 h1 [m0@h0:200 m1@h1:40]"],
            ),
            (Call::Lost(0, "gone"), vec!["note: host `h0` lost: gone; its tasks will run elsewhere", "start t0 a4 h1"]),
            (Call::Report(1, with(4, vec![bucket(5, 500), bucket(6, 600)])), vec!["stage t2 a5 h1 [m0@h1:500 m1@h1:30]"]),
            // Attempt 3 was staging map 0's old output from h0 all along.
            (Call::Internal(Internal::FetchFailed { task: 3, attempt: 3, from_task: 0 }), vec!["stage t3 a6 h1 [m0@h1:600 m1@h1:40]"]),
        ],
    );
    assert_eq!(book.partition_sizes(), [(530, 53), (640, 64)], "map 0's new output is kept");
}

#[test]
fn an_output_collected_after_its_task_reran_is_not_journaled_again() {
    let big = vec![b'y'; DATA_MAX + 1];
    let late = Internal::Collected { task: 0, attempt: 0, file: "/p0".into(), size: big.len() as u64, hash: "h".into(), data: None };
    let book = table(
        maps_book(&[Input::None, Input::None], &[1, 1]),
        &["start t0 a0 h0", "start t1 a1 h1"],
        vec![
            (Call::Report(0, ok_inline(0, &big)), vec!["write t0 a0 4097 bytes -> /state/runs/19700101-000000-run-0001/parts/part-00000"]),
            (Call::Lost(0, "gone"), vec!["note: host `h0` lost: gone; its tasks will run elsewhere"]),
            (Call::Report(1, ok_inline(1, b"1")), vec!["journal t1 a1 h1 1 bytes kept", "start t0 a2 h1"]),
            (Call::Report(1, ok_inline(2, b"0")), vec!["journal t0 a2 h1 1 bytes kept"]),
            // The part file of attempt 0 was written while all that happened.
            (Call::Internal(late), vec![]),
        ],
    );
    assert_eq!(book.parts.get(&0).and_then(|p| p.data.as_deref()), Some(&b"0"[..]), "the rerun's output counts");
    assert_eq!(book.facts.hosts[0].done, 0);
}

#[test]
fn a_cached_input_no_host_can_give_ends_the_run_and_is_recorded() {
    let book = table(
        maps_book(&[Input::None, Input::None], &[1, 1]),
        &["start t0 a0 h0", "start t1 a1 h1"],
        vec![
            (Call::Internal(Internal::InputMoved { relayed: 0, direct: 4096 }), vec![]),
            (Call::Internal(Internal::InputLost { hash: [7; 32], why: "host `h0` no longer holds it".into() }), vec![]),
        ],
    );
    assert_eq!(book.ending(), Some(&Ending::Failed("host `h0` no longer holds it".into())));
    assert_eq!(book.facts.lost_inputs, vec![[7; 32]]);
    assert_eq!((book.facts.inputs_direct, book.facts.inputs_via_driver), (4096, 0));
}
