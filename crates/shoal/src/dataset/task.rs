//! A task of a Dataset program: this executable, started by an agent with
//! `SHOAL_ROLE=task`, replaying `main` up to its job.
//!
//! Jobs before its own return the results the driver broadcast (files in
//! the work dir); at its own job the task checks that it built the same
//! plan as the driver, then computes its one partition into the output
//! and exits, or, started as a resident executor (`SHOAL_EXECUTOR=1`),
//! serves task after task of that job (`executor`). Whatever the
//! program prints goes to the task's log: stdout is moved to stderr before
//! the program's code runs again, and records (or an executor's replies)
//! are written to the original stdout.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::PathBuf;

use shoal_wire::task_env::{ReplayEnv, EXECUTOR_ENV, EXECUTOR_ON, ROLE_ENV, ROLE_TASK};

use super::node::{Input, StageFn};
use super::panics::{explain_panics, set_panic_context};
use super::plan::{result_path, Assignment, JobPlan, Purpose};
use crate::{Error, Result};

/// Exit code of a task whose plan differs from the driver's.
pub const PLAN_MISMATCH: i32 = 3;

/// What a task was started for, from its environment.
pub struct TaskRole {
    /// The job, its layout and plan description, as the driver sent them.
    replay: ReplayEnv,
    mode: Mode,
    /// The original stdout: where records go (one task), or where replies
    /// go (an executor).
    output: std::cell::RefCell<Option<File>>,
}

/// One task and exit, or a resident executor serving many.
enum Mode {
    Once(Assignment),
    Resident,
}

impl TaskRole {
    /// `Some` when this process is a task or an executor.
    pub fn from_env() -> Result<Option<TaskRole>> {
        if std::env::var(ROLE_ENV).as_deref() != Ok(ROLE_TASK) {
            return Ok(None);
        }
        let replay = ReplayEnv::from_env(|name| std::env::var(name).ok()).map_err(|e| Error::Usage(format!("task: {e}")))?;
        let var = |name: &str| std::env::var(name).map_err(|_| Error::Usage(format!("task: {name} is not set")));
        let num = |name: &str| -> Result<u32> { var(name)?.parse().map_err(|_| Error::Usage(format!("task: {name} is not a number"))) };
        let resident = std::env::var(EXECUTOR_ENV).as_deref() == Ok(EXECUTOR_ON);
        let mode = if resident {
            Mode::Resident
        } else {
            Mode::Once(Assignment {
                stage: num("SHOAL_STAGE")?,
                partition: num("SHOAL_PARTITION")?,
                input: Input::File(PathBuf::from(var("SHOAL_INPUT")?)),
            })
        };
        Ok(Some(TaskRole { replay, mode, output: std::cell::RefCell::new(Some(take_stdout()?)) }))
    }

    /// The driver's default shuffle partitions.
    pub fn slots(&self) -> u32 {
        self.replay.slots
    }

    /// Replays a job: the broadcast result of an earlier one, or this
    /// process's work in its own (then the process exits).
    pub(crate) fn reach(&self, plan: &JobPlan, finish: &StageFn, purpose: &Purpose) -> Result<Option<Vec<u8>>> {
        if plan.index < self.replay.job {
            return match purpose {
                Purpose::Result => {
                    let path = result_path(plan.index);
                    let raw =
                        std::fs::read(&path).map_err(|e| Error::io(format!("task: cannot read the result of job {}", plan.index), e))?;
                    Ok(Some(raw))
                }
                _ => Ok(None),
            };
        }
        if plan.description != self.replay.plan {
            eprintln!("{}", self.mismatch(&plan.description));
            std::process::exit(PLAN_MISMATCH);
        }
        explain_panics();
        let output = self.output.borrow_mut().take();
        let Some(output) = output else {
            eprintln!("shoal: task of job {}: its output was taken", plan.index);
            std::process::exit(1);
        };
        match &self.mode {
            Mode::Once(task) => std::process::exit(self.run_once(plan, finish, task, output)),
            Mode::Resident => super::executor::serve(&self.replay.layout, plan, finish, output),
        }
    }

    fn run_once(&self, plan: &JobPlan, finish: &StageFn, task: &Assignment, output: File) -> i32 {
        set_panic_context(plan, task);
        let mut out = super::narrow::output_writer(output);
        let done =
            plan.execute(&self.replay.layout, finish, task, &mut out).and_then(|()| out.flush()).and_then(|()| out.get_ref().sync_all());
        match done {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("shoal: task of job {} failed: {e}", plan.index);
                1
            }
        }
    }

    fn mismatch(&self, mine: &str) -> String {
        format!(
            "shoal: this task built a different plan than the driver for job {}, so it cannot compute its part.\n  driver: {}\n  task:   {}\n\
             A plan must not depend on anything that differs between processes: the clock, the host name, environment \
             variables, files read outside the Dataset API, or random numbers without a fixed seed. Build it from \
             cx.args() and from the results of earlier actions.",
            self.replay.job, self.replay.plan, mine
        )
    }

    /// The program returned before reaching this task's job.
    pub fn program_ended(&self, jobs: u32) -> ! {
        eprintln!(
            "shoal: the program ended after {jobs} jobs, but the driver started this task for job {}: the plan differs between \
             the driver and this host (driver: {}).",
            self.replay.job, self.replay.plan
        );
        std::process::exit(PLAN_MISMATCH)
    }
}

/// Moves stdout aside (returned: the task's output) and points fd 1 at
/// stderr, so that the program's prints cannot corrupt its records.
pub fn take_stdout() -> Result<File> {
    // SAFETY: plain descriptor syscalls on fds 1 and 2, which this process owns.
    unsafe {
        let saved = libc::dup(1);
        if saved < 0 || libc::dup2(2, 1) < 0 {
            return Err(Error::io("task: cannot redirect stdout", std::io::Error::last_os_error()));
        }
        Ok(File::from_raw_fd(saved))
    }
}
