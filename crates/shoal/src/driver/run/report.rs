//! The run report: one self-contained HTML file (inline SVG and CSS, no
//! scripts, no network) that shows where a run's time went.
//!
//! It is built from the run's `summary.json` alone, so `shoal report RUN`
//! can rewrite it at any time. Every task attempt is one bar on the
//! timeline, with a `data-attempt` attribute and a hover title.

use std::fmt::Write;

use super::book::Outcome;
use super::summary::{AttemptRecord, RunSummary};
use crate::format::human_bytes;

const WIDTH: f64 = 1000.0;
const ROW: f64 = 18.0;
const LEFT: f64 = 120.0;

/// Renders the report of a run.
pub fn render(s: &RunSummary) -> String {
    let mut html = String::with_capacity(64 * 1024);
    head(&mut html, s);
    timeline(&mut html, s);
    throughput(&mut html, s);
    hosts(&mut html, s);
    slowest(&mut html, s);
    skew(&mut html, s);
    failures(&mut html, s);
    html.push_str("</body></html>\n");
    html
}

/// Escapes text for HTML content and attributes.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn head(h: &mut String, s: &RunSummary) {
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>shoal run {run}</title><style>\
body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}h1{{font-size:20px}}h2{{font-size:16px;margin-top:28px}}\
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th{{background:#f3f3f3}}\
td:first-child,th:first-child{{text-align:left}}pre{{background:#f6f6f6;padding:8px;white-space:pre-wrap}}\
.legend span{{display:inline-block;padding:1px 8px;margin-right:6px;color:#fff;border-radius:3px}}\
</style></head><body><h1>shoal run {run}</h1><p>job <b>{job}</b>, {status}, {tasks} tasks, {attempts} attempts, {reused} reused, \
{wall:.1}s wall, seed {seed}</p>",
        run = esc(&s.run),
        job = esc(&s.job),
        status = esc(&s.status),
        tasks = s.tasks,
        attempts = s.attempts.len(),
        reused = s.reused,
        wall = s.wall_ms as f64 / 1000.0,
        seed = s.seed
    );
    if let Some(e) = &s.error {
        let _ = write!(h, "<pre>{}</pre>", esc(e));
    }
}

fn color(a: &AttemptRecord) -> &'static str {
    match (a.outcome, a.stage) {
        (Outcome::Succeeded, 0) => "#2e7d32",
        (Outcome::Succeeded, _) => "#1565c0",
        (Outcome::Failed, _) => "#c62828",
        (Outcome::Killed, _) => "#757575",
        (Outcome::Lost, _) => "#ef6c00",
        (Outcome::Superseded, _) => "#8e24aa",
        (Outcome::Running | Outcome::FetchFailed, _) => "#9e9e9e",
    }
}

/// Assigns each attempt a row: one row per slot of its host, first free
/// row by start time (interval partitioning). A host never gets more rows
/// than it has slots: attempts queued behind each other on a resident
/// executor, or that share a millisecond, go to the row that frees first.
fn rows(s: &RunSummary) -> (Vec<(String, usize)>, Vec<usize>) {
    let slots = |host: &str| s.hosts.iter().find(|h| h.host == host).map_or(0, |h| h.slots as usize);
    let mut order: Vec<usize> = (0..s.attempts.len()).collect();
    order.sort_unstable_by_key(|&i| (s.attempts[i].start_ms, i));
    let mut host_rows: Vec<(String, Vec<u64>)> = Vec::new();
    let mut row_of = vec![0; s.attempts.len()];
    for i in order {
        let a = &s.attempts[i];
        let end = a.end_ms.unwrap_or(s.wall_ms).max(a.start_ms + 1);
        let hi = match host_rows.iter().position(|(h, _)| *h == a.host) {
            Some(p) => p,
            None => {
                host_rows.push((a.host.clone(), vec![]));
                host_rows.len() - 1
            }
        };
        let most = slots(&a.host);
        let busy = &mut host_rows[hi].1;
        let slot = match busy.iter().position(|&free_at| free_at <= a.start_ms) {
            Some(free) => free,
            None if most > 0 && busy.len() >= most => (0..busy.len()).min_by_key(|&r| busy[r]).unwrap_or(0),
            None => {
                busy.push(0);
                busy.len() - 1
            }
        };
        busy[slot] = end;
        row_of[i] = hi * 1000 + slot;
    }
    let mut flat = Vec::new();
    for (hi, (h, busy)) in host_rows.iter().enumerate() {
        for slot in 0..busy.len() {
            flat.push((format!("{h} #{slot}"), hi * 1000 + slot));
        }
    }
    (flat, row_of)
}

/// Above this many attempts, the timeline draws runs of touching bars of
/// one kind in one row as one bar: tens of thousands of one-pixel bars
/// would make a report of megabytes that no browser draws well.
const MAX_BARS: usize = 2000;

/// One attempt's bar, with its hover title.
fn bar(h: &mut String, s: &RunSummary, a: &AttemptRecord, row: usize, span: f64) {
    let x = LEFT + a.start_ms as f64 / span * WIDTH;
    let end = a.end_ms.unwrap_or(s.wall_ms);
    let w = ((end.saturating_sub(a.start_ms)) as f64 / span * WIDTH).max(1.5);
    let dash = if a.speculative { " stroke=\"#000\" stroke-dasharray=\"3,2\"" } else { "" };
    let title = format!(
        "task {} (stage {}, partition {}) attempt {} on {}: {} {} — {:.2}s",
        a.task,
        a.stage,
        a.partition,
        a.attempt,
        a.host,
        a.outcome,
        a.status.as_deref().unwrap_or(""),
        (end.saturating_sub(a.start_ms)) as f64 / 1000.0
    );
    let _ = write!(
        h,
        "<rect class=\"attempt\" data-attempt=\"{}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"{dash}><title>{}</title></rect>",
        a.attempt,
        row as f64 * ROW + 2.0,
        ROW - 4.0,
        color(a),
        esc(&title)
    );
}

/// Many attempts: per row, consecutive attempts of one color that start
/// within a pixel of where the last ended become one bar saying how many
/// attempts it stands for. Failures and speculative copies keep bars of
/// their own.
fn merged_bars(h: &mut String, s: &RunSummary, row: &dyn Fn(usize) -> usize, span: f64) {
    let px = span / WIDTH;
    let rows: Vec<usize> = (0..s.attempts.len()).map(row).collect();
    let mut order: Vec<usize> = (0..s.attempts.len()).collect();
    order.sort_unstable_by_key(|&i| (rows[i], s.attempts[i].start_ms, i));
    let mut run: Option<(usize, u64, u64, &'static str, usize)> = None; // row, start, end, color, count
    let flush = |h: &mut String, r: (usize, u64, u64, &'static str, usize)| {
        let (row, start, end, fill, n) = r;
        let x = LEFT + start as f64 / span * WIDTH;
        let w = (end.saturating_sub(start) as f64 / span * WIDTH).max(1.5);
        let _ = write!(
            h,
            "<rect class=\"attempts\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{}\" fill=\"{fill}\"><title>{n} attempts, {:.2}s-{:.2}s</title></rect>",
            row as f64 * ROW + 2.0,
            ROW - 4.0,
            start as f64 / 1000.0,
            end as f64 / 1000.0
        );
    };
    for i in order {
        let a = &s.attempts[i];
        if a.speculative || a.outcome == Outcome::Failed {
            bar(h, s, a, rows[i], span);
            continue;
        }
        let (r, fill, end) = (rows[i], color(a), a.end_ms.unwrap_or(s.wall_ms).max(a.start_ms));
        match &mut run {
            Some((rr, _, e, f, n)) if *rr == r && *f == fill && (a.start_ms as f64) <= *e as f64 + px => {
                *e = (*e).max(end);
                *n += 1;
            }
            _ => {
                if let Some(done) = run.take() {
                    flush(h, done);
                }
                run = Some((r, a.start_ms, end, fill, 1));
            }
        }
    }
    if let Some(done) = run {
        flush(h, done);
    }
}

fn timeline(h: &mut String, s: &RunSummary) {
    let (labels, row_of) = rows(s);
    let span = s.wall_ms.max(1) as f64;
    let height = labels.len() as f64 * ROW + 30.0;
    let _ = write!(h, "<h2>Timeline</h2><div class=\"legend\"><span style=\"background:#2e7d32\">map</span><span style=\"background:#1565c0\">reduce</span><span style=\"background:#c62828\">failed</span><span style=\"background:#ef6c00\">lost</span><span style=\"background:#757575\">killed</span><span style=\"background:#8e24aa\">superseded</span> dashed outline: speculative copy</div>");
    let _ = write!(h, "<svg id=\"timeline\" width=\"{}\" height=\"{height}\">", WIDTH + LEFT + 10.0);
    for (i, (label, _)) in labels.iter().enumerate() {
        let y = i as f64 * ROW;
        let _ = write!(h, "<text x=\"0\" y=\"{}\" font-size=\"11\">{}</text>", y + 13.0, esc(label));
    }
    let row_index: std::collections::HashMap<usize, usize> = labels.iter().enumerate().map(|(i, (_, key))| (*key, i)).collect();
    let row = |i: usize| row_index.get(&row_of[i]).copied().unwrap_or(0);
    if s.attempts.len() <= MAX_BARS {
        for (i, a) in s.attempts.iter().enumerate() {
            bar(h, s, a, row(i), span);
        }
    } else {
        merged_bars(h, s, &row, span);
    }
    let _ = write!(h, "<text x=\"{LEFT}\" y=\"{}\" font-size=\"11\">0s</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{:.1}s</text></svg>", height - 4.0, LEFT + WIDTH, height - 4.0, span / 1000.0);
}

/// Completed attempts per second, per stage, as polylines over 60 slices
/// of the run.
fn throughput(h: &mut String, s: &RunSummary) {
    const SLICES: usize = 60;
    let slice_ms = (s.wall_ms as f64 / SLICES as f64).max(1.0);
    let mut per = [[0u32; SLICES]; 2];
    for a in s.attempts.iter().filter(|a| a.outcome == Outcome::Succeeded) {
        if let Some(end) = a.end_ms {
            per[(a.stage as usize).min(1)][((end as f64 / slice_ms) as usize).min(SLICES - 1)] += 1;
        }
    }
    let rate = |n: u32| n as f64 * 1000.0 / slice_ms;
    let max = per.iter().flatten().map(|&n| rate(n)).fold(0.0, f64::max).max(1e-9);
    let _ = write!(h, "<h2>Throughput (tasks finished per second)</h2><svg width=\"{}\" height=\"130\">", WIDTH + LEFT);
    for (stage, colour) in [(0, "#2e7d32"), (1, "#1565c0")] {
        if per[stage].iter().all(|&n| n == 0) {
            continue;
        }
        let pts: Vec<String> = per[stage]
            .iter()
            .enumerate()
            .map(|(i, &n)| format!("{:.1},{:.1}", LEFT + (i as f64 + 0.5) / SLICES as f64 * WIDTH, 110.0 - rate(n) / max * 100.0))
            .collect();
        let _ = write!(h, "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>", pts.join(" "));
    }
    let _ = write!(h, "<text x=\"0\" y=\"14\" font-size=\"11\">{max:.1} /s</text><text x=\"0\" y=\"110\" font-size=\"11\">0</text></svg>");
}

fn hosts(h: &mut String, s: &RunSummary) {
    h.push_str("<h2>Hosts</h2><table><tr><th>host</th><th>slots</th><th>attempts</th><th>done</th><th>failures</th><th>busy</th><th>idle</th><th>CPU</th><th>in</th><th>out</th><th>note</th></tr>");
    for x in &s.hosts {
        let capacity = x.slots.max(1) as u64 * s.wall_ms;
        let idle = capacity.saturating_sub(x.busy_ms);
        let note = if s.excluded.contains(&x.host) {
            "excluded".to_string()
        } else {
            s.lost.iter().find(|(n, _)| *n == x.host).map_or(String::new(), |(_, why)| format!("lost: {why}"))
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}s</td><td>{:.1}s</td><td>{:.1}s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&x.host),
            x.slots,
            x.tasks,
            x.done,
            x.failures,
            x.busy_ms as f64 / 1000.0,
            idle as f64 / 1000.0,
            x.cpu_ms as f64 / 1000.0,
            human_bytes(x.bytes_in),
            human_bytes(x.bytes_out),
            esc(&note)
        );
    }
    h.push_str("</table>");
}

fn slowest(h: &mut String, s: &RunSummary) {
    let mut done: Vec<&AttemptRecord> = s.attempts.iter().filter(|a| a.end_ms.is_some()).collect();
    done.sort_by_key(|a| std::cmp::Reverse(a.end_ms.unwrap_or(0).saturating_sub(a.start_ms)));
    h.push_str("<h2>Slowest attempts</h2><table><tr><th>task</th><th>stage</th><th>partition</th><th>host</th><th>seconds</th><th>outcome</th></tr>");
    for a in done.iter().take(10) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
            a.task,
            a.stage,
            a.partition,
            esc(&a.host),
            a.end_ms.unwrap_or(0).saturating_sub(a.start_ms) as f64 / 1000.0,
            esc(a.outcome.as_str())
        );
    }
    h.push_str("</table>");
}

fn skew(h: &mut String, s: &RunSummary) {
    let Some(sh) = &s.shuffle else { return };
    h.push_str("<h2>Reduce partitions</h2><table><tr><th>partition</th><th>bytes</th><th>records</th></tr>");
    for (r, p) in sh.partitions.iter().enumerate() {
        let _ = write!(h, "<tr><td>{r}</td><td>{}</td><td>{}</td></tr>", human_bytes(p.bytes), p.records);
    }
    let _ = write!(
        h,
        "</table><p>host to host: {} ({} pairs direct); through the driver: {}; refused connections: {}</p>",
        human_bytes(sh.direct_bytes),
        sh.direct_pairs,
        human_bytes(sh.via_driver_bytes),
        sh.refused_connections
    );
    if let Some(w) = &sh.skew_warning {
        let _ = write!(h, "<p><b>warning:</b> {}</p>", esc(w));
    }
}

fn failures(h: &mut String, s: &RunSummary) {
    let failed: Vec<&AttemptRecord> = s.attempts.iter().filter(|a| a.outcome == Outcome::Failed).collect();
    let _ = write!(h, "<h2>Failures ({})</h2>", failed.len());
    for a in failed {
        let _ = write!(
            h,
            "<p>task {} (partition {}) attempt {} on <b>{}</b>: {} — full log: <code>.shoal/runs/{}/logs/{}/task-{:05}.log.zst</code> (<code>shoal logs {} --task {}</code>)</p><pre>{}</pre>",
            a.task,
            a.partition,
            a.attempt,
            esc(&a.host),
            esc(a.status.as_deref().unwrap_or("")),
            esc(&s.run),
            esc(&a.host),
            a.task,
            esc(&s.run),
            a.task,
            esc(&a.stderr_tail)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::run::summary::HostSummary;

    fn attempts(n: u32) -> RunSummary {
        let attempts = (0..n)
            .map(|i| AttemptRecord {
                attempt: i,
                task: i,
                host: format!("h{}", i % 2),
                start_ms: u64::from(i / 2),
                end_ms: Some(u64::from(i / 2) + 1),
                outcome: if i == 7 { Outcome::Failed } else { Outcome::Succeeded },
                status: Some("exit code 0".into()),
                speculative: false,
                cpu_ms: 0,
                stage: 0,
                partition: i,
                stderr_tail: String::new(),
            })
            .collect();
        let mut s: RunSummary = serde_json::from_str(
            r#"{"run":"r","job":"j","seed":0,"status":"succeeded","started_unix_ms":0,"wall_ms":1000,"tasks":0,"reused":0,
                "attempts":[],"hosts":[],"excluded":[],"lost":[],"sync_bytes_sent":0,"sync_bytes_skipped":0,
                "input_bytes_sent":0,"input_bytes_skipped":0,"output":null,"error":null}"#,
        )
        .unwrap();
        s.attempts = attempts;
        s.tasks = n as usize;
        s
    }

    #[test]
    fn every_attempt_is_a_bar_in_a_small_run() {
        let html = render(&attempts(100));
        assert_eq!(html.matches("class=\"attempt\"").count(), 100);
    }

    #[test]
    fn a_run_of_many_tiny_tasks_draws_merged_bars_but_keeps_failures() {
        let html = render(&attempts(50_000));
        let merged = html.matches("class=\"attempts\"").count();
        assert!(merged > 0 && merged < 100, "{merged} merged bars");
        assert_eq!(html.matches("class=\"attempt\"").count(), 1, "the failed attempt keeps its own bar");
        assert!(html.len() < 200_000, "{} bytes", html.len());
    }

    #[test]
    fn overlapping_attempts_keep_to_their_hosts_slots() {
        // Pipelined attempts as the driver sees them: each overlaps the
        // ones queued with it, many within one millisecond.
        let mut s = attempts(20_000);
        for (i, a) in s.attempts.iter_mut().enumerate() {
            a.start_ms = i as u64 / 40;
            a.end_ms = Some(i as u64 / 40 + 3);
        }
        s.hosts = ["h0", "h1"].map(|h| HostSummary { host: h.into(), slots: 2, ..Default::default() }).to_vec();
        let (labels, _) = rows(&s);
        assert_eq!(labels.len(), 4, "{labels:?}");
        let html = render(&s);
        assert!(html.len() < 200_000, "{} bytes", html.len());
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
    }
}
