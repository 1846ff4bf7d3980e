//! The builder that runs a binary under test: `Shoal::new()` for the
//! `shoal` command, `Shoal::program(name)` for an example program,
//! `Shoal::python()` for the venv's python with the `shoal` package,
//! `Shoal::example(name)` for a shell example's `run.sh`; then
//! `.arg(..)`, `.env(..)`, `.in_dir(..)`, `.stdin(..)` and `.run()` (or
//! `.run_within(limit)`, or `.command()` for a test that signals the
//! process itself).
//!
//! No cluster leaks in from the environment: `SHOAL_CLUSTER` is removed
//! for the command and programs, as is `RUST_BACKTRACE` for programs
//! (their panic messages are asserted), and the command prints no colour.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{bin, Ran};

pub struct Shoal {
    cmd: Command,
    line: String,
    stdin: Option<Vec<u8>>,
    /// A copied example's temp dir, removed once the command is done.
    scratch: Option<tempfile::TempDir>,
}

impl Shoal {
    /// The `shoal` command.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Shoal {
        let mut cmd = Command::new(bin::shoal());
        cmd.env_remove("SHOAL_CLUSTER").env_remove("SHOAL_ON").env("NO_COLOR", "1");
        Shoal { cmd, line: "shoal".into(), stdin: None, scratch: None }
    }

    /// An example program of crate `shoal` (see [`bin::program`]).
    pub fn program(name: &str) -> Shoal {
        let mut cmd = Command::new(bin::program(name));
        cmd.env_remove("SHOAL_CLUSTER").env_remove("RUST_BACKTRACE");
        Shoal { cmd, line: name.into(), stdin: None, scratch: None }
    }

    /// The python of the venv with the `shoal` package (see
    /// [`crate::python::venv`]), with no `PYTHONPATH` from outside.
    pub fn python() -> Shoal {
        let mut cmd = Command::new(crate::python::venv());
        cmd.env_remove("SHOAL_CLUSTER").env_remove("PYTHONPATH").env_remove("PYTHONHOME");
        Shoal { cmd, line: "python".into(), stdin: None, scratch: None }
    }

    /// The shell example `examples/<name>`, copied with `examples/common`
    /// into a fresh temp dir (so that tests never share an example's data
    /// or state): its `run.sh` with the `shoal` command as first argument
    /// and `HOME` in that temp dir.
    pub fn example(name: &str) -> Shoal {
        let root = bin::repo().join("examples");
        let dir = tempfile::tempdir().expect("a temp dir");
        for sub in [name, "common"] {
            let status = Command::new("cp").arg("-r").arg(root.join(sub)).arg(dir.path().join(sub)).status().expect("run cp");
            assert!(status.success(), "cannot copy examples/{sub} into {}", dir.path().display());
        }
        let _ = std::fs::remove_dir_all(dir.path().join(name).join(".shoal"));
        let mut cmd = Command::new(dir.path().join(name).join("run.sh"));
        cmd.arg(bin::shoal()).env("HOME", dir.path().join("home"));
        Shoal { cmd, line: format!("examples/{name}/run.sh"), stdin: None, scratch: Some(dir) }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.line.push(' ');
        self.line.push_str(&a.as_ref().to_string_lossy());
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: &str) -> Self {
        self.cmd.env_remove(k);
        self
    }

    /// Runs in `dir`.
    pub fn in_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Runs in the job dir `dir`, with `HOME` at `dir/home` (so that the
    /// default cluster's work dir, `~/.shoal`, is the test's own).
    pub fn in_job_dir(self, dir: &Path) -> Self {
        let home: PathBuf = dir.join("home");
        self.in_dir(dir).env("HOME", home)
    }

    /// Feeds `bytes` to the command's stdin (otherwise it reads nothing).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// The command as built, for a test that spawns it and signals it.
    pub fn command(self) -> Command {
        self.cmd
    }

    /// Runs to the end.
    #[track_caller]
    pub fn run(self) -> Ran {
        match self.run_bounded(None) {
            Ok(ran) => ran,
            Err(why) => panic!("{why}"),
        }
    }

    /// Runs, killed once it runs longer than `limit`; the error says so,
    /// with the stderr it printed.
    pub fn run_within(self, limit: Duration) -> Result<Ran, String> {
        self.run_bounded(Some(limit))
    }

    fn run_bounded(mut self, limit: Option<Duration>) -> Result<Ran, String> {
        let line = self.line;
        let stdin = if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() };
        let mut child = self
            .cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `{line}`: {e}"))?;
        let feeder = self.stdin.take().map(|bytes| feed(&mut child, bytes));
        let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
        let status = wait(&mut child, limit).map_err(|e| format!("cannot wait for `{line}`: {e}"))?;
        let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
        if let Some(f) = feeder {
            let _ = f.join();
        }
        drop(self.scratch);
        match status {
            Some(s) => Ok(Ran { code: s.code().unwrap_or(-1), stdout, stderr, line }),
            None => Err(format!("`{line}` still ran after {:?} (killed); its stderr:\n{stderr}", limit.unwrap_or_default())),
        }
    }
}

/// Waits for the child; `None` when it ran past `limit` and was killed.
fn wait(child: &mut Child, limit: Option<Duration>) -> std::io::Result<Option<std::process::ExitStatus>> {
    let Some(limit) = limit else { return child.wait().map(Some) };
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `bytes` to the child's stdin on a thread of its own, so that a
/// child that writes before it reads can never block the test.
fn feed(child: &mut Child, bytes: Vec<u8>) -> JoinHandle<()> {
    let mut pipe = child.stdin.take().expect("stdin is piped");
    std::thread::spawn(move || {
        let _ = pipe.write_all(&bytes);
    })
}

/// Reads a pipe to its end on a thread of its own (a full pipe would
/// block the child).
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Shoal;

    fn sh(script: &str) -> Shoal {
        Shoal { cmd: std::process::Command::new("sh"), line: "sh".into(), stdin: None, scratch: None }.arg("-c").arg(script)
    }

    #[test]
    fn run_captures_code_streams_stdin_env_and_dir() {
        let dir = tempfile::tempdir().unwrap();
        let ran = sh("cat; echo \"$GREETING\" >&2; pwd; exit 3").stdin("from stdin\n").env("GREETING", "hello").in_dir(dir.path()).run();
        assert_eq!(ran.code, 3);
        assert_eq!(ran.stdout, format!("from stdin\n{}\n", dir.path().canonicalize().unwrap().display()));
        assert_eq!(ran.stderr, "hello\n");
    }

    #[test]
    fn run_within_kills_a_command_that_runs_too_long() {
        let err = sh("echo started >&2; exec sleep 30").run_within(Duration::from_millis(300)).err().expect("killed");
        assert_eq!(err, "`sh -c echo started >&2; exec sleep 30` still ran after 300ms (killed); its stderr:\nstarted\n");
    }

    #[test]
    fn output_larger_than_a_pipe_does_not_block() {
        let ran = sh("head -c 1000000 /dev/zero | tr '\\0' x; head -c 1000000 /dev/zero | tr '\\0' y >&2")
            .run_within(Duration::from_secs(30))
            .unwrap()
            .success();
        assert_eq!((ran.stdout.len(), ran.stderr.len()), (1_000_000, 1_000_000));
    }
}
