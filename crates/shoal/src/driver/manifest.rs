//! The workspace manifest: the files a job ships to every host, as
//! (relative path, size, hash, executable).
//!
//! Paths are confined to the job's directory: absolute paths, `..` and
//! symlinks that lead outside it are refused here, and checked again by
//! the agent. Files over `max_size` are refused unless listed in `force`,
//! so a stray data file is not copied to a hundred hosts by accident.
//!
//! The driver's state dir is never shipped, nor any other `.shoal`
//! directory under the job's dir (the state of a run started from
//! there): it holds earlier runs' journals, logs and parts, which may
//! carry secrets, and it changes while the run goes on. A directory walk
//! leaves it out; a path that names it or something in it is refused.
//! A Dataset program's own results live in its state dir and are synced
//! from there: when the job's dir is inside the state dir, only `.shoal`
//! directories below the job's dir are left out.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use shoal_wire::FileEntry;

use super::blocks::{hash_range, Source};

/// One file to sync, with where the driver reads it.
#[derive(Clone, Debug)]
pub struct ManifestFile {
    pub entry: FileEntry,
    pub source: Source,
}

/// What to ship, as the job file says.
pub struct SyncRequest<'a> {
    pub base: &'a Path,
    pub paths: Vec<String>,
    pub max_size: u64,
    pub force: &'a [String],
    pub exclude: &'a [String],
    /// The driver's state dir (`.shoal`), never synced.
    pub state_dir: &'a Path,
}

/// The name of a state dir: no directory of that name is synced.
const STATE_NAME: &str = crate::driver::state::NAME;

/// A file that cannot be synced, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot open the job directory {}: {source}", path.display())]
    JobDir { path: PathBuf, source: std::io::Error },
    #[error("[sync] path {listed:?} is absolute; list files relative to the job file's directory")]
    Absolute { listed: String },
    #[error("[sync] path {listed:?} leaves the job directory; only files under it can be synced")]
    Outside { listed: String },
    #[error(
        "[sync] path {listed:?} is in shoal's state dir {STATE_NAME}, which holds earlier runs' journals, logs and outputs and is never synced; copy the files the tasks need out of it and list those instead"
    )]
    StateDir { listed: String },
    #[error("[sync] {} is a symlink that leads outside the job directory ({}); copy the file in instead", rel.display(), target.display())]
    SymlinkOutside { rel: PathBuf, target: PathBuf },
    #[error("[sync] cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("[sync] cannot list {}: {source}", path.display())]
    List { path: PathBuf, source: std::io::Error },
    #[error(
        "[sync] {path} is {size} bytes, over max_size ({max} bytes); add it to [sync] force = [\"{path}\"] if it really must be shipped, or raise max_size"
    )]
    TooLarge { path: String, size: u64, max: u64 },
    /// A FIFO, socket or device.
    #[error(transparent)]
    Kind(#[from] super::input::InputError),
}

fn read_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SyncError {
    let path = path.into();
    move |source| SyncError::Read { path, source }
}

/// Walks the listed files and directories and hashes every file.
pub fn build(req: &SyncRequest<'_>) -> Result<Vec<ManifestFile>, SyncError> {
    let base = req.base.canonicalize().map_err(|source| SyncError::JobDir { path: req.base.to_path_buf(), source })?;
    // Canonical, like the walked paths; `None` for a Dataset job, whose
    // own dir is inside it, and before the first run made it.
    let state = req.state_dir.canonicalize().ok().filter(|s| !base.starts_with(s));
    let walk = Walk { base: &base, state: state.as_deref(), req };
    let mut out = Vec::new();
    for p in &req.paths {
        let rel = relative(p)?;
        walk.refuse_state(p, &rel)?;
        walk.walk(&rel, &mut out)?;
    }
    out.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    out.dedup_by(|a, b| a.entry.path == b.entry.path);
    Ok(out)
}

/// Checks that a path from the job file is relative and stays inside.
fn relative(p: &str) -> Result<PathBuf, SyncError> {
    let path = Path::new(p.trim_end_matches('/'));
    if path.is_absolute() {
        return Err(SyncError::Absolute { listed: p.to_string() });
    }
    let mut clean = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => clean.push(s),
            Component::CurDir => {}
            _ => return Err(SyncError::Outside { listed: p.to_string() }),
        }
    }
    Ok(clean)
}

/// One walk of the listed paths, confined to `base`.
struct Walk<'a> {
    base: &'a Path,
    /// The driver's state dir, canonical, when the walk could reach it.
    state: Option<&'a Path>,
    req: &'a SyncRequest<'a>,
}

impl Walk<'_> {
    fn walk(&self, rel: &Path, out: &mut Vec<ManifestFile>) -> Result<(), SyncError> {
        let full = self.base.join(rel);
        let real = full.canonicalize().map_err(read_err(&full))?;
        if !real.starts_with(self.base) {
            return Err(SyncError::SymlinkOutside { rel: rel.to_path_buf(), target: real });
        }
        if excluded(rel, self.req.exclude) || self.is_state(rel, &real) {
            return Ok(());
        }
        if real.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&real)
                .map_err(|source| SyncError::List { path: full, source })?
                .filter_map(|e| e.ok().map(|e| rel.join(e.file_name())))
                .collect();
            entries.sort();
            return entries.iter().try_for_each(|e| self.walk(e, out));
        }
        super::input::check_sync_kind(&real, rel)?;
        out.push(file(&real, rel, self.req)?);
        Ok(())
    }

    /// Whether `rel` (at `real`) is or lies in a state dir.
    fn is_state(&self, rel: &Path, real: &Path) -> bool {
        rel.components().any(|c| c.as_os_str() == STATE_NAME) || self.state.is_some_and(|s| real.starts_with(s))
    }

    /// Refuses a listed path that is or lies in a state dir: leaving out
    /// what the job file names would surprise more than this sentence.
    fn refuse_state(&self, listed: &str, rel: &Path) -> Result<(), SyncError> {
        let Ok(real) = self.base.join(rel).canonicalize() else {
            return Ok(()); // the walk says why it cannot be read
        };
        if !self.is_state(rel, &real) {
            return Ok(());
        }
        Err(SyncError::StateDir { listed: listed.to_string() })
    }
}

fn file(real: &Path, rel: &Path, req: &SyncRequest<'_>) -> Result<ManifestFile, SyncError> {
    let meta = std::fs::metadata(real).map_err(read_err(rel))?;
    let path = rel.to_string_lossy().replace('\\', "/");
    let forced = req.force.iter().any(|f| f.trim_end_matches('/') == path);
    if meta.len() > req.max_size && !forced {
        return Err(SyncError::TooLarge { path, size: meta.len(), max: req.max_size });
    }
    let hash = hash_range(real, 0, meta.len()).map_err(read_err(&path))?;
    let executable = meta.permissions().mode() & 0o111 != 0;
    Ok(ManifestFile {
        entry: FileEntry { path, hash, size: meta.len(), executable },
        source: Source { path: real.to_path_buf(), offset: 0, len: meta.len(), hash, data: None },
    })
}

/// `*.ext` suffix patterns and exact names, matched on any path component.
fn excluded(rel: &Path, patterns: &[String]) -> bool {
    let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    patterns.iter().any(|p| match p.strip_prefix('*') {
        Some(suffix) => name.ends_with(suffix),
        None => name == *p || rel.to_string_lossy() == p.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(base: &'a Path, paths: &[&str], force: &'a [String]) -> SyncRequest<'a> {
        let state_dir = Path::new("/nonexistent/.shoal");
        SyncRequest { base, paths: paths.iter().map(|s| s.to_string()).collect(), max_size: 10, force, exclude: &[], state_dir }
    }

    #[test]
    fn directories_are_walked_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib/sub")).unwrap();
        std::fs::write(dir.path().join("a.py"), "x").unwrap();
        std::fs::write(dir.path().join("lib/sub/b.py"), "y").unwrap();
        let m = build(&req(dir.path(), &["lib/", "a.py"], &[])).unwrap();
        let names: Vec<&str> = m.iter().map(|f| f.entry.path.as_str()).collect();
        assert_eq!(names, ["a.py", "lib/sub/b.py"]);
    }

    #[test]
    fn escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            build(&req(dir.path(), &["../x"], &[])).unwrap_err().to_string(),
            "[sync] path \"../x\" leaves the job directory; only files under it can be synced"
        );
        assert_eq!(
            build(&req(dir.path(), &["/etc/passwd"], &[])).unwrap_err().to_string(),
            "[sync] path \"/etc/passwd\" is absolute; list files relative to the job file's directory"
        );
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        let err = build(&req(dir.path(), &["link"], &[])).unwrap_err().to_string();
        assert!(err.starts_with("[sync] link is a symlink that leads outside the job directory"), "{err}");
    }

    #[test]
    fn big_files_need_force() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.bin"), "01234567890").unwrap();
        assert_eq!(
            build(&req(dir.path(), &["model.bin"], &[])).unwrap_err().to_string(),
            "[sync] model.bin is 11 bytes, over max_size (10 bytes); add it to [sync] force = [\"model.bin\"] if it really must be shipped, or raise max_size"
        );
        let force = vec!["model.bin".to_string()];
        assert_eq!(build(&req(dir.path(), &["model.bin"], &force)).unwrap().len(), 1);
    }

    #[test]
    fn sync_errors_are_typed_for_callers_to_match() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.bin"), "01234567890").unwrap();
        let err = build(&req(dir.path(), &["model.bin"], &[])).unwrap_err();
        assert!(matches!(&err, SyncError::TooLarge { path, size: 11, max: 10 } if path == "model.bin"), "{err:?}");
        assert!(matches!(build(&req(dir.path(), &["../x"], &[])), Err(SyncError::Outside { listed }) if listed == "../x"));
        let err = build(&req(dir.path(), &["missing.py"], &[])).unwrap_err();
        assert!(matches!(&err, SyncError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("[sync] cannot read {}: {}", dir.path().join("missing.py").display(), "No such file or directory (os error 2)")
        );
        let fifo = dir.path().join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let err = build(&req(dir.path(), &["pipe"], &[])).unwrap_err();
        assert!(matches!(err, SyncError::Kind(super::super::input::InputError::SpecialSync { kind: "a FIFO", .. })), "{err:?}");
    }

    fn names(m: &[ManifestFile]) -> Vec<&str> {
        m.iter().map(|f| f.entry.path.as_str()).collect()
    }

    #[test]
    fn the_state_dir_is_left_out_of_a_walk_and_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        for d in [".shoal/runs/r1", "lib/.shoal/runs", "elsewhere"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        for f in [".shoal/runs/r1/journal.jsonl", "lib/.shoal/runs/j", "lib/a.py"] {
            std::fs::write(base.join(f), "x").unwrap();
        }
        std::os::unix::fs::symlink("../.shoal/runs", base.join("lib/runs")).unwrap();
        let state = base.join(".shoal");
        let walked = |paths: &[&str]| {
            let paths = paths.iter().map(|s| s.to_string()).collect();
            build(&SyncRequest { base, paths, max_size: 10, force: &[], exclude: &[], state_dir: &state })
        };
        assert_eq!(names(&walked(&["."]).unwrap()), ["lib/a.py"]);
        assert_eq!(
            walked(&[".shoal/runs"]).unwrap_err().to_string(),
            "[sync] path \".shoal/runs\" is in shoal's state dir .shoal, which holds earlier runs' journals, logs and outputs and is never synced; copy the files the tasks need out of it and list those instead"
        );
        assert!(walked(&["lib/runs"]).is_err(), "a symlink into the state dir is refused too");
    }

    #[test]
    fn a_job_whose_dir_is_inside_the_state_dir_syncs_its_own_files() {
        // A Dataset program's session dir, with results synced to later jobs.
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".shoal");
        let session = state.join("dataset/p-1");
        std::fs::create_dir_all(session.join("results")).unwrap();
        std::fs::write(session.join("results/1"), "r").unwrap();
        let req =
            SyncRequest { base: &session, paths: vec!["results/1".into()], max_size: 10, force: &[], exclude: &[], state_dir: &state };
        assert_eq!(names(&build(&req).unwrap()), ["results/1"]);
    }
}
