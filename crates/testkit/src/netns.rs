//! The 3-host ssh test cluster of `scripts/testcluster`: hosts h1, h2, h3,
//! each a network namespace with its own address and its own sshd.
//!
//! One implementation of bringing it up: once per test binary, shared by
//! every cluster test of that binary, each of which takes the cluster
//! whole (a process-wide mutex) because faults (a killed sshd, a cut
//! link, a frozen agent) must not reach a neighbour test. It needs root;
//! in CI (`CI=true`) a missing prerequisite fails the test, elsewhere the
//! test says why and skips.
//!
//! Test binaries run one after another under `cargo test`, so the cli's
//! cluster tests and the shoal crate's never share the cluster at once.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::process::cmdline;
use crate::{bin, Shoal};

/// The hosts `scripts/testcluster up 3` makes.
pub const HOSTS: [&str; 3] = ["h1", "h2", "h3"];

pub struct Cluster {
    /// The cluster's directory: `hI/work` is host I's work dir.
    pub dir: PathBuf,
    /// Its `cluster.toml`.
    pub file: PathBuf,
}

fn dir() -> PathBuf {
    std::env::temp_dir().join("shoal-testcluster-tests")
}

/// Runs `scripts/testcluster ARGS` on the shared cluster directory.
pub fn script(args: &[&str]) -> Output {
    Command::new(bin::repo().join("scripts/testcluster"))
        .args(args)
        .env("SHOAL_TESTCLUSTER_DIR", dir())
        .output()
        .expect("run scripts/testcluster")
}

/// Runs `scripts/testslurm ARGS` (Slurm on the test hosts) on the shared
/// cluster directory.
pub fn slurm(args: &[&str]) -> Output {
    Command::new(bin::repo().join("scripts/testslurm"))
        .args(args)
        .env("SHOAL_TESTCLUSTER_DIR", dir())
        .output()
        .expect("run scripts/testslurm")
}

/// Brings the cluster up once per test binary and takes it for one test;
/// `None` (skip, with the reason) only outside CI.
pub fn up() -> Option<(MutexGuard<'static, ()>, &'static Cluster)> {
    static LOCK: Mutex<()> = Mutex::new(());
    static UP: OnceLock<Result<Cluster, String>> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let up = UP.get_or_init(|| {
        let out = script(&["up", "3"]);
        match out.status.success() {
            true => Ok(Cluster { dir: dir(), file: dir().join("cluster.toml") }),
            false => Err(format!(
                "scripts/testcluster up 3 failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    });
    match up {
        Ok(c) => Some((guard, c)),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("cluster tests must run in CI: {why}"),
        Err(why) => {
            eprintln!("skipping a cluster test: {why}");
            None
        }
    }
}

/// Every link up, every process continued, every sshd (re)started.
pub fn heal_all() {
    for h in HOSTS {
        let _ = script(&["heal", h]);
        let _ = script(&["thaw", h]);
        let _ = script(&["restart", h]);
    }
}

/// The pids a `testcluster` command printed, one a line.
pub fn pid_list(out: &Output) -> Vec<u32> {
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

impl Cluster {
    /// Kills host `h` (as `testcluster kill`) once a process whose
    /// command line contains `pat` runs there; panics when none does
    /// within `secs`. Restart it with `script(&["restart", h])`.
    #[track_caller]
    pub fn kill_once_running(&self, h: &str, pat: &str, secs: u64) {
        let running = crate::process::wait_for(secs, || !self.procs_on(h, pat).is_empty());
        assert!(running, "nothing matching {pat:?} ever ran on {h} within {secs} s");
        assert!(script(&["kill", h]).status.success(), "testcluster kill {h} failed");
    }

    /// The cluster file's path, as an argument.
    pub fn arg(&self) -> String {
        self.file.display().to_string()
    }

    /// The processes in host `h`'s namespace whose command line contains
    /// `pat` (see [`cmdline`] for its form).
    pub fn procs_on(&self, h: &str, pat: &str) -> Vec<u32> {
        self.procs_where(h, |c| c.contains(pat))
    }

    /// The processes in host `h`'s namespace whose command line (see
    /// [`cmdline`]) passes `pred`.
    pub fn procs_where(&self, h: &str, pred: impl Fn(&str) -> bool) -> Vec<u32> {
        pid_list(&script(&["pids", h])).into_iter().filter(|p| cmdline(*p).is_some_and(|c| pred(&c))).collect()
    }

    /// The pid of host `h`'s listening sshd, the one process that belongs
    /// there between jobs.
    fn listener(&self, h: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(h).join("sshd.pid")).ok()?.trim().parse().ok()
    }

    /// Every process in host `h` but its listening sshd, as `pid command`.
    pub fn strays(&self, h: &str) -> Vec<String> {
        let listener = self.listener(h);
        pid_list(&script(&["pids", h]))
            .into_iter()
            .filter(|p| Some(*p) != listener)
            .filter_map(|p| Some(format!("{p} `{}`", cmdline(p)?.trim())))
            .collect()
    }

    /// The entries of host `h`'s run scratch dir (`<workdir>/runs/`).
    pub fn scratch(&self, h: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join(h).join("work/runs")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        names.sort();
        names
    }

    /// A fresh agent on every host (`shoal check` starts one each).
    /// A host healed a moment ago may still be starting its sshd: a few
    /// tries, a second apart.
    #[track_caller]
    pub fn start_fresh_agents(&self) {
        let mut last = String::new();
        for _ in 0..5 {
            let ran = Shoal::new().args(["check", "--cluster", &self.arg()]).run();
            if ran.code == 0 {
                return;
            }
            last = ran.stdout;
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        panic!("shoal check failed on the healed cluster, 5 times:\n{last}");
    }
}
