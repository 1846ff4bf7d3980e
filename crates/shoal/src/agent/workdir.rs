//! A run's work dir on this host: `<workdir>/runs/<run>/work`, built from
//! cached blocks by private copies (reflinks where the file system can).
//!
//! Paths come from the driver and are checked again here: relative, no
//! `..`, no empty or `.` components. The work dir is created fresh and only
//! ever holds directories and files that we made, so no symlink can lead a
//! later write outside it (compare scp CVE-2019-6111, rsync CVE-2024-12087).
//! Synced files are the run's own copies, never links into the cache (a
//! task that appends to one would change every later run's file): tasks
//! may change them at will. Files are 0600, executables 0700.

use std::fs;
use std::path::{Component, Path, PathBuf};

use shoal_wire::FileEntry;

use super::private::{self, EXEC_MODE, FILE_MODE};
use super::{BlockStore, FileError};

/// Checks that `path` stays inside the directory it is relative to.
pub fn confined(path: &str) -> Result<PathBuf, FileError> {
    let p = Path::new(path);
    if path.is_empty() || p.is_absolute() {
        return Err(FileError::NotRelative { path: path.to_string() });
    }
    for c in p.components() {
        match c {
            Component::Normal(_) => {}
            _ => return Err(FileError::NotConfined { path: path.to_string() }),
        }
    }
    Ok(p.to_path_buf())
}

/// Builds (or rebuilds) the work dir of `run` holding `files`.
pub fn build(root: &Path, store: &BlockStore, files: &[FileEntry]) -> Result<(), FileError> {
    if root.exists() {
        fs::remove_dir_all(root).map_err(FileError::io("clear", root))?;
    }
    private::create_dir(root).map_err(FileError::io("create", root))?;
    add(root, store, files)
}

/// Adds `files` to a work dir that [`build`] made (a long file list comes
/// in pieces).
pub fn add(root: &Path, store: &BlockStore, files: &[FileEntry]) -> Result<(), FileError> {
    files.iter().try_for_each(|f| place(root, store, f))
}

fn place(root: &Path, store: &BlockStore, f: &FileEntry) -> Result<(), FileError> {
    let rel = confined(&f.path)?;
    let dest = root.join(&rel);
    if let Some(parent) = dest.parent() {
        private::create_dir(parent).map_err(FileError::io("create", parent))?;
    }
    let src = store.verified(&f.hash).map_err(|source| FileError::BlockGone { path: f.path.clone(), source })?;
    let mode = if f.executable { EXEC_MODE } else { FILE_MODE };
    private::copy(&src, &dest, mode).map_err(|source| FileError::Copy { path: f.path.clone(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confinement() {
        assert!(confined("a/b.txt").is_ok());
        assert_eq!(confined("../etc/passwd").unwrap_err().to_string(), "path \"../etc/passwd\" leaves the work dir or is not normalised");
        assert_eq!(confined("/etc/passwd").unwrap_err().to_string(), "path \"/etc/passwd\" must be relative to the work dir");
        assert!(matches!(confined("a/../b"), Err(FileError::NotConfined { path }) if path == "a/../b"));
        assert!(matches!(confined(""), Err(FileError::NotRelative { .. })));
        assert!(confined("a/../../b").is_err());
        assert!(confined("./a").is_err());
        assert!(confined("").is_err());
    }
}
