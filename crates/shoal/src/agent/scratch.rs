//! A run's scratch on this host (`<workdir>/runs/<run>`): who holds it,
//! and removing the scratch that nobody holds any more.
//!
//! An agent holds each run it serves by an exclusive `flock` on the
//! run's `lock` file, from the run's first message until `EndRun` or its
//! own end. The kernel drops the lock when the agent dies, however it
//! dies, so a run dir whose lock can be taken belongs to no live agent:
//! its agent was killed (SIGKILL, the OOM killer, every process of the
//! host killed) before it could clean up. The agent's guardian (`guard`) sweeps such
//! dirs the moment its agent dies, and every agent sweeps them when it
//! starts, which covers a host killed whole, guardian included.
//!
//! Several hosts may share one work dir (a home dir on NFS), and a lock
//! taken on another machine may not show here, so the lock file says
//! whose it is (the kernel's boot id, and the host name for people): a
//! sweep leaves every dir whose lock was taken under another kernel (an
//! earlier boot too: another machine with the same name would look the
//! same). A dir without a lock file is swept like a dir whose lock is
//! free (the sweep makes the file to take its lock): nothing of this
//! Shoal uses such a dir, which is what remains when a late task
//! recreated its scratch under a run that had just been removed.
//!
//! A dir is swept by renaming it to a `.gone-*` name while its lock is
//! held, then removing it: an agent that takes the lock of a run dir checks
//! that the file it locked is still the one at that name, so it can never
//! build on a dir that is going away.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::private::{self, FILE_MODE};

/// The name of the lock file in a run's dir.
const LOCK: &str = "lock";

/// The name prefix of dirs on their way out.
const GONE: &str = ".gone-";

/// Tries to take a run's lock before deciding that another agent holds
/// it: a sweep holds a lock only while it renames the dir.
const TRIES: u32 = 20;
const PAUSE: Duration = Duration::from_millis(5);

/// A run's scratch dir, held by this agent while the run lives (or, when
/// another agent on a shared work dir holds it, used without the lock).
#[derive(Debug)]
pub struct RunLock {
    dir: PathBuf,
    file: Option<File>,
}

impl RunLock {
    /// Makes `dir` if missing and takes its lock. When another live agent
    /// holds it (hosts that share a work dir), the dir is used as before
    /// but left to that agent to remove.
    pub fn take(dir: &Path) -> io::Result<RunLock> {
        for _ in 0..TRIES {
            private::create_dir(dir)?;
            match lock_at(dir) {
                Ok(Some(file)) => {
                    stamp(&file)?;
                    return Ok(RunLock { dir: dir.to_path_buf(), file: Some(file) });
                }
                // A sweep renamed it between our mkdir and open: again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
                Ok(None) => std::thread::sleep(PAUSE),
            }
        }
        Ok(RunLock { dir: dir.to_path_buf(), file: None })
    }

    /// Removes the dir if we hold it, or if whoever held it is gone.
    pub fn remove(self) {
        if self.file.is_some() || matches!(lock_at(&self.dir), Ok(Some(_))) {
            discard(&self.dir);
        }
    }
}

/// Opens (creating) the lock file in `dir` and takes the lock; `None`
/// when someone else holds it. Fails with `NotFound` when the dir went
/// away, or was replaced, meanwhile.
fn lock_at(dir: &Path) -> io::Result<Option<File>> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    still_there(&file, &path)?;
    Ok(Some(file))
}

/// Fails with `NotFound` unless `file` is the file at `path`.
fn still_there(file: &File, path: &Path) -> io::Result<()> {
    let (held, named) = (file.metadata()?, fs::symlink_metadata(path)?);
    if (held.dev(), held.ino()) != (named.dev(), named.ino()) {
        return Err(io::Error::new(io::ErrorKind::NotFound, "the lock file was replaced"));
    }
    Ok(())
}

/// Writes whose lock this is into the lock file.
fn stamp(mut file: &File) -> io::Result<()> {
    file.set_len(0)?;
    file.write_all(Machine::this().line().as_bytes())
}

/// Renames `dir` out of the way (it no longer counts as a run), then
/// removes it.
fn discard(dir: &Path) {
    if let Some(gone) = set_aside(dir) {
        let _ = fs::remove_dir_all(gone);
    }
}

fn set_aside(dir: &Path) -> Option<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = dir.file_name()?.to_string_lossy();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let gone = dir.with_file_name(format!("{GONE}{name}-{}-{n}", std::process::id()));
    fs::rename(dir, &gone).ok()?;
    Some(gone)
}

/// Sweeps `runs`: every run dir this machine made that no live agent
/// holds is set aside, and dirs set aside earlier are removed. With
/// `now`, everything is removed before returning; otherwise what was set
/// aside is removed on a thread of its own (an agent starting must not
/// wait for a large dir to go; its guardian finishes the work if the
/// agent ends first).
pub fn sweep(runs: &Path, now: bool) {
    let Ok(entries) = fs::read_dir(runs) else { return };
    let me = Machine::this();
    let mut gone = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(GONE) {
            gone.push(path);
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            gone.extend(take_stale(&path, &me));
        }
    }
    let remove = move || gone.iter().for_each(|d| drop(fs::remove_dir_all(d)));
    if now {
        remove();
    } else {
        let _ = std::thread::Builder::new().name("shoal-sweep-runs".into()).spawn(remove);
    }
}

/// Sets `dir` aside when it is stale: no lock of another boot or machine
/// is on it, and its lock is free.
fn take_stale(dir: &Path, me: &Machine) -> Option<PathBuf> {
    let stamp = fs::read_to_string(dir.join(LOCK)).ok().and_then(|t| Machine::parse(&t));
    if stamp.is_some_and(|owner| owner.boot != me.boot) {
        return None;
    }
    let _held = lock_at(dir).ok()??;
    set_aside(dir)
}

/// Which boot of which machine holds a lock.
#[derive(Debug, PartialEq)]
struct Machine {
    boot: String,
    host: String,
}

impl Machine {
    fn this() -> Machine {
        let read = |p: &str| fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
        Machine { boot: read("/proc/sys/kernel/random/boot_id"), host: read("/proc/sys/kernel/hostname") }
    }

    fn line(&self) -> String {
        format!("{} {}\n", self.boot, self.host)
    }

    fn parse(text: &str) -> Option<Machine> {
        let (boot, host) = text.trim().split_once(' ')?;
        Some(Machine { boot: boot.to_string(), host: host.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(runs: &Path) -> Vec<String> {
        let mut n: Vec<String> = fs::read_dir(runs).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        n.sort();
        n
    }

    #[test]
    fn a_held_run_stays_and_a_released_one_is_swept() {
        let runs = tempfile::tempdir().unwrap();
        let held = RunLock::take(&runs.path().join("held")).unwrap();
        let released = RunLock::take(&runs.path().join("released")).unwrap();
        fs::write(runs.path().join("released/output"), "x").unwrap();
        // As when its agent is killed: the lock goes, the dir stays.
        drop(released);
        sweep(runs.path(), true);
        assert_eq!(names(runs.path()), ["held"]);
        held.remove();
        assert_eq!(names(runs.path()), Vec::<String>::new());
    }

    #[test]
    fn dirs_of_other_boots_stay_and_dirs_without_a_lock_go() {
        let runs = tempfile::tempdir().unwrap();
        for name in ["other-boot", "recreated/tasks", "set-aside"] {
            fs::create_dir_all(runs.path().join(name)).unwrap();
        }
        let me = Machine::this();
        fs::write(runs.path().join("other-boot/lock"), format!("another-boot {}\n", me.host)).unwrap();
        fs::rename(runs.path().join("set-aside"), runs.path().join(".gone-x-1-0")).unwrap();
        sweep(runs.path(), true);
        assert_eq!(names(runs.path()), ["other-boot"]);
    }

    #[test]
    fn a_run_held_elsewhere_is_used_but_not_removed() {
        let runs = tempfile::tempdir().unwrap();
        let dir = runs.path().join("r");
        let first = RunLock::take(&dir).unwrap();
        let second = RunLock::take(&dir).unwrap();
        assert!(second.file.is_none(), "two locks on one run");
        let third = RunLock::take(&dir).unwrap();
        second.remove();
        assert!(dir.exists());
        // Whoever removes it last does, held or not.
        drop(first);
        third.remove();
        assert!(!dir.exists());
    }

    #[test]
    fn a_lock_taken_on_a_dir_swept_meanwhile_is_not_kept() {
        let runs = tempfile::tempdir().unwrap();
        let dir = runs.path().join("r");
        drop(RunLock::take(&dir).unwrap());
        // An agent opened the lock file; a sweep then took the dir away.
        let opened = private::open_nofollow(&dir.join(LOCK)).unwrap();
        sweep(runs.path(), true);
        assert!(opened.try_lock().is_ok());
        assert_eq!(still_there(&opened, &dir.join(LOCK)).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
