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

mod checks;
mod faults;
mod jobs;
mod killed_agent;

use std::time::{Duration, Instant};

use jobs::{Job, Kind};
use shoal_testkit::{bin, netns};

/// Runs of one job, the first included, before the soak gives up.
const MAX_RUNS: usize = 5;

/// A single run that takes longer than this hangs.
const RUN_LIMIT: Duration = Duration::from_secs(150);

/// What a job's output says about a run that failed for a reason the
/// soak allows: every host was gone at once.
const ALL_HOSTS_GONE: [&str; 3] = ["no usable host is left", "sync failed on every host", "no host of the cluster could be reached"];

#[test]
fn chaos_soak_keeps_every_job_exact() {
    let Some((_g, cluster)) = netns::up() else { return };
    let seed = env_number("SHOAL_CHAOS_SEED").unwrap_or_else(fresh_seed);
    let seconds = env_number("SHOAL_CHAOS_SECONDS").unwrap_or(60);
    let replay = format!("SHOAL_CHAOS_SEED={seed} SHOAL_CHAOS_SECONDS={seconds}");
    eprintln!("chaos soak: seed {seed}, {seconds} s of jobs (replay with {replay})");
    // Built before the faults start, so that no build counts against a run.
    let _ = (bin::shoal(), bin::program("wordcount"));
    let work = tempfile::tempdir().expect("a temp dir");
    let chaos = faults::Controller::start(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = Vec::new();
    let mut n = 0;
    while n < Kind::ALL.len() || Instant::now() < deadline {
        let kind = Kind::ALL[(seed as usize).wrapping_add(n) % Kind::ALL.len()];
        let job = Job::prepare(kind, &work.path().join(format!("{n:03}-{kind}")), &cluster.file, seed ^ n as u64);
        chaos.resume(n);
        let ran = run_to_the_end(&job);
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
    cluster.start_fresh_agents();
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
fn run_to_the_end(job: &Job) -> Result<Option<String>, String> {
    // A run that lost every host before it began (at connect) left no run
    // to resume: the next one starts afresh.
    let mut resume = false;
    for attempt in 0..MAX_RUNS {
        let ran = job.command(resume).run_within(RUN_LIMIT)?;
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

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")))
}

/// A new seed each run, so that CI explores; printed for replay.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
