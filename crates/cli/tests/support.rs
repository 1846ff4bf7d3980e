//! A small builder for running the real `shoal` binary in tests, in the
//! spirit of casey/just's test harness: set up files, run, assert on exit
//! code, stdout and stderr with readable failures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Shoal {
    cmd: Command,
    line: String,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    line: String,
}

pub fn shoal(dir: &Path) -> Shoal {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.current_dir(dir).env_remove("SHOAL_CLUSTER").env("NO_COLOR", "1");
    Shoal { cmd, line: "shoal".into() }
}

impl Shoal {
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for a in args {
            self.line.push(' ');
            self.line.push_str(a.as_ref());
            self.cmd.arg(a.as_ref());
        }
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn run(mut self) -> Ran {
        let Output { status, stdout, stderr } = self.cmd.output().expect("run shoal");
        Ran {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            line: self.line,
        }
    }
}

impl Ran {
    pub fn code(self, want: i32) -> Self {
        assert_eq!(
            self.code, want,
            "`{}` exited {}, wanted {want}\n--- stdout\n{}\n--- stderr\n{}",
            self.line, self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn success(self) -> Self {
        self.code(0)
    }

    pub fn stdout_has(self, s: &str) -> Self {
        assert!(self.stdout.contains(s), "`{}`: stdout lacks {s:?}\n--- stdout\n{}\n--- stderr\n{}", self.line, self.stdout, self.stderr);
        self
    }

    pub fn stderr_has(self, s: &str) -> Self {
        assert!(self.stderr.contains(s), "`{}`: stderr lacks {s:?}\n--- stderr\n{}", self.line, self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("`{}`: stdout is not JSON ({e}):\n{}", self.line, self.stdout))
    }
}

/// A temp dir with a cluster file of `n` local hosts named a, b, c, ...
/// each with its own work dir and `slots` slots.
pub fn local_cluster(n: usize, slots: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "[defaults]\n# generous: parallel tests load the machine, and these tests do not time hosts out\nheartbeat_timeout = 15\n",
    );
    for i in 0..n {
        let name = (b'a' + i as u8) as char;
        let work = dir.path().join(format!("hosts/{name}"));
        text.push_str(&format!("\n[hosts.{name}]\ntransport = \"local\"\nslots = {slots}\nworkdir = \"{}\"\n", work.display()));
    }
    let path = dir.path().join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Copies `examples/<name>` (and `examples/common`) into a fresh temp dir
/// and runs its `run.sh` with the shoal binary and `args`, so that tests
/// never share an example's data or state.
pub fn run_example(name: &str, args: &[&str], env: &[(&str, &str)]) -> (tempfile::TempDir, std::process::Output) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let dir = tempfile::tempdir().unwrap();
    for sub in [name, "common"] {
        let status = Command::new("cp").arg("-r").arg(root.join(sub)).arg(dir.path().join(sub)).status().unwrap();
        assert!(status.success());
    }
    let _ = std::fs::remove_dir_all(dir.path().join(name).join(".shoal"));
    let mut cmd = Command::new(dir.path().join(name).join("run.sh"));
    cmd.arg(env!("CARGO_BIN_EXE_shoal")).args(args).env("HOME", dir.path().join("home"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (dir, out)
}

/// Asserts an example run succeeded and printed `want` on stdout.
pub fn example_ok(out: &std::process::Output, want: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.contains(want), "example failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}", out.status);
}

/// The pid a test's process wrote to `path`, waiting up to 20 s for it.
pub fn pid_in(path: &Path) -> i32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
            return pid;
        }
        assert!(std::time::Instant::now() < deadline, "{} was never written", path.display());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
