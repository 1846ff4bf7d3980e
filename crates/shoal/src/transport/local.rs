//! The `local` transport: this machine, with `shoal agent` as a child
//! process on piped stdio. Nothing is deployed; the driver's own
//! executable is the agent.
//!
//! The agent leads a process group of its own, so that Ctrl-C in the
//! terminal reaches only the driver, which cancels and then stops its
//! agents in order; and it is not killed when its handle is dropped: the
//! end of its stdin (the driver exiting, even by SIGKILL) is what ends
//! it, after it has ended its tasks.

use std::process::Stdio;
use std::time::Duration;

use shoal_core::cluster::HostSpec;
use shoal_wire::agent_args::{self, AgentArgs};
use tokio::process::Command;

use super::{greet, handshake, Greeting, Link, StderrTail, TransportError};
use crate::binary;

/// Expands a leading `~` with this user's home.
pub fn expand_home(p: &str) -> std::path::PathBuf {
    let home = || std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    match p.strip_prefix("~/") {
        Some(rest) => std::path::Path::new(&home()).join(rest),
        None if p == "~" => home().into(),
        None => p.into(),
    }
}

pub async fn start(host: &HostSpec, lease: Duration) -> Result<Link, TransportError> {
    let exe = binary::current().map_err(TransportError::OwnExecutable)?;
    let args = AgentArgs::new(expand_home(&host.workdir)).with_lease(lease);
    let mut child = Command::new(&exe.path)
        .arg(agent_args::SUBCOMMAND)
        .args(args.to_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(TransportError::SpawnLocal)?;
    let stderr = StderrTail::spawn(child.stderr.take());
    let mut stdout = child.stdout.take().ok_or(TransportError::NotPiped("agent stdout"))?;
    match greet(&mut stdout).await? {
        Greeting::Agent(rest) => handshake(child, stdout, rest, stderr).await,
        _ => Err(TransportError::LocalNoStart { stderr: stderr.text() }),
    }
}
