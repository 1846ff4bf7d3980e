//! The Dataset API on the local transport: every example on 1, 2 and 3
//! workers (local hosts of one slot each) against plain single-threaded
//! Rust, and the failures a program can meet: a plan that differs, a
//! panicking closure, bad arguments, a shuffle larger than its sort
//! buffer, and a resumed program that reuses its finished tasks.

use shoal_testkit::data::{corpus, join_data, records};
use shoal_testkit::local::local_workers;
use shoal_testkit::reference::{kmeans, parse_counts, parse_points, pi_hits, sorted_lines, wordcount};
use shoal_testkit::Shoal;

fn cluster_args(dir: &std::path::Path, n: usize) -> Vec<String> {
    vec!["--cluster".into(), local_workers(dir, n).display().to_string()]
}

fn with<'a>(base: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    base.iter().map(String::as_str).chain(rest.iter().copied()).collect()
}

#[test]
fn wordcount_matches_a_plain_hashmap_on_1_2_and_3_workers() {
    let dir = tempfile::tempdir().unwrap();
    corpus(&dir.path().join("corpus.txt"), 3000, 7);
    let want = wordcount(&dir.path().join("corpus.txt"));
    for n in 1..=3 {
        let c = cluster_args(dir.path(), n);
        let out = format!("out-{n}.tsv");
        let r = Shoal::program("wordcount").in_job_dir(dir.path()).args(with(&c, &["--quiet", "corpus.txt", &out])).run().success();
        let got = parse_counts(&std::fs::read_to_string(dir.path().join(&out)).unwrap());
        let want_vec: Vec<(String, u64)> = want.clone().into_iter().collect();
        assert_eq!(got, want_vec, "{n} workers: save_as_text of sort_by_key is the exact sorted count");
        let total: u64 = want.values().sum();
        assert!(r.stdout.starts_with(&format!("{} distinct words, {total} in all\n", want.len())), "{n} workers:\n{}", r.stdout);
        let simple =
            Shoal::program("wordcount").in_job_dir(dir.path()).args(with(&c, &["--quiet", "corpus.txt", "--simple"])).run().success();
        assert_eq!(simple.stdout, r.stdout, "{n} workers: the textbook form gives the same answer");
    }
}

#[test]
fn sum_pi_and_kmeans_are_exact_on_1_2_and_3_workers() {
    let dir = tempfile::tempdir().unwrap();
    let hits = pi_hits(200_000);
    let centers = kmeans(20_000, 4, 10);
    for n in 1..=3 {
        let c = cluster_args(dir.path(), n);
        let r = Shoal::program("sum").in_job_dir(dir.path()).args(with(&c, &["--quiet", "10000", "7"])).run().success();
        assert_eq!(r.value("sum"), (10_000i64 * 10_001).to_string());
        assert_eq!(r.value("count"), "10000");
        let r = Shoal::program("pi").in_job_dir(dir.path()).args(with(&c, &["--quiet", "200000", "6"])).run().success();
        assert_eq!(r.value("inside"), format!("{hits} of 200000"));
        let r = Shoal::program("kmeans").in_job_dir(dir.path()).args(with(&c, &["--quiet", "20000", "4", "10"])).run().success();
        assert_eq!(parse_points(&r.stdout), centers, "{n} workers");
    }
}

#[test]
fn join_and_sort_are_exact_on_1_2_and_3_workers() {
    let dir = tempfile::tempdir().unwrap();
    let totals = join_data(dir.path(), 40, 2000);
    records(&dir.path().join("records.txt"), 5000, 11);
    let sorted = sorted_lines(&dir.path().join("records.txt"));
    for n in 1..=3 {
        let c = cluster_args(dir.path(), n);
        let r = Shoal::program("join").in_job_dir(dir.path()).args(with(&c, &["--quiet", "users.tsv", "orders.tsv"])).run().success();
        assert_eq!(parse_counts(&r.stdout), totals, "{n} workers");
        let out = format!("sorted-{n}.txt");
        Shoal::program("sort").in_job_dir(dir.path()).args(with(&c, &["--quiet", "records.txt", &out])).run().success();
        let got: Vec<String> = std::fs::read_to_string(dir.path().join(&out)).unwrap().lines().map(String::from).collect();
        assert_eq!(got.len(), sorted.len(), "{n} workers: every record once");
        assert!(got == sorted, "{n} workers: output is sorted and complete");
    }
}

#[test]
fn a_shuffle_larger_than_its_sort_buffer_spills_and_stays_exact() {
    let dir = tempfile::tempdir().unwrap();
    // 2 MB of records through 64 KiB sort buffers: dozens of spills per map.
    records(&dir.path().join("records.txt"), 20_000, 5);
    let c = cluster_args(dir.path(), 2);
    Shoal::program("sort")
        .in_job_dir(dir.path())
        .args(with(&c, &["--quiet", "--sort-buffer", "65536", "records.txt", "sorted.txt"]))
        .run()
        .success();
    let got: Vec<String> = std::fs::read_to_string(dir.path().join("sorted.txt")).unwrap().lines().map(String::from).collect();
    assert!(got == sorted_lines(&dir.path().join("records.txt")), "sorted and complete");
}

#[test]
fn a_plan_that_differs_on_the_workers_fails_with_both_plans() {
    let dir = tempfile::tempdir().unwrap();
    let r = Shoal::program("faults").in_job_dir(dir.path()).args(["--quiet", "plan-differs", "100"]).run().code(1);
    let r = r.stderr_has("this task built a different plan than the driver for job 0, so it cannot compute its part.");
    let r = r.stderr_has("driver: job 0: #0 range at crates/shoal/examples/faults.rs:");
    let r = r.stderr_has("0..100 partitions=4\n");
    let r = r.stderr_has("0..100 partitions=5\n");
    r.stderr_has("A plan must not depend on anything that differs between processes");
}

#[test]
fn a_panicking_closure_fails_the_job_with_its_message_location_and_partition() {
    let dir = tempfile::tempdir().unwrap();
    let r = Shoal::program("faults").in_job_dir(dir.path()).args(["--quiet", "panic-always", "10"]).run().code(1);
    let r = r.stderr_has("failed 4 times, on: local (exit code 101)");
    let r = r.stderr_has("shoal: the program panicked at crates/shoal/examples/faults.rs:");
    let r = r.stderr_has(": boom at 3\n");
    let r = r.stderr_has("in job 0 (map at crates/shoal/examples/faults.rs:");
    r.stderr_has("map partition 1, host local");
}

#[test]
fn what_closures_print_goes_to_the_logs_not_into_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let r = Shoal::program("faults").in_job_dir(dir.path()).args(["--quiet", "chatty", "10"]).run().success();
    assert_eq!(r.value("count"), "10");
    assert!(!r.stdout.contains("noise"), "task output leaked to the driver's stdout:\n{}", r.stdout);
}

#[test]
fn bad_arguments_and_missing_input_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let r = Shoal::program("wordcount").in_job_dir(dir.path()).args(["missing.txt"]).run().code(2);
    let cwd = dir.path().canonicalize().unwrap();
    r.stderr_has(&format!(
        "error: text_file(\"missing.txt\"): cannot read it (No such file or directory (os error 2)); relative paths start in {}, where the program was started\n",
        cwd.display()
    ));
    Shoal::program("wordcount")
        .in_job_dir(dir.path())
        .args(["--partitions", "0", "x"])
        .run()
        .code(2)
        .stderr_has("error: --partitions \"0\" is not a positive number\n");
    Shoal::program("wordcount").in_job_dir(dir.path()).args(["--cluster", "nope.toml", "x"]).run().code(2).stderr_has("nope.toml");
    Shoal::program("wordcount").in_job_dir(dir.path()).run().code(2).stderr_has("error: usage: wordcount CORPUS [OUT] [--simple]\n");
    std::fs::write(dir.path().join("empty.txt"), "").unwrap();
    Shoal::program("wordcount").in_job_dir(dir.path()).args(["empty.txt"]).run().code(2).stderr_has("is empty: there is nothing to run");
    // A FIFO would hang the driver's read (issue 17, item 9).
    let fifo = dir.path().join("pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    Shoal::program("wordcount")
        .in_job_dir(dir.path())
        .args(["pipe"])
        .run()
        .code(2)
        .stderr_has("error: text_file(\"pipe\"): pipe is a FIFO, not a regular file or directory; text_file reads only files\n");
}

#[test]
fn resume_reuses_every_finished_task_of_an_unchanged_program() {
    let dir = tempfile::tempdir().unwrap();
    corpus(&dir.path().join("corpus.txt"), 500, 3);
    let first = Shoal::program("wordcount").in_job_dir(dir.path()).args(["--quiet", "corpus.txt"]).run().success();
    let again = Shoal::program("wordcount").in_job_dir(dir.path()).args(["--quiet", "--resume", "corpus.txt"]).run().success();
    assert_eq!(first.stdout, again.stdout);
    let summaries = run_summaries(dir.path());
    assert_eq!(summaries.len(), 2, "one job per action, two programs");
    assert!(!summaries[0]["attempts"].as_array().unwrap().is_empty(), "the first program ran its tasks");
    assert_eq!(summaries[1]["attempts"], serde_json::json!([]), "the resumed program ran no task again: {}", summaries[1]);
    assert!(summaries[1]["reused"].as_u64() > Some(0), "{}", summaries[1]);
}

/// The log lines of every task of the latest run on `host`, by task.
fn task_logs(dir: &std::path::Path, host: &str) -> std::collections::BTreeMap<u32, Vec<String>> {
    let runs = dir.join(".shoal/runs");
    let run = std::fs::read_to_string(runs.join(".latest")).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(runs.join(run.trim()).join("logs").join(host)).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let task: u32 = name.trim_start_matches("task-").split('.').next().unwrap().parse().unwrap();
        let raw = std::fs::read(&path).unwrap();
        let text = if name.ends_with(".zst") { zstd::decode_all(&raw[..]).unwrap() } else { raw };
        // Lines are `<ms> <attempt> <o|e> <text>`.
        let lines = String::from_utf8(text).unwrap().lines().map(|l| l.splitn(4, ' ').nth(3).unwrap_or("").to_string()).collect();
        out.insert(task, lines);
    }
    out
}

#[test]
fn resident_executors_run_many_tasks_in_few_processes_and_keep_each_tasks_prints_apart() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = two_slot_host(dir.path());
    let r = Shoal::program("faults").in_job_dir(dir.path()).args(["--quiet", "--cluster", &cluster, "pids", "60"]).run().success();
    assert_eq!(r.value("count"), "60");
    let logs = task_logs(dir.path(), "w");
    assert_eq!(logs.len(), 60, "every task has its log");
    let mut pids = std::collections::BTreeSet::new();
    for (task, lines) in &logs {
        let records: Vec<&String> = lines.iter().filter(|l| l.starts_with("record ")).collect();
        assert_eq!(records.len(), 1, "task {task} logged exactly its own record: {lines:?}");
        let (record, pid) = records[0].strip_prefix("record ").unwrap().split_once(" pid ").unwrap();
        assert_eq!(record, task.to_string(), "task {task}'s log holds another task's print: {lines:?}");
        pids.insert(pid.to_string());
    }
    assert!(pids.len() <= 2, "60 tasks on 2 slots ran in {} processes, not in at most 2 resident executors", pids.len());
}

#[test]
fn two_long_tasks_on_two_slots_run_side_by_side_in_two_executors() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = two_slot_host(dir.path());
    Shoal::program("faults").in_job_dir(dir.path()).args(["--quiet", "--cluster", &cluster, "pids", "2", "500"]).run().success();
    let pids: std::collections::BTreeSet<String> =
        task_logs(dir.path(), "w").values().flatten().filter_map(|l| l.split_once(" pid ").map(|(_, p)| p.to_string())).collect();
    assert_eq!(pids.len(), 2, "both tasks went into one executor's pipe while the other slot idled: {pids:?}");
}

#[test]
fn a_task_that_crashes_its_executor_charges_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let r = Shoal::program("faults").in_job_dir(dir.path()).args(["--quiet", "crash-at", "5", "40"]).run().code(1);
    let r = r.stderr_has("task 5 (partition 5, input range-5) failed 4 times, on: local (exit code 101)");
    r.stderr_has("shoal: the program panicked at crates/shoal/examples/faults.rs:");
    let summary = run_summaries(dir.path()).pop().unwrap();
    let attempts = summary["attempts"].as_array().unwrap();
    let failed: Vec<u64> = attempts.iter().filter(|a| a["outcome"] == "failed").map(|a| a["task"].as_u64().unwrap()).collect();
    assert_eq!(failed, [5, 5, 5, 5], "the tasks queued behind the crash went back to the queue, uncharged: {attempts:?}");
}

#[test]
fn tasks_with_large_inline_inputs_and_outputs_never_block_the_executor_pipes() {
    // 300 tasks of about 60 KiB in and out on 2 slots: far more than the
    // 64 KiB pipes hold once the engine writes many tasks ahead.
    let dir = tempfile::tempdir().unwrap();
    let r = Shoal::program("faults").in_job_dir(dir.path()).args(["--quiet", "big", "300", "60"]).run().success();
    assert_eq!(r.value("big"), "300");
}

#[test]
fn a_task_that_exits_cleanly_mid_task_fails_instead_of_passing_for_empty() {
    let dir = tempfile::tempdir().unwrap();
    let r = Shoal::program("faults").in_job_dir(dir.path()).args(["--quiet", "exit-at", "3", "10"]).run().code(1);
    let r = r.stderr_has("task 3 (partition 3, input range-3) failed 4 times, on: local (exit code 0)");
    r.stderr_has(
        "shoal: the program exited (exit code 0) before it answered this task; a Dataset task must return, not call std::process::exit",
    );
}

/// A cluster file of one local host `w` with 2 slots, its work dir under
/// `dir/hosts/w`; returns the file's path.
fn two_slot_host(dir: &std::path::Path) -> String {
    let cluster = dir.join("two-slots.toml");
    let work = dir.join("hosts/w");
    std::fs::write(&cluster, format!("[hosts.w]\ntransport = \"local\"\nslots = 2\nworkdir = \"{}\"\n", work.display())).unwrap();
    cluster.display().to_string()
}

fn run_summaries(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut ids: Vec<_> = std::fs::read_dir(dir.join(".shoal/runs")).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    ids.sort();
    for p in ids {
        if let Ok(text) = std::fs::read_to_string(p.join("summary.json")) {
            out.push(serde_json::from_str::<serde_json::Value>(&text).unwrap());
        }
    }
    // Run ids of one second differ only in a random suffix: order by start.
    out.sort_by_key(|s| s["started_unix_ms"].as_u64());
    out
}

#[test]
fn host_files_are_read_where_they_live_one_partition_per_host() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("w0.txt"), "a b\nc\n").unwrap();
    std::fs::write(data.join("w1.txt"), "a\nd e f\ng\n").unwrap();
    let c = cluster_args(dir.path(), 2);
    let pattern = format!("{}/{{host}}.txt", data.display());
    let r = Shoal::program("host_files").in_job_dir(dir.path()).args(with(&c, &["--quiet", &pattern])).run().success();
    assert_eq!(r.value("lines"), "5");
    assert_eq!(r.value("words"), "8");
    assert!(r.stdout.contains("2\ta\n"), "{}", r.stdout);
    std::fs::remove_file(data.join("w1.txt")).unwrap();
    let r = Shoal::program("host_files").in_job_dir(dir.path()).args(with(&c, &["--quiet", &pattern])).run().code(1);
    r.stderr_has(&format!("text_file_on_hosts({pattern:?}): host `w1` cannot read {}/w1.txt: No such file or directory", data.display()));
}
