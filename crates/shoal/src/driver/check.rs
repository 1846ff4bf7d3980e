//! `shoal check`: connect to every host, deploy the agent where missing,
//! and report each host's facts.

use serde::Serialize;
use shoal_core::cluster::{ClusterSpec, TransportKind};

use super::connect;
use crate::format::{align, human_bytes};

/// One row of the check table.
#[derive(Clone, Debug, Serialize)]
pub struct HostReport {
    pub name: String,
    pub address: String,
    pub ready: bool,
    /// Why the host is not ready.
    pub reason: Option<String>,
    pub hostname: Option<String>,
    pub arch: Option<String>,
    pub cores: Option<u32>,
    pub slots: Option<u32>,
    pub mem_bytes: Option<u64>,
    pub disk_free_bytes: Option<u64>,
    pub docker: Option<bool>,
    pub connect_ms: u64,
    pub uploaded_bytes: u64,
}

/// Connects to every host and reports on each, in cluster-file order.
pub async fn check(spec: &ClusterSpec) -> Vec<HostReport> {
    let cluster = connect(spec).await;
    let docker = super::host::docker_usable(&cluster.hosts).await;
    let mut rows: Vec<(usize, HostReport)> = Vec::new();
    for h in &cluster.hosts {
        rows.push((
            h.index,
            HostReport {
                name: h.spec.name.clone(),
                address: address(&h.spec),
                ready: true,
                reason: None,
                hostname: Some(h.info.hostname.clone()),
                arch: Some(format!("{}/{}", h.info.os, h.info.arch)),
                cores: Some(h.info.cores),
                slots: Some(h.slots()),
                mem_bytes: Some(h.info.mem_bytes),
                disk_free_bytes: Some(h.info.disk_free_bytes),
                docker: Some(docker.contains(&h.index)),
                connect_ms: h.stats.connect_ms,
                uploaded_bytes: h.stats.uploaded_bytes,
            },
        ));
    }
    for f in &cluster.failed {
        let index = spec.hosts.iter().position(|h| h.name == f.spec.name).unwrap_or(usize::MAX);
        rows.push((
            index,
            HostReport {
                name: f.spec.name.clone(),
                address: address(&f.spec),
                ready: false,
                reason: Some(f.error.to_string()),
                hostname: None,
                arch: None,
                cores: None,
                slots: f.spec.slots,
                mem_bytes: None,
                disk_free_bytes: None,
                docker: None,
                connect_ms: f.connect_ms,
                uploaded_bytes: 0,
            },
        ));
    }
    cluster.close().await;
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, r)| r).collect()
}

fn address(h: &shoal_core::cluster::HostSpec) -> String {
    match h.transport {
        TransportKind::Local => "(local)".into(),
        TransportKind::Ssh => match h.port {
            Some(p) => format!("{}:{p}", h.address),
            None => h.address.clone(),
        },
    }
}

/// Renders the reports as an aligned text table followed by the reasons of
/// unreachable hosts, one line each.
pub fn render(rows: &[HostReport]) -> String {
    let header = ["HOST", "ADDRESS", "STATUS", "ARCH", "CORES", "SLOTS", "MEMORY", "DISK FREE", "DOCKER", "CONNECT", "UPLOAD"];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        table.push(vec![
            r.name.clone(),
            r.address.clone(),
            if r.ready { "ready".into() } else { "FAILED".into() },
            opt(r.arch.clone()),
            opt(r.cores.map(|c| c.to_string())),
            opt(r.slots.map(|c| c.to_string())),
            opt(r.mem_bytes.map(human_bytes)),
            opt(r.disk_free_bytes.map(human_bytes)),
            opt(r.docker.map(|d| if d { "yes".into() } else { "no".into() })),
            format!("{:.2}s", r.connect_ms as f64 / 1000.0),
            if r.uploaded_bytes > 0 { human_bytes(r.uploaded_bytes) } else { "cached".into() },
        ]);
    }
    let mut out = align(&table);
    for r in rows.iter().filter(|r| !r.ready) {
        out.push_str(&format!("{}: {}\n", r.name, r.reason.as_deref().unwrap_or("unknown")));
    }
    out
}
