//! A Python program when things break under it: a host killed in the
//! middle of a job (on the netns ssh cluster) and a driver killed with
//! SIGKILL then rerun with `--resume`. Either way the answer is exact;
//! the lost host is in the summary, and the resumed run reuses what the
//! killed one had committed.

use std::path::Path;
use std::process::{Child, Stdio};

use shoal_testkit::local::local_workers;
use shoal_testkit::netns::{self, script};
use shoal_testkit::process::wait_for;
use shoal_testkit::runs::summaries;
use shoal_testkit::Shoal;

/// `slow.py N DELAY PARTS [--collect]`: counts 0..N by `x % 7`, each
/// record taking DELAY seconds in the map, and prints `groups [(k, n),
/// ...]`; by `reduce_by_key`, or with `--collect` by collecting the pairs
/// and counting on the driver (a job without a shuffle, whose map outputs
/// the driver journals as they come).
const SLOW: &str = r#"
import time

import shoal

with shoal.Context() as sc:
    n, delay, parts = int(sc.args[0]), float(sc.args[1]), int(sc.args[2])

    def slow(x):
        time.sleep(delay)
        return (x % 7, 1)

    pairs = sc.range(0, n, parts).map(slow)
    if "--collect" in sc.args:
        counts = {}
        for k, one in pairs.collect():
            counts[k] = counts.get(k, 0) + one
        groups = sorted(counts.items())
    else:
        groups = sorted(pairs.reduce_by_key(lambda a, b: a + b).collect())
    print("groups", groups)
"#;

fn want(n: u64) -> String {
    let groups: Vec<String> = (0..7).map(|k| format!("({k}, {})", (0..n).filter(|i| i % 7 == k).count())).collect();
    format!("groups [{}]\n", groups.join(", "))
}

fn start(dir: &Path, args: &[&str]) -> Child {
    std::fs::write(dir.join("slow.py"), SLOW).unwrap();
    let mut cmd = Shoal::python().arg(dir.join("slow.py")).in_job_dir(dir).args(args).command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn journal_lines(dir: &Path) -> usize {
    let Ok(runs) = std::fs::read_dir(dir.join(".shoal/runs")) else { return 0 };
    runs.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("journal.jsonl")).ok()).map(|j| j.lines().count()).sum()
}

#[test]
fn a_host_killed_in_the_middle_of_a_python_job_changes_nothing_but_the_time() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = c.file.display().to_string();
    let child = start(dir.path(), &["--quiet", "--cluster", &cluster, "240", "0.05", "12"]);
    c.kill_once_running("h2", "shoal._executor", 90);
    let out = child.wait_with_output().unwrap();
    let _ = script(&["restart", "h2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, want(240));
    let s = summaries(dir.path());
    assert!(s.iter().any(|s| s["lost"].as_array().is_some_and(|l| l.iter().any(|h| h[0] == "h2"))), "h2 was lost in the job: {s:?}");
}

#[test]
fn a_python_driver_killed_with_sigkill_is_resumed_without_redoing_committed_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = local_workers(dir.path(), 2).display().to_string();
    let args = ["--quiet", "--cluster", &cluster, "120", "0.1", "12", "--collect"];
    let mut first = start(dir.path(), &args);
    // 12 map tasks of 1 s each on 2 workers: kill once a few committed.
    let committed = wait_for(90, || journal_lines(dir.path()) >= 3);
    let _ = first.kill();
    let _ = first.wait();
    assert!(committed, "no map task was journaled within 90 s");
    let again = start(dir.path(), &[&["--resume"][..], &args].concat());
    let out = again.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, want(120));
    let s = summaries(dir.path());
    let last = s.last().expect("the resumed run's summary");
    assert!(last["reused"].as_u64().is_some_and(|n| n >= 3), "the resumed run reused the committed tasks: {last}");
}
