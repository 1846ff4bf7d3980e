//! The sentences a failed run ends with: a task out of attempts (every
//! host it failed on, the last lines of its stderr, a hint for exit code
//! 127) and a run with no usable host left.

use super::{Attempt, Outcome, RunBook};

impl RunBook<'_> {
    /// The sentence for a task that used up its attempts.
    pub(super) fn failure_message(&self, task: u32, reason: &str) -> String {
        let planned = &self.plan.tasks[task as usize];
        let tries: Vec<&Attempt> = self.attempts.values().filter(|a| a.task == task && a.outcome == Outcome::Failed).collect();
        if tries.is_empty() {
            // Failed without a try (it had nowhere to run): the scheduler's
            // reason, with host numbers as names.
            let mut why = reason.to_string();
            for (i, h) in self.facts.hosts.iter().enumerate().rev() {
                why = why.replace(&format!("host {i}"), &format!("host `{}`", h.host));
            }
            return format!("task {task} (partition {}, input {}) cannot run: {why}", planned.partition, planned.input_name);
        }
        let hosts: Vec<String> =
            tries.iter().map(|a| format!("{} ({})", self.facts.name(a.host), a.status.as_deref().unwrap_or("?"))).collect();
        let last = tries.last().map(|a| a.stderr_tail.trim_end().to_string()).unwrap_or_default();
        let tail: Vec<&str> = last.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
        let mut msg = format!(
            "task {task} (partition {}, input {}) failed {} times, on: {}",
            planned.partition,
            planned.input_name,
            tries.len(),
            hosts.join(", ")
        );
        if tries.iter().any(|a| a.status.as_deref() == Some("exit code 127")) {
            msg.push_str("\nhint: exit code 127 means the command was not found on that host; check [map] command, or set command_on for hosts whose interpreter lives elsewhere");
        }
        if !tail.is_empty() {
            msg.push_str("\nlast lines of its stderr:\n");
            msg.push_str(&tail.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n"));
        }
        msg
    }

    /// The sentence for a run whose tasks have nowhere left to run.
    pub(super) fn stalled_message(&self) -> String {
        let lost: Vec<String> = self.facts.lost.iter().map(|(h, why)| format!("  {h}: {why}")).collect();
        format!(
            "no usable host is left (lost: {}, excluded: {}); the run stops here\n{}",
            self.facts.lost.len(),
            self.facts.excluded.len(),
            lost.join("\n")
        )
    }
}
