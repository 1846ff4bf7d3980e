//! Cluster tests: the real binary against N hosts made by
//! `scripts/testcluster`, each a network namespace with its own address
//! and its own sshd. They need root; in CI (`CI=true`) a missing
//! prerequisite is a failure, elsewhere the tests say why and skip.
//!
//! All tests share one 3-host cluster and take a lock, because faults (a
//! killed sshd, a cut link) must not leak into a neighbour test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use shoal_testkit::netns::{self, heal_all, script, Cluster, HOSTS};
use shoal_testkit::process::wait_for;
use shoal_testkit::{bin, Shoal};

fn cl(c: &Cluster) -> String {
    c.arg()
}

#[test]
fn check_shows_all_three_and_second_check_uploads_nothing() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    for h in HOSTS {
        let _ = std::fs::remove_dir_all(c.dir.join(h).join("work/bin"));
    }
    let first = Shoal::new().in_dir(&c.dir).args(["check", "--json", "--cluster", &cl(c)]).run().success().json();
    let rows = first.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r["ready"], true, "{r}");
        assert!(r["uploaded_bytes"].as_u64().unwrap() > 0, "first check uploads the agent: {r}");
    }
    let second = Shoal::new().in_dir(&c.dir).args(["check", "--json", "--cluster", &cl(c)]).run().success().json();
    for r in second.as_array().unwrap() {
        assert_eq!(r["uploaded_bytes"], 0, "second check must upload nothing: {r}");
    }
}

/// An agent binary cut short in a host's cache (as an older installer
/// left it when the driver died mid-upload) is uploaded again, not run.
#[test]
fn a_cached_agent_cut_short_is_uploaded_again() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    Shoal::new().in_dir(&c.dir).args(["check", "--cluster", &cl(c), "--hosts", "h1"]).run().success();
    let bin_dir = c.dir.join("h1/work/bin");
    for e in std::fs::read_dir(&bin_dir).unwrap() {
        let path = e.unwrap().path();
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    }
    let again = Shoal::new().in_dir(&c.dir).args(["check", "--json", "--cluster", &cl(c), "--hosts", "h1"]).run().success().json();
    let row = &again.as_array().unwrap()[0];
    assert_eq!(row["ready"], true, "{row}");
    assert!(row["uploaded_bytes"].as_u64().unwrap() > 0, "the cut binary is replaced: {row}");
}

#[test]
fn exec_groups_output_across_hosts() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let ran = Shoal::new()
        .in_dir(&c.dir)
        .args(["exec", "--cluster", &cl(c), "--", "echo same; if hostname -I | grep -q 10.177.0.12; then echo two; fi"])
        .run()
        .success();
    assert!(ran.stdout.contains("---------------- h1,h3 (exit code 0)\nsame\n"), "{}", ran.stdout);
    assert!(ran.stdout.contains("---------------- h2 (exit code 0)\nsame\ntwo\n"), "{}", ran.stdout);
}

#[test]
fn killed_sshd_is_reported_with_reason() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    assert!(script(&["kill", "h2"]).status.success());
    let ran = Shoal::new().in_dir(&c.dir).args(["check", "--cluster", &cl(c)]).run().code(3);
    heal_all();
    assert!(ran.stdout.contains("h2: ssh to 10.177.0.12 failed"), "{}", ran.stdout);
    assert!(ran.stdout.contains("Connection refused") || ran.stdout.contains("No route"), "{}", ran.stdout);
    assert!(ran.stdout.contains("is sshd running on that host and port?") || ran.stdout.contains("cannot reach"), "{}", ran.stdout);
}

#[test]
fn cut_link_is_reported_within_the_timeout() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    assert!(script(&["cut", "h3"]).status.success());
    let started = Instant::now();
    let ran = Shoal::new().in_dir(&c.dir).args(["check", "--cluster", &cl(c)]).run().code(3);
    let took = started.elapsed();
    heal_all();
    assert!(ran.stdout.contains("h3: "), "{}", ran.stdout);
    assert!(ran.stdout.lines().filter(|l| l.contains("ready")).count() == 2, "{}", ran.stdout);
    // connect_timeout is 5 s in the test cluster; allow the handshake bound.
    assert!(took < Duration::from_secs(25), "took {took:?}");
}

#[test]
fn wrong_known_hosts_is_a_host_key_error() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let text = std::fs::read_to_string(&c.file).unwrap();
    let bad_known = c.dir.join("bad_known_hosts");
    let other_key = std::fs::read_to_string(c.dir.join("h2/ssh_host_ed25519_key.pub")).unwrap();
    std::fs::write(&bad_known, format!("10.177.0.11 {other_key}")).unwrap();
    let bad = c.dir.join("bad-cluster.toml");
    std::fs::write(&bad, text.replace(&c.dir.join("known_hosts").display().to_string(), &bad_known.display().to_string())).unwrap();
    let ran = Shoal::new().in_dir(&c.dir).args(["check", "--cluster", bad.to_str().unwrap(), "--hosts", "h1"]).run().code(3);
    assert!(ran.stdout.contains("h1: ssh to 10.177.0.11 failed"), "{}", ran.stdout);
    assert!(ran.stdout.contains("host key"), "{}", ran.stdout);
}

#[test]
fn no_agent_survives_a_killed_driver() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let mut driver = Shoal::new().command().args(["exec", "--cluster", &cl(c), "--", "sleep 60"]).current_dir(&c.dir).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(agents_running(c) > 0, "agents should be up while the driver runs");
    driver.kill().unwrap();
    let _ = driver.wait();
    // heartbeat_timeout is 5 s in the test cluster.
    let deadline = Instant::now() + Duration::from_secs(15);
    while agents_running(c) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(agents_running(c), 0, "an agent outlived its driver");
    assert_eq!(sleeps_running(c), 0, "a task process outlived its agent");
}

fn agents_running(c: &Cluster) -> usize {
    count_procs(c, |cmd| cmd.contains("shoal-") && cmd.contains(" agent "))
}

fn sleeps_running(c: &Cluster) -> usize {
    count_procs(c, |cmd| cmd == "sleep 60")
}

/// The processes on the cluster's hosts whose trimmed command line passes
/// `pred` (only there: the local tests of this binary run beside it).
fn count_procs(c: &Cluster, pred: impl Fn(&str) -> bool) -> usize {
    HOSTS.iter().map(|h| c.procs_where(h, |cmd| pred(cmd.trim())).len()).sum()
}

#[test]
fn examples_run_on_three_hosts() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let cl = cl(c);
    Shoal::example("ssh-runner")
        .args(["--cluster", &cl])
        .env("CORPUS_BYTES", "1000000")
        .run()
        .success()
        .stdout_has("ssh-runner: output matches the single-machine reference");
    Shoal::example("job-splitter")
        .args(["--cluster", &cl])
        .run()
        .success()
        .stdout_has("job-splitter: 30 results match the one-by-one reference");
    Shoal::example("split-copy")
        .args(["--cluster", &cl])
        .run()
        .success()
        .stdout_has("split-copy: 3 partitions, no input re-sent, sums match, pulled chunks rebuild the file");
    Shoal::example("wordcount-streaming")
        .args(["--cluster", &cl])
        .env("CORPUS_BYTES", "500000")
        .run()
        .success()
        .stdout_has("words match the reference, with and without combining");
    Shoal::example("key-sharded")
        .args(["--cluster", &cl])
        .run()
        .success()
        .stdout_has("key-sharded: 1000 keys, each on shard key mod 5, state matches the reference");
}

// ---- failures on the 3-host cluster (issue: failure is normal) ----

/// A job dir: `data.txt` of `lines` lines, and a job file with `command`
/// over `partitions` partitions.
fn fault_job(c: &Cluster, name: &str, partitions: u32, command: &str, extra: &str) -> PathBuf {
    let dir = c.dir.join("jobs").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data: String = (0..3000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("data.txt"), data).unwrap();
    let job = format!(
        "[job]\nname = \"{name}\"\n{extra}\n[input]\npath = \"data.txt\"\npartitions = {partitions}\n[map]\ncommand = '''{command}'''\n[output]\npath = \"out/result.txt\"\n"
    );
    std::fs::write(dir.join("job.toml"), job).unwrap();
    dir
}

fn start_run(c: &Cluster, dir: &Path, extra: &[&str]) -> std::process::Child {
    Shoal::new()
        .command()
        .args(["run", "job.toml", "--json", "--cluster", &cl(c)])
        .args(extra)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish_run(child: std::process::Child) -> (i32, serde_json::Value, String) {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn output_is_input(dir: &Path) {
    let got = std::fs::read(dir.join("out/result.txt")).expect("output exists");
    assert_eq!(got, std::fs::read(dir.join("data.txt")).unwrap(), "output differs from the single-machine reference");
    let extra: Vec<_> = std::fs::read_dir(dir.join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(extra.len(), 1, "no extra files in out/: {extra:?}");
}

fn no_leftovers(c: &Cluster) {
    for h in HOSTS {
        assert!(wait_for(15, || c.procs_on(h, " agent ").is_empty() && c.procs_on(h, "sleep").is_empty()), "processes left on {h}");
    }
}

fn outcomes(summary: &serde_json::Value) -> Vec<String> {
    summary["attempts"].as_array().map(|a| a.iter().map(|x| x["outcome"].as_str().unwrap_or("").to_string()).collect()).unwrap_or_default()
}

#[test]
fn a_task_failing_once_per_host_is_retried_and_succeeds() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let marks = c.dir.join("jobs/marks");
    let _ = std::fs::remove_dir_all(&marks);
    std::fs::create_dir_all(&marks).unwrap();
    let cmd = format!(
        "m={}/$SHOAL_HOST.$SHOAL_PARTITION; if [ ! -e $m ]; then touch $m; echo first try fails >&2; exit 1; fi; cat",
        marks.display()
    );
    let dir = fault_job(c, "retry", 6, &cmd, "max_attempts = 4\nexclude_after = 100");
    let (code, summary, stderr) = finish_run(start_run(c, &dir, &[]));
    assert_eq!(code, 0, "{stderr}");
    output_is_input(&dir);
    let failed = outcomes(&summary).iter().filter(|o| *o == "failed").count();
    assert!(failed >= 6, "every task failed at least once: {summary}");
    assert_eq!(summary["status"], "succeeded");
}

#[test]
fn a_task_that_always_fails_fails_the_job_and_keeps_the_old_output() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let dir = fault_job(c, "always", 3, "cat", "");
    assert_eq!(finish_run(start_run(c, &dir, &[])).0, 0);
    let before = std::fs::read(dir.join("out/result.txt")).unwrap();
    let (code, _, stderr) =
        finish_run(start_run(c, &dir, &["--set", "map.command=if [ $SHOAL_PARTITION = 1 ]; then echo boom >&2; exit 7; fi; cat"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("task 1 (partition 1, input data.txt) failed 4 times, on: "), "{stderr}");
    assert!(stderr.contains("(exit code 7)") && stderr.contains("  | boom"), "{stderr}");
    for h in HOSTS {
        assert!(stderr.contains(h), "every host it failed on is named: {stderr}");
    }
    assert_eq!(std::fs::read(dir.join("out/result.txt")).unwrap(), before);
    no_leftovers(c);
}

#[test]
fn a_killed_host_loses_its_tasks_to_the_others_without_charge() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let dir = fault_job(c, "killhost", 12, "sleep 2; cat", "max_attempts = 1");
    let run = start_run(c, &dir, &[]);
    assert!(wait_for(20, || !c.procs_on("h2", "sleep 2").is_empty()), "h2 never ran a task");
    let killed_at = Instant::now();
    assert!(script(&["kill", "h2"]).status.success());
    let (code, summary, stderr) = finish_run(run);
    heal_all();
    assert_eq!(code, 0, "max_attempts = 1 and still fine: host loss is not charged\n{stderr}");
    output_is_input(&dir);
    assert!(outcomes(&summary).iter().any(|o| o == "lost"), "{summary}");
    assert!(stderr.contains("host `h2` lost"), "{stderr}");
    eprintln!("measured: run finished {:?} after h2 was killed", killed_at.elapsed());
}

#[test]
fn a_cut_link_is_detected_and_the_old_agent_dies_by_its_lease() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let dir = fault_job(c, "cut", 9, "sleep 3; cat", "");
    let run = start_run(c, &dir, &[]);
    assert!(wait_for(20, || !c.procs_on("h3", "sleep 3").is_empty()), "h3 never ran a task");
    assert!(script(&["cut", "h3"]).status.success());
    let cut_at = Instant::now();
    let (code, summary, stderr) = finish_run(run);
    assert_eq!(code, 0, "{stderr}");
    output_is_input(&dir);
    // ssh's own keepalive (ServerAliveInterval) or our heartbeat, whichever
    // notices first: both are bounded by the 5 s heartbeat timeout.
    assert!(stderr.contains("host `h3` lost: "), "{stderr}");
    assert!(outcomes(&summary).iter().any(|o| o == "lost"), "{summary}");
    let took = cut_at.elapsed();
    assert!(script(&["heal", "h3"]).status.success());
    // The agent on h3 never heard from its driver again: its lease ends it.
    assert!(
        wait_for(15, || c.procs_on("h3", " agent ").is_empty() && c.procs_on("h3", "sleep 3").is_empty()),
        "old agent or task still on h3"
    );
    eprintln!("measured: run with a cut link finished {took:?} after the cut");
}

#[test]
fn a_frozen_agent_is_detected_and_not_committed_twice() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let dir = fault_job(c, "frozen", 9, "sleep 2; cat", "");
    let run = start_run(c, &dir, &[]);
    assert!(wait_for(20, || !c.procs_on("h1", " agent ").is_empty() && !c.procs_on("h1", "sleep 2").is_empty()));
    let agents = c.procs_on("h1", " agent ");
    for p in &agents {
        unsafe { libc_kill(*p as i32, 19) }; // SIGSTOP
    }
    let (code, summary, stderr) = finish_run(run);
    for p in &agents {
        unsafe { libc_kill(*p as i32, 18) }; // SIGCONT
    }
    assert_eq!(code, 0, "{stderr}");
    output_is_input(&dir);
    assert!(stderr.contains("host `h1` lost: no heartbeat"), "{stderr}");
    let committed = outcomes(&summary).iter().filter(|o| *o == "succeeded").count();
    assert_eq!(committed, 9, "one committed attempt per partition: {summary}");
    no_leftovers(c);
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn speculation_copies_a_straggler_and_kills_the_loser() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let marks = c.dir.join("jobs/spec-marks");
    let _ = std::fs::remove_dir_all(&marks);
    std::fs::create_dir_all(&marks).unwrap();
    let cmd =
        format!("if [ $SHOAL_PARTITION = 4 ] && [ ! -e {m}/slow ]; then touch {m}/slow; sleep 60; fi; sleep 1; cat", m = marks.display());
    let dir = fault_job(c, "speculate", 8, &cmd, "");
    let started = Instant::now();
    let (code, summary, stderr) = finish_run(start_run(c, &dir, &["--speculate"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(40), "the copy won: {:?}", started.elapsed());
    output_is_input(&dir);
    let attempts = summary["attempts"].as_array().unwrap();
    assert!(attempts.iter().any(|a| a["speculative"] == true && a["outcome"] == "succeeded"), "{summary}");
    assert!(attempts.iter().any(|a| a["task"] == 4 && a["outcome"] == "killed"), "{summary}");
    no_leftovers(c);
}

#[test]
fn resume_after_the_driver_is_killed_reuses_finished_tasks() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let dir = fault_job(c, "resume", 12, "sleep 1; cat", "");
    let mut run = start_run(c, &dir, &[]);
    let journal = || {
        std::fs::read_dir(dir.join(".shoal/runs"))
            .ok()
            .and_then(|mut d| d.find_map(|e| std::fs::read_to_string(e.ok()?.path().join("journal.jsonl")).ok()))
    };
    assert!(wait_for(30, || journal().is_some_and(|j| j.lines().count() >= 4)), "no progress");
    run.kill().unwrap(); // SIGKILL
    let _ = run.wait();
    let done_before = journal().unwrap().lines().count();
    assert!(!dir.join("out/result.txt").exists(), "no output from a killed run");
    no_leftovers(c);
    let (code, summary, stderr) = finish_run(start_run(c, &dir, &["--resume"]));
    assert_eq!(code, 0, "{stderr}");
    output_is_input(&dir);
    let reused = summary["reused"].as_u64().unwrap() as usize;
    assert!(reused >= done_before, "reused {reused} of {done_before} journaled tasks");
    assert_eq!(summary["attempts"].as_array().unwrap().len(), 12 - reused, "finished tasks are not rerun");
    eprintln!("measured: resume reused {reused} of 12 tasks");
}

#[test]
fn ctrl_c_stops_every_task_and_says_how_to_resume() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let dir = fault_job(c, "interrupt", 6, "sleep 30; cat", "");
    let run = start_run(c, &dir, &[]);
    assert!(wait_for(20, || HOSTS.iter().all(|h| !c.procs_on(h, "sleep 30").is_empty())), "tasks never started");
    unsafe { libc_kill(run.id() as i32, 2) }; // SIGINT
    let (code, _, stderr) = finish_run(run);
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("interrupted; finished tasks are kept in its journal; resume with: shoal run job.toml --resume "), "{stderr}");
    no_leftovers(c);
}

/// Runs a shell command in the mount namespace of host `h`'s sshd, which
/// its agents inherit (`ip netns exec` gives each host a mount namespace of
/// its own, so a mount made out here would not be seen there).
fn in_mounts_of(c: &Cluster, h: &str, cmd: &str) -> bool {
    let pid = std::fs::read_to_string(c.dir.join(h).join("sshd.pid")).unwrap();
    Command::new("nsenter").args(["-t", pid.trim(), "-m", "sh", "-c", cmd]).status().unwrap().success()
}

#[test]
fn a_full_disk_on_one_host_moves_its_tasks_elsewhere() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    // h2's work dir on a small tmpfs: room for the agent binary, then none;
    // private, as the agent accepts only a work dir others cannot write.
    let small = c.dir.join("small-h2");
    std::fs::create_dir_all(&small).unwrap();
    let size = std::fs::metadata(bin::shoal()).unwrap().len() / (1 << 20) + 8;
    in_mounts_of(c, "h2", &format!("umount {0} 2>/dev/null; mount -t tmpfs -o size={size}m,mode=0700 tmpfs {0}", small.display()));
    let text = std::fs::read_to_string(&c.file).unwrap();
    let full = c.dir.join("full-cluster.toml");
    std::fs::write(&full, text.replace(&format!("{}/h2/work", c.dir.display()), &small.display().to_string())).unwrap();
    let check = Shoal::new().in_dir(&c.dir).args(["check", "--cluster", full.to_str().unwrap(), "--hosts", "h2"]).run();
    in_mounts_of(c, "h2", &format!("dd if=/dev/zero of={}/filler bs=1M 2>/dev/null; true", small.display()));
    let dir = fault_job(c, "fulldisk", 9, "cat", "");
    let ran = Shoal::new().in_dir(&dir).args(["run", "job.toml", "--cluster", full.to_str().unwrap()]).run();
    in_mounts_of(c, "h2", &format!("umount {}", small.display()));
    assert_eq!(check.code, 0, "h2 deploys onto the small disk: {}", check.stdout);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    output_is_input(&dir);
    assert!(ran.stderr.contains("h2") && ran.stderr.to_lowercase().contains("no space left on device"), "{}", ran.stderr);
}

#[test]
fn losing_a_host_with_map_outputs_reruns_only_its_maps() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let dir = c.dir.join("jobs/shuffle-loss");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data: String = (0..6000).map(|i| format!("k{}\t1\n", i % 101)).collect();
    std::fs::write(dir.join("data.txt"), &data).unwrap();
    std::fs::write(
        dir.join("job.toml"),
        "[input]\npath = \"data.txt\"\npartitions = 6\n[map]\ncommand = \"cat\"\n[reduce]\npartitions = 6\ncommand = \"sleep 4; awk -F'\\\\t' '{ s[$1] += $2 } END { for (k in s) print k \\\"\\\\t\\\" s[k] }'\"\n[output]\npath = \"out/result.txt\"\n",
    )
    .unwrap();
    let run = start_run(c, &dir, &[]);
    assert!(wait_for(30, || !c.procs_on("h2", "sleep 4").is_empty()), "no reducer ran on h2");
    assert!(script(&["kill", "h2"]).status.success());
    let (code, summary, stderr) = finish_run(run);
    heal_all();
    assert_eq!(code, 0, "{stderr}");
    let mut got: Vec<String> = std::fs::read_to_string(dir.join("out/result.txt")).unwrap().lines().map(String::from).collect();
    got.sort();
    let mut want: Vec<String> = (0..101).map(|k| format!("k{k}\t{}", 6000 / 101 + usize::from(k < 6000 % 101))).collect();
    want.sort();
    assert_eq!(got, want);
    let attempts = summary["attempts"].as_array().unwrap();
    let first_maps_on_h2: std::collections::BTreeSet<u64> = attempts
        .iter()
        .filter(|a| a["stage"] == 0 && a["host"] == "h2" && a["outcome"] == "succeeded")
        .map(|a| a["task"].as_u64().unwrap())
        .collect();
    let map_runs = |t: u64| attempts.iter().filter(|a| a["stage"] == 0 && a["task"] == t).count();
    for t in 0..6u64 {
        let want_runs = if first_maps_on_h2.contains(&t) { 2 } else { 1 };
        assert_eq!(map_runs(t), want_runs, "map {t} (on h2: {}) ran {} times: {summary}", first_maps_on_h2.contains(&t), map_runs(t));
    }
    assert!(!first_maps_on_h2.is_empty(), "h2 ran some maps: {summary}");
}
