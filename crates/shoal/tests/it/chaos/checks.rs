//! What must hold after every job, once its faults are healed (the output
//! itself is checked by `jobs`):
//!
//! - no task committed twice: every `journal.jsonl` of the job's runs
//!   names each task at most once, and the last run's names every task
//!   whose output makes the job's output;
//! - nothing left running: no process in any host but its listening sshd
//!   (agents cut off or frozen get their lease, plus grace, to go);
//! - nothing left in scratch: no host's `<workdir>/runs/` holds a run of
//!   the soak once a fresh agent has started there (see [`scratch_left`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use shoal_testkit::netns::{Cluster, HOSTS};

use super::jobs::Job;

/// Long enough for an agent that lost its driver to notice (its lease is
/// the cluster's 5 s heartbeat timeout) and clean up.
const GRACE: Duration = Duration::from_secs(20);

/// Checks a finished job; `last_run` is the id of the run that produced
/// its output, when the job is one run.
pub fn after_job(cluster: &Cluster, job: &Job, last_run: Option<&str>) -> Result<(), String> {
    let runs = run_ids(&job.dir);
    for run in &runs {
        committed_once(job, run, last_run == Some(run.as_str()))?;
    }
    nothing_running(cluster)
}

/// The ids of the runs started in `dir` (`.shoal/runs/<id>/`).
pub fn run_ids(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join(".shoal/runs")) else {
        return Vec::new();
    };
    let mut ids: Vec<String> =
        entries.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).filter_map(|e| e.file_name().into_string().ok()).collect();
    ids.sort();
    ids
}

fn committed_once(job: &Job, run: &str, last: bool) -> Result<(), String> {
    let path = job.dir.join(".shoal/runs").join(run).join("journal.jsonl");
    let text = match std::fs::read_to_string(&path) {
        // The driver makes a run's journal once it has synced: a run that
        // lost every host before that committed nothing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !last => return Ok(()),
        read => read.map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    };
    let mut commits: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let entry: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("run {run}: journal line {} is not JSON ({e}): {line:?}", i + 1))?;
        let task = entry["task"].as_u64().ok_or_else(|| format!("run {run}: journal line {} has no task: {line:?}", i + 1))?;
        *commits.entry(task).or_default() += 1;
    }
    let twice: Vec<String> = commits.iter().filter(|(_, n)| **n > 1).map(|(t, n)| format!("task {t} {n} times")).collect();
    if !twice.is_empty() {
        return Err(format!("run {run} committed a task more than once ({}); journal {}", twice.join(", "), path.display()));
    }
    match job.committed() {
        Some(want) if last && commits.len() != want => Err(format!(
            "run {run} journaled {} tasks ({:?}), want each of {want} once; journal {}",
            commits.len(),
            commits.keys().collect::<Vec<_>>(),
            path.display()
        )),
        _ => Ok(()),
    }
}

fn nothing_running(cluster: &Cluster) -> Result<(), String> {
    let deadline = Instant::now() + GRACE;
    loop {
        let left: Vec<String> = HOSTS.iter().flat_map(|h| cluster.strays(h).into_iter().map(move |p| format!("{h}: {p}"))).collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("processes left running {GRACE:?} after the job ended:\n  {}", left.join("\n  ")));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The scratch dirs of `runs` that some host still holds, as
/// `host: runs/<run>`.
///
/// An agent killed with SIGKILL (`kill -9`, or its whole host killed)
/// cannot clean up: its guardian removes its runs' scratch the moment it
/// dies, and when the guardian died too (the host was killed whole), the
/// next agent on that host does when it starts. So the soak looks after a
/// last `shoal check` has started a fresh agent on every host.
pub fn scratch_left(cluster: &Cluster, runs: &[String]) -> Vec<String> {
    HOSTS.iter().flat_map(|h| cluster.scratch(h).into_iter().filter(|r| runs.contains(r)).map(move |r| format!("{h}: runs/{r}"))).collect()
}
