//! The engine's inputs: agent reports, internal completions, the clock and
//! Ctrl-C. Each becomes scheduler events.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_core::scheduler::{AttemptId, Event, FailureKind, HostId, TaskId};
use shoal_wire::{LogStream, Message, TaskReport};

use super::{Ending, Engine, Internal};
use crate::driver::run::output::Part;
use crate::driver::run::progress::HostLine;
use crate::driver::HostEvent;

impl Engine<'_> {
    pub(super) fn on_host_event(&mut self, ev: HostEvent) {
        match ev {
            HostEvent::Task { host, msgs } => {
                let Some(&h) = self.by_spec_index.get(&host) else {
                    return;
                };
                for msg in msgs {
                    if self.ending.is_some() {
                        break;
                    }
                    self.on_task_message(h, msg);
                }
            }
            HostEvent::Lost { host, reason } => {
                let Some(&h) = self.by_spec_index.get(&host) else {
                    return;
                };
                self.on_host_lost(h, reason);
            }
        }
    }

    fn on_task_message(&mut self, h: usize, msg: Message) {
        match msg {
            Message::TaskDone(report) if !self.sent_to(h, report.attempt, true) => self.foreign_report(h, report.attempt),
            Message::TaskLog { attempt, .. } if !self.sent_to(h, attempt, false) => self.foreign_report(h, attempt),
            Message::TaskDone(report) if self.killed_from_outside(&report) => {
                // SIGKILL that we did not send: the host may be going down
                // (everything on it killed at once). Wait before charging
                // the task, so that a host loss seen meanwhile wins.
                let tx = self.internal_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let _ = tx.send(Internal::OutsideKill { host: h, report });
                });
            }
            Message::TaskDone(report) => self.on_task_done(h, report),
            Message::TaskLog { attempt, stream, data } => self.on_log(h, attempt, stream, &data),
            Message::TaskProgress { .. } => {}
            _ => {}
        }
    }

    /// Whether `attempt` was sent to host `h` (and, for its end, has not
    /// reported one yet). A report is matched by its attempt id, which a
    /// confused or hostile agent could name for an attempt it never ran:
    /// only the host that runs an attempt may speak for it, and its end
    /// counts once.
    fn sent_to(&self, h: usize, attempt: u32, end: bool) -> bool {
        self.attempts.get(&attempt).is_some_and(|a| a.host == h && !(end && a.status.is_some()))
    }

    fn foreign_report(&self, h: usize, attempt: u32) {
        let why = match self.attempts.get(&attempt).map(|a| a.host) {
            None => "an attempt that was never sent".to_string(),
            Some(owner) if owner != h => format!("an attempt sent to `{}`", self.hosts[owner].name()),
            Some(_) => "an attempt that had already reported its end".to_string(),
        };
        tracing::warn!(host = self.hosts[h].name(), attempt, "ignored a report for {why}");
    }

    fn on_log(&mut self, h: usize, attempt: u32, stream: LogStream, data: &[u8]) {
        let Some(task) = self.attempts.get(&attempt).map(|a| a.task) else {
            return;
        };
        let host = self.hosts[h].name().to_string();
        let Some(logs) = &mut self.logs else { return };
        for line in logs.write(&host, task, attempt, stream, data) {
            if let Some((name, amount)) = line.strip_prefix("reporter:counter:").and_then(parse_counter) {
                let total = self.counters.entry(name).or_default();
                // Saturates: a wrapped total would be a plausible wrong number.
                *total = total.saturating_add(amount);
            }
        }
    }

    fn on_task_done(&mut self, h: usize, mut r: TaskReport) {
        let now = self.now();
        let Some(a) = self.attempts.get_mut(&r.attempt) else {
            return;
        };
        let ended = Instant::now();
        // It started running on its host when it began, not when it was
        // sent (it may have waited there in a queue).
        let ran = Duration::from_micros(r.wall_us);
        a.started = a.started.max(ended.checked_sub(ran).unwrap_or(a.started));
        a.ended = Some(ended);
        a.status = Some(match (&r.status, r.timed_out) {
            (shoal_wire::ExitStatus::Code(0), false) => Cow::Borrowed("exit code 0"),
            (status, false) => status.to_string().into(),
            (status, true) => format!("timed out ({status})").into(),
        });
        a.stderr_tail = std::mem::take(&mut r.stderr_tail);
        a.cpu_ms = r.cpu_ms;
        let (task, killed) = (TaskId(a.task), a.killed);
        let stats = &mut self.host_stats[h];
        stats.cpu_ms += r.cpu_ms;
        stats.busy_us += r.wall_us;
        stats.busy_ms = stats.busy_us / 1000;
        let attempt = AttemptId(r.attempt);
        let ok = r.status.success() && !r.timed_out && r.output.is_some();
        if ok {
            if !r.buckets.is_empty() {
                self.pending_buckets.insert(r.attempt, std::mem::take(&mut r.buckets));
            }
            if !r.skipped.is_empty() {
                self.pending_skipped.insert(r.attempt, std::mem::take(&mut r.skipped));
            }
            self.set_outcome(r.attempt, "succeeded");
            self.pending_outputs.insert(r.attempt, r.output.expect("checked"));
            if let Some(data) = r.output_data {
                self.pending_data.insert(r.attempt, data);
            }
            self.feed(Event::TaskSucceeded { task, attempt, now });
            if let Some(per_slot) = self.pacing.observe(ran) {
                self.feed(Event::Pipeline { per_slot });
            }
            return;
        }
        self.host_stats[h].failures += 1;
        let kind = match (&r.host_trouble, killed) {
            (_, true) => FailureKind::Killed,
            (Some(_), _) => FailureKind::HostTrouble,
            (None, _) => FailureKind::Exit,
        };
        if let Some(why) = &r.host_trouble {
            self.note(&format!("host `{}`: {why}", self.hosts[h].name()));
        }
        if kind == FailureKind::Exit {
            *self.exit_failures.entry(task.0).or_default() += 1;
        }
        self.set_outcome(r.attempt, if killed { "killed" } else { "failed" });
        self.feed(Event::TaskFailed { task, attempt, now, kind });
    }

    fn on_host_lost(&mut self, h: usize, reason: String) {
        let name = self.hosts[h].name().to_string();
        self.note(&format!("host `{name}` lost: {reason}; its tasks will run elsewhere"));
        self.lost.push((name, reason));
        for a in self.attempts.values_mut().filter(|a| a.host == h && a.ended.is_none()) {
            a.ended = Some(Instant::now());
            a.outcome = "lost";
        }
        let now = self.now();
        self.feed(Event::HostLost { host: HostId(h as u32), now });
        self.check_stalled();
    }

    fn check_stalled(&mut self) {
        if self.ending.is_none() && self.sched.is_stalled() {
            let lost: Vec<String> = self.lost.iter().map(|(h, why)| format!("  {h}: {why}")).collect();
            self.ending = Some(Ending::Failed(format!(
                "no usable host is left (lost: {}, excluded: {}); the run stops here\n{}",
                self.lost.len(),
                self.excluded.len(),
                lost.join("\n")
            )));
        }
    }

    /// An attempt ended by SIGKILL that the driver did not ask for.
    fn killed_from_outside(&self, r: &TaskReport) -> bool {
        r.status == shoal_wire::ExitStatus::Signal(9) && self.attempts.get(&r.attempt).is_some_and(|a| !a.killed)
    }

    pub(super) fn on_internal(&mut self, ev: Internal) {
        match ev {
            Internal::OutsideKill { host, report } => {
                // Lost meanwhile: the attempt went with its host, uncharged.
                if !self.hosts[host].is_lost() {
                    self.on_task_done(host, report);
                }
            }
            Internal::Shuffled { bytes } => self.shuffled_via_driver += bytes,
            Internal::FetchFailed { task, attempt, from_task } => {
                let now = self.now();
                if let Some(a) = self.attempts.get_mut(&attempt) {
                    a.ended = Some(Instant::now());
                    a.status = Some(format!("input from map task {from_task} lost").into());
                }
                self.set_outcome(attempt, "fetch-failed");
                self.map_outputs.remove(&from_task);
                let kind = FailureKind::FetchFailed { from_task: TaskId(from_task) };
                self.feed(Event::TaskFailed { task: TaskId(task), attempt: AttemptId(attempt), now, kind });
            }
            Internal::Uploaded { host, sent, skipped } => {
                self.host_stats[host].bytes_in += sent;
                self.input_sent += sent;
                self.input_skipped += skipped;
            }
            Internal::Collected { task, attempt, file, size, hash, data } => self.on_collected(task, attempt, file, size, hash, data),
            Internal::CannotKeep { why } => self.ending = Some(Ending::Failed(why)),
            Internal::CollectFailed { host, why } => {
                let events = self.hosts[host].clone();
                self.note(&format!("fetching an output from `{}` failed: {why}", events.name()));
            }
            Internal::LaunchFailed { task, attempt, why, gone } => {
                if gone {
                    return; // the host's loss is reported on its own
                }
                let now = self.now();
                if let Some(a) = self.attempts.get_mut(&attempt) {
                    a.ended = Some(Instant::now());
                    a.status = Some(why.clone().into());
                    a.stderr_tail = why;
                }
                self.set_outcome(attempt, "failed");
                self.feed(Event::TaskFailed { task: TaskId(task), attempt: AttemptId(attempt), now, kind: FailureKind::HostTrouble });
            }
        }
    }

    pub(super) fn on_collected(
        &mut self,
        task: u32,
        attempt: u32,
        file: std::path::PathBuf,
        size: u64,
        hash: String,
        data: Option<std::sync::Arc<[u8]>>,
    ) {
        let Some(a) = self.attempts.get(&attempt) else {
            return;
        };
        let host = a.host;
        let planned = &self.plan.tasks[task as usize];
        if let Err(e) = self.journal.commit(task, &planned.identity, &hash, size, self.hosts[host].name(), data.as_deref()) {
            self.ending = Some(Ending::Failed(format!("cannot write the run journal {}: {e}", self.journal.path.display())));
            return;
        }
        self.host_stats[host].bytes_out += size;
        self.host_stats[host].done += 1;
        self.parts.insert(task, Part { partition: planned.partition, file, data, input_name: Arc::clone(&planned.input_name) });
        self.feed(Event::Collected { task: TaskId(task) });
    }

    pub(super) fn on_tick(&mut self) {
        if let Err(e) = self.journal.sync_soon() {
            self.ending = Some(Ending::Failed(format!("cannot write the run journal {}: {e}", self.journal.path.display())));
        }
        let now = self.now();
        self.feed(Event::Tick { now });
        self.check_stalled();
        self.redraw();
    }

    fn redraw(&mut self) {
        let mut lines: Vec<(String, HostLine)> = self
            .host_stats
            .iter()
            .map(|s| {
                (s.host.clone(), HostLine { done: s.done, failed: s.failures, bytes_in: s.bytes_in, bytes_out: s.bytes_out, running: 0 })
            })
            .collect();
        let mut running = 0;
        let mut failed = 0;
        for a in self.attempts.values() {
            if a.ended.is_none() {
                running += 1;
                lines[a.host].1.running += 1;
            }
            if a.outcome == "failed" {
                failed += 1;
            }
        }
        let done = self.parts.len() as u64;
        self.progress.update(done, running, failed, &lines);
    }

    pub(super) fn on_interrupt(&mut self) {
        self.interrupts += 1;
        if self.interrupts > 1 {
            eprintln!("interrupted again: exiting at once");
            std::process::exit(130);
        }
        self.note("interrupted: stopping every task (press Ctrl-C again to exit at once)");
        self.feed(Event::Cancel);
        if self.ending.is_none() {
            self.ending = Some(Ending::Interrupted);
        }
    }

    pub(super) fn set_outcome(&mut self, attempt: u32, outcome: &'static str) {
        if let Some(a) = self.attempts.get_mut(&attempt) {
            a.outcome = outcome;
        }
    }

    pub(super) fn exclude(&mut self, host: HostId) {
        let name = self.hosts[host.0 as usize].name().to_string();
        self.note(&format!("host `{name}` is excluded for the rest of the run: {} task failures in a row", self.job.job.exclude_after));
        self.excluded.push(name);
    }

    pub(super) fn note(&self, line: &str) {
        self.progress.println(&format!("shoal: {line}"));
    }

    /// The sentence for a task that used up its attempts.
    pub(super) fn failure_message(&self, task: u32, reason: &str) -> String {
        let planned = &self.plan.tasks[task as usize];
        let tries: Vec<&super::AttemptInfo> = self.attempts.values().filter(|a| a.task == task && a.outcome == "failed").collect();
        if tries.is_empty() {
            // Failed without a try (it had nowhere to run): the scheduler's
            // reason, with host numbers as names.
            let mut why = reason.to_string();
            for (i, h) in self.hosts.iter().enumerate().rev() {
                why = why.replace(&format!("host {i}"), &format!("host `{}`", h.name()));
            }
            return format!("task {task} (partition {}, input {}) cannot run: {why}", planned.partition, planned.input_name);
        }
        let hosts: Vec<String> =
            tries.iter().map(|a| format!("{} ({})", self.hosts[a.host].name(), a.status.as_deref().unwrap_or("?"))).collect();
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
}

/// `group,name,amount` of a Hadoop Streaming counter line.
fn parse_counter(rest: &str) -> Option<(String, i64)> {
    let mut parts = rest.rsplitn(2, ',');
    let amount = parts.next()?.trim().parse().ok()?;
    Some((parts.next()?.to_string(), amount))
}
