//! The end-of-run summary: per host and per attempt, as a table for people
//! and as JSON (`--json`) for scripts. Also saved as `summary.json` in the
//! run dir, which `shoal runs` reads.

use serde::{Deserialize, Serialize};

use super::book::Outcome;
use crate::format::{align, human_bytes};

/// Totals of one host.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HostSummary {
    pub host: String,
    #[serde(default)]
    pub slots: u32,
    pub tasks: u32,
    pub done: u32,
    pub failures: u32,
    pub cpu_ms: u64,
    pub busy_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// `busy_ms` before rounding, so that tiny tasks add up.
    #[serde(skip)]
    pub busy_us: u64,
}

/// One attempt, for the summary and the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub task: u32,
    pub host: String,
    pub start_ms: u64,
    pub end_ms: Option<u64>,
    pub outcome: Outcome,
    pub status: Option<String>,
    pub speculative: bool,
    pub cpu_ms: u64,
    /// 0 = map, 1 = reduce.
    #[serde(default)]
    pub stage: u32,
    #[serde(default)]
    pub partition: u32,
    /// Last lines of stderr, for failures.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
}

/// Everything known about a finished run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunSummary {
    pub run: String,
    pub job: String,
    pub seed: u64,
    pub status: String,
    pub started_unix_ms: u64,
    pub wall_ms: u64,
    pub tasks: usize,
    pub reused: usize,
    pub attempts: Vec<AttemptRecord>,
    pub hosts: Vec<HostSummary>,
    pub excluded: Vec<String>,
    pub lost: Vec<(String, String)>,
    pub sync_bytes_sent: u64,
    pub sync_bytes_skipped: u64,
    /// Input partition bytes sent to hosts, and not sent because a host held them.
    pub input_bytes_sent: u64,
    pub input_bytes_skipped: u64,
    pub output: Option<String>,
    pub error: Option<String>,
    /// Hadoop Streaming counters summed over tasks, `group,name` -> total.
    #[serde(default)]
    pub counters: std::collections::BTreeMap<String, i64>,
    #[serde(default)]
    pub shuffle: Option<ShuffleSummary>,
    /// Path of the HTML run report.
    #[serde(default)]
    pub report: Option<String>,
    /// Input bytes a task's host fetched straight from another host that
    /// held them (a program's cached part, or a partition an earlier run
    /// sent there), and bytes of cached parts that went from their holder
    /// through the driver (hosts that cannot reach each other).
    #[serde(default)]
    pub input_peer_bytes: u64,
    #[serde(default)]
    pub input_relayed_bytes: u64,
    /// Where each part of an `[output] on_hosts` output is, in partition
    /// order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts_on_hosts: Vec<PartOnHost>,
    /// Bad records left out under `[job] skip_bad_records`.
    #[serde(default)]
    pub skipped_records: Vec<SkippedSummary>,
    /// A dry run's plan (a table of partitions, then a line of totals),
    /// for the binary to print; never in `summary.json`.
    #[serde(skip)]
    pub plan: Option<String>,
}

/// One part of an output left on the host that made it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartOnHost {
    pub partition: u32,
    pub host: String,
    /// On that host (`~/` for its home directory).
    pub path: String,
    pub bytes: u64,
    /// BLAKE3, hex.
    pub hash: String,
}

/// A bad record that a task left out in skip mode.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SkippedSummary {
    pub task: u32,
    pub partition: u32,
    /// The input it came from, and where it starts there in bytes.
    pub input: String,
    pub offset: u64,
    pub len: u64,
    /// Its first bytes.
    pub head: String,
}

/// What a keyed shuffle moved.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ShuffleSummary {
    /// Bytes and records per reduce partition.
    pub partitions: Vec<PartitionSize>,
    /// Bucket bytes that travelled through the driver.
    pub via_driver_bytes: u64,
    /// Bucket bytes the reducers' hosts fetched straight from the map
    /// hosts.
    #[serde(default)]
    pub direct_bytes: u64,
    /// Ordered pairs of hosts (reducer's host, map's host) that fetch
    /// buckets directly, as the run ended (a pair whose fetch failed went
    /// over to the driver); the others went through the driver.
    #[serde(default)]
    pub direct_pairs: usize,
    /// Connections to the hosts' peer listeners that were refused (not
    /// a peer of the run).
    #[serde(default)]
    pub refused_connections: u64,
    pub skew_warning: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartitionSize {
    pub bytes: u64,
    pub records: u64,
}

impl ShuffleSummary {
    /// Sizes per partition, with a warning when one is far above the median.
    pub fn new(sizes: Vec<(u64, u64)>, via_driver_bytes: u64) -> Self {
        let partitions: Vec<PartitionSize> = sizes.iter().map(|&(bytes, records)| PartitionSize { bytes, records }).collect();
        ShuffleSummary { skew_warning: skew(&partitions), partitions, via_driver_bytes, ..Default::default() }
    }
}

/// Warns when the largest partition exceeds 4x the median and 1 MiB.
fn skew(parts: &[PartitionSize]) -> Option<String> {
    let mut bytes: Vec<u64> = parts.iter().map(|p| p.bytes).collect();
    bytes.sort_unstable();
    let median = *bytes.get(bytes.len() / 2)?;
    let (r, max) = parts.iter().enumerate().max_by_key(|(_, p)| p.bytes)?;
    (max.bytes > 4 * median.max(1) && max.bytes > 1 << 20).then(|| {
        format!(
            "reduce partition {r} holds {} ({} records), {:.1}x the median partition; a few keys may dominate: consider a combiner, more partitions, or a better key",
            human_bytes(max.bytes),
            max.records,
            max.bytes as f64 / median.max(1) as f64
        )
    })
}

impl RunSummary {
    /// The human summary table.
    pub fn render(&self) -> String {
        let mut rows = vec![["HOST", "TASKS", "DONE", "FAILED", "CPU", "BUSY", "IN", "OUT"].map(String::from).to_vec()];
        for h in &self.hosts {
            rows.push(vec![
                h.host.clone(),
                h.tasks.to_string(),
                h.done.to_string(),
                h.failures.to_string(),
                secs(h.cpu_ms),
                secs(h.busy_ms),
                human_bytes(h.bytes_in),
                human_bytes(h.bytes_out),
            ]);
        }
        let mut out = align(&rows);
        let retried = self.attempts.len().saturating_sub(self.tasks - self.reused);
        out.push_str(&format!(
            "run {} ({}): {} tasks, {} attempts ({} beyond the first), {} reused from an earlier run, {} wall, seed {}\n",
            self.run,
            self.status,
            self.tasks,
            self.attempts.len(),
            retried,
            self.reused,
            secs(self.wall_ms),
            self.seed
        ));
        out.push_str(&format!(
            "sync: {} sent, {} skipped (already on the hosts)\n",
            human_bytes(self.sync_bytes_sent),
            human_bytes(self.sync_bytes_skipped)
        ));
        for e in &self.excluded {
            out.push_str(&format!("excluded host: {e}\n"));
        }
        for (h, why) in &self.lost {
            out.push_str(&format!("lost host: {h}: {why}\n"));
        }
        if let Some(sh) = &self.shuffle {
            let bytes: Vec<String> = sh.partitions.iter().map(|p| format!("{} ({} records)", human_bytes(p.bytes), p.records)).collect();
            out.push_str(&format!(
                "shuffle: {}; host to host: {} ({} pairs direct); through the driver: {}\n",
                bytes.join(", "),
                human_bytes(sh.direct_bytes),
                sh.direct_pairs,
                human_bytes(sh.via_driver_bytes)
            ));
            if sh.refused_connections > 0 {
                out.push_str(&format!("refused connections to the hosts' peer listeners: {}\n", sh.refused_connections));
            }
            if let Some(w) = &sh.skew_warning {
                out.push_str(&format!("warning: {w}\n"));
            }
        }
        for s in &self.skipped_records {
            out.push_str(&format!(
                "skipped bad record: task {} (partition {}), {} at byte {} ({} bytes): {:?}\n",
                s.task, s.partition, s.input, s.offset, s.len, s.head
            ));
        }
        for (name, total) in &self.counters {
            out.push_str(&format!("counter {name}: {total}\n"));
        }
        if let Some(r) = &self.report {
            out.push_str(&format!("report: {r}\n"));
        }
        if let Some(o) = &self.output {
            out.push_str(&format!("output: {o}\n"));
        }
        out
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}
