//! Cluster tests: the real binary against N hosts made by
//! `scripts/testcluster`, each a network namespace with its own address
//! and its own sshd. They need root; in CI (`CI=true`) a missing
//! prerequisite is a failure, elsewhere the tests say why and skip.
//!
//! All tests share one 3-host cluster and take a lock, because faults (a
//! killed sshd, a cut link) must not leak into a neighbour test.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use support::shoal;

struct TestCluster {
    dir: PathBuf,
    cluster: PathBuf,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn script(args: &[&str]) -> std::process::Output {
    Command::new(repo().join("scripts/testcluster"))
        .args(args)
        .env("SHOAL_TESTCLUSTER_DIR", cluster_dir())
        .output()
        .expect("run scripts/testcluster")
}

fn cluster_dir() -> PathBuf {
    std::env::temp_dir().join("shoal-testcluster-tests")
}

/// Brings the shared cluster up once per test binary.
fn cluster() -> Option<(MutexGuard<'static, ()>, &'static TestCluster)> {
    static LOCK: Mutex<()> = Mutex::new(());
    static UP: OnceLock<Result<TestCluster, String>> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let up = UP.get_or_init(|| {
        let out = script(&["up", "3"]);
        if !out.status.success() {
            return Err(format!(
                "scripts/testcluster up 3 failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(TestCluster { dir: cluster_dir(), cluster: cluster_dir().join("cluster.toml") })
    });
    match up {
        Ok(c) => Some((guard, c)),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("cluster tests must run in CI: {why}")
        }
        Err(why) => {
            eprintln!("skipping cluster test: {why}");
            None
        }
    }
}

fn heal_all() {
    for h in ["h1", "h2", "h3"] {
        let _ = script(&["heal", h]);
        let _ = script(&["restart", h]);
    }
}

fn cl(c: &TestCluster) -> String {
    c.cluster.display().to_string()
}

#[test]
fn check_shows_all_three_and_second_check_uploads_nothing() {
    let Some((_g, c)) = cluster() else { return };
    heal_all();
    for h in ["h1", "h2", "h3"] {
        let _ = std::fs::remove_dir_all(c.dir.join(h).join("work/bin"));
    }
    let first = shoal(&c.dir).args(["check", "--json", "--cluster", &cl(c)]).run().success().json();
    let rows = first.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r["ready"], true, "{r}");
        assert!(r["uploaded_bytes"].as_u64().unwrap() > 0, "first check uploads the agent: {r}");
    }
    let second = shoal(&c.dir).args(["check", "--json", "--cluster", &cl(c)]).run().success().json();
    for r in second.as_array().unwrap() {
        assert_eq!(r["uploaded_bytes"], 0, "second check must upload nothing: {r}");
    }
}

#[test]
fn exec_groups_output_across_hosts() {
    let Some((_g, c)) = cluster() else { return };
    heal_all();
    let ran = shoal(&c.dir)
        .args(["exec", "--cluster", &cl(c), "--", "echo same; if hostname -I | grep -q 10.177.0.12; then echo two; fi"])
        .run()
        .success();
    assert!(ran.stdout.contains("---------------- h1,h3 (exit code 0)\nsame\n"), "{}", ran.stdout);
    assert!(ran.stdout.contains("---------------- h2 (exit code 0)\nsame\ntwo\n"), "{}", ran.stdout);
}

#[test]
fn killed_sshd_is_reported_with_reason() {
    let Some((_g, c)) = cluster() else { return };
    heal_all();
    assert!(script(&["kill", "h2"]).status.success());
    let ran = shoal(&c.dir).args(["check", "--cluster", &cl(c)]).run().code(3);
    heal_all();
    assert!(ran.stdout.contains("h2: ssh to 10.177.0.12 failed"), "{}", ran.stdout);
    assert!(ran.stdout.contains("Connection refused") || ran.stdout.contains("No route"), "{}", ran.stdout);
    assert!(ran.stdout.contains("is sshd running on that host and port?") || ran.stdout.contains("cannot reach"), "{}", ran.stdout);
}

#[test]
fn cut_link_is_reported_within_the_timeout() {
    let Some((_g, c)) = cluster() else { return };
    heal_all();
    assert!(script(&["cut", "h3"]).status.success());
    let started = Instant::now();
    let ran = shoal(&c.dir).args(["check", "--cluster", &cl(c)]).run().code(3);
    let took = started.elapsed();
    heal_all();
    assert!(ran.stdout.contains("h3: "), "{}", ran.stdout);
    assert!(ran.stdout.lines().filter(|l| l.contains("ready")).count() == 2, "{}", ran.stdout);
    // connect_timeout is 5 s in the test cluster; allow the handshake bound.
    assert!(took < Duration::from_secs(25), "took {took:?}");
}

#[test]
fn wrong_known_hosts_is_a_host_key_error() {
    let Some((_g, c)) = cluster() else { return };
    heal_all();
    let text = std::fs::read_to_string(&c.cluster).unwrap();
    let bad_known = c.dir.join("bad_known_hosts");
    let other_key = std::fs::read_to_string(c.dir.join("h2/ssh_host_ed25519_key.pub")).unwrap();
    std::fs::write(&bad_known, format!("10.177.0.11 {other_key}")).unwrap();
    let bad = c.dir.join("bad-cluster.toml");
    std::fs::write(&bad, text.replace(&c.dir.join("known_hosts").display().to_string(), &bad_known.display().to_string())).unwrap();
    let ran = shoal(&c.dir).args(["check", "--cluster", bad.to_str().unwrap(), "--hosts", "h1"]).run().code(3);
    assert!(ran.stdout.contains("h1: ssh to 10.177.0.11 failed"), "{}", ran.stdout);
    assert!(ran.stdout.contains("host key"), "{}", ran.stdout);
}

#[test]
fn no_agent_survives_a_killed_driver() {
    let Some((_g, c)) = cluster() else { return };
    heal_all();
    let mut driver = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["exec", "--cluster", &cl(c), "--", "sleep 60"])
        .current_dir(&c.dir)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(agents_running() > 0, "agents should be up while the driver runs");
    driver.kill().unwrap();
    let _ = driver.wait();
    // heartbeat_timeout is 5 s in the test cluster.
    let deadline = Instant::now() + Duration::from_secs(15);
    while agents_running() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(agents_running(), 0, "an agent outlived its driver");
    assert_eq!(sleeps_running(), 0, "a task process outlived its agent");
}

fn agents_running() -> usize {
    count_procs(|cmd| cmd.contains("shoal-") && cmd.contains(" agent "))
}

fn sleeps_running() -> usize {
    count_procs(|cmd| cmd == "sleep 60")
}

fn count_procs(pred: impl Fn(&str) -> bool) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string())
        .filter(|c| pred(c))
        .count()
}

#[test]
fn examples_run_on_three_hosts() {
    let Some((_g, c)) = cluster() else { return };
    heal_all();
    let cl = cl(c);
    let (_d, out) = support::run_example("ssh-runner", &["--cluster", &cl], &[("CORPUS_BYTES", "1000000")]);
    support::example_ok(&out, "ssh-runner: output matches the single-machine reference");
    let (_d, out) = support::run_example("job-splitter", &["--cluster", &cl], &[]);
    support::example_ok(&out, "job-splitter: 30 results match the one-by-one reference");
    let (_d, out) = support::run_example("split-copy", &["--cluster", &cl], &[]);
    support::example_ok(&out, "split-copy: 3 partitions, no input re-sent, sums match, pulled chunks rebuild the file");
    let (_d, out) = support::run_example("wordcount-streaming", &["--cluster", &cl], &[("CORPUS_BYTES", "500000")]);
    support::example_ok(&out, "words match the reference, with and without combining");
    let (_d, out) = support::run_example("key-sharded", &["--cluster", &cl], &[]);
    support::example_ok(&out, "key-sharded: 1000 keys, each on shard key mod 5, state matches the reference");
}
