//! `shoal exec`: one shell command on every host, output grouped.
//!
//! Hosts whose output and status are identical are printed once under a
//! common header, as `clush -b` does, so a hundred identical `uname -a`
//! lines collapse into one block.

use serde::Serialize;
use shoal_wire::{ExitStatus, Message};
use tokio::task::JoinSet;

use super::Cluster;

/// What one host answered.
#[derive(Clone, Debug, Serialize)]
pub struct ExecResult {
    pub host: String,
    /// `None` when the host was unreachable or lost.
    pub status: Option<String>,
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` on every connected host of `cluster`.
pub async fn exec(cluster: &Cluster, command: &str) -> Vec<ExecResult> {
    let mut set = JoinSet::new();
    for h in cluster.hosts.clone() {
        let command = command.to_string();
        set.spawn(async move {
            let id = h.next_id();
            let reply = h.request(id, Message::Exec { id, command }).await;
            (h.index, result(h.name(), reply))
        });
    }
    let mut out = Vec::new();
    while let Some(Ok(r)) = set.join_next().await {
        out.push(r);
    }
    for f in &cluster.failed {
        out.push((
            usize::MAX,
            ExecResult { host: f.spec.name.clone(), status: None, ok: false, stdout: String::new(), stderr: f.reason.clone() },
        ));
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

fn result(host: &str, reply: Result<Message, super::host::HostGone>) -> ExecResult {
    match reply {
        Ok(Message::ExecDone { status, stdout, stderr, .. }) => ExecResult {
            host: host.to_string(),
            ok: status.success(),
            status: Some(describe(&status)),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        },
        Ok(other) => {
            ExecResult { host: host.into(), status: None, ok: false, stdout: String::new(), stderr: format!("unexpected reply {other:?}") }
        }
        Err(e) => ExecResult { host: host.into(), status: None, ok: false, stdout: String::new(), stderr: e.to_string() },
    }
}

fn describe(s: &ExitStatus) -> String {
    s.to_string()
}

/// Groups identical results and renders them.
pub fn render(results: &[ExecResult]) -> String {
    let mut groups: Vec<(Vec<&str>, &ExecResult)> = Vec::new();
    for r in results {
        match groups.iter_mut().find(|(_, g)| g.stdout == r.stdout && g.stderr == r.stderr && g.status == r.status) {
            Some((hosts, _)) => hosts.push(&r.host),
            None => groups.push((vec![&r.host], r)),
        }
    }
    let mut out = String::new();
    for (hosts, r) in groups {
        let status = r.status.as_deref().unwrap_or("unreachable");
        out.push_str(&format!("---------------- {} ({status})\n", hosts.join(",")));
        out.push_str(&r.stdout);
        if !r.stdout.is_empty() && !r.stdout.ends_with('\n') {
            out.push('\n');
        }
        if !r.stderr.is_empty() {
            for line in r.stderr.lines() {
                out.push_str(&format!("stderr: {line}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(host: &str, out: &str, ok: bool) -> ExecResult {
        ExecResult {
            host: host.into(),
            status: Some(if ok { "exit code 0" } else { "exit code 1" }.into()),
            ok,
            stdout: out.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn identical_outputs_are_grouped() {
        let text = render(&[r("a", "x\n", true), r("b", "y\n", true), r("c", "x\n", true)]);
        assert_eq!(text, "---------------- a,c (exit code 0)\nx\n---------------- b (exit code 0)\ny\n");
    }
}
