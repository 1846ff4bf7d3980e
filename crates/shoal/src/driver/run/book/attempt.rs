//! One attempt as the driver records it for the summary, and how it ended.
//!
//! The scheduler keeps its own records (`shoal_core::scheduler::Outcome`)
//! for its decisions; these are the driver's: exit status, stderr tail,
//! and an outcome named the way `summary.json` and the report name it.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_wire::ExitStatus;

/// How an attempt ended, as the summary and the report name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Sent and not ended yet (or the run ended first).
    Running,
    /// It reported success; it stays so once committed.
    Succeeded,
    /// It failed by itself, or the driver could not start it.
    Failed,
    /// Killed by the driver (the scheduler said so) or by the agent.
    Killed,
    /// It succeeded, but another attempt's output counts.
    Superseded,
    /// A reduce that could not get a map's bucket.
    FetchFailed,
    /// Its host was lost while it ran.
    Lost,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Killed => "killed",
            Outcome::Superseded => "superseded",
            Outcome::FetchFailed => "fetch-failed",
            Outcome::Lost => "lost",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one attempt, as the driver saw it. Times are since the
/// run started.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub task: u32,
    pub host: usize,
    pub started: Duration,
    pub ended: Option<Duration>,
    /// Its exit as a phrase ("exit code 0", "timed out (signal 9)"), or why
    /// it never ran.
    pub status: Option<Cow<'static, str>>,
    pub stderr_tail: String,
    pub speculative: bool,
    /// The driver sent it a kill.
    pub killed: bool,
    /// Its end report is held back ([`super::Effect::HoldBack`]): it has
    /// reported its end, which counts once.
    pub held: bool,
    pub outcome: Outcome,
    pub cpu_ms: u64,
}

impl Attempt {
    pub fn new(task: u32, host: usize, started: Duration, speculative: bool) -> Self {
        Attempt {
            task,
            host,
            started,
            ended: None,
            status: None,
            stderr_tail: String::new(),
            speculative,
            killed: false,
            held: false,
            outcome: Outcome::Running,
            cpu_ms: 0,
        }
    }

    /// Ends it at `now` as `outcome`.
    pub fn end(&mut self, now: Duration, outcome: Outcome) {
        self.ended = Some(now);
        self.outcome = outcome;
    }
}

/// The status phrase of a report.
pub fn status_text(status: &ExitStatus, timed_out: bool) -> Cow<'static, str> {
    match (status, timed_out) {
        (ExitStatus::Code(0), false) => Cow::Borrowed("exit code 0"),
        (status, false) => status.to_string().into(),
        (status, true) => format!("timed out ({status})").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_keep_the_names_the_summary_always_had() {
        let all = [
            Outcome::Running,
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::Killed,
            Outcome::Superseded,
            Outcome::FetchFailed,
            Outcome::Lost,
        ];
        let names: Vec<String> = all.iter().map(|o| serde_json::to_value(o).unwrap().as_str().unwrap().to_string()).collect();
        assert_eq!(names, ["running", "succeeded", "failed", "killed", "superseded", "fetch-failed", "lost"]);
        for o in all {
            assert_eq!(o.to_string(), o.as_str());
            assert_eq!(serde_json::from_value::<Outcome>(o.as_str().into()).unwrap(), o);
        }
    }
}
