//! A task of a Dataset program: this executable, started by an agent with
//! `SHOAL_ROLE=task`, replaying `main` up to its job.
//!
//! Jobs before its own return the results the driver broadcast (files in
//! the work dir); at its own job the task checks that it built the same
//! plan as the driver, computes its one partition into the output, and
//! exits. Whatever the program prints goes to the task's log: stdout is
//! moved to stderr before the program's code runs again, and records are
//! written to the original stdout (the task's output file).

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::PathBuf;

use super::context::{JobPlan, Purpose};
use super::node::{Part, StageFn};
use crate::{Error, Result};

/// Exit code of a task whose plan differs from the driver's.
pub const PLAN_MISMATCH: i32 = 3;

/// What a task was started for, from its environment.
pub struct TaskRole {
    job: u32,
    stage: u32,
    partition: u32,
    input: PathBuf,
    /// Partitions per map root of its job, in segment order.
    layout: Vec<u32>,
    plan: String,
    /// The driver's default shuffle partitions.
    pub slots: u32,
    /// The original stdout, where records go.
    output: std::cell::RefCell<Option<File>>,
}

impl TaskRole {
    /// `Some` when this process is a task.
    pub fn from_env() -> Result<Option<TaskRole>> {
        if std::env::var("SHOAL_ROLE").as_deref() != Ok("task") {
            return Ok(None);
        }
        let var = |name: &str| std::env::var(name).map_err(|_| Error::Usage(format!("task: {name} is not set")));
        let num = |name: &str| -> Result<u32> { var(name)?.parse().map_err(|_| Error::Usage(format!("task: {name} is not a number"))) };
        let layout = var("SHOAL_PARAM_LAYOUT")?.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap_or(0)).collect();
        let role = TaskRole {
            job: num("SHOAL_PARAM_JOB")?,
            stage: num("SHOAL_STAGE")?,
            partition: num("SHOAL_PARTITION")?,
            input: PathBuf::from(var("SHOAL_INPUT")?),
            layout,
            plan: var("SHOAL_PARAM_PLAN")?,
            slots: num("SHOAL_PARAM_SLOTS")?,
            output: std::cell::RefCell::new(Some(take_stdout()?)),
        };
        Ok(Some(role))
    }

    /// Replays a job: the broadcast result of an earlier one, or this
    /// task's partition of its own (then the process exits).
    pub(crate) fn reach(&self, plan: &JobPlan, finish: &StageFn, purpose: &Purpose) -> Result<Option<Vec<u8>>> {
        if plan.index < self.job {
            return match purpose {
                Purpose::Result => {
                    let path = super::jobs::result_path(plan.index);
                    let raw =
                        std::fs::read(&path).map_err(|e| Error::io(format!("task: cannot read the result of job {}", plan.index), e))?;
                    Ok(Some(raw))
                }
                _ => Ok(None),
            };
        }
        if plan.description != self.plan {
            eprintln!("{}", self.mismatch(&plan.description));
            std::process::exit(PLAN_MISMATCH);
        }
        self.explain_panics(plan);
        let code = match self.execute(plan, finish) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("shoal: task of job {} failed: {e}", plan.index);
                1
            }
        };
        std::process::exit(code)
    }

    fn execute(&self, plan: &JobPlan, finish: &StageFn) -> std::io::Result<()> {
        let file = self.output.borrow_mut().take().ok_or_else(|| std::io::Error::other("the output was taken"))?;
        let mut out = super::narrow::output_writer(file);
        if self.stage == 1 {
            let part = Part { seg: 0, index: self.partition, input: self.input.clone(), reduce_side: true };
            finish(&part, &mut out)?;
        } else {
            let (seg, index) = self.locate()?;
            let part = |seg| Part { seg, index, input: self.input.clone(), reduce_side: false };
            match &plan.shuffle.as_ref().map(|s| &s.kind) {
                Some(super::node::Kind::Shuffle(sh)) => {
                    let (parent, offset) = parent_of(&plan.parent_segments, seg);
                    (sh.map_sides[parent])(&part(seg - offset), &mut out)?;
                }
                _ => finish(&part(seg), &mut out)?,
            }
        }
        out.flush()?;
        out.get_ref().sync_all()
    }

    /// A panic in the program's closures becomes one sentence on stderr
    /// (the tail the driver reports): where it panicked, what it said,
    /// and which job, stage, partition and host.
    fn explain_panics(&self, plan: &JobPlan) {
        let stage = if self.stage == 1 { "reduce" } else { "map" };
        let whose = plan.shuffle.as_ref().filter(|_| self.stage == 0).unwrap_or(&plan.node).site();
        let host = std::env::var("SHOAL_HOST").unwrap_or_default();
        let context = format!("job {} ({whose}), {stage} partition {}, host {host}", plan.index, self.partition);
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            let at = info.location().map_or(String::new(), |l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()));
            eprintln!("shoal: the program panicked{at}: {}\n  in {context}", msg.unwrap_or("(no message)"));
        }));
    }

    /// The segment and the partition within it of this map task.
    fn locate(&self) -> std::io::Result<(usize, u32)> {
        let mut p = self.partition;
        for (seg, &n) in self.layout.iter().enumerate() {
            if p < n {
                return Ok((seg, p));
            }
            p -= n;
        }
        Err(std::io::Error::other(format!("partition {} is beyond the job's layout {:?}", self.partition, self.layout)))
    }

    fn mismatch(&self, mine: &str) -> String {
        format!(
            "shoal: this task built a different plan than the driver for job {}, so it cannot compute its part.\n  driver: {}\n  task:   {}\n\
             A plan must not depend on anything that differs between processes: the clock, the host name, environment \
             variables, files read outside the Dataset API, or random numbers without a fixed seed. Build it from \
             cx.args() and from the results of earlier actions.",
            self.job, self.plan, mine
        )
    }

    /// The program returned before reaching this task's job.
    pub fn program_ended(&self, jobs: u32) -> ! {
        eprintln!(
            "shoal: the program ended after {jobs} jobs, but the driver started this task for job {}: the plan differs between \
             the driver and this host (driver: {}).",
            self.job, self.plan
        );
        std::process::exit(PLAN_MISMATCH)
    }
}

/// Which shuffle parent a segment belongs to, and that parent's first segment.
fn parent_of(parent_segments: &[usize], seg: usize) -> (usize, usize) {
    let mut offset = 0;
    for (i, &n) in parent_segments.iter().enumerate() {
        if seg < offset + n {
            return (i, offset);
        }
        offset += n;
    }
    (parent_segments.len().saturating_sub(1), offset)
}

/// Moves stdout aside (returned: the task's output) and points fd 1 at
/// stderr, so that the program's prints cannot corrupt its records.
fn take_stdout() -> Result<File> {
    // SAFETY: plain descriptor syscalls on fds 1 and 2, which this process owns.
    unsafe {
        let saved = libc::dup(1);
        if saved < 0 || libc::dup2(2, 1) < 0 {
            return Err(Error::io("task: cannot redirect stdout", std::io::Error::last_os_error()));
        }
        Ok(File::from_raw_fd(saved))
    }
}

#[cfg(test)]
mod tests {
    use super::parent_of;

    #[test]
    fn segments_map_to_parents() {
        assert_eq!(parent_of(&[2, 1], 0), (0, 0));
        assert_eq!(parent_of(&[2, 1], 1), (0, 0));
        assert_eq!(parent_of(&[2, 1], 2), (1, 2));
    }
}
