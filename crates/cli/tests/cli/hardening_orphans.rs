//! Issue 17, found by the chaos soak, on the local transport: an agent
//! killed with SIGKILL leaves no task running (its guardian ends them at
//! once, so the driver sees the loss at once too) and no run scratch (its
//! guardian removes it; when the guardian was killed as well, the next
//! agent does).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shoal_testkit::process::{alive, stat};
use shoal_testkit::{local_cluster, pid_in, Shoal};

/// A task that writes its agent's pid and its own, leaves a process that
/// escaped its group (`setsid`, environment cleared) and one that stayed
/// in it with its environment cleared, and runs on.
fn job(pids: &Path) -> String {
    let p = pids.display();
    let command = format!(
        "echo $PPID > {p}/agent.pid; \
         setsid sh -c 'echo $$ > {p}/setsid.pid; exec sleep 300' >/dev/null 2>&1 < /dev/null & \
         env -i sh -c 'echo $$ > {p}/cleared.pid; exec sleep 300' >/dev/null 2>&1 < /dev/null & \
         echo $$ > {p}/task.pid; sleep 300"
    );
    format!("[job]\nmax_attempts = 1\n[input]\npath = \"data.txt\"\npartitions = 1\n[map]\ncommand = {command:?}\n[output]\npath = \"out/all.txt\"\n")
}

fn start(dir: &Path, cluster: &Path, pids: &Path) -> Child {
    fs::write(dir.join("data.txt"), "1\n").unwrap();
    fs::write(dir.join("job.toml"), job(pids)).unwrap();
    let child = Shoal::new()
        .command()
        .current_dir(dir)
        .env("HOME", dir.join("home"))
        .args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for f in ["task.pid", "setsid.pid", "cleared.pid"] {
        pid_in(&pids.join(f));
    }
    child
}

fn kill9(pid: i32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).stderr(Stdio::null()).status();
}

/// The task processes of `pids` still running `within` after now; kills
/// them either way, so that a failing test leaves nothing behind.
fn still_running(pids: &Path, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let procs: Vec<(&str, i32)> = ["task.pid", "setsid.pid", "cleared.pid"].iter().map(|f| (*f, pid_in(&pids.join(f)))).collect();
    while procs.iter().any(|(_, p)| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = procs.iter().filter(|(_, p)| alive(*p)).map(|(f, p)| format!("{f} {p}")).collect();
    procs.iter().for_each(|(_, p)| kill9(*p));
    left
}

/// The pid of `agent`'s guardian: its child running `agent-guard`.
fn guardian_of(agent: i32) -> Option<i32> {
    fs::read_dir("/proc").ok()?.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).find(|&pid| {
        let ppid = stat(pid).and_then(|s| s.rsplit_once(") ")?.1.split(' ').nth(1)?.parse::<i32>().ok());
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        ppid == Some(agent) && cmdline.split(|b| *b == 0).nth(1) == Some(b"agent-guard".as_slice())
    })
}

/// The entries of a host's run scratch (work dir `work`).
fn entries(work: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(work.join("runs")).map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect()).unwrap_or_default();
    names.sort();
    names
}

/// The runs whose scratch a host still holds: a dir set aside to be
/// removed (`.gone-*`) is no run's any more.
fn scratch(work: &Path) -> Vec<String> {
    entries(work).into_iter().filter(|n| !n.starts_with(".gone-")).collect()
}

/// Whether the host's run scratch is empty, set-aside dirs removed too,
/// within `secs`.
fn emptied(work: &Path, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !entries(work).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    entries(work).is_empty()
}

fn wait_until_ended(driver: &mut Child, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if driver.try_wait().ok().flatten().is_some() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = driver.kill();
    let _ = driver.wait();
    None
}

fn host_a(cluster: &Path) -> PathBuf {
    cluster.parent().unwrap().join("hosts/a")
}

#[test]
fn an_agent_killed_with_sigkill_leaves_no_task_running_and_no_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let pids = tempfile::tempdir().unwrap();
    let (_c, cluster) = local_cluster(1, 1);
    let mut driver = start(dir.path(), &cluster, pids.path());
    let agent = pid_in(&pids.path().join("agent.pid"));
    kill9(agent);
    let left = still_running(pids.path(), Duration::from_secs(5));
    // The heartbeat timeout is 15 s: the driver must not need it.
    let ended = wait_until_ended(&mut driver, Duration::from_secs(60));
    Shoal::new().in_dir(dir.path()).args(["check", "--cluster", cluster.to_str().unwrap()]).run().success();
    let scratch = scratch(&host_a(&cluster));
    assert!(
        left.is_empty() && ended.is_some_and(|t| t < Duration::from_secs(10)) && scratch.is_empty(),
        "after kill -9 of the agent: task processes still running 5 s later: {left:?}; the driver ended after {ended:?} \
         (the heartbeat timeout is 15 s); run scratch left after the next agent started: {scratch:?}"
    );
}

#[test]
fn scratch_left_by_an_agent_killed_with_its_guardian_is_removed_by_the_next_agent() {
    // As when a whole host is killed: agent, guardian and tasks at once.
    let dir = tempfile::tempdir().unwrap();
    let pids = tempfile::tempdir().unwrap();
    let (_c, cluster) = local_cluster(1, 1);
    let mut driver = start(dir.path(), &cluster, pids.path());
    let agent = pid_in(&pids.path().join("agent.pid"));
    let guardian = guardian_of(agent).expect("the agent has a guardian");
    kill9(guardian);
    kill9(agent);
    still_running(pids.path(), Duration::ZERO);
    wait_until_ended(&mut driver, Duration::from_secs(60));
    let work = host_a(&cluster);
    let left = scratch(&work);
    assert_eq!(left.len(), 1, "the killed agent's run scratch is there until the next agent starts: {left:?}");
    Shoal::new().in_dir(dir.path()).args(["check", "--cluster", cluster.to_str().unwrap()]).run().success();
    assert_eq!(scratch(&work), Vec::<String>::new(), "run scratch left after the next agent started");
    assert!(emptied(&work, 10), "what the next agent set aside is still there 10 s later: {:?}", entries(&work));
}
