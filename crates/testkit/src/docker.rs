//! The images of the container tests, built here `FROM scratch` with a
//! static busybox (no registry needed).
//!
//! Every container test holds the one process-wide lock this returns: the
//! tests count the containers named `shoal-*`, so two of them must never
//! run at once in one test binary.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// The busybox tools every image links.
const TOOLS: [&str; 11] = ["sh", "awk", "sort", "tr", "cat", "head", "sleep", "echo", "stat", "id", "wc"];

/// Takes the container lock and builds `tag` from a static busybox;
/// `None` (skip) when Docker or `/bin/busybox` is missing outside CI.
#[track_caller]
pub fn busybox_image(tag: &str) -> Option<MutexGuard<'static, ()>> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let usable = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output().is_ok_and(|o| o.status.success());
    if !usable || !Path::new("/bin/busybox").exists() {
        assert!(std::env::var("CI").is_err(), "Docker and busybox-static must be usable in CI");
        eprintln!("skipping: docker or /bin/busybox is missing");
        return None;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let bin = dir.path().join("rootfs/bin");
    fs::create_dir_all(&bin).expect("make rootfs/bin");
    fs::copy("/bin/busybox", bin.join("busybox")).expect("copy /bin/busybox");
    for tool in TOOLS {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).expect("link a busybox tool");
    }
    fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n").expect("write the Dockerfile");
    let built = Command::new("docker").args(["build", "-q", "-t", tag]).arg(dir.path()).output().expect("run docker build");
    assert!(built.status.success(), "docker build: {}", String::from_utf8_lossy(&built.stderr));
    Some(guard)
}

/// Takes the container lock and builds `tag`: the busybox image plus the
/// `shoal` binary at `/shoal` and the shared libraries it links (from
/// `ldd`), and an empty `/tmp`: a standing cluster's worker in a
/// container. `None` (skip) as for [`busybox_image`].
#[track_caller]
pub fn shoal_worker_image(tag: &str) -> Option<MutexGuard<'static, ()>> {
    let guard = busybox_image(&format!("{tag}-base"))?;
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path().join("rootfs");
    fs::create_dir_all(root.join("tmp")).expect("make rootfs/tmp");
    let shoal = crate::bin::shoal();
    fs::copy(&shoal, root.join("shoal")).expect("copy the shoal binary");
    let ldd = Command::new("ldd").arg(&shoal).output().expect("run ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2 (0x...)`
        let path = line.split("=>").last().and_then(|r| r.split_whitespace().next()).filter(|p| p.starts_with('/'));
        if let Some(p) = path {
            let dest = root.join(p.trim_start_matches('/'));
            fs::create_dir_all(dest.parent().unwrap()).expect("make a lib dir");
            fs::copy(p, &dest).expect("copy a shared library");
        }
    }
    fs::write(dir.path().join("Dockerfile"), format!("FROM {tag}-base\nCOPY rootfs/ /\n")).expect("write the Dockerfile");
    let built = Command::new("docker").args(["build", "-q", "-t", tag]).arg(dir.path()).output().expect("run docker build");
    assert!(built.status.success(), "docker build: {}", String::from_utf8_lossy(&built.stderr));
    Some(guard)
}

/// How many containers named `shoal-*` exist, running or not.
pub fn shoal_containers() -> usize {
    let out = Command::new("docker").args(["ps", "-a", "-q", "--filter", "name=shoal-"]).output().expect("run docker ps");
    String::from_utf8_lossy(&out.stdout).lines().count()
}
