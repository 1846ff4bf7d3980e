//! A task of a Dataset program: this executable, started by an agent with
//! `SHOAL_ROLE=task`, replaying `main` up to its job.
//!
//! Jobs before its own return the results the driver broadcast (files in
//! the work dir); at its own job the task checks that it built the same
//! plan as the driver, then computes its one partition into the output
//! and exits, or, started as a resident executor (`SHOAL_EXECUTOR=1`),
//! serves task after task of that job ([`super::executor`]). Whatever the
//! program prints goes to the task's log: stdout is moved to stderr before
//! the program's code runs again, and records (or an executor's replies)
//! are written to the original stdout.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::Mutex;

use super::context::{JobPlan, Purpose};
use super::node::{Input, Part, StageFn};
use crate::{Error, Result};

/// Exit code of a task whose plan differs from the driver's.
pub const PLAN_MISMATCH: i32 = 3;

/// What a task was started for, from its environment.
pub struct TaskRole {
    job: u32,
    /// Partitions per map root of its job, in segment order.
    layout: Vec<u32>,
    plan: String,
    /// The driver's default shuffle partitions.
    pub slots: u32,
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

/// The partition one task computes.
pub(super) struct Assignment {
    pub stage: u32,
    pub partition: u32,
    pub input: Input,
}

/// Where a panic happened, for the panic hook: set before every task.
static PANIC_CONTEXT: Mutex<PanicContext> = Mutex::new(PanicContext { job: None, text: String::new(), partition: 0 });

/// Which task is running, for the panic hook's sentence: the text of its
/// job and stage is made once per job and stage, not once per task.
struct PanicContext {
    /// (job, stage) that `text` describes.
    job: Option<(u32, u32)>,
    /// `job J (site), map` and the rest of the sentence but the partition.
    text: String,
    partition: u32,
}

impl std::fmt::Display for PanicContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (head, host) = self.text.split_once('\0').unwrap_or((&self.text, ""));
        write!(f, "{head} partition {}, host {host}", self.partition)
    }
}

impl TaskRole {
    /// `Some` when this process is a task or an executor.
    pub fn from_env() -> Result<Option<TaskRole>> {
        if std::env::var("SHOAL_ROLE").as_deref() != Ok("task") {
            return Ok(None);
        }
        let var = |name: &str| std::env::var(name).map_err(|_| Error::Usage(format!("task: {name} is not set")));
        let num = |name: &str| -> Result<u32> { var(name)?.parse().map_err(|_| Error::Usage(format!("task: {name} is not a number"))) };
        let layout = var("SHOAL_PARAM_LAYOUT")?.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap_or(0)).collect();
        let resident = std::env::var(shoal_wire::executor::EXECUTOR_ENV).as_deref() == Ok("1");
        let mode = if resident {
            Mode::Resident
        } else {
            Mode::Once(Assignment {
                stage: num("SHOAL_STAGE")?,
                partition: num("SHOAL_PARTITION")?,
                input: Input::File(PathBuf::from(var("SHOAL_INPUT")?)),
            })
        };
        let role = TaskRole {
            job: num("SHOAL_PARAM_JOB")?,
            layout,
            plan: var("SHOAL_PARAM_PLAN")?,
            slots: num("SHOAL_PARAM_SLOTS")?,
            mode,
            output: std::cell::RefCell::new(Some(take_stdout()?)),
        };
        Ok(Some(role))
    }

    /// Replays a job: the broadcast result of an earlier one, or this
    /// process's work in its own (then the process exits).
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
        explain_panics();
        let output = self.output.borrow_mut().take();
        let Some(output) = output else {
            eprintln!("shoal: task of job {}: its output was taken", plan.index);
            std::process::exit(1);
        };
        match &self.mode {
            Mode::Once(task) => std::process::exit(self.run_once(plan, finish, task, output)),
            Mode::Resident => super::executor::serve(self, plan, finish, output),
        }
    }

    fn run_once(&self, plan: &JobPlan, finish: &StageFn, task: &Assignment, output: File) -> i32 {
        set_panic_context(plan, task);
        let mut out = super::narrow::output_writer(output);
        let done = self.execute(plan, finish, task, &mut out).and_then(|()| out.flush()).and_then(|()| out.get_ref().sync_all());
        match done {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("shoal: task of job {} failed: {e}", plan.index);
                1
            }
        }
    }

    /// Computes one partition of the job into `out`.
    pub(super) fn execute(&self, plan: &JobPlan, finish: &StageFn, task: &Assignment, out: &mut dyn Write) -> std::io::Result<()> {
        if task.stage == 1 {
            let part = Part { seg: 0, index: task.partition, input: task.input.clone(), reduce_side: true };
            return finish(&part, out);
        }
        let (seg, index) = self.locate(task.partition)?;
        let part = |seg| Part { seg, index, input: task.input.clone(), reduce_side: false };
        match &plan.shuffle.as_ref().map(|s| &s.kind) {
            Some(super::node::Kind::Shuffle(sh)) => {
                let (parent, offset) = parent_of(&plan.parent_segments, seg);
                (sh.map_sides[parent])(&part(seg - offset), out)
            }
            _ => finish(&part(seg), out),
        }
    }

    /// The segment and the partition within it of a map task.
    fn locate(&self, partition: u32) -> std::io::Result<(usize, u32)> {
        let mut p = partition;
        for (seg, &n) in self.layout.iter().enumerate() {
            if p < n {
                return Ok((seg, p));
            }
            p -= n;
        }
        Err(std::io::Error::other(format!("partition {partition} is beyond the job's layout {:?}", self.layout)))
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

/// Says, in the panic hook's sentence, which task is running now.
pub(super) fn set_panic_context(plan: &JobPlan, task: &Assignment) {
    let mut context = PANIC_CONTEXT.lock().unwrap_or_else(|e| e.into_inner());
    if context.job != Some((plan.index, task.stage)) {
        let stage = if task.stage == 1 { "reduce" } else { "map" };
        let whose = plan.shuffle.as_ref().filter(|_| task.stage == 0).unwrap_or(&plan.node).site();
        let host = std::env::var("SHOAL_HOST").unwrap_or_default();
        context.text = format!("job {} ({whose}), {stage}\0{host}", plan.index);
        context.job = Some((plan.index, task.stage));
    }
    context.partition = task.partition;
}

/// A panic in the program's closures becomes one sentence on stderr (the
/// tail the driver reports): where it panicked, what it said, and which
/// job, stage, partition and host.
fn explain_panics() {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        let at = info.location().map_or(String::new(), |l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()));
        let context = PANIC_CONTEXT.lock().map(|c| c.to_string()).unwrap_or_default();
        eprintln!("shoal: the program panicked{at}: {}\n  in {context}", msg.unwrap_or("(no message)"));
    }));
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
