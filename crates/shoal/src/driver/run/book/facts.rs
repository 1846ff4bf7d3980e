//! The facts of a run that its summary reports and nothing decides on:
//! per-host totals, hosts excluded and lost, bytes moved, reuse, counters
//! and skipped records. The run book keeps them; `run::summarize` reads
//! them.

use std::collections::BTreeMap;

use super::super::summary::{HostSummary, SkippedSummary};

#[derive(Debug, Default)]
pub struct Facts {
    /// Per host, in the run's host order.
    pub hosts: Vec<HostSummary>,
    pub excluded: Vec<String>,
    /// Lost hosts, with the reason.
    pub lost: Vec<(String, String)>,
    /// Tasks reused from an earlier run.
    pub reused: usize,
    /// Synced files: bytes sent, and bytes hosts already held.
    pub sync_sent: u64,
    pub sync_skipped: u64,
    /// Input partitions: likewise.
    pub input_sent: u64,
    pub input_skipped: u64,
    /// Shuffle bytes that crossed the driver.
    pub shuffled_via_driver: u64,
    /// Shuffle bytes reducers' hosts fetched straight from their peers.
    pub shuffled_direct: u64,
    /// Input bytes staged for tasks from the hosts that held them:
    /// through the driver (cached parts only), and fetched host to host.
    pub inputs_via_driver: u64,
    pub inputs_direct: u64,
    /// Cached input parts no host could give any more.
    pub lost_inputs: Vec<shoal_wire::Hash>,
    /// Connections to the hosts' peer listeners refused.
    pub peer_refused: u64,
    /// Hadoop-style counters from `reporter:counter:group,name,amount`.
    pub counters: BTreeMap<String, i64>,
    /// Records left out by committed attempts.
    pub skipped: Vec<SkippedSummary>,
}

impl Facts {
    /// Facts of a run on hosts named `names`, with `slots` each.
    pub fn new(hosts: &[(String, u32)]) -> Self {
        let hosts = hosts.iter().map(|(host, slots)| HostSummary { host: host.clone(), slots: *slots, ..Default::default() }).collect();
        Facts { hosts, ..Default::default() }
    }

    /// The name of host `h`.
    pub fn name(&self, h: usize) -> &str {
        &self.hosts[h].host
    }

    /// Adds one `reporter:counter:` line of a task's log. Totals saturate:
    /// a wrapped total would be a plausible wrong number.
    pub fn count(&mut self, line: &str) {
        if let Some((name, amount)) = line.strip_prefix("reporter:counter:").and_then(parse_counter) {
            let total = self.counters.entry(name).or_default();
            *total = total.saturating_add(amount);
        }
    }
}

/// `group,name,amount` of a Hadoop Streaming counter line.
fn parse_counter(rest: &str) -> Option<(String, i64)> {
    let mut parts = rest.rsplitn(2, ',');
    let amount = parts.next()?.trim().parse().ok()?;
    Some((parts.next()?.to_string(), amount))
}
