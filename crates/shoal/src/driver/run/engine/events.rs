//! The loop's inputs: host messages, completions of its own transfers, the
//! clock and Ctrl-C. Each becomes a run-book call whose effects are
//! carried out at once; log frames go to the log sink and their counter
//! lines to the book.

use shoal_wire::{LogStream, Message};

use super::{Back, Engine};
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
                    if self.book.is_over() {
                        break;
                    }
                    self.on_task_message(h, msg);
                }
            }
            HostEvent::Lost { host, reason } => {
                let Some(&h) = self.by_spec_index.get(&host) else {
                    return;
                };
                let effects = self.book.on_host_lost(h, reason, self.now());
                self.carry_out(effects);
            }
        }
    }

    fn on_task_message(&mut self, h: usize, msg: Message) {
        match msg {
            Message::TaskDone(report) => {
                let effects = self.book.on_report(h, report, self.now());
                self.carry_out(effects);
            }
            Message::TaskLog { attempt, stream, data } => self.on_log(h, attempt, stream, &data),
            Message::PeerRefused { from, why, .. } => {
                // The first few are worth a line each; after that, the count
                // in the summary tells.
                if self.book.facts.peer_refused < 3 {
                    let line = format!("{} refused a connection from {from}: {why}", self.hosts[h].name());
                    self.note(&crate::printable::printable(&line));
                }
                let effects = self.book.on_internal(crate::driver::run::book::Internal::PeerRefused, self.now());
                self.carry_out(effects);
            }
            _ => {}
        }
    }

    fn on_log(&mut self, h: usize, attempt: u32, stream: LogStream, data: &[u8]) {
        let task = match self.book.log_task(h, attempt) {
            Ok(task) => task,
            Err(i) => return tracing::warn!(host = self.hosts[h].name(), attempt, "ignored a report for {}", i.why),
        };
        let Some(logs) = &mut self.logs else { return };
        for line in logs.write(self.hosts[h].name(), task, attempt, stream, data) {
            self.book.count(&line);
        }
    }

    pub(super) fn on_back(&mut self, back: Back) {
        let now = self.now();
        let effects = match back {
            // Lost meanwhile: the attempt went with its host, uncharged.
            Back::Held { host, .. } if self.hosts[host].is_lost() => return,
            Back::Held { host, report } => self.book.on_held_report(host, *report, now),
            Back::Book(ev) => self.book.on_internal(ev, now),
            Back::Note(line) => return self.note(&line),
        };
        self.carry_out(effects);
    }

    pub(super) fn on_tick(&mut self) {
        if let Err(e) = self.journal.sync_soon() {
            self.book.fail(format!("cannot write the run journal {}: {e}", self.journal.path.display()));
        }
        let effects = self.book.on_tick(self.now());
        self.carry_out(effects);
        self.redraw();
    }

    fn redraw(&mut self) {
        let mut lines: Vec<(String, HostLine)> = self
            .book
            .facts
            .hosts
            .iter()
            .map(|s| {
                (s.host.clone(), HostLine { done: s.done, failed: s.failures, bytes_in: s.bytes_in, bytes_out: s.bytes_out, running: 0 })
            })
            .collect();
        let mut running = 0;
        let mut failed = 0;
        for a in self.book.attempts.values() {
            if a.ended.is_none() {
                running += 1;
                lines[a.host].1.running += 1;
            }
            if a.outcome == crate::driver::run::book::Outcome::Failed {
                failed += 1;
            }
        }
        let done = self.book.parts.len() as u64;
        self.progress.update(done, running, failed, &lines);
    }

    /// The first interrupt cancels the run in order; a second one
    /// abandons it (the loop stops at once, see [`Engine::abandoned`]).
    pub(super) fn on_interrupt(&mut self) {
        self.interrupts += 1;
        if self.abandoned() {
            return;
        }
        let effects = self.book.on_cancel(self.now());
        self.carry_out(effects);
    }
}
