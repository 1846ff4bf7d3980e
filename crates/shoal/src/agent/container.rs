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
//!
//! The container's environment (parameters, the host's `env`, `SHOAL_*`)
//! goes through `--env-file`, a 0600 file in the attempt's scratch that
//! is removed with it, never through `-e K=V` arguments, which every user
//! of the host can read in `ps`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use shoal_wire::{Container, TaskRequest};

use super::private;

/// Why a task's environment cannot be handed to its container.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error(
        "the variable {name} cannot reach a container: Docker's --env-file holds one NAME=value per line, and {why}; change it in [params] or in the host's env"
    )]
    Unsendable { name: String, why: &'static str },
    #[error("cannot write the container's environment file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Exit code of `docker run` when Docker itself failed (daemon down,
/// image missing, bad flags), as opposed to the command.
pub const DOCKER_ERROR: i32 = 125;

/// The paths a container task sees, on this host.
pub struct Mounts<'a> {
    pub work: &'a Path,
    pub input: &'a Path,
    pub output: &'a Path,
    pub progress: &'a Path,
    /// The attempt's scratch, where the environment file is written.
    pub scratch: &'a Path,
}

/// The `docker run` command line for a task; writes its environment file.
pub fn command(req: &TaskRequest, c: &Container, m: &Mounts<'_>) -> Result<Command, EnvFileError> {
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
    for (from, to, mode) in [
        (m.work, "/shoal/work", "rw"),
        (m.input, "/shoal/input", "ro"),
        (m.output, "/shoal/output", "rw"),
        (m.progress, "/shoal/progress", "rw"),
    ] {
        cmd.arg("-v").arg(format!("{}:{to}:{mode}", from.display()));
    }
    cmd.args(["-w", "/shoal/work"]);
    let env_file = m.scratch.join("container.env");
    write_env_file(&env_file, &env_text(req)?).map_err(|source| EnvFileError::Write { path: env_file.clone(), source })?;
    cmd.arg("--env-file").arg(&env_file);
    cmd.arg(&c.image).args(["/bin/sh", "-c", &req.command]);
    Ok(cmd)
}

/// The task's variables, then the container's own paths, one per line.
fn env_text(req: &TaskRequest) -> Result<String, EnvFileError> {
    let paths = [
        ("SHOAL_INPUT", "/shoal/input"),
        ("SHOAL_OUTPUT", "/shoal/output"),
        ("SHOAL_PROGRESS", "/shoal/progress"),
        ("SHOAL_WORKDIR", "/shoal/work"),
    ];
    let mut text = String::new();
    for (k, v) in req.all_env().chain(paths.into_iter().map(|(k, v)| (k, v.to_string()))) {
        check_env(k, &v)?;
        text.push_str(&format!("{k}={v}\n"));
    }
    Ok(text)
}

/// Docker reads the file by lines, ends a name at the first `=`, trims
/// space before the name and skips `#` lines; what it would misread is
/// refused rather than passed on changed.
fn check_env(name: &str, value: &str) -> Result<(), EnvFileError> {
    let why = if value.contains(['\n', '\r']) {
        "its value holds a line break"
    } else if name.is_empty() || name.contains(['=', '\n', '\r']) || name.starts_with(|c: char| c.is_whitespace() || c == '#') {
        "its name is empty, holds `=` or a line break, or starts with a space or `#`"
    } else {
        return Ok(());
    };
    Err(EnvFileError::Unsendable { name: name.escape_debug().to_string(), why })
}

fn write_env_file(path: &Path, text: &str) -> io::Result<()> {
    private::create_new(path)?.write_all(text.as_bytes())
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use super::*;

    fn request(env: &[(&str, &str)]) -> TaskRequest {
        TaskRequest {
            arg: Some("an argument".into()),
            env_id: 1,
            env: Arc::new(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            partition: 3,
            partitions: 9,
            ..TaskRequest::new("r1", 3, 7, "cat")
        }
    }

    fn container() -> Container {
        Container { image: "alpine:3".into(), name: "shoal-r1-7".into(), memory: None, cpus: None, network: false }
    }

    fn build(req: &TaskRequest, scratch: &Path) -> Result<Command, EnvFileError> {
        let p = Path::new("/x");
        command(req, &container(), &Mounts { work: p, input: p, output: p, progress: p, scratch })
    }

    #[test]
    fn secrets_travel_in_a_private_file_not_on_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(&[("SHOAL_PARAM_TOKEN", "s3cret value=1")]);
        let cmd = build(&req, dir.path()).unwrap();
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(!args.iter().any(|a| a.contains("s3cret")), "a secret is visible in ps: {args:?}");
        assert!(!args.iter().any(|a| a == "-e"), "{args:?}");
        let file = dir.path().join("container.env");
        assert!(args.windows(2).any(|w| w[0] == "--env-file" && Path::new(&w[1]) == file), "{args:?}");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("SHOAL_PARAM_TOKEN=s3cret value=1\nSHOAL_PARTITION=3\n"), "{text}");
        assert!(text.ends_with("SHOAL_WORKDIR=/shoal/work\n"), "{text}");
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_value_with_a_line_break_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(&request(&[("SHOAL_PARAM_PEM", "line 1\nline 2")]), dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            "the variable SHOAL_PARAM_PEM cannot reach a container: Docker's --env-file holds one NAME=value per line, and its value holds a line break; change it in [params] or in the host's env"
        );
        assert!(!dir.path().join("container.env").exists());
    }
}
