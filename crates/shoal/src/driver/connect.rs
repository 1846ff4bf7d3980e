//! Connecting to every host of a cluster at once.

use std::sync::Arc;

use shoal_core::cluster::{ClusterSpec, HostSpec};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::host::{Host, HostEvent};
use crate::transport::{self, ConnectStats, TransportError};

/// The hosts of one command: those that came up, and why the others did not.
pub struct Cluster {
    pub hosts: Vec<Arc<Host>>,
    pub failed: Vec<FailedHost>,
    pub events: mpsc::UnboundedReceiver<HostEvent>,
    pub events_tx: mpsc::UnboundedSender<HostEvent>,
}

/// A host that could not be reached, in cluster-file order.
pub struct FailedHost {
    pub spec: HostSpec,
    /// Why: match on it, or print it (`host `NAME`: ` before it).
    pub error: TransportError,
    pub connect_ms: u64,
}

/// Starts an agent on every host in parallel. Agents hold a lease equal to
/// their host's heartbeat timeout, so they outlive a vanished driver by at
/// most that long.
pub async fn connect(spec: &ClusterSpec) -> Cluster {
    let (events_tx, events) = mpsc::unbounded_channel();
    let mut set = JoinSet::new();
    for (index, host) in spec.hosts.iter().cloned().enumerate() {
        set.spawn(async move {
            let started = std::time::Instant::now();
            let result = transport::connect(&host, host.heartbeat_timeout).await;
            (index, host, result, started.elapsed().as_millis() as u64)
        });
    }
    let mut up = Vec::new();
    let mut failed = Vec::new();
    while let Some(joined) = set.join_next().await {
        let Ok((index, host, result, ms)) = joined else {
            continue;
        };
        match result {
            Ok(link) => up.push(Host::start(index, host, link, events_tx.clone())),
            Err(e) => failed.push((index, FailedHost { spec: host, error: e, connect_ms: ms })),
        }
    }
    up.sort_by_key(|h| h.index);
    failed.sort_by_key(|(i, _)| *i);
    Cluster { hosts: up, failed: failed.into_iter().map(|(_, f)| f).collect(), events, events_tx }
}

impl Cluster {
    /// Closes every link; agents clean up and exit.
    pub async fn close(&self) {
        let mut set = JoinSet::new();
        for h in self.hosts.clone() {
            set.spawn(async move { h.close().await });
        }
        while set.join_next().await.is_some() {}
    }

    /// Connect statistics of a host that is up.
    pub fn stats(&self, host: &Host) -> ConnectStats {
        host.stats.clone()
    }
}
