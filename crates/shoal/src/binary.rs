//! The executable deployed to hosts and run as the local agent, and its
//! content hash, which names it on every host (`<workdir>/bin/shoal-<hash>`):
//! two drivers built from the same code share one deployed copy, and a
//! rebuilt driver never runs an old agent by mistake.
//!
//! That executable is the running one (the `shoal` command, or a Rust
//! Dataset program, which is its own agent), unless [`set_agent`] named
//! another: a driver that is not a `shoal` binary (the Python package's
//! driver is `python`) names the `shoal` command it carries.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// Path and BLAKE3 hash (hex) of an executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binary {
    pub path: PathBuf,
    pub hash: String,
    pub size: u64,
}

/// The agent of this process: the one [`set_agent`] named, else the
/// current executable.
static AGENT: Slot = Slot::new();

/// The executable to deploy and run as the agent, hashed once per process
/// (or once per [`set_agent`]).
pub fn current() -> std::io::Result<&'static Binary> {
    AGENT.get_or(|| hash_file(std::env::current_exe()?))
}

/// Makes [`current`] return the executable at `path` from now on. Hashes
/// it first: an error (the file is missing or unreadable) changes nothing.
pub fn set_agent(path: PathBuf) -> std::io::Result<()> {
    use_agent(hash_file(path)?);
    Ok(())
}

/// Makes [`current`] return `binary` from now on, for a caller that knows
/// its hash already (it just wrote or verified the file).
pub fn use_agent(binary: Binary) {
    AGENT.set(binary);
}

/// Hashes an executable file (used for `agent_binary` overrides too).
pub fn hash_file(path: PathBuf) -> std::io::Result<Binary> {
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(&path)?;
    let size = file.metadata()?.len();
    hasher.update_reader(file)?;
    Ok(Binary { path, hash: hasher.finalize().to_hex().to_string(), size })
}

/// A process-wide binary: the default is computed on first use, a set one
/// replaces it. Each distinct binary set is leaked once, so callers keep
/// `&'static` references while a later `set` moves on; setting the same
/// binary again reuses the leaked one, so repeated calls do not grow.
struct Slot {
    chosen: Mutex<Option<&'static Binary>>,
    default: OnceLock<Binary>,
}

impl Slot {
    const fn new() -> Slot {
        Slot { chosen: Mutex::new(None), default: OnceLock::new() }
    }

    fn set(&self, binary: Binary) {
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if chosen.is_some_and(|b| *b == binary) {
            return;
        }
        *chosen = Some(Box::leak(Box::new(binary)));
    }

    fn get_or(&'static self, default: impl FnOnce() -> std::io::Result<Binary>) -> std::io::Result<&'static Binary> {
        if let Some(b) = *self.chosen.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(b);
        }
        if let Some(b) = self.default.get() {
            return Ok(b);
        }
        let b = default()?;
        Ok(self.default.get_or_init(|| b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
        path
    }

    #[test]
    fn a_set_binary_replaces_the_default_and_a_later_one_replaces_it() {
        static SLOT: Slot = Slot::new();
        let dir = tempfile::tempdir().unwrap();
        let own = hash_file(file_with(dir.path(), "own", b"own")).unwrap();
        assert_eq!(SLOT.get_or(|| Ok(own.clone())).unwrap(), &own);

        let a = hash_file(file_with(dir.path(), "a", b"agent a")).unwrap();
        SLOT.set(a.clone());
        let got = SLOT.get_or(|| panic!("the default is not asked for once a binary is set")).unwrap();
        assert_eq!(got, &a);
        assert_eq!(got.hash, blake3::hash(b"agent a").to_hex().to_string());
        assert_eq!(got.size, 7);

        let b = hash_file(file_with(dir.path(), "b", b"agent b")).unwrap();
        SLOT.set(b.clone());
        assert_eq!(SLOT.get_or(|| unreachable!()).unwrap(), &b);
        assert_eq!(got, &a, "a reference handed out earlier stays valid");
    }

    #[test]
    fn setting_the_same_binary_again_reuses_it() {
        static SLOT: Slot = Slot::new();
        let dir = tempfile::tempdir().unwrap();
        let a = hash_file(file_with(dir.path(), "a", b"agent")).unwrap();
        SLOT.set(a.clone());
        let first: *const Binary = SLOT.get_or(|| unreachable!()).unwrap();
        SLOT.set(a);
        assert!(std::ptr::eq(first, SLOT.get_or(|| unreachable!()).unwrap()));
    }

    #[test]
    fn set_agent_on_a_missing_file_is_an_error_and_changes_nothing() {
        let before = current().unwrap().clone();
        let err = set_agent(PathBuf::from("/nonexistent/shoal-agent")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(current().unwrap(), &before);
    }
}
