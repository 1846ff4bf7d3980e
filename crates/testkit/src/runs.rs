//! What a driver left in a job dir's `.shoal/runs/`: the runs' summaries.

use std::path::Path;

/// The `summary.json` of every run under `dir/.shoal/runs` that has one,
/// oldest first (by the time each run started).
pub fn summaries(dir: &Path) -> Vec<serde_json::Value> {
    let runs = dir.join(".shoal/runs");
    let entries = std::fs::read_dir(&runs).unwrap_or_else(|e| panic!("cannot list {}: {e}", runs.display()));
    let mut out: Vec<serde_json::Value> = entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("summary.json")).ok())
        .map(|text| serde_json::from_str(&text).unwrap_or_else(|e| panic!("a summary.json in {} is not JSON: {e}", runs.display())))
        .collect();
    out.sort_by_key(|s| s["started_unix_ms"].as_u64());
    out
}

/// The summary of the run that started last.
#[track_caller]
pub fn latest_summary(dir: &Path) -> serde_json::Value {
    summaries(dir).pop().unwrap_or_else(|| panic!("no run with a summary in {}/.shoal/runs", dir.display()))
}
