//! What a commit does with an attempt's pending record: a shuffle map's
//! buckets become the map output (they stay on the map's host); any other
//! output is brought to the driver (kept in memory and in its journal line
//! when small, written or fetched to its part file otherwise), journaled,
//! and then reported to the scheduler as collected. Skipped records are
//! counted here too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shoal_core::scheduler::{Event, TaskId, TaskState};
use shoal_wire::{hex, SkippedRecord};

use super::super::journal::DATA_MAX;
use super::super::output::Part;
use super::super::summary::SkippedSummary;
use super::{Committed, Effect, Ending, MapOutput, Needed, RunBook};

impl RunBook<'_> {
    /// The scheduler committed `attempt`'s output as `task`'s.
    pub(super) fn commit(&mut self, task: u32, attempt: u32, host: usize) {
        let mut pending = self.pending.remove(&attempt);
        if let Some(skipped) = pending.as_mut().map(|p| std::mem::take(&mut p.skipped)).filter(|s| !s.is_empty()) {
            self.note_skipped(task, skipped);
        }
        if self.rules.shuffle && self.plan.tasks[task as usize].stage == 0 {
            // A map output of a shuffle stays on its host as buckets.
            let buckets = pending.map(|p| p.buckets).unwrap_or_default();
            self.map_outputs.insert(task, MapOutput { host, buckets });
            self.facts.hosts[host].done += 1;
            return;
        }
        let Some(p) = pending else {
            return;
        };
        let file = self.part_file(task);
        let hash = p.output.hash;
        match p.data {
            Some(data) if data.len() <= DATA_MAX => {
                let size = data.len() as u64;
                self.collected(task, attempt, file, size, hex(&hash), Some(data.into()));
            }
            Some(data) => self.out.push(Effect::Write { task, attempt, hash, data, file }),
            None => self.out.push(Effect::Fetch { task, attempt, host, hash, size: p.output.size, file }),
        }
    }

    /// A committed output is in the run dir (or in memory): journal it,
    /// if it is still the task's.
    pub(super) fn collected(&mut self, task: u32, attempt: u32, file: PathBuf, size: u64, hash: String, data: Option<Arc<[u8]>>) {
        let Some(a) = self.attempts.get(&attempt) else {
            return;
        };
        // An output that reached the driver after its host was lost is old
        // news when the task reran meanwhile: the rerun's output counts,
        // and a task is journaled once.
        let current = matches!(self.sched.task_state(TaskId(task)), TaskState::Done { attempt: a, .. } if a.0 == attempt);
        if !current {
            return;
        }
        self.out.push(Effect::Journal(Committed { task, attempt, host: a.host, file, size, hash, data }));
    }

    /// The commit's journal line is written: the driver holds the output.
    pub fn on_journaled(&mut self, c: Committed, now: Duration) -> Vec<Effect> {
        self.now = now;
        let planned = &self.plan.tasks[c.task as usize];
        let stats = &mut self.facts.hosts[c.host];
        stats.bytes_out += c.size;
        stats.done += 1;
        let part = Part { partition: planned.partition, file: c.file, data: c.data, input_name: Arc::clone(&planned.input_name) };
        self.parts.insert(c.task, part);
        self.feed(Event::Collected { task: TaskId(c.task) });
        self.effects()
    }

    /// Where the output of `task` goes: `<run dir>/parts/part-NNNNN`.
    pub fn part_file(&self, task: u32) -> PathBuf {
        self.plan.run_dir.part(task)
    }

    /// `skip_bad` of a map task's next attempt: skip mode once its command
    /// failed twice, when the job allows skipping and the task reads lines.
    pub(super) fn skip_mode(&self, task: u32) -> Option<u32> {
        let limit = self.rules.skip_bad_records;
        let planned = &self.plan.tasks[task as usize];
        let failed = self.exit_failures.get(&task).copied().unwrap_or(0);
        (limit > 0 && planned.stage == 0 && planned.input.is_some() && failed >= 2).then_some(limit)
    }

    /// Records what a committed attempt skipped, at its offset in the
    /// input file, and stops the run when the job skipped more than
    /// `[job] skip_bad_records` in all.
    fn note_skipped(&mut self, task: u32, records: Vec<SkippedRecord>) {
        let planned = &self.plan.tasks[task as usize];
        let base = planned.input.as_ref().map_or(0, |s| s.offset);
        for r in records {
            let offset = base + r.offset;
            let line = format!("task {task} (input {}) skipped a bad record at byte {offset}: {:?}", planned.input_name, r.head);
            self.out.push(Effect::Note(line));
            let input = planned.input_name.to_string();
            let partition = planned.partition;
            self.facts.skipped.push(SkippedSummary { task, partition, input, offset, len: r.len, head: r.head });
        }
        let limit = self.rules.skip_bad_records;
        if self.facts.skipped.len() > limit as usize && self.ending.is_none() {
            self.ending = Some(Ending::Failed(format!(
                "{} bad records were skipped, more than [job] skip_bad_records = {limit} allows; they are listed above and in the summary",
                self.facts.skipped.len()
            )));
        }
    }

    /// Bucket `r` of every committed map task, with the host that holds it.
    pub(super) fn needed_buckets(&self, r: u32) -> Vec<Needed> {
        (0..self.stage_size(0) as u32)
            .filter_map(|m| {
                let out = self.map_outputs.get(&m)?;
                Some(Needed { map: m, from: out.host, bucket: *out.buckets.get(r as usize)? })
            })
            .collect()
    }

    /// Bytes and records per reduce partition, over every committed map.
    pub fn partition_sizes(&self) -> Vec<(u64, u64)> {
        let mut sizes = vec![(0, 0); self.stage_size(1)];
        for out in self.map_outputs.values() {
            for (r, b) in out.buckets.iter().enumerate() {
                if let Some(s) = sizes.get_mut(r) {
                    s.0 += b.block.size;
                    s.1 += b.records;
                }
            }
        }
        sizes
    }
}
