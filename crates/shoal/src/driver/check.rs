//! `shoal check`: connect to every host, deploy the agent where missing,
//! and report each host's facts.

use serde::Serialize;
use shoal_core::cluster::{ClusterSpec, DataPath, TransportKind};

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
    /// Of the other ssh hosts, how many reach this host's agent directly
    /// (a shuffle's direct path); `None` when no direct path applies
    /// (one host, the local transport, `data = "relay"`).
    pub direct_from: Option<u32>,
    pub peers: Option<u32>,
    /// Each peer that cannot reach this host directly, and why.
    pub unreachable_from: Vec<(String, String)>,
}

/// Connects to every host and reports on each, in cluster-file order.
pub async fn check(spec: &ClusterSpec) -> Vec<HostReport> {
    let cluster = connect(spec).await;
    let docker = super::host::docker_usable(&cluster.hosts).await;
    let run = format!("check-{:08x}", rand::random::<u32>());
    let (mesh, unreachable) = super::mesh::set_up(&cluster.hosts, spec.data, &run).await;
    for h in &cluster.hosts {
        let _ = h.send(shoal_wire::Message::EndRun { run: run.clone() }).await;
    }
    let tried = spec.data == DataPath::Direct && cluster.hosts.iter().filter(|h| h.spec.transport.is_remote()).count() > 1;
    let mut rows: Vec<(usize, HostReport)> = Vec::new();
    for (i, h) in cluster.hosts.iter().enumerate() {
        let from: Vec<(String, String)> =
            unreachable.iter().filter(|u| u.from == i).map(|u| (cluster.hosts[u.to].name().to_string(), u.why.clone())).collect();
        let member = tried && h.spec.transport.is_remote();
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
                direct_from: member.then(|| (0..cluster.hosts.len()).filter(|&j| mesh.direct(j, i).is_some()).count() as u32),
                peers: member.then(|| cluster.hosts.iter().filter(|o| o.spec.transport.is_remote()).count() as u32 - 1),
                unreachable_from: from,
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
                direct_from: None,
                peers: None,
                unreachable_from: Vec::new(),
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
        TransportKind::Standing => format!("(worker of {})", h.address),
        TransportKind::Ssh => match h.port {
            Some(p) => format!("{}:{p}", h.address),
            None => h.address.clone(),
        },
    }
}

/// Renders the reports as an aligned text table followed by the reasons of
/// unreachable hosts, one line each.
pub fn render(rows: &[HostReport]) -> String {
    let header = ["HOST", "ADDRESS", "STATUS", "ARCH", "CORES", "SLOTS", "MEMORY", "DISK FREE", "DOCKER", "CONNECT", "UPLOAD", "PEERS"];
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
            match (r.direct_from, r.peers) {
                (Some(d), Some(n)) => format!("{d}/{n} direct"),
                _ => "-".into(),
            },
        ]);
    }
    let mut out = align(&table);
    for r in rows.iter().filter(|r| !r.ready) {
        out.push_str(&format!("{}: {}\n", r.name, r.reason.as_deref().unwrap_or("unknown")));
    }
    for r in rows {
        for (peer, why) in &r.unreachable_from {
            let why = crate::printable::printable(why);
            out.push_str(&format!(
                "{}: {peer} cannot reach it directly ({why}); shuffle data between them goes through the driver\n",
                r.name
            ));
        }
    }
    out
}
