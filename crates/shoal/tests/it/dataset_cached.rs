//! Cached datasets on the 3-host netns cluster: their parts stay in the
//! block stores of the hosts that made them, the driver never holds them,
//! a task on another host fetches its part straight from the holder, and
//! a part that no host can give any more is made again. A text file's
//! partitions, once on the hosts, are fetched from them too.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use shoal_testkit::netns;
use shoal_testkit::runs::summaries;
use shoal_testkit::Shoal;

/// Records of a size new on every call: blocks are named by their
/// content, and a host that holds a part from an earlier test (a copy it
/// fetched) would need nothing.
fn records() -> i64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    30_000 + i64::from(nanos % 100_000)
}

fn args(cluster: &Path, n: i64, panic_on: &str) -> Vec<String> {
    let c = cluster.display().to_string();
    ["--quiet", "--cluster", &c, "cached", &n.to_string(), panic_on].iter().map(|s| s.to_string()).collect()
}

/// `first` and `second` as the program must print them.
fn answers(n: i64) -> (String, String) {
    let first: i64 = (0..n).map(|i| 3 * i).sum();
    (format!("first {first}"), format!("second {}", first + n))
}

/// The summary of the job that made the cached parts: the one that left
/// its parts on the hosts.
fn held_parts(dir: &Path) -> Vec<serde_json::Value> {
    let all = summaries(dir);
    let made: Vec<&serde_json::Value> = all.iter().filter(|s| s["parts_on_hosts"].as_array().is_some_and(|p| !p.is_empty())).collect();
    assert!(!made.is_empty(), "no run left its parts on the hosts: {all:?}");
    made.last().unwrap()["parts_on_hosts"].as_array().unwrap().clone()
}

#[test]
fn cached_parts_stay_on_their_hosts_and_a_task_elsewhere_fetches_from_the_holder() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The second job's closures panic on h1: its parts run elsewhere.
    let n = records();
    let r = Shoal::program("faults").in_job_dir(dir.path()).args(args(&c.file, n, "h1").iter().map(String::as_str)).run().success();
    let (first, second) = answers(n);
    assert!(r.stdout.contains(&first) && r.stdout.contains(&second), "{}", r.stdout);
    let parts = held_parts(dir.path());
    assert_eq!(parts.len(), 6, "{parts:?}");
    for p in &parts {
        assert_eq!(p["path"], "", "a held part has no path: {p}");
        assert!(["h1", "h2", "h3"].contains(&p["host"].as_str().unwrap()), "{p}");
    }
    // Nothing of the cached parts went to the driver: not their making
    // (no part file of theirs in the session), not their reading.
    let runs = summaries(dir.path());
    for s in &runs {
        assert_eq!(s["input_relayed_bytes"], 0, "a cached part went through the driver: {s}");
    }
    let direct: u64 = runs.iter().map(|s| s["input_peer_bytes"].as_u64().unwrap()).sum();
    assert!(direct > 0, "no task fetched a cached part from its holder");
    // Those parts are the program's, not files to pull.
    let made = runs.iter().find(|s| s["parts_on_hosts"].as_array().is_some_and(|p| !p.is_empty())).unwrap();
    let run = made["run"].as_str().unwrap();
    let cluster = c.file.display().to_string();
    Shoal::new()
        .args(["pull", "--output", run, "--to", "pulled", "--cluster", &cluster])
        .in_dir(dir.path())
        .run()
        .code(2)
        .stderr_has(&format!("run {run} kept a program's cached dataset: its parts are blocks in the hosts' stores"));
    let failed_on_h1 = runs.last().unwrap()["attempts"].as_array().unwrap().iter().any(|a| a["host"] == "h1" && a["outcome"] == "failed");
    assert!(failed_on_h1, "the second job never ran on h1: {}", runs.last().unwrap());
}

/// The block file of `hash` in host `host`'s store.
fn block_file(c: &netns::Cluster, host: &str, hash: &str) -> PathBuf {
    c.dir.join(host).join("work/blocks").join(hash)
}

#[test]
fn a_cached_part_its_holder_lost_is_made_again() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let n = records();
    let mut child = Shoal::program("faults")
        .command()
        .args(args(&c.file, n, "nowhere"))
        .current_dir(dir.path())
        .env_remove("SHOAL_CLUSTER")
        .env("FAULTS_GATE", &gate)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // Between the two jobs: one part's block leaves its holder's store.
    let parts = held_parts(dir.path());
    let p = &parts[1];
    let file = block_file(c, p["host"].as_str().unwrap(), p["hash"].as_str().unwrap());
    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("cannot remove {}: {e}", file.display()));
    std::fs::write(&gate, "").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{first}{rest}\n{stderr}");
    let (want_first, want_second) = answers(n);
    assert_eq!(first.trim(), want_first);
    assert!(rest.contains(&want_second), "{rest}\n{stderr}");
    assert!(stderr.contains("making the lost cached parts again"), "{stderr}");
    assert!(stderr.contains("no longer holds") || stderr.contains("cannot be had"), "the loss is named: {stderr}");
    // The parts were made again, and held again.
    assert!(summaries(dir.path()).iter().filter(|s| s["parts_on_hosts"].as_array().is_some_and(|p| !p.is_empty())).count() >= 2);
}

#[test]
fn a_text_partition_a_host_holds_is_fetched_from_it_not_sent_again() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    let n = records();
    let text: String = (0..n).map(|i| format!("line {i} of {n}\n")).collect();
    std::fs::write(dir.path().join("lines.txt"), text).unwrap();
    let cluster = c.file.display().to_string();
    let args = ["--quiet", "--cluster", &cluster, "text-twice", "lines.txt", "h1"];
    let r = Shoal::program("faults").in_job_dir(dir.path()).args(args).run().success();
    assert!(r.stdout.contains(&format!("first {n}")) && r.stdout.contains(&format!("second {n}")), "{}", r.stdout);
    let runs = summaries(dir.path());
    let (first, second) = (&runs[runs.len() - 2], &runs[runs.len() - 1]);
    assert!(first["input_bytes_sent"].as_u64().unwrap() > 0, "the first job's partitions came from the driver: {first}");
    // The second job's tasks ran where their partitions were, and those
    // that h1 failed got theirs from h1, not from the driver.
    assert_eq!(second["input_bytes_sent"], 0, "the driver sent a partition again: {second}");
    assert!(second["input_peer_bytes"].as_u64().unwrap() > 0, "no host fetched a partition from another: {second}");
    assert_eq!(second["input_relayed_bytes"], 0, "{second}");
}
