//! The `shoal` command carried inside the extension module (see
//! `build.rs`), made into a file the library can deploy to hosts and run
//! as the local agent: the driver process is `python`, so the running
//! executable cannot be the agent, and nothing else is installed.
//!
//! The bytes are extracted once per machine to
//! `$XDG_CACHE_HOME` (else `~/.cache`) `/shoal/bin/shoal-<blake3>`: the
//! name is the content hash, so every version of the package keeps its own
//! copy and a copy of the right name whose bytes differ (a crash mid-write
//! long ago, a tampered file) is replaced. The directories are 0700 and the
//! file 0700, written to an exclusively created temp file and renamed into
//! place, so a concurrent driver sees either no file or a whole one.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

/// The `shoal` command this package was built with.
static EMBEDDED: &[u8] = include_bytes!(env!("SHOAL_EMBEDDED_AGENT"));
/// Its BLAKE3 hash (hex), computed by `build.rs`.
const EMBEDDED_HASH: &str = env!("SHOAL_EMBEDDED_AGENT_BLAKE3");

/// `shoal._native.agent_binary()`: the path of the extracted `shoal`
/// command, which is from now on the agent this process deploys.
#[pyfunction]
#[pyo3(name = "agent_binary")]
pub fn agent_binary_py() -> PyResult<PathBuf> {
    agent_binary()
}

/// Extracts the embedded `shoal` command (once per process), makes it the
/// agent (`shoal::binary::set_agent`), and returns its path.
pub fn agent_binary() -> PyResult<PathBuf> {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    if let Some(path) = DONE.get() {
        return Ok(path.clone());
    }
    let path = extract(EMBEDDED, EMBEDDED_HASH, &cache_bin_dir()?).map_err(PyOSError::new_err)?;
    // `extract` leaves exactly the embedded bytes there (verified or just
    // written), so their hash is already known: no second read of the file.
    let binary = shoal::binary::Binary { path: path.clone(), hash: EMBEDDED_HASH.to_string(), size: EMBEDDED.len() as u64 };
    shoal::binary::use_agent(binary);
    Ok(DONE.get_or_init(|| path).clone())
}

/// `$XDG_CACHE_HOME/shoal/bin`, else `$HOME/.cache/shoal/bin`.
fn cache_bin_dir() -> PyResult<PathBuf> {
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    let cache = match (absolute("XDG_CACHE_HOME"), absolute("HOME")) {
        (Some(xdg), _) => xdg,
        (None, Some(home)) => home.join(".cache"),
        (None, None) => {
            return Err(PyOSError::new_err(
                "cannot find a directory for the shoal agent: neither XDG_CACHE_HOME nor HOME is set \
                 to an absolute path; set one of them",
            ))
        }
    };
    Ok(cache.join("shoal").join("bin"))
}

/// Makes `dir/shoal-<hash>` hold `bytes` (whose BLAKE3 is `hash`), reusing
/// a file that already does, and returns its path. Errors are sentences
/// naming the path.
fn extract(bytes: &[u8], hash: &str, dir: &Path) -> Result<PathBuf, String> {
    private_dir(dir)?;
    let path = dir.join(format!("shoal-{hash}"));
    if holds(&path, hash) {
        return Ok(path);
    }
    write_new(&path, bytes).map_err(|e| {
        format!(
            "cannot write the shoal agent to {}: {e}; make that directory writable, \
             or set XDG_CACHE_HOME to one that is",
            path.display()
        )
    })?;
    Ok(path)
}

/// Creates `dir` (and missing parents) 0700, and makes `dir` itself 0700
/// if it existed: the agent is run from there.
fn private_dir(dir: &Path) -> Result<(), String> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, Permissions::from_mode(0o700)))
        .map_err(|e| {
            format!(
                "cannot make {} a private directory for the shoal agent: {e}; \
                 fix its owner or permissions, or set XDG_CACHE_HOME elsewhere",
                dir.display()
            )
        })
}

/// Whether `path` is a regular file (not a link) of mode 0700 whose
/// content hashes to `hash`.
fn holds(path: &Path, hash: &str) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return false };
    meta.file_type().is_file()
        && meta.permissions().mode() & 0o777 == 0o700
        && shoal::binary::hash_file(path.to_path_buf()).is_ok_and(|b| b.hash == hash)
}

/// Writes `bytes` to an exclusively created temp file beside `path`, syncs
/// it, and renames it over `path`.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("shoal");
    let temp = path.with_file_name(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(&temp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// BLAKE3 through the library, as `holds` checks it.
    fn hash(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, bytes).unwrap();
        shoal::binary::hash_file(f).unwrap().hash
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn extracts_a_private_file_named_by_its_hash() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache/shoal/bin");
        let h = hash(b"agent");
        let path = extract(b"agent", &h, &dir).unwrap();
        assert_eq!(path, dir.join(format!("shoal-{h}")));
        assert_eq!(std::fs::read(&path).unwrap(), b"agent");
        assert_eq!(mode(&path), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("cache/shoal")), 0o700);
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, [format!("shoal-{h}")], "no temp file is left behind");
    }

    #[test]
    fn a_file_of_the_right_hash_is_reused() {
        let root = tempfile::tempdir().unwrap();
        let h = hash(b"agent");
        let first = extract(b"agent", &h, root.path()).unwrap();
        let inode = std::fs::metadata(&first).unwrap().ino();
        extract(b"agent", &h, root.path()).unwrap();
        assert_eq!(std::fs::metadata(&first).unwrap().ino(), inode);
    }

    #[test]
    fn a_file_of_the_right_name_and_other_bytes_is_replaced() {
        let root = tempfile::tempdir().unwrap();
        let h = hash(b"agent");
        let path = root.path().join(format!("shoal-{h}"));
        std::fs::write(&path, b"half an agen").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o700)).unwrap();
        extract(b"agent", &h, root.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"agent");
    }

    #[test]
    fn a_link_or_a_loose_mode_is_replaced_by_a_private_file() {
        let root = tempfile::tempdir().unwrap();
        let h = hash(b"agent");
        let elsewhere = root.path().join("elsewhere");
        std::fs::write(&elsewhere, b"agent").unwrap();
        std::fs::set_permissions(&elsewhere, Permissions::from_mode(0o700)).unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let path = bin.join(format!("shoal-{h}"));
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        extract(b"agent", &h, &bin).unwrap();
        assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_file());

        std::fs::set_permissions(&path, Permissions::from_mode(0o777)).unwrap();
        extract(b"agent", &h, &bin).unwrap();
        assert_eq!(mode(&path), 0o700);
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_the_path() {
        let root = tempfile::tempdir().unwrap();
        let blocker = root.path().join("cache");
        std::fs::write(&blocker, b"a file where the directory goes").unwrap();
        let dir = blocker.join("shoal/bin");
        let err = extract(b"agent", &hash(b"agent"), &dir).unwrap_err();
        assert!(err.starts_with(&format!("cannot make {} a private directory for the shoal agent: ", dir.display())), "{err}");
        assert!(err.ends_with("fix its owner or permissions, or set XDG_CACHE_HOME elsewhere"), "{err}");
    }

    #[test]
    fn the_embedded_hash_is_that_of_the_embedded_bytes() {
        assert_eq!(hash(EMBEDDED), EMBEDDED_HASH);
    }
}
