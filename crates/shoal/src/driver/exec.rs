//! `shoal exec`: one shell command on every host, output grouped.
//!
//! Hosts whose output and status are identical are printed once under a
//! common header, as `clush -b` does, so a hundred identical `uname -a`
//! lines collapse into one block.

use serde::Serialize;
use shoal_wire::{ExitStatus, Message};
use tokio::task::JoinSet;

use super::host::RequestError;
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
    /// What the user should know about the output: that it was cut.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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
            ExecResult {
                host: f.spec.name.clone(),
                status: None,
                ok: false,
                stdout: String::new(),
                stderr: f.error.to_string(),
                notes: vec![],
            },
        ));
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

fn result(host: &str, reply: Result<Message, RequestError>) -> ExecResult {
    let failed = |stderr: String| ExecResult { host: host.into(), status: None, ok: false, stdout: String::new(), stderr, notes: vec![] };
    match reply {
        Ok(Message::ExecDone { status, stdout, stderr, stdout_cut, stderr_cut, .. }) => ExecResult {
            host: host.to_string(),
            ok: status.success(),
            status: Some(describe(&status)),
            notes: [cut_note("stdout", stdout.len(), stdout_cut), cut_note("stderr", stderr.len(), stderr_cut)]
                .into_iter()
                .flatten()
                .collect(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        },
        Ok(other) => failed(format!("unexpected reply {}", other.kind())),
        Err(e) => failed(e.to_string()),
    }
}

/// Says that a stream was cut to its tail, and how to keep all of it.
fn cut_note(stream: &str, kept: usize, cut: u64) -> Option<String> {
    (cut > 0).then(|| {
        format!(
            "only the last {kept} of {} bytes of {stream} are shown; to keep it all, redirect it to a file on the host and fetch that with `shoal pull`",
            kept as u64 + cut
        )
    })
}

fn describe(s: &ExitStatus) -> String {
    s.to_string()
}

/// Groups identical results and renders them.
pub fn render(results: &[ExecResult]) -> String {
    let mut groups: Vec<(Vec<&str>, &ExecResult)> = Vec::new();
    for r in results {
        match groups.iter_mut().find(|(_, g)| g.stdout == r.stdout && g.stderr == r.stderr && g.status == r.status && g.notes == r.notes) {
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
        for note in &r.notes {
            out.push_str(&format!("shoal: {note}\n"));
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
            notes: vec![],
        }
    }

    #[test]
    fn identical_outputs_are_grouped() {
        let text = render(&[r("a", "x\n", true), r("b", "y\n", true), r("c", "x\n", true)]);
        assert_eq!(text, "---------------- a,c (exit code 0)\nx\n---------------- b (exit code 0)\ny\n");
    }
}
