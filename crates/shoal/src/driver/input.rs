//! Cutting a job's input into partitions, each a block.
//!
//! - `lines`: byte ranges of one file, cut at line boundaries near equal
//!   targets. Nothing is copied: a partition is (file, offset, length).
//! - `files`: each file of a directory is one partition (pre-split data).
//! - `hash`: lines routed by the stable hash of a key field (or by
//!   `key mod partitions`), written to partition files under the run dir
//!   (copies of the input, so owner-only and created fresh: `private.rs`).
//! - `range`: lines routed by a numeric key into equal-width key ranges.
//!
//! Every partition is hashed, so a host that holds it already (pushed
//! earlier, or left from a previous run) is not sent it again.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use shoal_core::partitioner;

use super::blocks::{hash_range, Source};
use super::run::private;
use crate::agent::shuffle::sort::{read_line, LineError, MAX_LINE, MAX_LINE_TEXT};

/// One partition of the input.
#[derive(Clone, Debug)]
pub struct Partition {
    pub source: Source,
    /// The input file it came from, for output naming (`{name}`, `{stem}`).
    pub name: String,
}

/// How to split, resolved from the job file.
#[derive(Clone, Debug)]
pub enum SplitPlan {
    Lines { partitions: u32 },
    Files,
    Hash { partitions: u32, field: usize, sep: Vec<u8>, modulo: bool },
    Range { partitions: u32, field: usize, sep: Vec<u8> },
}

/// A problem with the input data, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The input path cannot be looked at (missing, no permission).
    #[error("input {} cannot be read: {source}; check [input] path in the job file", path.display())]
    Missing { path: PathBuf, source: std::io::Error },
    /// Reading an input file failed.
    #[error("cannot read input {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// Writing the partition files of a split by key failed.
    #[error("cannot write the input's partitions in {}: {source}", dir.display())]
    Scratch { dir: PathBuf, source: std::io::Error },
    /// `[input] path` is a FIFO, socket or device.
    #[error(
        "input {} is {kind}, not a regular file or directory; shoal reads only files and directories: check [input] path in the job file",
        path.display()
    )]
    Special { path: PathBuf, kind: &'static str },
    /// A file of the input directory is a FIFO, socket or device.
    #[error(
        "input {} is {kind}, not a regular file or directory; shoal reads only files and directories: move it out of the input directory {}",
        path.display(),
        dir.display()
    )]
    SpecialInDir { path: PathBuf, kind: &'static str, dir: PathBuf },
    /// A synced path (relative to the job's dir) is a FIFO, socket or device.
    #[error(
        "[sync] {} is {kind}, not a regular file or directory; shoal syncs only files and directories: remove it, or name it in [sync] exclude",
        rel.display()
    )]
    SpecialSync { rel: PathBuf, kind: &'static str },
    /// A file that must be regular (`what` names it) is not; `fix` says
    /// what to do instead.
    #[error("{what} {} is {kind}, not a regular file; {fix}", path.display())]
    NotRegular { what: String, path: PathBuf, kind: &'static str, fix: String },
    /// A whole-file partition that is not a regular file.
    #[error("{} is {kind}, not a regular file; shoal reads only regular files", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    /// A directory where a split needs a file.
    #[error("input {} is a directory; use split = \"files\" for pre-partitioned data, or name a file", path.display())]
    Directory { path: PathBuf },
    /// A file where `split = "files"` needs a directory.
    #[error("split = \"files\" needs a directory, but {} is a file", path.display())]
    NotADirectory { path: PathBuf },
    /// Nothing to run.
    #[error("input {} is empty: there is nothing to run", path.display())]
    Empty { path: PathBuf },
    /// A line too long to hold in memory for a split by key.
    #[error(
        "input {}: line {line} (at byte {offset}) is longer than {MAX_LINE_TEXT}, the longest line split = \"{split}\" reads; \
         break it into shorter lines, or use split = \"lines\" or \"files\", which never hold a line in memory",
        path.display()
    )]
    LineTooLong { path: PathBuf, line: u64, offset: u64, split: &'static str },
    /// A line whose key cannot route it.
    #[error("{}:{line}: {why}", path.display())]
    BadKey { path: PathBuf, line: u64, why: KeyError },
}

/// Why a line's key cannot place it in a partition.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum KeyError {
    #[error("line has no key field {field} (separator {sep:?}): {head:?}")]
    NoField { field: usize, sep: String, head: String },
    #[error("key {key:?} is not an integer, which partitioner = \"modulo\" needs")]
    NotInteger { key: String },
    #[error("key {key:?} is not a number, which split = \"range\" needs")]
    NotNumber { key: String },
}

fn io_err(path: &Path, source: std::io::Error) -> InputError {
    InputError::Read { path: path.to_path_buf(), source }
}

fn scratch_err(scratch: &Path, source: std::io::Error) -> InputError {
    InputError::Scratch { dir: scratch.to_path_buf(), source }
}

/// What `path` is when it is neither a regular file nor a directory (a
/// symlink is judged by its target); `None` when it is one of those or
/// cannot be looked at (the reader that opens it says why). Opening a
/// FIFO for reading waits for a writer forever, and a device never ends,
/// so such paths are refused by name before anything runs.
pub(crate) fn special_kind(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path).ok()?.file_type();
    match () {
        _ if t.is_file() || t.is_dir() => None,
        _ if t.is_fifo() => Some("a FIFO"),
        _ if t.is_socket() => Some("a socket"),
        _ if t.is_char_device() => Some("a character device"),
        _ if t.is_block_device() => Some("a block device"),
        _ => Some("of an unknown kind"),
    }
}

/// Refuses an `[input] path`, or a file of an input directory, that is
/// not a regular file or directory.
pub fn check_kind(path: &Path) -> Result<(), InputError> {
    if let Some(kind) = special_kind(path) {
        return Err(InputError::Special { path: path.to_path_buf(), kind });
    }
    let Ok(entries) = std::fs::read_dir(path) else { return Ok(()) };
    for p in entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| !file_name(p).starts_with('.')) {
        if let Some(kind) = special_kind(&p) {
            return Err(InputError::SpecialInDir { path: p, kind, dir: path.to_path_buf() });
        }
    }
    Ok(())
}

/// Refuses a synced path (`rel`, found at `real`) that is not a regular
/// file or directory.
pub fn check_sync_kind(real: &Path, rel: &Path) -> Result<(), InputError> {
    match special_kind(real) {
        Some(kind) => Err(InputError::SpecialSync { rel: rel.to_path_buf(), kind }),
        None => Ok(()),
    }
}

/// Refuses a file that must be regular (`[sync] list_file`, the file of
/// `shoal push`): `what` names it, `fix` says what to do instead.
pub fn check_regular(path: &Path, what: &str, fix: &str) -> Result<(), InputError> {
    let kind = if path.is_dir() { Some("a directory") } else { special_kind(path) };
    match kind {
        Some(kind) => Err(InputError::NotRegular { what: what.into(), path: path.to_path_buf(), kind, fix: fix.into() }),
        None => Ok(()),
    }
}

/// Splits `path` as `plan` says; `scratch` receives partition files.
pub fn split(path: &Path, plan: &SplitPlan, scratch: &Path) -> Result<Vec<Partition>, InputError> {
    let meta = std::fs::metadata(path).map_err(|source| InputError::Missing { path: path.to_path_buf(), source })?;
    let parts = match plan {
        SplitPlan::Files => by_files(path)?,
        _ if meta.is_dir() => return Err(InputError::Directory { path: path.to_path_buf() }),
        SplitPlan::Lines { partitions } => by_lines(path, meta.len(), *partitions)?,
        SplitPlan::Hash { partitions, field, sep, modulo } => {
            by_key(path, scratch, *partitions, |line, n| route_hash(line, *field, sep, *modulo, n))?
        }
        SplitPlan::Range { partitions, field, sep } => by_range(path, scratch, *partitions, *field, sep)?,
    };
    if parts.iter().all(|p| p.source.len == 0) {
        return Err(InputError::Empty { path: path.to_path_buf() });
    }
    Ok(parts)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn by_files(dir: &Path) -> Result<Vec<Partition>, InputError> {
    if !dir.is_dir() {
        return Err(InputError::NotADirectory { path: dir.to_path_buf() });
    }
    by_files_named(dir)?.into_iter().map(|p| whole_file(&p)).collect()
}

/// A whole file as one partition (also an `[images]` archive, a pushed
/// file): never a FIFO or device, whose reading would not end.
pub fn whole_file(path: &Path) -> Result<Partition, InputError> {
    if let Some(kind) = special_kind(path) {
        return Err(InputError::NotAFile { path: path.to_path_buf(), kind });
    }
    let len = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    let hash = hash_range(path, 0, len).map_err(|e| io_err(path, e))?;
    Ok(Partition { source: Source { path: path.to_path_buf(), offset: 0, len, hash, data: None }, name: file_name(path) })
}

/// Cuts a `shared:` input, which every host reads in place: only its size
/// and the bytes around each cut are read here. A partition is named by
/// what locates it (path, size, modification time, range), not by its
/// content, which is never read on this machine.
pub fn split_shared(path: &Path, plan: &SplitPlan) -> Result<Vec<Partition>, InputError> {
    let meta = std::fs::metadata(path).map_err(|source| InputError::Missing { path: path.to_path_buf(), source })?;
    let files = match plan {
        SplitPlan::Files => {
            if !meta.is_dir() {
                return Err(InputError::NotADirectory { path: path.to_path_buf() });
            }
            by_files_named(path)?
        }
        _ if meta.is_dir() => return Err(InputError::Directory { path: path.to_path_buf() }),
        _ => vec![path.to_path_buf()],
    };
    let mut parts = Vec::new();
    for file in files {
        if let Some(kind) = special_kind(&file) {
            return Err(InputError::NotAFile { path: file, kind });
        }
        let meta = std::fs::metadata(&file).map_err(|e| io_err(&file, e))?;
        let ranges = match plan {
            SplitPlan::Lines { partitions } => line_ranges(&file, meta.len(), *partitions)?,
            _ => vec![(0, meta.len())],
        };
        let mtime = std::os::unix::fs::MetadataExt::mtime_nsec(&meta) as u64 ^ (std::os::unix::fs::MetadataExt::mtime(&meta) as u64) << 30;
        for (offset, len) in ranges {
            let mut id = blake3::Hasher::new();
            id.update(b"shared\0");
            id.update(file.as_os_str().as_encoded_bytes());
            for n in [meta.len(), mtime, offset, len] {
                id.update(&n.to_le_bytes());
            }
            let hash = *id.finalize().as_bytes();
            parts.push(Partition { source: Source { path: file.clone(), offset, len, hash, data: None }, name: file_name(&file) });
        }
    }
    if parts.iter().all(|p| p.source.len == 0) {
        return Err(InputError::Empty { path: path.to_path_buf() });
    }
    Ok(parts)
}

/// The files of a directory input, in name order (hidden ones left out).
fn by_files_named(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !file_name(p).starts_with('.'))
        .collect();
    files.sort();
    Ok(files)
}

/// Line-aligned byte ranges of about `size / partitions` bytes each.
fn line_ranges(path: &Path, size: u64, partitions: u32) -> Result<Vec<(u64, u64)>, InputError> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut cuts = vec![0u64];
    for target in shoal_core::plan::line_chunk_targets(size, partitions) {
        let prev = *cuts.last().unwrap_or(&0);
        if target <= prev {
            continue;
        }
        let cut = next_line_start(&mut file, target, size).map_err(|e| io_err(path, e))?;
        if cut > prev && cut < size {
            cuts.push(cut);
        }
    }
    cuts.push(size);
    Ok(cuts.windows(2).map(|w| (w[0], w[1] - w[0])).collect())
}

fn by_lines(path: &Path, size: u64, partitions: u32) -> Result<Vec<Partition>, InputError> {
    line_ranges(path, size, partitions)?
        .into_iter()
        .map(|(offset, len)| {
            let hash = hash_range(path, offset, len).map_err(|e| io_err(path, e))?;
            Ok(Partition { source: Source { path: path.to_path_buf(), offset, len, hash, data: None }, name: file_name(path) })
        })
        .collect()
}

/// The start of the first line that begins at or after `from`.
pub fn line_start_at_or_after(path: &Path, from: u64, size: u64) -> std::io::Result<u64> {
    next_line_start(&mut File::open(path)?, from, size)
}

/// Partitions at given cut offsets (from an earlier `push --split`).
pub fn at_cuts(path: &Path, cuts: &[u64]) -> Result<Vec<Partition>, InputError> {
    let size = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    let mut bounds = cuts.to_vec();
    bounds.push(size);
    bounds
        .windows(2)
        .map(|w| {
            let hash = hash_range(path, w[0], w[1] - w[0]).map_err(|e| io_err(path, e))?;
            Ok(Partition {
                source: Source { path: path.to_path_buf(), offset: w[0], len: w[1] - w[0], hash, data: None },
                name: file_name(path),
            })
        })
        .collect()
}

/// The offset just after the first newline at or after `from`. The
/// bytes skipped are never held: a line may be longer than memory.
fn next_line_start(file: &mut File, from: u64, size: u64) -> std::io::Result<u64> {
    let start = from.saturating_sub(1);
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::new(file);
    let mut skipped = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(size);
        }
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            return Ok((start + skipped + i as u64 + 1).min(size));
        }
        let n = buf.len();
        skipped += n as u64;
        reader.consume(n);
    }
}

/// Reads the next line of an input cut by key, refusing one too long to
/// hold in memory with a sentence that says where it is.
fn next_line(r: &mut impl BufRead, line: &mut Vec<u8>, at: Place<'_>) -> Result<usize, InputError> {
    read_line(r, line, MAX_LINE).map_err(|e| match e {
        LineError::TooLong { .. } => {
            InputError::LineTooLong { path: at.path.to_path_buf(), line: at.number, offset: at.offset, split: at.split }
        }
        LineError::Io(e) => io_err(at.path, e),
    })
}

/// Where a line of an input is, for messages.
struct Place<'a> {
    path: &'a Path,
    split: &'static str,
    number: u64,
    offset: u64,
}

type Router<'a> = dyn FnMut(&[u8], u32) -> Result<u32, KeyError> + 'a;

fn by_key(
    path: &Path,
    scratch: &Path,
    partitions: u32,
    mut route: impl FnMut(&[u8], u32) -> Result<u32, KeyError>,
) -> Result<Vec<Partition>, InputError> {
    write_routed(path, "hash", scratch, partitions, &mut route)
}

fn write_routed(
    path: &Path,
    split: &'static str,
    scratch: &Path,
    partitions: u32,
    route: &mut Router<'_>,
) -> Result<Vec<Partition>, InputError> {
    private::dir(scratch).map_err(|e| scratch_err(scratch, e))?;
    let names: Vec<PathBuf> = (0..partitions).map(|i| scratch.join(format!("input-{i:05}"))).collect();
    let mut outs = names
        .iter()
        .map(|p| private::create(p).map(|f| BufWriter::with_capacity(256 * 1024, f)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| scratch_err(scratch, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(|e| io_err(path, e))?);
    let mut line = Vec::new();
    let (mut number, mut offset) = (0u64, 0u64);
    while let n @ 1.. = next_line(&mut reader, &mut line, Place { path, split, number: number + 1, offset })? {
        number += 1;
        offset += n as u64;
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let p = route(body, partitions).map_err(|why| bad_key(path, number, why))?;
        outs[p as usize].write_all(&line).map_err(|e| scratch_err(scratch, e))?;
        if !line.ends_with(b"\n") {
            outs[p as usize].write_all(b"\n").map_err(|e| scratch_err(scratch, e))?;
        }
        line.clear();
    }
    for o in &mut outs {
        o.flush().map_err(|e| scratch_err(scratch, e))?;
    }
    names
        .iter()
        .map(|p| {
            whole_file(p).map(|mut part| {
                part.name = file_name(path);
                part
            })
        })
        .collect()
}

fn bad_key(path: &Path, line: u64, why: KeyError) -> InputError {
    InputError::BadKey { path: path.to_path_buf(), line, why }
}

fn key_of<'a>(line: &'a [u8], field: usize, sep: &[u8]) -> Result<&'a [u8], KeyError> {
    partitioner::field(line, sep, field).ok_or_else(|| KeyError::NoField {
        field,
        sep: String::from_utf8_lossy(sep).into_owned(),
        head: String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned(),
    })
}

fn route_hash(line: &[u8], field: usize, sep: &[u8], modulo: bool, n: u32) -> Result<u32, KeyError> {
    let key = key_of(line, field, sep)?;
    if modulo {
        partitioner::modulo_partition(key, n).map_err(|_| KeyError::NotInteger { key: String::from_utf8_lossy(key).into_owned() })
    } else {
        Ok(partitioner::hash_partition(key, n))
    }
}

fn numeric_key(line: &[u8], field: usize, sep: &[u8]) -> Result<f64, KeyError> {
    let key = key_of(line, field, sep)?;
    std::str::from_utf8(key)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .ok_or_else(|| KeyError::NotNumber { key: String::from_utf8_lossy(key).into_owned() })
}

/// Two passes: find the key range, then route into equal-width slices.
fn by_range(path: &Path, scratch: &Path, partitions: u32, field: usize, sep: &[u8]) -> Result<Vec<Partition>, InputError> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut reader = BufReader::new(File::open(path).map_err(|e| io_err(path, e))?);
    let mut line = Vec::new();
    let (mut number, mut offset) = (0u64, 0u64);
    while let n @ 1.. = next_line(&mut reader, &mut line, Place { path, split: "range", number: number + 1, offset })? {
        number += 1;
        offset += n as u64;
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let k = numeric_key(body, field, sep).map_err(|why| bad_key(path, number, why))?;
        lo = lo.min(k);
        hi = hi.max(k);
        line.clear();
    }
    let width = ((hi - lo) / partitions as f64).max(f64::MIN_POSITIVE);
    write_routed(path, "range", scratch, partitions, &mut |l: &[u8], n: u32| {
        let k = numeric_key(l, field, sep)?;
        Ok((((k - lo) / width) as u32).min(n - 1))
    })
}

/// Reads a whole small file (used for `list_file`).
pub fn read_to_string(path: &Path) -> Result<String, InputError> {
    let mut s = String::new();
    File::open(path).and_then(|mut f| f.read_to_string(&mut s)).map_err(|e| io_err(path, e))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Partition) -> String {
        let mut f = File::open(&p.source.path).unwrap();
        f.seek(SeekFrom::Start(p.source.offset)).unwrap();
        let mut s = String::new();
        f.take(p.source.len).read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn line_chunks_cover_the_file_at_line_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let parts = split(&path, &SplitPlan::Lines { partitions: 7 }, dir.path()).unwrap();
        assert_eq!(parts.len(), 7);
        let joined: String = parts.iter().map(read).collect();
        assert_eq!(joined, text);
        assert!(parts.iter().all(|p| read(p).ends_with('\n')));
    }

    #[test]
    fn more_partitions_than_lines_gives_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "a\nb\n").unwrap();
        let parts = split(&path, &SplitPlan::Lines { partitions: 10 }, dir.path()).unwrap();
        assert_eq!(parts.iter().map(read).collect::<Vec<_>>(), ["a\n", "b\n"]);
    }

    #[test]
    fn empty_input_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "").unwrap();
        let err = split(&path, &SplitPlan::Lines { partitions: 3 }, dir.path()).unwrap_err();
        assert_eq!(err.to_string(), format!("input {} is empty: there is nothing to run", path.display()));
    }

    #[test]
    fn missing_key_field_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.tsv");
        std::fs::write(&path, "a\t1\nb\n").unwrap();
        let plan = SplitPlan::Hash { partitions: 2, field: 2, sep: b"\t".to_vec(), modulo: false };
        let err = split(&path, &plan, &dir.path().join("s")).unwrap_err();
        assert_eq!(err.to_string(), format!("{}:2: line has no key field 2 (separator \"\\t\"): \"b\"", path.display()));
    }

    #[test]
    fn bad_keys_are_typed_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.tsv");
        std::fs::write(&path, "1\tx\nfour\ty\n").unwrap();
        let modulo = SplitPlan::Hash { partitions: 2, field: 1, sep: b"\t".to_vec(), modulo: true };
        let err = split(&path, &modulo, &dir.path().join("s")).unwrap_err();
        assert!(matches!(&err, InputError::BadKey { line: 2, why: KeyError::NotInteger { key }, .. } if key == "four"), "{err:?}");
        assert_eq!(err.to_string(), format!("{}:2: key \"four\" is not an integer, which partitioner = \"modulo\" needs", path.display()));
        let range = SplitPlan::Range { partitions: 2, field: 1, sep: b"\t".to_vec() };
        let err = split(&path, &range, &dir.path().join("r")).unwrap_err();
        assert!(matches!(&err, InputError::BadKey { line: 2, why: KeyError::NotNumber { .. }, .. }), "{err:?}");
        assert_eq!(err.to_string(), format!("{}:2: key \"four\" is not a number, which split = \"range\" needs", path.display()));
    }

    #[test]
    fn a_missing_input_and_a_directory_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone.txt");
        let err = split(&gone, &SplitPlan::Lines { partitions: 2 }, dir.path()).unwrap_err();
        assert!(matches!(&err, InputError::Missing { path, source } if *path == gone && source.kind() == std::io::ErrorKind::NotFound));
        assert!(err.to_string().ends_with("; check [input] path in the job file"), "{err}");
        let err = split(dir.path(), &SplitPlan::Lines { partitions: 2 }, dir.path()).unwrap_err();
        assert!(matches!(err, InputError::Directory { .. }), "{err:?}");
        let file = dir.path().join("f.txt");
        std::fs::write(&file, "x\n").unwrap();
        let err = split(&file, &SplitPlan::Files, dir.path()).unwrap_err();
        assert_eq!(err.to_string(), format!("split = \"files\" needs a directory, but {} is a file", file.display()));
    }

    #[test]
    fn line_cuts_skip_a_line_longer_than_the_limit_without_holding_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let mut data = b"a\n".to_vec();
        data.resize(data.len() + MAX_LINE + 10, b'x');
        data.extend_from_slice(b"\nb\n");
        std::fs::write(&path, &data).unwrap();
        let parts = split(&path, &SplitPlan::Lines { partitions: 2 }, dir.path()).unwrap();
        assert_eq!(parts.iter().map(|p| p.source.len).sum::<u64>(), data.len() as u64);
        assert!(parts.iter().all(|p| p.source.offset == 0 || data[p.source.offset as usize - 1] == b'\n'));
    }

    #[test]
    fn modulo_routes_integer_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.tsv");
        std::fs::write(&path, "1\tx\n2\ty\n3\tz\n4\tw\n").unwrap();
        let plan = SplitPlan::Hash { partitions: 2, field: 1, sep: b"\t".to_vec(), modulo: true };
        let parts = split(&path, &plan, &dir.path().join("s")).unwrap();
        assert_eq!(parts.iter().map(read).collect::<Vec<_>>(), ["2\ty\n4\tw\n", "1\tx\n3\tz\n"]);
    }

    #[test]
    fn range_split_orders_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "9\n1\n5\n3\n7\n").unwrap();
        let plan = SplitPlan::Range { partitions: 2, field: 1, sep: b" ".to_vec() };
        let parts = split(&path, &plan, &dir.path().join("s")).unwrap();
        assert_eq!(parts.iter().map(read).collect::<Vec<_>>(), ["1\n3\n", "9\n5\n7\n"]);
    }

    #[test]
    fn special_files_are_refused_and_links_to_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let err = whole_file(&fifo).unwrap_err();
        assert_eq!(err.to_string(), format!("{} is a FIFO, not a regular file; shoal reads only regular files", fifo.display()));
        assert!(check_kind(Path::new("/dev/null")).unwrap_err().to_string().starts_with("input /dev/null is a character device"));
        std::fs::write(dir.path().join("real.txt"), "a\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real.txt"), dir.path().join("link.txt")).unwrap();
        assert!(check_kind(&dir.path().join("link.txt")).is_ok());
        let err = check_regular(dir.path(), "[sync] list_file", "point list_file at a regular file").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("[sync] list_file {} is a directory, not a regular file; point list_file at a regular file", dir.path().display())
        );
    }
}
