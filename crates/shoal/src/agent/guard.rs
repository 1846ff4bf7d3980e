//! The agent's guardian: a small process that cleans up after the agent
//! when the agent cannot, because it was killed with SIGKILL (by the OOM
//! killer, an admin, a test).
//!
//! A dead agent does nothing, so at start the agent re-executes its own
//! binary as `agent-guard` with a pipe for stdin whose write end only the
//! agent holds (std opens pipes close-on-exec, so no task inherits it).
//! The guardian blocks reading it: no polling, and nothing per task. When
//! the read ends (the agent is gone, however it went) the guardian ends
//! every process the agent left ([`tree::end_orphans`]: the processes
//! carrying the agent's mark and their process groups), removes the run
//! scratch that no live agent holds ([`scratch::sweep`]), and exits.
//!
//! After a normal end the agent has already done both, and the guardian
//! finds nothing to do. It must not keep the agent's ssh session open (its
//! stdio is the pipe and `/dev/null`), nor go down with the agent: it leads
//! a process group of its own, so a kill of the agent's group misses it,
//! and it ignores the hangup of the agent's session.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};

use super::{scratch, tree};

/// The hidden subcommand that runs the guardian.
pub const SUBCOMMAND: &str = "agent-guard";

/// What the guardian is told on its command line.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardOptions {
    /// The agent's work dir.
    pub workdir: PathBuf,
    /// The agent's pid: its mark names it.
    pub agent: u32,
    /// The agent's process group, which the guardian leaves alone.
    pub group: i32,
}

/// The agent's end of the guardian's pipe: dropping it (or the agent's
/// death) starts the guardian's cleanup.
#[derive(Debug)]
pub struct Guard {
    _pipe: ChildStdin,
}

/// Starts the guardian of this agent. Call it before
/// [`tree::mark_everything_started`]: the guardian outlives the agent and
/// must not carry its mark.
pub fn start(workdir: &Path) -> std::io::Result<Guard> {
    // SAFETY: plain getter.
    let group = unsafe { libc::getpgrp() };
    let mut cmd = Command::new("/proc/self/exe");
    if let Ok(exe) = std::env::current_exe() {
        cmd.arg0(exe);
    }
    let mut child = cmd
        .arg(SUBCOMMAND)
        .args(args(&GuardOptions { workdir: workdir.to_path_buf(), agent: std::process::id(), group }))
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    tree::spare(child.id() as i32);
    let pipe = child.stdin.take().ok_or_else(|| std::io::Error::other("the guardian's stdin is not a pipe"))?;
    Ok(Guard { _pipe: pipe })
}

/// The guardian's arguments after the subcommand.
fn args(o: &GuardOptions) -> Vec<String> {
    let dir = o.workdir.to_string_lossy().into_owned();
    ["--workdir", &dir, "--agent", &o.agent.to_string(), "--group", &o.group.to_string()].map(String::from).to_vec()
}

/// Why the guardian's arguments (which only an agent writes) are wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardArgsError {
    #[error("{SUBCOMMAND}: {flag} needs a value")]
    NoValue { flag: String },
    #[error("{SUBCOMMAND}: {flag} {value:?} is not a number")]
    NotANumber { flag: String, value: String },
    #[error("{SUBCOMMAND}: unknown flag {flag}")]
    UnknownFlag { flag: String },
    #[error("{SUBCOMMAND} needs --workdir, --agent and --group; only an agent starts it")]
    Missing,
}

/// Parses what [`args`] wrote.
pub fn parse(args: &[String]) -> Result<GuardOptions, GuardArgsError> {
    let (mut workdir, mut agent, mut group) = (None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| GuardArgsError::NoValue { flag: flag.clone() })?;
        let number = || value.parse::<i64>().map_err(|_| GuardArgsError::NotANumber { flag: flag.clone(), value: value.clone() });
        match flag.as_str() {
            "--workdir" => workdir = Some(PathBuf::from(value)),
            "--agent" => agent = Some(number()? as u32),
            "--group" => group = Some(number()? as i32),
            other => return Err(GuardArgsError::UnknownFlag { flag: other.to_string() }),
        }
    }
    match (workdir, agent, group) {
        (Some(workdir), Some(agent), Some(group)) => Ok(GuardOptions { workdir, agent, group }),
        _ => Err(GuardArgsError::Missing),
    }
}

/// The guardian: waits for its agent to end, then cleans up after it.
pub fn run(o: &GuardOptions) -> i32 {
    // SAFETY: setting a signal's disposition to "ignore" has no handler
    // to run; the agent's session may hang up when the agent dies.
    unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    wait_for_eof();
    tree::end_orphans(o.agent, o.group);
    scratch::sweep(&o.workdir.join("runs"), true);
    0
}

fn wait_for_eof() {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn its_arguments_read_back() {
        let o = GuardOptions { workdir: "/w d".into(), agent: 42, group: 40 };
        assert_eq!(parse(&args(&o)), Ok(o));
        assert_eq!(parse(&["--agent".into()]).unwrap_err().to_string(), "agent-guard: --agent needs a value");
        assert_eq!(parse(&[]), Err(GuardArgsError::Missing));
        assert_eq!(parse(&[]).unwrap_err().to_string(), "agent-guard needs --workdir, --agent and --group; only an agent starts it");
        let bad = parse(&["--group".into(), "x".into()]).unwrap_err();
        assert_eq!(bad, GuardArgsError::NotANumber { flag: "--group".into(), value: "x".into() });
        assert_eq!(bad.to_string(), "agent-guard: --group \"x\" is not a number");
    }
}
