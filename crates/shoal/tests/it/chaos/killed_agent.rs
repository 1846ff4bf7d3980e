//! The soak's most common leftover, made on purpose: one agent killed with
//! `kill -9` (as the OOM killer or an admin would) while its tasks run.
//! Nothing it started may keep running, and its run's scratch must go.
//!
//! The agent's guardian (`agent/guard.rs`) ends its tasks at once, which
//! also closes its ssh session, so the driver sees the loss at once; and
//! it removes the run's scratch (`agent/scratch.rs`), as the next agent on
//! the host would.

use std::process::{Child, Command, Stdio};

use shoal_testkit::netns::{self, heal_all, pid_list, script, Cluster};
use shoal_testkit::process::wait_for;
use shoal_testkit::Shoal;

use super::checks::{run_ids, scratch_left};

fn start(dir: &std::path::Path, c: &Cluster) -> Child {
    let data: String = (0..600).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("data.txt"), data).unwrap();
    let job = "[input]\npath = \"data.txt\"\npartitions = 6\n[map]\ncommand = \"sleep 60; cat\"\n[output]\npath = \"out/result.txt\"\n";
    std::fs::write(dir.join("job.toml"), job).unwrap();
    Shoal::new()
        .command()
        .args(["run", "job.toml", "--json", "--cluster", &c.file.display().to_string()])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("driver.err")).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn an_agent_killed_with_kill_9_leaves_no_task_running_and_no_scratch() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let dir = tempfile::tempdir().unwrap();
    let mut driver = start(dir.path(), c);
    let tasks_on_h2 = || c.strays("h2").into_iter().filter(|p| p.contains("sleep 60")).collect::<Vec<_>>();
    if !wait_for(30, || !tasks_on_h2().is_empty()) {
        let _ = driver.kill();
        let _ = driver.wait();
        let err = std::fs::read_to_string(dir.path().join("driver.err")).unwrap_or_default();
        panic!("no task of the job ever ran on h2; the driver said:\n{err}");
    }
    let agents = pid_list(&script(&["agents", "h2"]));
    let _ = Command::new("kill").arg("-9").args(agents.iter().map(u32::to_string)).status();
    wait_for(5, || tasks_on_h2().is_empty());
    let running = tasks_on_h2();
    let _ = Command::new("kill").args(["-INT", &driver.id().to_string()]).status();
    let _ = driver.wait();
    c.start_fresh_agents();
    let scratch = scratch_left(c, &run_ids(dir.path()));
    // What the agent left must not reach the next test.
    let _ = script(&["kill", "h2"]);
    heal_all();
    assert!(
        running.is_empty() && scratch.is_empty(),
        "after kill -9 of h2's agent {agents:?}: task processes still running 5 s later: {running:?}; its run's scratch still there after a fresh agent started: {scratch:?}"
    );
}
