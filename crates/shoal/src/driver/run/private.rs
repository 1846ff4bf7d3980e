//! The driver's own state under `.shoal/`: owner-only directories (0700)
//! and files (0600), created fresh and published whole.
//!
//! A run's state can hold user data (task logs, outputs, error tails), so
//! nobody else on the machine may read it. Files are created with
//! `O_EXCL` (`create_new`): an existing file or a symlink planted under
//! the name fails the open instead of being written through. The user's
//! outputs are not made here: they keep the modes the user's umask gives
//! (`output.rs`).

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Creates `path` and its missing parents as 0700, and tightens `path`
/// itself if it existed with looser modes (an older `.shoal`).
pub fn dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    if fs::metadata(path)?.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(path, Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates a new 0600 file; fails if anything exists at `path`.
pub fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Opens a 0600 file for appending, creating it if needed, never through
/// a symlink.
pub fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Writes `path` whole: a fresh 0600 temp file beside it is filled,
/// synced and renamed over it, so a reader sees the old file or the new
/// one, never a torn one, and a crash leaves at most the temp file.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let tmp = temp_name(path);
    let written = create(&tmp).and_then(|mut f| {
        fill(&mut f)?;
        f.flush()?;
        f.sync_all()
    });
    let published = written.and_then(|()| fs::rename(&tmp, path));
    if published.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    published?;
    sync_parent(path)
}

/// `write_atomic` of bytes.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |f| f.write_all(bytes))
}

/// Makes a rename in `path`'s directory durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(parent)?.sync_all()
}

/// `.<name>.tmp-<pid>-<n>` beside `path`: unique within this process and
/// created exclusively, so two writers never share one.
fn temp_name(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn dirs_and_files_are_owner_only() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join(".shoal");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, Permissions::from_mode(0o755)).unwrap();
        dir(&state.join("runs/r1")).unwrap();
        dir(&state).unwrap();
        assert_eq!([mode(&state), mode(&state.join("runs")), mode(&state.join("runs/r1"))], [0o700; 3]);
        write_bytes(&state.join("runs/r1/summary.json"), b"{}").unwrap();
        assert_eq!(mode(&state.join("runs/r1/summary.json")), 0o600);
        let names: Vec<_> = fs::read_dir(state.join("runs/r1")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["summary.json"], "no temp file is left");
    }

    #[test]
    fn atomic_writes_replace_but_never_follow_a_planted_link() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let path = d.path().join("summary.json");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_bytes(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert!(create(&path).is_err(), "create never opens an existing file");
        std::os::unix::fs::symlink(&victim, d.path().join("log")).unwrap();
        assert!(append(&d.path().join("log")).is_err(), "append never follows a symlink");
    }
}
