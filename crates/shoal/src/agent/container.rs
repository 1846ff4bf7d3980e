//! Running a task inside a Docker container.
//!
//! `docker run` gets the run's work dir, the task's input and output, and
//! the progress file bind-mounted at documented paths (`/shoal/work`,
//! `/shoal/input`, `/shoal/output`, `/shoal/progress`), the same `SHOAL_*`
//! environment (with those paths), this user's uid and gid (outputs are not
//! owned by root), optional `--cpus` and `--memory`, and no network unless
//! the job asks. The container is named after the run and attempt; it is
//! not started with `--rm`, so that after it exits we can still ask whether
//! the kernel killed it for memory, and then remove it ourselves. Killing
//! the `docker run` client does not stop a container, so every kill path
//! (cancel, lease expiry, shutdown) also runs `docker rm -f NAME`.

use std::path::Path;
use std::process::{Command, Stdio};

use shoal_wire::{Container, TaskRequest};

/// Exit code of `docker run` when Docker itself failed (daemon down,
/// image missing, bad flags), as opposed to the command.
pub const DOCKER_ERROR: i32 = 125;

/// The `docker run` command line for a task.
pub fn command(req: &TaskRequest, c: &Container, work: &Path, input: &Path, output: &Path, progress: &Path) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(["run", "-i", "--name", &c.name, "--init"]);
    // SAFETY: plain getters without side effects.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    cmd.arg("--user").arg(format!("{uid}:{gid}"));
    cmd.arg("--network").arg(if c.network { "bridge" } else { "none" });
    if let Some(m) = c.memory {
        cmd.arg("--memory").arg(m.to_string()).arg("--memory-swap").arg(m.to_string());
    }
    if let Some(cpus) = c.cpus {
        cmd.arg("--cpus").arg(cpus.to_string());
    }
    for (from, to, mode) in
        [(work, "/shoal/work", "rw"), (input, "/shoal/input", "ro"), (output, "/shoal/output", "rw"), (progress, "/shoal/progress", "rw")]
    {
        cmd.arg("-v").arg(format!("{}:{to}:{mode}", from.display()));
    }
    cmd.args(["-w", "/shoal/work"]);
    for (k, v) in req.all_env() {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    for (k, v) in [
        ("SHOAL_INPUT", "/shoal/input"),
        ("SHOAL_OUTPUT", "/shoal/output"),
        ("SHOAL_PROGRESS", "/shoal/progress"),
        ("SHOAL_WORKDIR", "/shoal/work"),
    ] {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.arg(&c.image).args(["/bin/sh", "-c", &req.command]);
    cmd
}

/// True when the kernel killed the container for exceeding its memory.
pub fn oom_killed(name: &str) -> bool {
    Command::new("docker")
        .args(["inspect", "--format", "{{.State.OOMKilled}}", name])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
}

/// Removes a container, running or not; errors (already gone) are fine.
pub fn remove(name: &str) {
    let _ = Command::new("docker").args(["rm", "-f", name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
}
