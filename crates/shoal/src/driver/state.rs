//! The driver's state dir (`.shoal/`) and the names inside it: the one
//! place that knows where a run keeps its journal, summary, report, parts
//! and logs, and which run was the latest.
//!
//! ```text
//! .shoal/runs/.latest                 id of the latest run started
//! .shoal/runs/<run id>/journal.jsonl  committed tasks (for --resume)
//!                      summary.json   written when the run ends
//!                      report.html    built from the summary
//!                      parts/part-NNNNN  committed task outputs
//!                      logs/          task logs (`run::logs`)
//!                      input/, shuffle/  scratch of the run
//! ```
//!
//! It only names and creates; what goes into the files belongs to the run
//! (`run::journal`, `run::summary`, `run::report`, `run::logs`), and how
//! they are written owner-only to `run::private`. Run ids are
//! [`RunId`]s; a name under `runs/` that is not one is no run.

use std::io;
use std::path::{Path, PathBuf};

use super::run::id::RunId;
use super::run::private;

/// The state dir's name in the directory `shoal` runs in.
pub const NAME: &str = ".shoal";

/// The driver's state dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    path: PathBuf,
}

/// One run's dir under `runs/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    id: RunId,
    path: PathBuf,
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> StateDir {
        StateDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The dir of every run.
    pub fn runs(&self) -> PathBuf {
        self.path.join("runs")
    }

    /// The dir of run `id` (made or not).
    pub fn run(&self, id: &RunId) -> RunDir {
        RunDir { id: id.clone(), path: self.runs().join(id.to_string()) }
    }

    /// Makes the dir of run `id` and the dirs the run fills, owner-only
    /// (the state dir too).
    pub fn create_run(&self, id: &RunId) -> io::Result<RunDir> {
        let run = self.run(id);
        [self.path.as_path(), run.path(), &run.parts(), &run.logs()].into_iter().try_for_each(private::dir)?;
        Ok(run)
    }

    fn latest_path(&self) -> PathBuf {
        self.runs().join(".latest")
    }

    /// The latest run started here, if `.latest` names one.
    pub fn latest(&self) -> Option<RunId> {
        std::fs::read_to_string(self.latest_path()).ok()?.trim().parse().ok()
    }

    /// Records `id` as the latest run.
    pub fn set_latest(&self, id: &RunId) -> io::Result<()> {
        private::write_bytes(&self.latest_path(), id.to_string().as_bytes())
    }

    /// The ids of the runs here, oldest first (ids sort by time).
    pub fn run_ids(&self) -> Vec<RunId> {
        let Ok(dir) = std::fs::read_dir(self.runs()) else {
            return vec![];
        };
        let mut ids: Vec<RunId> = dir
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        ids.sort_by_key(|id| id.to_string());
        ids
    }

    /// The newest run of `job` that has a journal: what `--resume`
    /// continues.
    pub fn latest_for_job(&self, job: &str) -> Option<RunId> {
        let safe = RunId::safe_job_name(job);
        self.run_ids().into_iter().rev().find(|id| id.job() == safe && self.run(id).journal().exists())
    }
}

impl RunDir {
    pub fn id(&self) -> &RunId {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal of committed tasks, `journal.jsonl`.
    pub fn journal(&self) -> PathBuf {
        self.path.join("journal.jsonl")
    }

    /// The run's summary, `summary.json`, written when it ends.
    pub fn summary(&self) -> PathBuf {
        self.path.join("summary.json")
    }

    /// The HTML report, `report.html`.
    pub fn report(&self) -> PathBuf {
        self.path.join("report.html")
    }

    /// The dir of committed task outputs.
    pub fn parts(&self) -> PathBuf {
        self.path.join("parts")
    }

    /// Task `task`'s committed output.
    pub fn part(&self, task: u32) -> PathBuf {
        self.parts().join(format!("part-{task:05}"))
    }

    /// The dir of task logs.
    pub fn logs(&self) -> PathBuf {
        self.path.join("logs")
    }

    /// Scratch for input partitions the driver cut into copies.
    pub fn input(&self) -> PathBuf {
        self.path.join("input")
    }

    /// Scratch for shuffle buckets staged through the driver.
    pub fn shuffle(&self) -> PathBuf {
        self.path.join("shuffle")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, UNIX_EPOCH};

    fn id(job: &str, secs: u64) -> RunId {
        RunId::new(job, UNIX_EPOCH + Duration::from_secs(secs), 1)
    }

    #[test]
    fn a_run_dir_names_its_files() {
        let state = StateDir::new("/s");
        let run = state.run(&id("wc", 0));
        assert_eq!(run.path(), Path::new("/s/runs/19700101-000000-wc-0001"));
        let names = [run.journal(), run.summary(), run.report(), run.parts(), run.part(7), run.logs(), run.input(), run.shuffle()];
        let tails: Vec<_> = names.iter().map(|p| p.strip_prefix(run.path()).unwrap().display().to_string()).collect();
        assert_eq!(tails, ["journal.jsonl", "summary.json", "report.html", "parts", "parts/part-00007", "logs", "input", "shuffle"]);
    }

    #[test]
    fn a_created_run_is_owner_only_and_the_latest_is_remembered() {
        let d = tempfile::tempdir().unwrap();
        let state = StateDir::new(d.path().join(NAME));
        assert_eq!(state.latest(), None);
        let run = state.create_run(&id("wc", 0)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!([state.path(), run.path(), &run.parts(), &run.logs()].map(mode), [0o700; 4]);
        state.set_latest(run.id()).unwrap();
        assert_eq!(state.latest().as_ref(), Some(run.id()));
        std::fs::write(state.runs().join(".latest"), "garbage").unwrap();
        assert_eq!(state.latest(), None, "a .latest that names no run is none");
    }

    #[test]
    fn the_latest_run_of_a_job_is_the_newest_with_a_journal() {
        let d = tempfile::tempdir().unwrap();
        let state = StateDir::new(d.path());
        let journaled = |id: &RunId| {
            let run = state.create_run(id).unwrap();
            std::fs::write(run.journal(), "").unwrap();
        };
        journaled(&id("word-count", 10));
        journaled(&id("word-count", 20));
        state.create_run(&id("word-count", 30)).unwrap(); // no journal yet
        journaled(&id("count", 40)); // another job whose name ends the same
        journaled(&id("word-count-2", 50)); // and one that starts the same
        std::fs::create_dir_all(state.runs().join("not-a-run")).unwrap();
        assert_eq!(state.latest_for_job("word-count"), Some(id("word-count", 20)));
        assert_eq!(state.latest_for_job("count"), Some(id("count", 40)));
        assert_eq!(state.latest_for_job("other"), None);
        assert_eq!(state.run_ids().len(), 5, "names that are no run id are left out");
    }

    #[test]
    fn a_state_dir_without_runs_has_none() {
        let d = tempfile::tempdir().unwrap();
        let state = StateDir::new(d.path().join("missing"));
        assert_eq!((state.run_ids(), state.latest_for_job("wc"), state.latest()), (vec![], None, None));
    }
}
