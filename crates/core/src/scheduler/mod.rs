//! The scheduler: a pure state machine that decides what runs where.
//!
//! Events in ([`Event`]), actions out ([`Action`]); no I/O, no threads, no
//! clock: time arrives inside events, so every decision is replayable in a
//! test. The driver turns agent reports into events and carries out the
//! actions.
//!
//! The rules, and why:
//! - A free slot takes the first runnable task in the given (seeded) order
//!   that is pinned to its host, else one whose input the host already
//!   holds (locality), else any task it may run. A task pinned to a live
//!   host waits for that host (the job splitter's static shares); a task
//!   whose input lives on busy hosts waits `locality_wait` for them.
//! - A task that exits non-zero is charged an attempt and retried,
//!   preferably on a host where it has not failed; at `max_attempts` the
//!   run fails. Losing a host charges nothing, as in Spark and Hadoop: the
//!   task did nothing wrong. A host with `exclude_after` charged failures
//!   in a row gets no more tasks.
//! - The first attempt to succeed commits, exactly once; any other attempt
//!   of that task is killed, and its late success is discarded.
//! - An output that lived only on a lost host is recomputed when it is
//!   still needed: not yet collected by the driver, or input to a task of
//!   a later stage that has not finished.
//! - With speculation on, once `speculation_quantile` of a stage is done, a
//!   task running longer than `speculation_multiplier` x the stage's median
//!   gets a copy on another host (Spark's defaults: 0.75 and 1.5).

mod state;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Serialize;

pub use state::Scheduler;

/// A task: one partition of one stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TaskId(pub u32);

/// A host of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct HostId(pub u32);

/// One attempt of a task; unique within a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AttemptId(pub u32);

/// Tunables, with Spark-like defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    pub max_attempts: u32,
    pub exclude_after: u32,
    pub speculate: bool,
    pub speculation_quantile: f64,
    pub speculation_multiplier: f64,
    /// Tasks shorter than this are never copied.
    pub speculation_min_runtime: Duration,
    /// How long a task waits for a busy host that holds its input before
    /// it runs elsewhere (Spark's `spark.locality.wait`).
    pub locality_wait: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_attempts: 4,
            exclude_after: 3,
            speculate: false,
            speculation_quantile: 0.75,
            speculation_multiplier: 1.5,
            speculation_min_runtime: Duration::from_secs(1),
            locality_wait: Duration::from_secs(3),
        }
    }
}

/// What the scheduler knows about a task before the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskSpec {
    /// 0 = map, 1 = reduce, ...
    pub stage: u32,
    /// Tasks whose outputs this one reads.
    pub deps: Vec<TaskId>,
    /// Hosts that already hold its input.
    pub preferred_hosts: Vec<HostId>,
    /// Static share: run here while this host is usable.
    pub pinned_host: Option<HostId>,
    /// Its output must be fetched to the driver (`Collected`).
    pub needs_collect: bool,
}

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The command failed: charged.
    Exit,
    /// The host failed it (disk full, cannot spawn): charged, and counts
    /// toward the host's exclusion.
    HostTrouble,
    /// An input could not be fetched because its producer's host is gone:
    /// not charged; the producer is recomputed.
    FetchFailed { from_task: TaskId },
    /// We killed it: not charged.
    Killed,
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    HostUp {
        host: HostId,
        slots: u32,
        now: Duration,
    },
    HostLost {
        host: HostId,
        now: Duration,
    },
    TaskSucceeded {
        task: TaskId,
        attempt: AttemptId,
        now: Duration,
    },
    TaskFailed {
        task: TaskId,
        attempt: AttemptId,
        now: Duration,
        kind: FailureKind,
    },
    /// The driver holds the committed output of `task` safely.
    Collected {
        task: TaskId,
    },
    Tick {
        now: Duration,
    },
    Cancel,
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Launch {
        task: TaskId,
        attempt: AttemptId,
        host: HostId,
        speculative: bool,
    },
    Kill {
        task: TaskId,
        attempt: AttemptId,
        host: HostId,
    },
    /// This attempt's output is the task's output.
    Commit {
        task: TaskId,
        attempt: AttemptId,
        host: HostId,
    },
    /// A superseded attempt succeeded late: drop its output.
    Discard {
        task: TaskId,
        attempt: AttemptId,
        host: HostId,
    },
    Exclude {
        host: HostId,
    },
    Fail {
        task: TaskId,
        reason: String,
    },
    Done,
    Cancelled,
}

/// Where a task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    Pending,
    Running { attempts: Vec<AttemptId> },
    Done { attempt: AttemptId, host: Option<HostId> },
}

/// Counts for progress displays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub failed_attempts: u32,
}
