//! The scheduler: a pure state machine that decides what runs where.
//!
//! Events in ([`Event`]), actions out ([`Action`]); no I/O, no threads, no
//! clock: time arrives inside events, so every decision can be replayed in
//! a test. The driver (async, in the `shoal` crate) turns agent reports
//! into events and carries out the actions; it also keeps its own richer
//! records (exit codes, stderr) for the summary. This module does not know
//! about commands, files or hosts' names: tasks and hosts are numbers.
//!
//! # Rules, and why
//!
//! - **Placement.** After every event each free slot of each usable host
//!   (live, not excluded) takes a task, hosts in turn, one task per host per
//!   round so that work spreads. A slot on host H takes the first runnable
//!   task in launch order (the seeded shuffle the driver applied) that is
//!   pinned to H, else the first that prefers H (its input is already
//!   there), else the first that may run anywhere. A task pinned to a
//!   usable host runs only there (the job asked for static weighted
//!   shares); the pin lapses when that host is lost or excluded, or after
//!   the task failed there, except for a `pinned_only` task (its data
//!   lives only there), which fails the run instead. A task whose input sits on other hosts waits up
//!   to `locality_wait` for one of them before it runs elsewhere and its
//!   input travels (Spark's `spark.locality.wait`).
//! - **Runnable** means every dependency is done *and its output is still
//!   available*. A reduce task needs every map output of its shuffle.
//! - **Failures.** An attempt that fails by itself (`Exit`, `HostTrouble`)
//!   is charged to its task and to its host's streak. The retry waits for a
//!   usable host where the task has not failed yet, if there is one (as
//!   Spark's per-task blacklist does): otherwise a broken host or a
//!   host-specific bug would eat every attempt, and the failure message
//!   could not tell the two apart. At `max_attempts` charged failures the
//!   run fails, naming every host the task failed on. An attempt whose
//!   input was declared lost while it ran is not charged: that is probably
//!   why it failed.
//! - **Exclusion.** A host with `exclude_after` charged failures in a row
//!   (a success resets the streak) gets no new tasks; what runs there
//!   finishes, and its outputs stay usable. The last usable host is never
//!   excluded: with nowhere else to go, the task fails with its own error
//!   instead of the run stalling on "no usable host".
//! - **Host loss is not charged**, as in Spark and Hadoop: the task did
//!   nothing wrong. Its running attempts are lost; outputs that lived only
//!   on that host are gone, and rerun if still *needed*: not yet collected
//!   by the driver, or read by a task that has not finished. Outputs nobody
//!   needs any more are not recomputed; if a consumer is reopened later
//!   (its own output lost), the producers it needs are reopened with it.
//! - **Fetch failures are not charged** to the reader: its input vanished.
//!   The producer's output is declared lost and rerun, unless the reader
//!   had read an instance that was already replaced (old news must not
//!   throw away the new output). Fetch failures are not counted: a host
//!   that is up but cannot serve its outputs reruns them until the driver
//!   gives it up as lost.
//! - **Exactly-once commit.** The first success of a current attempt
//!   commits; the task's other attempts are killed. A report from an attempt
//!   that is not current (killed, lost, superseded, a second copy) gets
//!   `Discard`, so the driver deletes that output; a repeated report from
//!   the committed attempt is ignored, never discarded. A `Kill` frees the
//!   slot at once rather than when the agent confirms: the agent kills the
//!   process group promptly, and a confirmation that never comes (the
//!   host is lost meanwhile) would leak the slot.
//! - **Consistent inputs.** When an output a running attempt reads is
//!   declared lost, that attempt becomes *stale*: its success is discarded
//!   and the task rerun (uncharged) once the producer is back. Otherwise a
//!   reduce could commit a result built from an output instance that no
//!   longer exists, mixed with its replacement (Spark's
//!   "indeterminate stage" problem).
//! - **Speculation** (off by default). On a tick, for a stage with at least
//!   `speculation_quantile` of its tasks done, a task whose only attempt
//!   has run longer than `speculation_multiplier` x the median successful
//!   duration of that stage, and longer than `speculation_min_runtime` (so
//!   tiny tasks are never copied), gets one copy on another usable host with
//!   a free slot where it has not failed (Spark's defaults: 0.75 and 1.5).
//!   Copies only use slots no pending task could take. Pinned tasks are not
//!   copied: the job asked for them to run where they are.
//! - **Pipelining.** A host holds at most `slots x per_slot` attempts;
//!   `per_slot` is 1 until the driver says otherwise (`Pipeline`): for
//!   tasks of a millisecond, the agent queues a few per slot so that the
//!   round trip to the driver overlaps the work. Lowering it never kills
//!   anything; slots simply refill more slowly.
//! - **Stalls.** When tasks wait but no usable host is left, the scheduler
//!   waits; [`Scheduler::is_stalled`] tells the driver, which decides when to
//!   give up. A lost host that comes back (`HostUp`) is a fresh host for
//!   placement; its exclusion, if any, stands for the rest of the run.
//! - **The end.** `Done` once every task is committed and every
//!   `needs_collect` task collected; `Fail` at the first task out of
//!   attempts; `Cancelled` after `Cancel`. Each ends the run: running
//!   attempts are killed, and later reports only ever produce `Discard`.
//!
//! Events naming tasks, attempts or hosts the scheduler does not know are
//! ignored: a confused driver must not crash the run.

mod events;
mod placement;
#[cfg(test)]
mod sim_tests;
mod state;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Serialize;

pub use state::Scheduler;

/// A task: one partition of one stage. Its number is its index in the
/// task list given to [`Scheduler::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TaskId(pub u32);

/// A host of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct HostId(pub u32);

/// One attempt of a task; unique within a run (a global counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AttemptId(pub u32);

/// Tunables, with Spark-like defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    /// Charged failures of one task that fail the run (0 counts as 1).
    pub max_attempts: u32,
    /// Charged failures in a row that exclude a host (0: never).
    pub exclude_after: u32,
    pub speculate: bool,
    /// Fraction of a stage that must be done before copies start.
    pub speculation_quantile: f64,
    /// How many times the stage's median a task must run to be copied.
    pub speculation_multiplier: f64,
    /// Tasks running shorter than this are never copied.
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
    /// Tasks (of earlier stages) whose outputs this one reads.
    pub deps: Vec<TaskId>,
    /// Hosts that already hold its input (locality).
    pub preferred_hosts: Vec<HostId>,
    /// Static weighted share: run here unless this host is lost or
    /// excluded (or the task failed here), then anywhere.
    pub pinned_host: Option<HostId>,
    /// The pin never lapses: the task's data lives only on that host (a
    /// host-local file). If the host is lost or excluded before the task
    /// is done, the run fails rather than run it elsewhere.
    pub pinned_only: bool,
    /// Its output must be fetched to the driver, which then sends
    /// [`Event::Collected`].
    pub needs_collect: bool,
}

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum FailureKind {
    /// The task failed (non-zero exit, timeout): charged.
    Exit,
    /// The host failed it (disk full, cannot spawn): charged to the task
    /// and to the host's streak, and retried elsewhere.
    HostTrouble,
    /// An input could not be fetched: not charged; the producer
    /// `from_task` is rerun.
    FetchFailed { from_task: TaskId },
    /// Killed, by us or by the agent: not charged.
    Killed,
}

/// Something that happened. `now` is the time since the run started, from
/// the driver's clock; it never needs to be exact, only not to go back.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A host is ready with `slots` slots (0 counts as 1). Also sent for a
    /// lost host that is back.
    HostUp {
        host: HostId,
        slots: u32,
        now: Duration,
    },
    /// A host's share of slots changed (a standing cluster divides its
    /// workers between applications): 0 means no new task there; what
    /// runs there goes on.
    Slots {
        host: HostId,
        slots: u32,
    },
    /// A host is gone with everything it held.
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
    /// Time passes (for locality waits and speculation).
    Tick {
        now: Duration,
    },
    /// Each slot may now hold `per_slot` attempts (0 counts as 1): one
    /// running and the rest queued on the agent behind it. The driver
    /// raises it while tasks are much shorter than a round trip to the
    /// host, so that a host never waits for its next task.
    Pipeline {
        per_slot: u32,
    },
    /// Stop everything.
    Cancel,
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start `task` on `host` as `attempt`. `speculative` marks a copy of
    /// a task that is already running elsewhere.
    Launch { task: TaskId, attempt: AttemptId, host: HostId, speculative: bool },
    /// Stop this attempt; it no longer counts.
    Kill { task: TaskId, attempt: AttemptId, host: HostId },
    /// This attempt's output is the task's output: fetch or record it.
    Commit { task: TaskId, attempt: AttemptId, host: HostId },
    /// This attempt succeeded but does not count: delete its output.
    Discard { task: TaskId, attempt: AttemptId, host: HostId },
    /// This host gets no more tasks.
    Exclude { host: HostId },
    /// The run failed: `task` used up its attempts. `reason` is a sentence
    /// with hosts as numbers; the driver has the names.
    Fail { task: TaskId, reason: String },
    /// Every task committed and every output that needs it collected.
    Done,
    /// The run was cancelled; every running attempt got a `Kill`.
    Cancelled,
}

/// Where a task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for its inputs or for a slot.
    Pending,
    /// Its current attempts (more than one while a copy runs).
    Running { attempts: Vec<AttemptId> },
    /// Committed: `attempt`'s output on `host` is the task's output. The
    /// output may since have been lost if nothing needs it any more.
    Done { attempt: AttemptId, host: HostId },
    /// Done by an earlier run (resume); its output is with the driver.
    Restored,
    /// Out of attempts: the run failed.
    Failed,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    Running,
    /// Its output became the task's output.
    Committed,
    /// It succeeded but did not count.
    Discarded,
    /// It failed by itself (`Exit`, `HostTrouble`) or could not fetch an
    /// input (`FetchFailed`).
    Failed(FailureKind),
    /// Killed, by us or by the agent.
    Killed,
    /// Its host was lost.
    Lost,
}

/// One attempt of a task, for the run's summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    pub attempt: AttemptId,
    pub host: HostId,
    pub started: Duration,
    pub ended: Option<Duration>,
    pub outcome: Outcome,
    pub speculative: bool,
}

/// Counts for progress displays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub total: usize,
    /// Committed or restored.
    pub done: usize,
    /// Running attempts (copies included).
    pub running: usize,
    /// Tasks waiting for inputs or a slot.
    pub pending: usize,
    /// Charged failures.
    pub failed_attempts: u32,
    /// Attempts lost with their host.
    pub lost_attempts: u32,
}
