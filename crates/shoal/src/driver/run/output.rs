//! Committing a run's output, all or nothing.
//!
//! Task outputs are collected into the run dir (`parts/`) as they commit.
//! Only when the whole job succeeded is the final output built next to its
//! destination under a temporary name, fsynced, and moved into place: a
//! file by rename, a directory by an atomic exchange with the old one
//! (`renameat2(RENAME_EXCHANGE)` on Linux; elsewhere the old one is moved
//! aside first), then the parent directory is fsynced. A failed or
//! interrupted run leaves the previous output as it was. A directory
//! output gets its `_SUCCESS` marker last.
//!
//! Every file made here is created new (`O_EXCL`): nothing is ever opened
//! for writing where a file or link already is, so a part that is a hard
//! link to other data can never be written through. Where the output may
//! go at all is `guard.rs`'s question, answered before the run.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use shoal_core::job::Merge;

/// One committed task output, in partition order.
#[derive(Clone, Debug)]
pub struct Part {
    pub partition: u32,
    /// Its file in the run dir; for a part held in memory, where it is
    /// written when a merge needs files (a merge command, a directory).
    pub file: PathBuf,
    /// The bytes of a small output, held in memory (and in the journal).
    pub data: Option<std::sync::Arc<[u8]>>,
    /// Name of the input it came from, for `{name}` patterns.
    pub input_name: std::sync::Arc<str>,
}

impl Part {
    fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        match &self.data {
            Some(data) => Ok(Box::new(io::Cursor::new(data.clone()))),
            None => Ok(Box::new(File::open(&self.file)?)),
        }
    }

    /// Writes a part held in memory to its file (once). The file may
    /// become an output file (a hard link), so it gets the user's modes.
    fn ensure_file(&self) -> Result<(), OutputError> {
        match &self.data {
            Some(data) if !self.file.exists() => {
                let tmp = self.file.with_extension("tmp");
                let _ = fs::remove_file(&tmp);
                fresh(&tmp)
                    .and_then(|mut f| f.write_all(data))
                    .and_then(|()| fs::rename(&tmp, &self.file))
                    .map_err(|e| io("write", &self.file, e))
            }
            _ => Ok(()),
        }
    }
}

/// Why the output could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file or directory of the output could not be made, read or moved.
    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    /// The merged output could not be written.
    #[error("cannot write the output: {0}")]
    Write(#[source] io::Error),
    /// `[output] name` gives a part a name that is no file name, or the marker's.
    #[error(
        "[output] name {pattern:?} names the output of partition {partition} (input {input}) {name:?}, {clash}; change [output] name, e.g. to \"{pattern}.out\""
    )]
    BadName { pattern: String, partition: u32, input: String, name: String, clash: &'static str },
    /// `[output] name` gives two parts the same name.
    #[error("two outputs would both be named {name:?}; make the [output] name pattern unique, e.g. add {{partition}}")]
    Duplicate { name: String },
    #[error("output path {} has no file name", path.display())]
    NoFileName { path: PathBuf },
    /// `merge = "json-list"` met a line that is not JSON.
    #[error("merge = \"json-list\": line {line} of the output of partition {partition} is not JSON ({error}): {head:?}")]
    NotJson { partition: u32, line: usize, error: String, head: String },
    /// The merge command could not be started or waited for.
    #[error("cannot run the merge command {cmd:?}: {source}")]
    MergeStart { cmd: String, source: io::Error },
    /// The merge command ended with an error.
    #[error("the merge command {cmd:?} failed ({status}); its stderr:\n{stderr}")]
    MergeFailed { cmd: String, status: std::process::ExitStatus, stderr: String },
    /// A file is where the job writes a directory.
    #[error("output {} is a file but this job writes a directory (merge = \"none\"); remove it or change [output] path", path.display())]
    FileInTheWay { path: PathBuf },
    /// A directory is where the job writes one file.
    #[error(
        "output {} is a directory but this job writes one file (merge is not \"none\"); remove it or change [output] path",
        path.display()
    )]
    DirectoryInTheWay { path: PathBuf },
}

fn io(action: &'static str, p: &Path, source: io::Error) -> OutputError {
    OutputError::Io { action, path: p.to_path_buf(), source }
}

/// The marker a directory output gets last.
pub const MARKER: &str = "_SUCCESS";

/// A new file (the user's umask decides its modes); never an existing
/// file or a link.
fn fresh(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Refuses output names (`merge = "none"`) that collide with each other
/// or with the marker, or are no file name; `parts` are (partition,
/// input name) of every output, so this can run before the job does.
pub fn check_names<'a>(pattern: Option<&str>, parts: impl Iterator<Item = (u32, &'a str)>) -> Result<(), OutputError> {
    let mut seen = HashSet::new();
    for (partition, input) in parts {
        let name = part_name(pattern, partition, input);
        let clash = match name.as_str() {
            MARKER => "which is the success marker of a directory output",
            "" | "." | ".." => "which is not a file name",
            _ if !seen.insert(name.clone()) => return Err(duplicate(&name)),
            _ => continue,
        };
        let pattern = pattern.unwrap_or_default().to_string();
        return Err(OutputError::BadName { pattern, partition, input: input.to_string(), name, clash });
    }
    Ok(())
}

fn duplicate(name: &str) -> OutputError {
    OutputError::Duplicate { name: name.to_string() }
}

/// Builds and commits the output; returns its final path.
pub fn commit(
    dest: &Path,
    merge: &Merge,
    pattern: Option<&str>,
    parts: &[&Part],
    run_id: &str,
    base: &Path,
) -> Result<PathBuf, OutputError> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
    let name = dest.file_name().ok_or_else(|| OutputError::NoFileName { path: dest.to_path_buf() })?;
    let tmp = parent.join(format!(".{}.shoal-tmp-{run_id}", name.to_string_lossy()));
    if matches!(merge, Merge::None | Merge::Command(_)) {
        // These hand parts over as files (links, `$SHOAL_PARTS`).
        parts.iter().try_for_each(|p| p.ensure_file())?;
    }
    let built = match merge {
        Merge::None => {
            check_names(pattern, parts.iter().map(|p| (p.partition, &*p.input_name))).and_then(|()| build_dir(&tmp, pattern, parts))
        }
        Merge::Concat => build_file(&tmp, |out| concat(parts, out)),
        Merge::Csv => build_file(&tmp, |out| csv(parts, out)),
        Merge::JsonList => build_file(&tmp, |out| json_list(parts, out)),
        Merge::Command(cmd) => build_file(&tmp, |out| merge_command(cmd, parts, out, base)),
    };
    if let Err(e) = built.and_then(|()| replace(&tmp, dest, run_id)) {
        let _ = fs::remove_dir_all(&tmp).or_else(|_| fs::remove_file(&tmp));
        return Err(e);
    }
    Ok(dest.to_path_buf())
}

fn build_file(tmp: &Path, fill: impl FnOnce(&mut File) -> Result<(), OutputError>) -> Result<(), OutputError> {
    let mut out = fresh(tmp).map_err(|e| io("create", tmp, e))?;
    fill(&mut out)?;
    out.sync_all().map_err(|e| io("sync", tmp, e))
}

/// Part files are linked in when nothing else shares them (they are
/// fresh files of this run's, synced when collected), else copied; then
/// the marker is created new, then the directory
/// is synced so that its entries survive a crash.
fn build_dir(tmp: &Path, pattern: Option<&str>, parts: &[&Part]) -> Result<(), OutputError> {
    fs::create_dir(tmp).map_err(|e| io("create", tmp, e))?;
    for p in parts {
        let name = part_name(pattern, p.partition, &p.input_name);
        let dest = tmp.join(&name);
        if fs::symlink_metadata(&dest).is_ok() {
            return Err(duplicate(&name));
        }
        // A part with other names (a local agent's cached block, an
        // earlier run's part) is copied: the user's file must be theirs
        // alone, or editing it would change the cache.
        let shared = fs::metadata(&p.file).map_or(true, |m| std::os::unix::fs::MetadataExt::nlink(&m) > 1);
        let linked = !shared && fs::hard_link(&p.file, &dest).is_ok();
        if !linked {
            fs::copy(&p.file, &dest).map_err(|e| io("write", &dest, e))?;
        }
        // Parts are owner-only in `.shoal`; in the output the file is the
        // user's (its other name stays behind `.shoal`'s 0700).
        fs::set_permissions(&dest, fs::Permissions::from_mode(user_file_mode())).map_err(|e| io("write", &dest, e))?;
    }
    let marker = tmp.join(MARKER);
    fresh(&marker).and_then(|f| f.sync_all()).map_err(|e| io("write", &marker, e))?;
    File::open(tmp).and_then(|d| d.sync_all()).map_err(|e| io("sync", tmp, e))
}

/// The modes a new file of the user's gets: 0666 less the umask (read
/// from `/proc`, since asking `umask(2)` changes it for every thread).
fn user_file_mode() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let umask = status.lines().find_map(|l| l.strip_prefix("Umask:")).and_then(|v| u32::from_str_radix(v.trim(), 8).ok());
    0o666 & !umask.unwrap_or(0o022)
}

/// Expands `{name}`, `{stem}`, `{ext}`, `{partition}` for the output of
/// `partition`, which read the input named `input`.
pub fn part_name(pattern: Option<&str>, partition: u32, input: &str) -> String {
    let Some(pattern) = pattern else {
        return format!("part-{partition:05}");
    };
    let path = Path::new(input);
    let stem = path.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
    let ext = path.extension().map_or(String::new(), |s| s.to_string_lossy().into_owned());
    let name =
        pattern.replace("{name}", input).replace("{stem}", &stem).replace("{ext}", &ext).replace("{partition}", &format!("{partition:05}"));
    name.replace('/', "_")
}

fn concat(parts: &[&Part], out: &mut File) -> Result<(), OutputError> {
    // Parts held in memory (many small ones, typically) are gathered into
    // large writes; files are copied as they are.
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    for p in parts {
        let copied = match &p.data {
            Some(data) => out.write_all(data),
            None => out.flush().and_then(|()| File::open(&p.file)).and_then(|mut f| io::copy(&mut f, out.get_mut())).map(|_| ()),
        };
        copied.map_err(|e| io("write", &p.file, e))?;
    }
    out.flush().map_err(OutputError::Write)
}

/// Keeps the first header; drops the first line of every later part when
/// it equals that header.
fn csv(parts: &[&Part], out: &mut File) -> Result<(), OutputError> {
    let mut header: Option<String> = None;
    for p in parts {
        let f = p.open().map_err(|e| io("read", &p.file, e))?;
        for (i, line) in BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| io("read", &p.file, e))?;
            if i == 0 {
                match &header {
                    Some(h) if *h == line => continue,
                    None => header = Some(line.clone()),
                    _ => {}
                }
            }
            writeln!(out, "{line}").map_err(|e| io("write", &p.file, e))?;
        }
    }
    Ok(())
}

/// Every non-empty line of every part must be one JSON value; the result
/// is a JSON array of them, in partition order.
fn json_list(parts: &[&Part], out: &mut File) -> Result<(), OutputError> {
    let mut values = Vec::new();
    for p in parts {
        let f = p.open().map_err(|e| io("read", &p.file, e))?;
        for (i, line) in BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| io("read", &p.file, e))?;
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| OutputError::NotJson {
                partition: p.partition,
                line: i + 1,
                error: e.to_string(),
                head: truncate(&line).to_string(),
            })?;
            values.push(v);
        }
    }
    serde_json::to_writer_pretty(&mut *out, &values).map_err(|e| OutputError::Write(e.into()))?;
    out.write_all(b"\n").map_err(OutputError::Write)
}

fn truncate(s: &str) -> &str {
    &s[..s.char_indices().nth(80).map_or(s.len(), |(i, _)| i)]
}

/// Runs the user's merge command in the job directory: the parts
/// concatenated on stdin, their paths in `$SHOAL_PARTS` (one per line),
/// the merged result on stdout.
fn merge_command(cmd: &str, parts: &[&Part], out: &mut File, base: &Path) -> Result<(), OutputError> {
    let list: Vec<String> = parts.iter().map(|p| p.file.display().to_string()).collect();
    let merge_err = |source| OutputError::MergeStart { cmd: cmd.to_string(), source };
    let stdout = out.try_clone().map_err(merge_err)?;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(base)
        .env("SHOAL_PARTS", list.join("\n"))
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(merge_err)?;
    let mut stdin = child.stdin.take().expect("piped");
    let feeder = {
        let parts: Vec<Part> = parts.iter().map(|&p| p.clone()).collect();
        std::thread::spawn(move || {
            for p in parts {
                if let Ok(mut f) = p.open() {
                    if io::copy(&mut f, &mut stdin).is_err() {
                        break; // the command need not read stdin
                    }
                }
            }
        })
    };
    let output = child.wait_with_output().map_err(merge_err)?;
    let _ = feeder.join();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(OutputError::MergeFailed { cmd: cmd.to_string(), status: output.status, stderr: stderr.trim_end().to_string() });
    }
    Ok(())
}

/// Moves `tmp` to `dest`, replacing what was there only at the last
/// step, and makes the move durable. A symlink at `dest` is replaced
/// itself; what it points to is never touched.
pub(super) fn replace(tmp: &Path, dest: &Path, run_id: &str) -> Result<(), OutputError> {
    let old = fs::symlink_metadata(dest).ok().map(|m| m.file_type());
    match old {
        Some(t) if tmp.is_dir() && t.is_file() => return Err(OutputError::FileInTheWay { path: dest.to_path_buf() }),
        Some(_) if tmp.is_dir() => swap(tmp, dest, run_id)?,
        Some(t) if t.is_dir() => return Err(OutputError::DirectoryInTheWay { path: dest.to_path_buf() }),
        _ => fs::rename(tmp, dest).map_err(|e| io("commit", dest, e))?,
    }
    super::private::sync_parent(dest).map_err(|e| io("sync the directory of", dest, e))
}

/// Puts the new directory `tmp` at `dest` in one step and removes the old
/// entry (a directory, or a symlink), which the exchange left at `tmp`.
fn swap(tmp: &Path, dest: &Path, run_id: &str) -> Result<(), OutputError> {
    let old = match exchange(tmp, dest) {
        Ok(()) => tmp.to_path_buf(),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP)) => aside(tmp, dest, run_id)?,
        Err(e) => return Err(io("commit", dest, e)),
    };
    let removed = match fs::symlink_metadata(&old) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(&old),
        _ => fs::remove_file(&old),
    };
    // The new output is in place; a leftover old one is only clutter.
    if let Err(e) = removed {
        eprintln!("shoal: warning: cannot remove the previous output, now at {}: {e}", old.display());
    }
    Ok(())
}

/// The fallback where the file system cannot exchange: move the old
/// output aside, then the new one in (a crash between the two leaves no
/// output, but the old one beside it); returns where the old one is.
fn aside(tmp: &Path, dest: &Path, run_id: &str) -> Result<PathBuf, OutputError> {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let old = dest.with_file_name(format!(".{name}.shoal-old-{run_id}"));
    fs::rename(dest, &old).map_err(|e| io("move aside", dest, e))?;
    if let Err(e) = fs::rename(tmp, dest) {
        let _ = fs::rename(&old, dest);
        return Err(io("commit", dest, e));
    }
    Ok(old)
}

/// Swaps two directory entries atomically.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let (a, b) = (CString::new(a.as_os_str().as_bytes())?, CString::new(b.as_os_str().as_bytes())?);
    // SAFETY: both are NUL-terminated paths that live across the call.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(dir: &Path, texts: &[&str]) -> Vec<Part> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let file = dir.join(format!("p{i}"));
                fs::write(&file, t).unwrap();
                Part { partition: i as u32, file, data: None, input_name: format!("in{i}.txt").into() }
            })
            .collect()
    }

    fn refs(ps: &[Part]) -> Vec<&Part> {
        ps.iter().collect()
    }

    #[test]
    fn concat_in_partition_order() {
        let d = tempfile::tempdir().unwrap();
        let ps = parts(d.path(), &["a\n", "b\n"]);
        let dest = d.path().join("out/result.txt");
        commit(&dest, &Merge::Concat, None, &refs(&ps), "r1", d.path()).unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "a\nb\n");
    }

    #[test]
    fn parts_held_in_memory_merge_like_files() {
        let d = tempfile::tempdir().unwrap();
        let mut ps = parts(d.path(), &["a\n", "b\n"]);
        let file = d.path().join("p-mem");
        ps.insert(1, Part { partition: 1, file: file.clone(), data: Some(b"m\n".as_slice().into()), input_name: "mem".into() });
        let dest = d.path().join("r.txt");
        commit(&dest, &Merge::Concat, None, &refs(&ps), "r1", d.path()).unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "a\nm\nb\n");
        assert!(!file.exists(), "a concat reads memory, it writes no part file");
        let cmd = Merge::Command("cat $SHOAL_PARTS".into());
        commit(&dest, &cmd, None, &refs(&ps), "r2", d.path()).unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "a\nm\nb\n", "the merge command reads every part by path");
    }

    #[test]
    fn csv_keeps_one_header() {
        let d = tempfile::tempdir().unwrap();
        let ps = parts(d.path(), &["x,y\n1,2\n", "x,y\n3,4\n"]);
        let dest = d.path().join("r.csv");
        commit(&dest, &Merge::Csv, None, &refs(&ps), "r1", d.path()).unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "x,y\n1,2\n3,4\n");
    }

    #[test]
    fn json_list_reports_bad_lines() {
        let d = tempfile::tempdir().unwrap();
        let ps = parts(d.path(), &["{\"a\":1}\n", "oops\n"]);
        let err = commit(&d.path().join("r.json"), &Merge::JsonList, None, &refs(&ps), "r1", d.path()).unwrap_err();
        assert!(err.to_string().starts_with("merge = \"json-list\": line 1 of the output of partition 1 is not JSON"), "{err}");
        assert!(!d.path().join("r.json").exists());
    }

    #[test]
    fn directory_output_is_replaced_whole_with_success_marker_last() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        fs::create_dir_all(&dest).unwrap();
        fs::write(dest.join("stale"), "old").unwrap();
        let ps = parts(d.path(), &["a", "b"]);
        commit(&dest, &Merge::None, Some("{stem}.gz"), &refs(&ps), "r1", d.path()).unwrap();
        let mut names: Vec<String> = fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["_SUCCESS", "in0.gz", "in1.gz"]);
    }

    #[test]
    fn linked_parts_get_the_modes_of_a_new_file_of_the_users() {
        let d = tempfile::tempdir().unwrap();
        let ps = parts(d.path(), &["a"]);
        fs::set_permissions(&ps[0].file, fs::Permissions::from_mode(0o600)).unwrap();
        let dest = d.path().join("out");
        commit(&dest, &Merge::None, None, &refs(&ps), "r1", d.path()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dest.join("part-00000")), mode(&dest.join(MARKER)), "as the marker, which is made new");
    }

    #[test]
    fn failing_merge_command_leaves_previous_output() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("r.txt");
        fs::write(&dest, "previous").unwrap();
        let ps = parts(d.path(), &["a"]);
        let err = commit(&dest, &Merge::Command("echo broken >&2; exit 3".into()), None, &refs(&ps), "r1", d.path()).unwrap_err();
        assert_eq!(err.to_string(), "the merge command \"echo broken >&2; exit 3\" failed (exit status: 3); its stderr:\nbroken");
        assert_eq!(fs::read_to_string(&dest).unwrap(), "previous");
    }

    #[test]
    fn output_errors_are_typed_for_callers_to_match() {
        let d = tempfile::tempdir().unwrap();
        let ps = parts(d.path(), &["a"]);
        let err = commit(&d.path().join("r.txt"), &Merge::Command("exit 4".into()), None, &refs(&ps), "r1", d.path()).unwrap_err();
        assert!(matches!(&err, OutputError::MergeFailed { cmd, status, .. } if cmd == "exit 4" && status.code() == Some(4)), "{err:?}");
        let ps = parts(d.path(), &["{}\n", "[1,\n"]);
        let err = commit(&d.path().join("r.json"), &Merge::JsonList, None, &refs(&ps), "r1", d.path()).unwrap_err();
        assert!(matches!(&err, OutputError::NotJson { partition: 1, line: 1, head, .. } if head == "[1,"), "{err:?}");
        fs::create_dir(d.path().join("dir")).unwrap();
        let err = commit(&d.path().join("dir"), &Merge::Concat, None, &refs(&ps), "r1", d.path()).unwrap_err();
        assert!(matches!(err, OutputError::DirectoryInTheWay { .. }), "{err:?}");
        let names = [(0, "a.txt"), (1, "a.txt")];
        assert!(matches!(check_names(Some("{name}"), names.into_iter()), Err(OutputError::Duplicate { name }) if name == "a.txt"));
    }

    #[test]
    fn the_marker_never_writes_through_a_part_named_like_it() {
        let d = tempfile::tempdir().unwrap();
        let mut ps = parts(d.path(), &["keep me\n"]);
        ps[0].input_name = "_SUCCESS".into();
        let err = commit(&d.path().join("out"), &Merge::None, Some("{name}"), &refs(&ps), "r1", d.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "[output] name \"{name}\" names the output of partition 0 (input _SUCCESS) \"_SUCCESS\", which is the success marker of a directory output; change [output] name, e.g. to \"{name}.out\""
        );
        assert_eq!(fs::read_to_string(&ps[0].file).unwrap(), "keep me\n");
        assert!(!d.path().join("out").exists() && !d.path().join(".out.shoal-tmp-r1").exists());
    }

    #[test]
    fn names_that_are_no_file_names_or_collide_are_refused() {
        let check = |pattern, inputs: &[&str]| {
            check_names(Some(pattern), inputs.iter().enumerate().map(|(i, n)| (i as u32, *n))).map_err(|e| e.to_string())
        };
        assert_eq!(check("{stem}.out", &["a.txt", "b.txt"]), Ok(()));
        assert_eq!(
            check("{stem}", &["a.txt", "a.csv"]),
            Err("two outputs would both be named \"a\"; make the [output] name pattern unique, e.g. add {partition}".into())
        );
        assert_eq!(
            check("{name}", &[".."]),
            Err("[output] name \"{name}\" names the output of partition 0 (input ..) \"..\", which is not a file name; change [output] name, e.g. to \"{name}.out\"".into())
        );
    }

    #[test]
    fn a_symlink_at_the_output_is_replaced_and_its_target_kept() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = d.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::write(elsewhere.join("precious"), "data").unwrap();
        let dest = d.path().join("out");
        std::os::unix::fs::symlink(&elsewhere, &dest).unwrap();
        let ps = parts(d.path(), &["a"]);
        commit(&dest, &Merge::None, None, &refs(&ps), "r1", d.path()).unwrap();
        assert!(fs::symlink_metadata(&dest).unwrap().is_dir(), "the link is replaced by the output");
        assert_eq!(fs::read_to_string(elsewhere.join("precious")).unwrap(), "data");
        assert_eq!(fs::read_to_string(dest.join("part-00000")).unwrap(), "a");
    }

    #[test]
    fn a_file_where_a_directory_output_goes_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        fs::write(&dest, "mine").unwrap();
        let ps = parts(d.path(), &["a"]);
        let err = commit(&dest, &Merge::None, None, &refs(&ps), "r1", d.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "output {} is a file but this job writes a directory (merge = \"none\"); remove it or change [output] path",
                dest.display()
            )
        );
        assert_eq!(fs::read_to_string(&dest).unwrap(), "mine");
        assert!(!d.path().join(".out.shoal-tmp-r1").exists(), "the built output is not left beside it");
    }

    #[test]
    fn without_an_exchange_the_old_output_is_moved_aside_then_removed() {
        let d = tempfile::tempdir().unwrap();
        let (tmp, dest) = (d.path().join(".out.shoal-tmp-r1"), d.path().join("out"));
        fs::create_dir(&tmp).unwrap();
        fs::write(tmp.join("new"), "n").unwrap();
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("old"), "o").unwrap();
        let old = aside(&tmp, &dest, "r1").unwrap();
        assert_eq!(fs::read_to_string(dest.join("new")).unwrap(), "n");
        assert_eq!(fs::read_to_string(old.join("old")).unwrap(), "o");
        assert_eq!(old, d.path().join(".out.shoal-old-r1"));
    }
}
