//! The 3-host ssh test cluster as the soak sees it: bringing it up (with
//! the CI rule that a missing prerequisite fails instead of skipping),
//! `scripts/testcluster` commands, the processes inside each host's
//! network namespace, each host's run scratch, and the `shoal` command
//! binary the command jobs run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

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
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new(repo.join("scripts/testcluster")).args(args).env("SHOAL_TESTCLUSTER_DIR", dir()).output().expect("run scripts/testcluster")
}

/// Brings the cluster up once per test binary, and takes it for one test
/// (faults must not reach a neighbour); `None` (skip, with the reason)
/// only outside CI.
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

fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " ").trim().to_string())
}

impl Cluster {
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
            .filter_map(|p| Some(format!("{p} `{}`", cmdline(p)?)))
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
}

impl Cluster {
    /// A fresh agent on every host (`shoal check` starts one each).
    /// A host healed a moment ago may still be starting its sshd: a few
    /// tries, a second apart.
    pub fn start_fresh_agents(&self, cli: &Path) {
        let mut last = String::new();
        for _ in 0..5 {
            let out = Command::new(cli).args(["check", "--cluster", &self.file.display().to_string()]).output().expect("run shoal check");
            if out.status.success() {
                return;
            }
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        panic!("shoal check failed on the healed cluster, 5 times:\n{last}");
    }
}

/// The `shoal` command, built beside this test (`cargo test -p shoal`
/// builds only this crate's targets).
pub fn shoal_cli() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "shoal-cli", "--bin", "shoal"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(cmd.status().expect("run cargo build").success(), "cannot build the shoal command");
    profile_dir.join("shoal")
}
