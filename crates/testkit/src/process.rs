//! Processes a test watches from outside: the pid a task wrote to a file,
//! whether a pid still runs, and waiting for a condition with a deadline.

use std::path::Path;
use std::time::{Duration, Instant};

/// The pid a test's process wrote to `path`, waiting up to 20 s for it.
#[track_caller]
pub fn pid_in(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
            return pid;
        }
        assert!(Instant::now() < deadline, "{} was never written", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` runs (a zombie waiting for its parent does not).
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')))
}

/// `/proc/<pid>/stat`, while the process exists.
pub fn stat(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
}

/// The command line of `pid`, each word followed by a space (as in
/// `/proc`, each is followed by a NUL), so that `" agent "` matches the
/// last word too.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Waits until `pred` holds or `secs` pass, looking every 100 ms; whether
/// it held.
pub fn wait_for(secs: u64, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_process_is_alive_and_a_reaped_one_is_not() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        assert!(alive(pid));
        // Until the child has exec'd, its command line is not yet its own.
        assert!(wait_for(5, || cmdline(child.id()).as_deref() == Some("sleep 30 ")), "{:?}", cmdline(child.id()));
        child.kill().unwrap();
        assert!(wait_for(5, || !alive(pid)), "a killed, unreaped child is a zombie, not alive");
        child.wait().unwrap();
        assert!(!alive(pid) && stat(pid).is_none());
    }

    #[test]
    fn pid_in_reads_the_pid_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.pid");
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                std::fs::write(path, "4242\n").unwrap();
            })
        };
        assert_eq!(pid_in(&path), 4242);
        writer.join().unwrap();
    }
}
