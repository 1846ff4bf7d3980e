//! The seeded chaos soak: a stream of jobs (a command map job, a
//! Hadoop-streaming shuffle with combiner and reduce, and two Dataset API
//! programs) on the 3-host ssh test cluster, while a controller thread
//! kills agents, kills hosts, cuts and heals links and freezes agents at
//! moments drawn from a seeded RNG. After each job: the output equals the
//! single-process reference, no task was committed twice, nothing is left
//! running on any host; at the end, once a fresh agent started on every
//! host, no run of the soak has scratch left anywhere.
//!
//! Bounded in time: `SHOAL_CHAOS_SECONDS` (default 60, so that CI stays short) of jobs, at least
//! one of each kind. The seed is printed first and in every failure;
//! `SHOAL_CHAOS_SEED=N` replays its decisions (their timing against the
//! jobs varies from run to run). A run that fails because every host was
//! lost is resumed with `--resume`; any other failure fails the soak.
//! Needs root; in CI (`CI=true`) a missing prerequisite is a failure.

#[path = "../common/mod.rs"]
mod common;

mod checks;
mod cluster;
mod faults;
mod jobs;
mod killed_agent;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jobs::{Job, Kind};

/// Runs of one job, the first included, before the soak gives up.
const MAX_RUNS: usize = 5;

/// A single run that takes longer than this hangs.
const RUN_LIMIT: Duration = Duration::from_secs(150);

/// What a job's output says about a run that failed for a reason the
/// soak allows: every host was gone at once.
const ALL_HOSTS_GONE: [&str; 3] = ["no usable host is left", "sync failed on every host", "no host of the cluster could be reached"];

#[test]
fn chaos_soak_keeps_every_job_exact() {
    let Some((_g, cluster)) = cluster::up() else { return };
    let seed = env_number("SHOAL_CHAOS_SEED").unwrap_or_else(fresh_seed);
    let seconds = env_number("SHOAL_CHAOS_SECONDS").unwrap_or(60);
    let replay = format!("SHOAL_CHAOS_SEED={seed} SHOAL_CHAOS_SECONDS={seconds}");
    eprintln!("chaos soak: seed {seed}, {seconds} s of jobs (replay with {replay})");
    let cli = cluster::shoal_cli();
    let _ = (common::program("wordcount"), common::program("faults"));
    let work = tempfile::tempdir().expect("a temp dir");
    let chaos = faults::Controller::start(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = Vec::new();
    let mut n = 0;
    while n < Kind::ALL.len() || Instant::now() < deadline {
        let kind = Kind::ALL[(seed as usize).wrapping_add(n) % Kind::ALL.len()];
        let job = Job::prepare(kind, &work.path().join(format!("{n:03}-{kind}")), &cluster.file, seed ^ n as u64);
        chaos.resume(n);
        let ran = run_to_the_end(&job, &cli);
        chaos.pause();
        let checked = ran.and_then(|last_run| checks::after_job(cluster, &job, last_run.as_deref()));
        if let Err(why) = checked {
            panic!(
                "chaos soak (seed {seed}; replay with {replay}): job {n} ({kind}) in {}: {why}\nfaults:\n{}",
                job.dir.display(),
                chaos.log()
            );
        }
        let ids = checks::run_ids(&job.dir);
        let left = checks::scratch_left(cluster, &ids);
        eprintln!("job {n} ({kind}): exact, committed once, nothing running; scratch left for now: {left:?}");
        runs.extend(ids);
        n += 1;
    }
    eprintln!("chaos soak (seed {seed}): {n} jobs exact under {} faults:\n{}", chaos.made(), chaos.log());
    drop(chaos);
    cluster.start_fresh_agents(&cli);
    let left = checks::scratch_left(cluster, &runs);
    assert!(
        left.is_empty(),
        "chaos soak (seed {seed}; replay with {replay}): run scratch left on hosts after a fresh agent started on each \
         (a SIGKILLed agent's guardian, or the next agent, removes its runs' scratch; see checks::scratch_left):\n  {}",
        left.join("\n  ")
    );
}

/// Runs the job, resuming it while it fails only because every host was
/// gone, and checks its output; the id of the run that made the output,
/// when the job is a single `shoal run`.
fn run_to_the_end(job: &Job, cli: &Path) -> Result<Option<String>, String> {
    // A run that lost every host before it began (at connect) left no run
    // to resume: the next one starts afresh.
    let mut resume = false;
    for attempt in 0..MAX_RUNS {
        let ran = bounded(job.command(cli, resume))?;
        if resume && ran.code == 2 && ran.stderr.contains("nothing to resume") {
            resume = false;
            continue;
        }
        if ran.code == 0 {
            job.check_output(&ran.stdout)?;
            let summary: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap_or(serde_json::Value::Null);
            return Ok(summary["run"].as_str().map(String::from));
        }
        if !ALL_HOSTS_GONE.iter().any(|s| ran.stderr.contains(s)) {
            return Err(format!("run {} failed (exit code {}) with hosts left:\n{}", attempt + 1, ran.code, ran.stderr));
        }
        eprintln!("job {} ({}): every host was lost (run {}); resuming", job.dir.display(), job.kind, attempt + 1);
        resume = true;
    }
    Err(format!("still failing after {MAX_RUNS} runs, each with every host lost"))
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `cmd`, killing it if it runs past [`RUN_LIMIT`].
fn bounded(mut cmd: Command) -> Result<Ran, String> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("cannot wait for {cmd:?}: {e}"))? {
            break Some(status);
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    match status {
        Some(s) => Ok(Ran { code: s.code().unwrap_or(-1), stdout, stderr }),
        None => Err(format!("{cmd:?} still ran after {RUN_LIMIT:?} (killed); its stderr:\n{stderr}")),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let mut bytes = Vec::new();
            let _ = p.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")))
}

/// A new seed each run, so that CI explores; printed for replay.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
