//! Issue 17 items 4 and 8 on the local transport: every process a task
//! starts ends with it (setsid children, double forks, held pipes, a
//! killed driver, a lost host), and logs and lines stay bounded.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shoal_testkit::process::alive;
use shoal_testkit::{local_cluster, pid_in, Ran, Shoal};

/// Starts a process that escapes the task's process group (`setsid`) and
/// one that double-forks, each writing its pid to a file in `dir`; their
/// output goes elsewhere, so no pipe of the task stays open.
fn escapees(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "setsid sh -c 'echo $$ > {d}/setsid.pid; exec sleep 300' >/dev/null 2>&1 < /dev/null & \
         ( sh -c 'echo $$ > {d}/double.pid; exec sleep 300' >/dev/null 2>&1 < /dev/null & ) ; \
         while [ ! -s {d}/setsid.pid ] || [ ! -s {d}/double.pid ]; do sleep 0.05; done"
    )
}

fn job(command: &str, extra_map: &str) -> String {
    format!(
        "[job]\nmax_attempts = 1\n[input]\npath = \"data.txt\"\npartitions = 1\n[map]\ncommand = {command:?}\n{extra_map}[output]\npath = \"out/all.txt\"\n"
    )
}

fn job_dir(job: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("data.txt"), "1\n2\n").unwrap();
    fs::write(dir.path().join("job.toml"), job).unwrap();
    dir
}

fn run_job(dir: &Path, cluster: &Path) -> Ran {
    Shoal::new().in_job_dir(dir).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run()
}

/// Asserts that the process in `file` ends within `within`; kills it
/// either way, so that a failing test leaves nothing behind.
fn assert_ends(file: &Path, within: Duration, what: &str) {
    let pid = pid_in(file);
    let deadline = Instant::now() + within;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let still = alive(pid);
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).stderr(Stdio::null()).status();
    assert!(!still, "{what}: process {pid} ({}) still runs {within:?} later", file.display());
}

#[test]
fn timeout_holds_when_a_setsid_child_keeps_stderr_open() {
    let pids = tempfile::tempdir().unwrap();
    let p = pids.path().display();
    let command = format!("setsid sh -c 'echo $$ > {p}/held.pid; exec sleep 30' & wait");
    let dir = job_dir(&job(&command, "timeout = \"2s\"\n"));
    let (_c, cluster) = local_cluster(1, 1);
    let started = Instant::now();
    let ran = run_job(dir.path(), &cluster).code(1);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "the run took {took:?} with timeout = \"2s\"; a child holding stderr must not stretch it");
    assert!(ran.stderr.contains("timed out"), "{}", ran.stderr);
    assert_ends(&pids.path().join("held.pid"), Duration::from_secs(5), "a timed-out task's setsid child");
}

#[test]
fn setsid_and_double_forked_children_end_with_a_task_that_succeeds() {
    // Partition 0 leaves its escapees and exits 0; partition 1 (in the
    // other slot, same run) watches them and reports whether they ended
    // while the run still went on.
    let pids = tempfile::tempdir().unwrap();
    let p = pids.path().display();
    let watch = format!(
        "for f in setsid double; do while [ ! -s {p}/$f.pid ]; do sleep 0.05; done; done; \
         for i in $(seq 100); do kill -0 $(cat {p}/setsid.pid) 2>/dev/null || kill -0 $(cat {p}/double.pid) 2>/dev/null || break; sleep 0.1; done; \
         if kill -0 $(cat {p}/setsid.pid) 2>/dev/null; then echo setsid-alive; else echo setsid-gone; fi; \
         if kill -0 $(cat {p}/double.pid) 2>/dev/null; then echo double-alive; else echo double-gone; fi"
    );
    let command = format!("if [ $SHOAL_PARTITION = 0 ]; then {}; else {watch}; fi", escapees(pids.path()));
    let dir = job_dir(&job(&command, "").replace("partitions = 1", "partitions = 2"));
    let (_c, cluster) = local_cluster(1, 2);
    run_job(dir.path(), &cluster).success();
    let out = fs::read_to_string(dir.path().join("out/all.txt")).unwrap();
    assert_ends(&pids.path().join("setsid.pid"), Duration::from_secs(5), "after the run");
    assert_ends(&pids.path().join("double.pid"), Duration::from_secs(5), "after the run");
    assert_eq!(out, "setsid-gone\ndouble-gone\n", "the escapees of a finished task must end while the run goes on");
}

#[test]
fn setsid_and_double_forked_children_end_with_a_task_that_fails_or_times_out() {
    for (tail, map) in [("exit 3", ""), ("sleep 60", "timeout = \"2s\"\n")] {
        let pids = tempfile::tempdir().unwrap();
        let command = format!("{}; {tail}", escapees(pids.path()));
        let dir = job_dir(&job(&command, map));
        let (_c, cluster) = local_cluster(1, 1);
        let started = Instant::now();
        run_job(dir.path(), &cluster).code(1);
        assert!(started.elapsed() < Duration::from_secs(30), "`{tail}` took {:?}", started.elapsed());
        for f in ["setsid.pid", "double.pid"] {
            assert_ends(&pids.path().join(f), Duration::from_secs(5), &format!("after a task that ran `{tail}`"));
        }
    }
}

/// Starts `shoal run` in the background on a job whose task leaves
/// escapees and runs on; returns the driver once the escapees are up.
fn start_long_run(dir: &Path, cluster: &Path, pids: &Path) -> std::process::Child {
    let command = format!("{}; echo $$ > {}/task.pid; sleep 300", escapees(pids), pids.display());
    fs::write(dir.join("data.txt"), "1\n").unwrap();
    fs::write(dir.join("job.toml"), job(&command, "")).unwrap();
    let child = Shoal::new()
        .command()
        .current_dir(dir)
        .env("HOME", dir.join("home"))
        .env("NO_COLOR", "1")
        .args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    pid_in(&pids.join("task.pid"));
    child
}

#[test]
fn killing_the_driver_leaves_no_task_process_behind() {
    for signal in ["-KILL", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let pids = tempfile::tempdir().unwrap();
        let (_c, cluster) = local_cluster(1, 1);
        let mut driver = start_long_run(dir.path(), &cluster, pids.path());
        Command::new("kill").args([signal, &driver.id().to_string()]).status().unwrap();
        let _ = driver.wait();
        for f in ["task.pid", "setsid.pid", "double.pid"] {
            assert_ends(&pids.path().join(f), Duration::from_secs(10), &format!("after kill {signal} of the driver"));
        }
    }
}

#[test]
fn a_lost_host_is_asked_to_stop_and_its_tasks_end() {
    // A frozen agent: the driver declares its host lost after the
    // heartbeat timeout; the agent must still end what it started.
    let dir = tempfile::tempdir().unwrap();
    let pids = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster.toml");
    let work = dir.path().join("host-a");
    fs::write(&cluster, format!("[hosts.a]\ntransport = \"local\"\nslots = 1\nheartbeat_timeout = 2\nworkdir = \"{}\"\n", work.display()))
        .unwrap();
    let p = pids.path().display();
    let command = format!("echo $PPID > {p}/agent.pid; {}; echo $$ > {p}/task.pid; sleep 300", escapees(pids.path()));
    fs::write(dir.path().join("data.txt"), "1\n").unwrap();
    fs::write(dir.path().join("job.toml"), job(&command, "")).unwrap();
    let mut driver = Shoal::new()
        .command()
        .current_dir(dir.path())
        .env("HOME", dir.path().join("home"))
        .args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    pid_in(&pids.path().join("task.pid"));
    let agent = pid_in(&pids.path().join("agent.pid"));
    Command::new("kill").args(["-STOP", &agent.to_string()]).status().unwrap();
    let ended = wait_with_deadline(&mut driver, Duration::from_secs(60));
    assert!(ended, "the driver did not end after its only host was lost");
    for f in ["task.pid", "setsid.pid", "double.pid"] {
        assert_ends(&pids.path().join(f), Duration::from_secs(10), "after the host was lost");
    }
    let _ = Command::new("kill").args(["-9", &agent.to_string()]).stderr(Stdio::null()).status();
}

fn wait_with_deadline(child: &mut std::process::Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    false
}

#[test]
fn a_long_stderr_line_without_a_newline_is_logged_in_reasonable_time() {
    // 24 MB on one line: the driver once rescanned the whole pending line
    // for a newline on every 64 KiB chunk.
    let command = "yes x | tr -d '\\n' | head -c 24000000 >&2; echo done";
    let dir = job_dir(&job(command, ""));
    let (_c, cluster) = local_cluster(1, 1);
    let started = Instant::now();
    run_job(dir.path(), &cluster).success();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "a 24 MB stderr line took {took:?} to log");
    let logs = Shoal::new().in_dir(dir.path()).args(["logs", "latest", "--task", "0"]).run().success();
    let xs: usize = logs.stdout.bytes().filter(|b| *b == b'x').count();
    assert_eq!(xs, 24_000_000, "every byte of the line is in the log");
}

/// A data file whose second line is 70 MiB long.
fn long_line_input(dir: &Path) {
    let mut data = b"1\tshort\n2\t".to_vec();
    data.resize(data.len() + (70 << 20), b'v');
    data.extend_from_slice(b"\n3\tshort\n");
    fs::write(dir.join("data.txt"), data).unwrap();
}

#[test]
fn an_input_line_over_the_limit_is_refused_by_hash_and_range_splits() {
    for split in ["hash", "range"] {
        let dir = job_dir("");
        long_line_input(dir.path());
        let text = format!(
            "[input]\npath = \"data.txt\"\nsplit = \"{split}\"\npartitions = 2\nkey = {{ field = 1, sep = \"\\t\" }}\n[map]\ncommand = \"cat\"\n[output]\npath = \"out/all.txt\"\n"
        );
        fs::write(dir.path().join("job.toml"), text).unwrap();
        let (_c, cluster) = local_cluster(1, 1);
        let ran = run_job(dir.path(), &cluster).code(2);
        assert_eq!(
            ran.stderr.trim(),
            format!(
                "error: input data.txt: line 2 (at byte 8) is longer than 64 MiB, the longest line split = \"{split}\" reads; \
                 break it into shorter lines, or use split = \"lines\" or \"files\", which never hold a line in memory"
            )
        );
    }
}

/// A command that leaves a `setsid` child holding its stdout and stderr
/// (its pid in `pid`) and returns once the child is up.
fn setsid_holder(pid: &Path) -> String {
    let p = pid.display();
    format!("setsid sh -c 'echo $$ > {p}; exec sleep 30' & while [ ! -s {p} ]; do sleep 0.05; done")
}

#[test]
fn exec_returns_when_its_command_ends_even_if_a_setsid_child_holds_the_pipes() {
    let pids = tempfile::tempdir().unwrap();
    let held = pids.path().join("held.pid");
    let (dir, cluster) = local_cluster(1, 1);
    let command = format!("{}; echo started", setsid_holder(&held));
    let mut exec = Shoal::new()
        .command()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(["exec", "--cluster", cluster.to_str().unwrap(), "--", &command])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ended = wait_with_deadline(&mut exec, Duration::from_secs(15));
    assert!(ended, "`shoal exec` still ran 15 s later: it waited for the pipes its command's setsid child holds (30 s)");
    let out = exec.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("started\n"), "{out:?}");
    assert_ends(&held, Duration::from_secs(5), "the setsid child of an exec command");
}

#[test]
fn a_combiner_whose_setsid_child_holds_stderr_does_not_stretch_the_map_task() {
    let pids = tempfile::tempdir().unwrap();
    let held = pids.path().join("held.pid");
    let combine = format!("{}; cat", setsid_holder(&held));
    let text = format!(
        "[job]\nmax_attempts = 1\n[input]\npath = \"data.txt\"\npartitions = 1\n[map]\ncommand = \"cat\"\n\
         [combine]\ncommand = {combine:?}\n[reduce]\ncommand = \"cat\"\npartitions = 1\n[output]\npath = \"out/all.txt\"\n"
    );
    let dir = job_dir(&text);
    let (_c, cluster) = local_cluster(1, 1);
    let started = Instant::now();
    run_job(dir.path(), &cluster).success();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "the run took {took:?}: the map task waited for the combiner's setsid child (30 s)");
    assert_eq!(fs::read_to_string(dir.path().join("out/all.txt")).unwrap(), "1\n2\n");
    assert_ends(&held, Duration::from_secs(5), "the setsid child of a combiner");
}
