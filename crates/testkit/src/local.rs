//! Cluster files of local-transport hosts: each host an agent started as
//! a child process of the driver, with a work dir of its own.

use std::path::{Path, PathBuf};

/// A temp dir with a cluster file `cluster.toml` of `n` local hosts named
/// a, b, c, ..., each with `slots` slots and its work dir in
/// `hosts/<name>`.
pub fn local_cluster(n: usize, slots: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let names = (0..n).map(|i| ((b'a' + i as u8) as char).to_string());
    let path = write(dir.path(), "cluster.toml", names, slots);
    (dir, path)
}

/// A cluster file `cluster-<n>.toml` in `dir` of `n` local hosts w0, w1,
/// ... with one slot each (so `n` workers), their work dirs in
/// `dir/hosts/`.
pub fn local_workers(dir: &Path, n: usize) -> PathBuf {
    write(dir, &format!("cluster-{n}.toml"), (0..n).map(|i| format!("w{i}")), 1)
}

/// Runs `shoal run job.toml EXTRA...` in the job dir `dir` on a fresh
/// cluster of two local hosts with two slots each (removed afterwards).
#[track_caller]
pub fn run_job(dir: &Path, extra: &[&str]) -> crate::Ran {
    let (_cluster_dir, cluster) = local_cluster(2, 2);
    let mut args = vec!["run", "job.toml", "--cluster", cluster.to_str().expect("a UTF-8 temp path")];
    args.extend_from_slice(extra);
    crate::Shoal::new().in_job_dir(dir).args(args).run()
}

fn write(dir: &Path, file: &str, names: impl Iterator<Item = String>, slots: u32) -> PathBuf {
    let mut text = String::from(
        "[defaults]\n# generous: parallel tests load the machine, and these tests do not time hosts out\nheartbeat_timeout = 15\n",
    );
    for name in names {
        let work = dir.join(format!("hosts/{name}"));
        text.push_str(&format!("\n[hosts.{name}]\ntransport = \"local\"\nslots = {slots}\nworkdir = \"{}\"\n", work.display()));
    }
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_and_given_their_own_work_dirs() {
        let (dir, path) = local_cluster(2, 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let a = format!("[hosts.a]\ntransport = \"local\"\nslots = 3\nworkdir = \"{}/hosts/a\"\n", dir.path().display());
        assert!(text.starts_with("[defaults]\n") && text.contains("heartbeat_timeout = 15\n") && text.contains(&a), "{text}");
        assert!(text.contains("[hosts.b]") && !text.contains("[hosts.c]"), "{text}");
        let workers = std::fs::read_to_string(local_workers(dir.path(), 3)).unwrap();
        assert_eq!(workers.matches("slots = 1\n").count(), 3, "{workers}");
        assert!(
            workers.contains(&format!("[hosts.w2]\ntransport = \"local\"\nslots = 1\nworkdir = \"{}/hosts/w2\"\n", dir.path().display()))
        );
    }
}
