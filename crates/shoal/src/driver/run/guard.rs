//! Where an output may go: never onto, into or around what the job reads.
//!
//! Committing replaces the output path whole (a directory by exchange, a
//! file by rename), so an output that is, contains or lies inside the
//! input, a synced path, the list file or an image archive would destroy
//! it; one that is or contains the job file or the run state (`.shoal`),
//! or lies in `.shoal/runs`, would take those along. Paths are compared
//! canonical (symlinks resolved, `..` applied), an output that does not
//! exist yet by its deepest existing ancestor, and an output that is a
//! symlink both as the link and as its target. Checked before anything
//! is created.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use shoal_core::job::JobSpec;

use crate::{Error, Result};

/// A path the output must keep clear of, and how to name it to the user.
struct Guarded {
    path: PathBuf,
    /// E.g. `the input "in" ([input] path)`.
    label: String,
    /// An output inside it harms nothing (the run state holds a Dataset
    /// program's own job outputs).
    inside_ok: bool,
}

/// Refuses an output path that overlaps what the job reads.
pub fn check_output(job: &JobSpec, sync_paths: &[(String, &str)], state_dir: &Path) -> Result<()> {
    let written = &job.output.path;
    let out = job.resolve(written);
    let mut places = vec![resolve(&out)];
    if let (Some(parent), Some(name)) = (out.parent(), out.file_name()) {
        // Rename replaces the entry itself: a symlink at `out` is replaced,
        // its target is not; both are checked.
        places.push(resolve(parent).join(name));
    }
    for g in guarded(job, sync_paths, state_dir) {
        let found = places.iter().find_map(|p| relation(p, &g));
        if let Some(rel) = found {
            return Err(Error::Usage(format!(
                "[output] path {written:?} {rel} {}; committing the output would destroy it, so nothing was run: change [output] path so that the two do not overlap",
                g.label
            )));
        }
    }
    Ok(())
}

/// How `out` overlaps `g`, in words, if it does.
fn relation(out: &Path, g: &Guarded) -> Option<&'static str> {
    if out == g.path {
        Some("is the same path as")
    } else if g.path.starts_with(out) {
        Some("contains")
    } else if out.starts_with(&g.path) && !g.inside_ok {
        Some("lies inside")
    } else {
        None
    }
}

/// Everything the output must keep clear of that exists, in the order
/// errors name them: inputs first.
fn guarded(job: &JobSpec, sync_paths: &[(String, &str)], state_dir: &Path) -> Vec<Guarded> {
    let mut wanted: Vec<(PathBuf, String, bool)> = Vec::new();
    if let (Some(p), Some(full)) = (&job.input.path, job.input_path()) {
        wanted.push((full, format!("the input {p:?} ([input] path)"), false));
    }
    let files: BTreeSet<&Path> = job.input.parts.iter().flatten().filter(|p| p.data.is_none()).map(|p| p.path.as_path()).collect();
    wanted.extend(
        files.into_iter().map(|p| (p.to_path_buf(), format!("the input {:?} (a partition's file)", p.display().to_string()), false)),
    );
    for (p, key) in sync_paths {
        wanted.push((job.resolve(p), format!("the synced {p:?} ({key})"), false));
    }
    if let Some(list) = &job.sync.list_file {
        wanted.push((job.resolve(list), format!("the list file {list:?} ([sync] list_file)"), false));
    }
    for (name, image) in &job.images {
        wanted.push((job.resolve(&image.file), format!("the image archive {:?} ([images] {name})", image.file), false));
    }
    if let Some(p) = &job.path {
        wanted.push((p.clone(), format!("the job file {:?}", p.display().to_string()), true));
    }
    // A Dataset program's job outputs live in `.shoal/dataset/`; nothing
    // may go into `.shoal/runs/`, where this run's parts are.
    let runs = crate::driver::state::StateDir::new(state_dir).runs();
    wanted.push((runs.clone(), format!("the run state {:?}", runs.display().to_string()), false));
    wanted.push((state_dir.to_path_buf(), format!("the run state {:?}", state_dir.display().to_string()), true));
    wanted.into_iter().filter_map(|(p, label, inside_ok)| p.canonicalize().ok().map(|path| Guarded { path, label, inside_ok })).collect()
}

/// `p` made absolute with every existing symlink resolved; components
/// past the deepest existing one are appended as written (`..` pops).
fn resolve(p: &Path) -> PathBuf {
    let mut cur = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut exists = true;
    for c in p.components() {
        match c {
            Component::RootDir => cur = PathBuf::from("/"),
            Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                cur.pop();
            }
            Component::Normal(name) => {
                cur.push(name);
                if exists {
                    match cur.canonicalize() {
                        Ok(real) => cur = real,
                        Err(_) => exists = false,
                    }
                }
            }
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_links_and_keeps_missing_tails() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("in")).unwrap();
        std::os::unix::fs::symlink(real.join("in"), real.join("link")).unwrap();
        assert_eq!(resolve(&real.join("link/new/../x")), real.join("in/x"));
        assert_eq!(resolve(&real.join("in/./a/b")), real.join("in/a/b"));
    }

    #[test]
    fn relations() {
        let g = Guarded { path: PathBuf::from("/j/in"), label: String::new(), inside_ok: false };
        assert_eq!(relation(Path::new("/j/in"), &g), Some("is the same path as"));
        assert_eq!(relation(Path::new("/j"), &g), Some("contains"));
        assert_eq!(relation(Path::new("/j/in/out"), &g), Some("lies inside"));
        assert_eq!(relation(Path::new("/j/inner"), &g), None, "a shared prefix of names is no overlap");
        let state = Guarded { inside_ok: true, ..g };
        assert_eq!(relation(Path::new("/j/in/out"), &state), None);
    }

    #[test]
    fn run_state_is_guarded_but_dataset_outputs_may_live_in_it() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join(".shoal/runs")).unwrap();
        std::fs::write(base.join("data.txt"), "x\n").unwrap();
        let state = base.join(".shoal");
        let check = |out: &str| {
            let text = format!("[input]\npath = \"data.txt\"\n[map]\ncommand = \"cat\"\n[output]\npath = \"{out}\"\n");
            let job = JobSpec::parse(&text, &base.join("job.toml")).unwrap();
            check_output(&job, &[], &state).map_err(|e| e.to_string())
        };
        assert_eq!(check(".shoal/dataset/s/jobs/1"), Ok(()));
        assert_eq!(check("out/all.txt"), Ok(()));
        let runs = format!("{:?}", state.join("runs").display().to_string());
        assert_eq!(
            check(".shoal/runs/x"),
            Err(format!("[output] path \".shoal/runs/x\" lies inside the run state {runs}; committing the output would destroy it, so nothing was run: change [output] path so that the two do not overlap"))
        );
        assert!(check(".shoal").unwrap_err().contains("\" contains the run state "));
        assert!(check("data.txt/..").unwrap_err().contains("contains the input \"data.txt\" ([input] path)"));
    }
}
