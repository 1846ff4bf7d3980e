//! A panic in a program's closures, as one sentence on a task's stderr
//! (the tail the driver reports): where it panicked, what it said, and
//! which job, stage, partition and host.
//!
//! A one-task process and a resident executor both say which task runs
//! now with [`set_panic_context`] before computing it; the hook
//! ([`explain_panics`]) is installed once a task reaches its job. A panic
//! is never caught: it ends the process, and the agent reports the task
//! failed with this sentence.

use std::sync::Mutex;

use super::plan::{Assignment, JobPlan};

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

/// Says, in the panic hook's sentence, which task is running now.
pub(super) fn set_panic_context(plan: &JobPlan, task: &Assignment) {
    let mut context = PANIC_CONTEXT.lock().unwrap_or_else(|e| e.into_inner());
    if context.job != Some((plan.index, task.stage)) {
        let stage = if task.stage == 1 { "reduce" } else { "map" };
        let whose = plan.site_of_stage(task.stage);
        let host = std::env::var("SHOAL_HOST").unwrap_or_default();
        context.text = format!("job {} ({whose}), {stage}\0{host}", plan.index);
        context.job = Some((plan.index, task.stage));
    }
    context.partition = task.partition;
}

/// Installs the hook that turns a panic into the sentence.
pub(super) fn explain_panics() {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        let at = info.location().map_or(String::new(), |l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()));
        let context = PANIC_CONTEXT.lock().map(|c| c.to_string()).unwrap_or_default();
        eprintln!("shoal: the program panicked{at}: {}\n  in {context}", msg.unwrap_or("(no message)"));
    }));
}
