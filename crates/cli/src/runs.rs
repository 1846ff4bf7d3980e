//! `shoal runs` and `shoal logs`: reading the driver's state dir.

use std::path::{Path, PathBuf};

use anyhow::Context;
use shoal::driver::run::id::RunId;
use shoal::driver::run::logs;
use shoal::driver::run::summary::RunSummary;
use shoal::driver::state::{self, StateDir};
use shoal::format::align;
use shoal::printable::printable;

/// The driver's state dir: `./.shoal`.
pub fn state_dir() -> PathBuf {
    PathBuf::from(state::NAME)
}

/// Resolves `latest` (or a prefix) to a run id.
pub fn resolve_run(state: &Path, run: &str) -> anyhow::Result<RunId> {
    let state = StateDir::new(state);
    let runs = state.runs();
    if run == "latest" {
        return Ok(state
            .latest()
            .ok_or_else(|| shoal::Error::Usage(format!("no runs yet in {}; start one with `shoal run job.toml`", runs.display())))?);
    }
    match run.parse::<RunId>() {
        Ok(id) if state.run(&id).path().is_dir() => Ok(id),
        _ => Err(shoal::Error::Usage(format!("no run {run:?} in {}; `shoal runs` lists them", runs.display())).into()),
    }
}

fn summaries(state: &Path) -> Vec<(String, Option<RunSummary>)> {
    let state = StateDir::new(state);
    let summary = |id: &RunId| std::fs::read(state.run(id).summary()).ok().and_then(|b| serde_json::from_slice(&b).ok());
    state.run_ids().iter().map(|id| (id.to_string(), summary(id))).collect()
}

pub fn runs(json: bool) -> anyhow::Result<i32> {
    let all = summaries(&state_dir());
    if json {
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|(id, s)| match s {
                Some(s) => serde_json::json!({"run": id, "job": s.job, "started_unix_ms": s.started_unix_ms, "wall_ms": s.wall_ms, "status": s.status, "tasks": s.tasks}),
                None => serde_json::json!({"run": id, "status": "unfinished"}),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let mut rows = vec![["RUN", "JOB", "STARTED", "DURATION", "STATUS"].map(String::from).to_vec()];
    for (id, s) in &all {
        rows.push(match s {
            Some(s) => {
                vec![id.clone(), s.job.clone(), started(s.started_unix_ms), format!("{:.1}s", s.wall_ms as f64 / 1000.0), s.status.clone()]
            }
            None => vec![id.clone(), "-".into(), "-".into(), "-".into(), "unfinished (driver killed?)".into()],
        });
    }
    print!("{}", align(&rows));
    Ok(0)
}

fn started(ms: u64) -> String {
    let secs = ms / 1000;
    format!("{:02}:{:02}:{:02} UTC", secs / 3600 % 24, secs / 60 % 60, secs % 60)
}

pub struct LogArgs {
    pub run: String,
    pub host: Option<String>,
    pub task: Option<u32>,
    pub merged: bool,
    pub follow: bool,
    pub json: bool,
}

pub fn show_logs(a: &LogArgs) -> anyhow::Result<i32> {
    let state = state_dir();
    let id = resolve_run(&state, &a.run)?;
    let run = StateDir::new(&state).run(&id);
    let dir = run.logs();
    let mut shown = 0;
    loop {
        let lines = logs::read_all(&dir, a.host.as_deref(), a.task).with_context(|| format!("reading logs of run {id}"))?;
        for l in lines.iter().skip(shown) {
            print_line(l, a)?;
        }
        shown = lines.len();
        let finished = run.summary().exists();
        if !a.follow || finished {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn print_line(l: &logs::LogLine, a: &LogArgs) -> anyhow::Result<()> {
    if a.json {
        println!(
            "{}",
            serde_json::json!({"ms": l.ms, "host": l.host, "task": l.task, "attempt": l.attempt, "stream": if l.stderr {"stderr"} else {"stdout"}, "text": l.text})
        );
        return Ok(());
    }
    // A terminal gets control characters made visible; a pipe or a file
    // gets the task's bytes as they were.
    let text = if std::io::IsTerminal::is_terminal(&std::io::stdout()) { printable(&l.text) } else { l.text.as_str().into() };
    if a.merged || (a.host.is_none() && a.task.is_none()) {
        println!("[{} task {}] {text}", l.host, l.task);
    } else {
        println!("{text}");
    }
    Ok(())
}

/// Rewrites a run's `report.html` from its `summary.json`.
pub fn report(run: &str, open: bool) -> anyhow::Result<i32> {
    let state = state_dir();
    let id = resolve_run(&state, run)?;
    let dir = StateDir::new(&state).run(&id);
    let summary: RunSummary = std::fs::read(dir.summary()).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(|| {
        shoal::Error::Usage(format!("run {id} has no summary yet (still running, or its driver was killed); resume it to finish it"))
    })?;
    let path = dir.report();
    shoal::driver::run::private::write_bytes(&path, shoal::driver::run::report::render(&summary).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", path.display());
    if open {
        let _ = std::process::Command::new("xdg-open").arg(&path).status();
    }
    Ok(0)
}
