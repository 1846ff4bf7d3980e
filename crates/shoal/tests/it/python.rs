//! The Python package (`python/`, `import shoal`) on the same engine:
//! every example of `examples/python/` on 1, 2 and 3 local workers
//! against its `--plain` twin (the same answer in plain Python, one
//! process), every operation of the API against plain Python, the
//! failures a program can meet (an exception in a user function, a
//! function that cannot be pickled), `--resume`, and word count and join
//! on the netns cluster (which needs root; it skips elsewhere, fails in CI).
//!
//! The interpreter is a venv with the package installed
//! (`shoal_testkit::python::venv`); the agent every host runs is the
//! `shoal` command the package carries, built from this tree.

use std::path::Path;

use shoal_testkit::data::{corpus, join_data, records};
use shoal_testkit::local::local_workers;
use shoal_testkit::runs::summaries;
use shoal_testkit::{bin, netns, Shoal};

/// A Python program in `dir` (with `HOME` there), run by the venv's
/// python (`shoal_testkit::python::venv`); its agent is the `shoal`
/// command the package carries, built from this tree.
fn python(dir: &Path, script: &str) -> Shoal {
    Shoal::python().arg(bin::repo().join(script)).in_job_dir(dir)
}

fn example(dir: &Path, name: &str) -> Shoal {
    python(dir, &format!("examples/python/{name}.py"))
}

fn on_workers(dir: &Path, n: usize) -> Vec<String> {
    vec!["--quiet".into(), "--cluster".into(), local_workers(dir, n).display().to_string()]
}

fn lines_sorted(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path).unwrap().lines().map(String::from).collect();
    v.sort();
    v
}

fn keys_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| l.chars().take(10).collect()).collect()
}

/// Runs each example on `flags`' cluster and its `--plain` twin, in `dir`
/// (with corpus.txt, users.tsv, orders.tsv, records.txt), and compares.
fn examples_match_plain(dir: &Path, flags: &[String], label: &str) {
    let cases: [(&str, &[&str]); 5] = [
        ("wordcount", &["corpus.txt", "counts.tsv"]),
        ("join", &["users.tsv", "orders.tsv"]),
        ("sum", &["20000", "7"]),
        ("kmeans", &["20000", "4", "10"]),
        ("sweep", &["sweep.csv", "3000"]),
    ];
    for (name, args) in cases {
        let plain = example(dir, name).args(args).arg("--plain").run().success();
        let written = match name {
            "wordcount" => Some(("counts.tsv", "counts-plain.tsv")),
            "sweep" => Some(("sweep.csv", "sweep-plain.csv")),
            _ => None,
        };
        if let Some((out, kept)) = written {
            std::fs::rename(dir.join(out), dir.join(kept)).unwrap();
        }
        let got = example(dir, name).args(flags).args(args).run().success();
        assert_eq!(got.stdout, plain.stdout, "{label}: {name} differs from plain Python");
        assert!(!got.stdout.is_empty(), "{label}: {name} printed its answer");
    }
    let (counts, plain) = (std::fs::read(dir.join("counts.tsv")).unwrap(), std::fs::read(dir.join("counts-plain.tsv")).unwrap());
    assert!(counts == plain, "{label}: wordcount's sorted counts file is plain Python's");
    let (sweep, plain) = (std::fs::read(dir.join("sweep.csv")).unwrap(), std::fs::read(dir.join("sweep-plain.csv")).unwrap());
    assert!(sweep == plain, "{label}: the sweep's CSV is plain Python's");
    example(dir, "sort").args(flags).args(["records.txt", "sorted.txt"]).run().success();
    example(dir, "sort").args(["records.txt", "sorted-plain.txt", "--plain"]).run().success();
    assert_eq!(keys_of(&dir.join("sorted.txt")), keys_of(&dir.join("sorted-plain.txt")), "{label}: sorted by key");
    assert_eq!(lines_sorted(&dir.join("sorted.txt")), lines_sorted(&dir.join("records.txt")), "{label}: every record, once");
}

fn example_data(dir: &Path) {
    corpus(&dir.join("corpus.txt"), 3000, 7);
    join_data(dir, 40, 2000);
    records(&dir.join("records.txt"), 3000, 5);
}

#[test]
fn examples_match_plain_python_on_1_2_and_3_workers() {
    let dir = tempfile::tempdir().unwrap();
    example_data(dir.path());
    for n in 1..=3 {
        examples_match_plain(dir.path(), &on_workers(dir.path(), n), &format!("{n} workers"));
    }
}

/// Each operation against plain Python: prints `ok NAME` or what differs.
const OPERATIONS: &str = r#"
import os, sys
import shoal

words = [f"w{i * 7 % 23}" for i in range(500)]
nums = list(range(-50, 250))
pairs = [(w, i) for i, w in enumerate(words)]
mixed = [(i % 5 if i % 2 else f"k{i % 3}", i) for i in range(200)]

def by_key(ps):
    out = {}
    for k, v in ps:
        out.setdefault(k, []).append(v)
    return out

def check(name, got, want):
    print(f"ok {name}" if got == want else f"DIFFERS {name}: {got!r} != {want!r}")

with shoal.Context() as sc:
    ws = sc.parallelize(words, 4)
    ns = sc.parallelize(nums, 3)
    check("map_filter_flat_map", ns.map(lambda x: x * 3).filter(lambda x: x % 2 == 0).flat_map(lambda x: [x, -x]).collect(),
          [y for x in nums if (x * 3) % 2 == 0 for y in (x * 3, -(x * 3))])
    check("map_partitions", sorted(ns.map_partitions(lambda it: [sum(it)]).collect()) and sum(ns.map_partitions(lambda it: [sum(it)]).collect()), sum(nums))
    check("count", ws.count(), len(words))
    check("take", ns.take(7), nums[:7])
    check("reduce", ns.reduce(lambda a, b: a + b), sum(nums))
    check("fold", ns.fold(0, lambda a, b: a + b), sum(nums))
    check("key_by_group_by_key", {k: sorted(v) for k, v in ws.key_by(len).group_by_key(3).collect()},
          {k: sorted(v) for k, v in by_key((len(w), w) for w in words).items()})
    check("reduce_by_key", sorted(sc.parallelize(mixed, 3).reduce_by_key(lambda a, b: a + b, 4).collect(), key=repr),
          sorted(((k, sum(v)) for k, v in by_key(mixed).items()), key=repr))
    check("aggregate_by_key", dict(sc.parallelize(pairs, 3).aggregate_by_key([], lambda acc, v: acc + [v], lambda a, b: a + b)
                                   .map(lambda kv: (kv[0], sorted(kv[1]))).collect()),
          {k: sorted(v) for k, v in by_key(pairs).items()})
    check("distinct", sorted(ws.distinct(5).collect()), sorted(set(words)))
    left = sc.parallelize([(i % 10, f"l{i}") for i in range(40)], 2)
    right = sc.parallelize([(i % 15, f"r{i}") for i in range(30)], 3)
    check("join", sorted(left.join(right).collect()),
          sorted((k, (a, b)) for k, a in [(i % 10, f"l{i}") for i in range(40)] for k2, b in [(i % 15, f"r{i}") for i in range(30)] if k == k2))
    check("union", sorted(ns.union(sc.range(5), ws.map(len)).collect()), sorted(nums + list(range(5)) + [len(w) for w in words]))
    check("sort_by_key", sc.parallelize([(w, i) for i, w in enumerate(words)], 4).sort_by_key(n=3).map(lambda kv: kv[0]).collect(),
          sorted(words))
    check("sort_by_key_descending", ns.key_by(lambda x: x * x).sort_by_key(ascending=False, n=4).map(lambda kv: kv[0]).collect(),
          sorted((x * x for x in nums), reverse=True))
    reduced = ws.map(lambda w: (w, 1)).reduce_by_key(lambda a, b: a + b).cache()
    check("cache_and_a_shuffle_after_a_shuffle", sorted(reduced.map(lambda kv: (kv[1], kv[0])).group_by_key().map(lambda kv: (kv[0], sorted(kv[1]))).collect()),
          sorted((c, sorted(ws_)) for c, ws_ in by_key((words.count(w), w) for w in set(words)).items()))
    check("cached_twice", sorted(reduced.collect()), sorted((w, words.count(w)) for w in set(words)))
    check("range", sc.range(3, 40, n=4).collect(), list(range(3, 40)))
    with open("lines.txt", "w") as f:
        f.write("alpha\r\nbeta\n\ngamma")
    check("text_file", sc.text_file("lines.txt", n=2).collect(), ["alpha", "beta", "", "gamma"])
    check("text_file_on_hosts", sorted(sc.text_file_on_hosts(os.path.abspath("lines.txt")).collect()),
          sorted(["alpha", "beta", "", "gamma"] * int(sys.argv[-1])))
    ns.map(lambda x: x + 1).save_as_text("saved.txt")
    check("save_as_text", open("saved.txt").read(), "".join(f"{x + 1}\n" for x in nums))
    ns.for_each(lambda x: None)
    check("args", sc.args, ["extra", sys.argv[-1]])
"#;

#[test]
fn every_operation_matches_plain_python_on_2_workers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ops.py"), OPERATIONS).unwrap();
    let ops = dir.path().join("ops.py");
    let r = python(dir.path(), ops.to_str().unwrap()).args(on_workers(dir.path(), 2)).args(["extra", "2"]).run().success();
    let names = [
        "map_filter_flat_map",
        "map_partitions",
        "count",
        "take",
        "reduce",
        "fold",
        "key_by_group_by_key",
        "reduce_by_key",
        "aggregate_by_key",
        "distinct",
        "join",
        "union",
        "sort_by_key",
        "sort_by_key_descending",
        "cache_and_a_shuffle_after_a_shuffle",
        "cached_twice",
        "range",
        "text_file",
        "text_file_on_hosts",
        "save_as_text",
        "args",
    ];
    let want: String = names.iter().map(|n| format!("ok {n}\n")).collect();
    assert_eq!(r.stdout, want, "stderr:\n{}", r.stderr);
}

const FAILS: &str = r#"
import shoal
with shoal.Context() as sc:
    print(sc.range(10, n=2).map(lambda x: 100 // (x - 7)).collect())
"#;

#[test]
fn an_exception_in_a_user_function_fails_the_job_with_its_traceback_partition_and_host() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fails.py");
    std::fs::write(&script, FAILS).unwrap();
    let r = python(dir.path(), script.to_str().unwrap()).args(on_workers(dir.path(), 1)).run();
    let host = std::process::Command::new("hostname").output().unwrap();
    let host = String::from_utf8_lossy(&host.stdout).trim().to_string();
    let r = r.fails_with(1, "failed 4 times, on: w0 (exit code 1)");
    let r = r.stderr_has(&format!(
        "  | shoal: task of job 0 failed: Traceback (most recent call last):\n  |   File \"{}\", line 4, in <lambda>\n  |     \
         print(sc.range(10, n=2).map(lambda x: 100 // (x - 7)).collect())\n  | \
         ZeroDivisionError: integer division or modulo by zero\n  | a Python function raised ZeroDivisionError in map partition 1 on host {host}\n",
        script.display()
    ));
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

const FAILS_TO_REDUCE: &str = r#"
import shoal
def add(a, b):
    if a + b > 40:
        raise ValueError(f"too large: {a} + {b}")
    return a + b
with shoal.Context() as sc:
    print(sc.range(30, n=3).map(lambda x: ("k", x)).reduce_by_key(add, n=1).collect())
"#;

#[test]
fn an_exception_on_the_reduce_side_names_the_reduce_partition() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("reduce.py");
    std::fs::write(&script, FAILS_TO_REDUCE).unwrap();
    let r = python(dir.path(), script.to_str().unwrap()).args(on_workers(dir.path(), 2)).run();
    // The map side's combining calls `add` too: every partition's sum
    // passes 40 (0+..+9 = 45), none passes 300 (20+..+29 = 245), the
    // reduce's does (435).
    r.fails_with(1, "in add\n  |     raise ValueError(f\"too large: {a} + {b}\")\n  | ValueError: too large: ")
        .stderr_has("a Python function raised ValueError in map partition ");
    std::fs::write(&script, FAILS_TO_REDUCE.replace("> 40", "> 300")).unwrap();
    let r = python(dir.path(), script.to_str().unwrap()).args(on_workers(dir.path(), 2)).run();
    r.fails_with(1, "a Python function raised ValueError in reduce partition 0 on host ");
}

const UNPICKLABLE: &str = r#"
import threading
import shoal
lock = threading.Lock()
def locked(x):
    with lock:
        return x
with shoal.Context() as sc:
    print(sc.range(10).map(locked).count())
"#;

#[test]
fn a_function_that_cannot_be_pickled_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("unpicklable.py");
    std::fs::write(&script, UNPICKLABLE).unwrap();
    let r = python(dir.path(), script.to_str().unwrap()).args(on_workers(dir.path(), 1)).run();
    r.fails_with(
        2,
        "unpicklable.py:9: the function locked cannot be sent to the hosts (TypeError: cannot pickle '_thread.lock' object); \
         make it use only values that pickle (open files, locks and connections must be made inside the function)",
    );
    assert!(!dir.path().join(".shoal/runs").exists(), "no job ran");
}

#[test]
fn bad_flags_end_the_program_with_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    example(dir.path(), "sum")
        .args(["--partitions", "0", "10"])
        .run()
        .fails_with(2, "error: --partitions \"0\" is not a positive number\n");
    let r = example(dir.path(), "sum").args(["--cluster", "missing.toml", "10"]).run().code(2);
    assert!(r.stderr.starts_with("error: ") && r.stderr.contains("missing.toml"), "{}", r.stderr);
}

const SLOW: &str = r#"
import os, time
import shoal
def slow(x):
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
    return x
with shoal.Context() as sc:
    pid_file = sc.args[-1]
    print(sc.range(2, n=1).map(slow).collect())
"#;

#[test]
fn ctrl_c_stops_the_run_and_ends_the_program_with_code_130_and_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow.py");
    std::fs::write(&script, SLOW).unwrap();
    let started = dir.path().join("task.pid");
    let mut cmd = python(dir.path(), script.to_str().unwrap()).args(on_workers(dir.path(), 1)).arg(&started).command();
    let child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let task = shoal_testkit::process::pid_in(&started);
    // SAFETY: signals a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("\nerror: run ") && stderr.contains(" interrupted; finished tasks are kept in its journal"), "{stderr}");
    assert!(!stderr.contains("KeyboardInterrupt") && !stderr.contains("Traceback"), "said once, without Python's traceback: {stderr}");
    assert!(shoal_testkit::process::wait_for(10, || !shoal_testkit::process::alive(task)), "the running task was stopped");
}

#[test]
fn resume_reuses_every_finished_task_of_an_unchanged_program() {
    let dir = tempfile::tempdir().unwrap();
    corpus(&dir.path().join("corpus.txt"), 500, 3);
    let first = example(dir.path(), "wordcount").args(["--quiet", "corpus.txt"]).run().success();
    let again = example(dir.path(), "wordcount").args(["--quiet", "--resume", "corpus.txt"]).run().success();
    assert_eq!(first.stdout, again.stdout);
    let s = summaries(dir.path());
    assert_eq!(s.len(), 2, "one job (a reduce_by_key collected), two programs");
    assert!(!s[0]["attempts"].as_array().unwrap().is_empty(), "the first program ran its tasks");
    assert_eq!(s[1]["attempts"], serde_json::json!([]), "the resumed program ran no task again: {}", s[1]);
}

#[test]
fn wordcount_and_join_match_plain_python_on_three_ssh_hosts() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    corpus(&dir.path().join("corpus.txt"), 4000, 21);
    join_data(dir.path(), 30, 1500);
    let flags = ["--quiet".to_string(), "--cluster".into(), c.file.display().to_string()];
    for (name, args) in [("wordcount", &["corpus.txt", "counts.tsv"][..]), ("join", &["users.tsv", "orders.tsv"][..])] {
        let plain = example(dir.path(), name).args(args).arg("--plain").run().success();
        if name == "wordcount" {
            std::fs::rename(dir.path().join("counts.tsv"), dir.path().join("counts-plain.tsv")).unwrap();
        }
        let got = example(dir.path(), name).args(&flags).args(args).run().success();
        assert_eq!(got.stdout, plain.stdout, "{name} on three hosts differs from plain Python");
    }
    let counts = std::fs::read(dir.path().join("counts.tsv")).unwrap();
    assert!(counts == std::fs::read(dir.path().join("counts-plain.tsv")).unwrap(), "the sorted counts file is plain Python's");
}

#[test]
fn a_python_program_runs_on_a_standing_cluster_with_the_same_answer() {
    let Some((_g, c)) = netns::up() else { return };
    netns::heal_all();
    let lab = shoal_testkit::standing::Standing::new("py");
    lab.up(&["--cluster", &c.file.display().to_string()]);
    let dir = tempfile::tempdir().unwrap();
    corpus(&dir.path().join("corpus.txt"), 3000, 31);
    let plain = example(dir.path(), "wordcount").args(["corpus.txt", "counts.tsv", "--plain"]).run().success();
    let access = lab.dir().join("client.access").display().to_string();
    let got = example(dir.path(), "wordcount").args(["--quiet", "--on", &access, "corpus.txt", "counts.tsv"]).run().success();
    assert_eq!(got.stdout, plain.stdout, "the word count on the standing cluster differs from plain Python");
    let status = lab.status();
    assert_eq!(status["applications"], serde_json::json!([]), "the program's application outlived it: {status}");
}
