//! Progress while a run goes: live bars on a terminal (indicatif), plain
//! timestamped lines every few seconds otherwise (logs, CI, pipes).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::format::human_bytes;

/// Counts shown for one host.
#[derive(Clone, Debug, Default)]
pub struct HostLine {
    pub running: u32,
    pub done: u32,
    pub failed: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The progress display of one run.
pub struct Progress {
    started: Instant,
    total: u64,
    bars: Option<(MultiProgress, ProgressBar, Vec<ProgressBar>)>,
    last_line: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(total: u64, hosts: &[String], quiet: bool) -> Self {
        let bars = (!quiet && std::io::stderr().is_terminal()).then(|| bars(total, hosts));
        Progress { started: Instant::now(), total, bars, last_line: Instant::now(), quiet }
    }

    /// Redraws with the latest counts.
    pub fn update(&mut self, done: u64, running: u64, failed: u64, hosts: &[(String, HostLine)]) {
        if let Some((_, overall, lines)) = &self.bars {
            overall.set_position(done);
            overall.set_message(format!("{running} running, {failed} failed attempts"));
            for (bar, (name, h)) in lines.iter().zip(hosts) {
                bar.set_message(format!(
                    "{name}: {} running, {} done, {} failed, in {}, out {}",
                    h.running,
                    h.done,
                    h.failed,
                    human_bytes(h.bytes_in),
                    human_bytes(h.bytes_out)
                ));
            }
            return;
        }
        if self.quiet || self.last_line.elapsed() < Duration::from_secs(5) {
            return;
        }
        self.last_line = Instant::now();
        eprintln!(
            "[{:>6.1}s] {done}/{} tasks done, {running} running, {failed} failed attempts",
            self.started.elapsed().as_secs_f64(),
            self.total
        );
    }

    /// Prints a line above the bars (or plainly).
    pub fn println(&self, line: &str) {
        let line = &*crate::printable::printable(line);
        match &self.bars {
            Some((multi, _, _)) => {
                let _ = multi.println(line);
            }
            // Warnings go to stderr even with --json: stdout stays JSON.
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(self) {
        if let Some((multi, overall, lines)) = self.bars {
            overall.finish_and_clear();
            lines.iter().for_each(ProgressBar::finish_and_clear);
            let _ = multi.clear();
        }
    }
}

fn bars(total: u64, hosts: &[String]) -> (MultiProgress, ProgressBar, Vec<ProgressBar>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} tasks  {per_sec}  eta {eta}  {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let overall = multi.add(ProgressBar::new(total).with_style(style));
    let line_style = ProgressStyle::with_template("  {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let lines = hosts.iter().map(|_| multi.add(ProgressBar::new_spinner().with_style(line_style.clone()))).collect();
    (multi, overall, lines)
}
