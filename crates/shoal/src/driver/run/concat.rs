//! A `merge = "concat"` output written while the job runs.
//!
//! [`output::commit`](super::output::commit) copies every part into the
//! merged file once the whole job succeeded, then syncs it: for a job
//! whose work is mostly moving bytes (the identity job, a filter), that
//! copy and sync were as long as the job itself. Here a writer thread
//! appends each part as soon as every part before it has committed, and
//! starts its writeback to disk at once; at the end only the last parts
//! are left to copy and little is left to sync. The result is the same
//! file, byte for byte, committed the same way (synced, then renamed over
//! the destination, its directory synced).
//!
//! The file is built in the run dir (`output.concat`), so that a driver
//! that dies leaves nothing beside the user's output; it is only used
//! when the run dir is on the output's file system (the commit is a
//! rename). Whenever the streamed file cannot be trusted to be the
//! concatenation of the parts the run ends with (a part replaced after it
//! was appended, a write that failed), it is dropped and the output is
//! built the usual way.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use shoal_core::job::{JobSpec, Merge};

use super::book::Dense;
use super::output::{self, OutputError, Part};

/// One part as the writer appends it: its file, or the bytes it held.
#[derive(Clone)]
enum Piece {
    File(PathBuf),
    Data(Arc<[u8]>),
}

impl Piece {
    fn of(p: &Part) -> Piece {
        match &p.data {
            Some(d) => Piece::Data(d.clone()),
            None => Piece::File(p.file.clone()),
        }
    }

    /// True when `p` is still what was appended (the same file, or the
    /// very same bytes).
    fn is(&self, p: &Part) -> bool {
        match (self, &p.data) {
            (Piece::Data(d), Some(e)) => Arc::ptr_eq(d, e),
            (Piece::File(f), None) => *f == p.file,
            _ => false,
        }
    }
}

/// True when the job's output is one file of its parts concatenated in
/// order: the output this module writes while the job runs.
pub fn one_concatenated_file(job: &JobSpec) -> bool {
    !job.output.on_hosts && matches!(job.output.merge, Merge::Concat)
}

/// The merged output of a run, growing as its parts commit.
pub struct Streamed {
    /// The tasks whose parts make the output, in output order.
    order: Vec<u32>,
    handed: Vec<Piece>,
    tx: Option<Sender<Piece>>,
    /// Tells the writer to stop early (the run will not use its file).
    stop: Arc<AtomicBool>,
    writer: Option<JoinHandle<io::Result<File>>>,
    tmp: PathBuf,
    committed: bool,
}

impl Streamed {
    /// Starts the merged file of an output at `dest` made of the parts of
    /// `order`'s tasks, in `run_dir`; `None` where it cannot be built
    /// beside the run (the output's directory does not exist yet, is on
    /// another file system, or a directory is where the file goes): the
    /// output is then built at the end.
    pub fn start(dest: &Path, run_dir: &Path, order: Vec<u32>) -> Option<Streamed> {
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let (there, here) = (fs::metadata(parent).ok()?, fs::metadata(run_dir).ok()?);
        if !there.is_dir() || there.dev() != here.dev() || fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
            return None;
        }
        let tmp = run_dir.join("output.concat");
        // A driver that died in this run dir (resumed) left its own.
        let _ = fs::remove_file(&tmp);
        // A new file of the user's (their umask decides its modes), as
        // the merged output built at the end would be.
        let out = OpenOptions::new().write(true).create_new(true).open(&tmp).ok()?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let writer = std::thread::Builder::new().name("shoal-concat".into()).spawn(move || append(rx, out, &halt)).ok()?;
        Some(Streamed { order, handed: Vec::new(), tx: Some(tx), stop, writer: Some(writer), tmp, committed: false })
    }

    /// Hands the writer every part that now follows the ones it has,
    /// without a gap.
    pub fn offer(&mut self, parts: &Dense<Part>) {
        let Some(tx) = &self.tx else { return };
        while let Some(p) = self.order.get(self.handed.len()).and_then(|t| parts.get(t)) {
            let piece = Piece::of(p);
            if tx.send(piece.clone()).is_err() {
                // The writer stopped on an error; the output is built at the end.
                self.tx = None;
                return;
            }
            self.handed.push(piece);
        }
    }

    /// Commits the merged file at `dest` when it holds exactly `parts`, in
    /// order; `None` when it does not (the caller builds the output).
    pub fn commit(mut self, parts: &Dense<Part>, dest: &Path, run_id: &str) -> Option<Result<(), OutputError>> {
        self.offer(parts);
        let tasks: Vec<u32> = parts.iter().map(|(t, _)| t).collect();
        let same = tasks == self.order && self.handed.iter().zip(parts.values()).all(|(h, p)| h.is(p));
        if !same || self.tx.is_none() {
            return None;
        }
        self.tx = None;
        let file = self.writer.take()?.join().ok()?.ok()?;
        let result = file
            .sync_all()
            .map_err(|e| OutputError::Io { action: "sync", path: self.tmp.clone(), source: e })
            .and_then(|()| output::replace(&self.tmp, dest, run_id));
        self.committed = result.is_ok();
        Some(result)
    }
}

impl Drop for Streamed {
    /// A file the run does not commit is removed at once; its writer is
    /// told to stop and not waited for (it may be copying a large part
    /// into what is now a nameless file).
    fn drop(&mut self) {
        self.tx = None;
        if !self.committed {
            self.stop.store(true, Ordering::Relaxed);
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The writer: appends pieces in order (small ones gathered into large
/// writes, files copied by the kernel) and starts the writeback of each
/// appended range.
fn append(rx: mpsc::Receiver<Piece>, out: File, stop: &AtomicBool) -> io::Result<File> {
    let mut out = BufWriter::with_capacity(1 << 20, out);
    // Bytes appended (some maybe still in the buffer), and the end of the
    // range whose writeback was last started.
    let (mut end, mut started) = (0u64, 0u64);
    for piece in rx {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("the run does not use the streamed output"));
        }
        match piece {
            Piece::Data(d) => {
                out.write_all(&d)?;
                end += d.len() as u64;
            }
            Piece::File(path) => {
                out.flush()?;
                end += io::copy(&mut File::open(&path)?, out.get_mut())?;
            }
        }
        // Many small parts share one writeback, not a syscall each.
        if end - started >= WRITEBACK_STEP {
            out.flush()?;
            start_writeback(out.get_ref(), started, end - started);
            started = end;
        }
    }
    out.into_inner().map_err(|e| e.into_error())
}

/// Bytes appended between two starts of writeback.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Asks the kernel to start writing `len` bytes at `offset` to disk, and
/// does not wait: the sync at the commit then has little left to do.
#[cfg(target_os = "linux")]
fn start_writeback(f: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    if len == 0 {
        return;
    }
    // SAFETY: a plain syscall on an open descriptor; nothing is borrowed.
    // An error only means the sync at the commit does all the work.
    unsafe {
        libc::sync_file_range(f.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(dir: &Path, n: u32, text: &str) -> Part {
        let file = dir.join(format!("part-{n}"));
        fs::write(&file, text).unwrap();
        Part { partition: n, file, data: None, input_name: "in".into() }
    }

    fn held(n: u32, text: &str) -> Part {
        Part { partition: n, file: PathBuf::from("/nonexistent"), data: Some(text.as_bytes().into()), input_name: "in".into() }
    }

    /// A temp dir with a run dir in it, and where the output goes.
    fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let (run, out) = (d.path().join("run"), d.path().join("out.txt"));
        fs::create_dir(&run).unwrap();
        (d, run, out)
    }

    #[test]
    fn parts_committed_out_of_order_are_appended_in_order() {
        let (_d, run, out) = dirs();
        fs::write(&out, "old").unwrap();
        let mut s = Streamed::start(&out, &run, vec![0, 1, 2]).unwrap();
        let mut parts = Dense::default();
        parts.insert(2, part(&run, 2, "c\n"));
        s.offer(&parts);
        assert_eq!(s.handed.len(), 0, "part 2 waits for parts 0 and 1");
        parts.insert(0, held(0, "a\n"));
        s.offer(&parts);
        assert_eq!(s.handed.len(), 1);
        assert_eq!(fs::read_to_string(&out).unwrap(), "old", "nothing replaces the output before the commit");
        parts.insert(1, part(&run, 1, "b\n"));
        s.commit(&parts, &out, "r1").unwrap().unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "a\nb\nc\n");
        assert!(!run.join("output.concat").exists());
    }

    #[test]
    fn a_part_replaced_after_it_was_appended_makes_the_caller_build_the_output() {
        let (_d, run, out) = dirs();
        let mut s = Streamed::start(&out, &run, vec![0, 1]).unwrap();
        let mut parts = Dense::default();
        parts.insert(0, held(0, "first\n"));
        s.offer(&parts);
        parts.insert(0, held(0, "again\n"));
        parts.insert(1, held(1, "b\n"));
        assert!(s.commit(&parts, &out, "r1").is_none());
        assert!(!out.exists(), "the streamed file is not committed");
        assert!(!run.join("output.concat").exists(), "and it is removed");
    }

    #[test]
    fn a_run_that_ends_without_commit_leaves_nothing() {
        let (_d, run, out) = dirs();
        let mut s = Streamed::start(&out, &run, vec![0, 1]).unwrap();
        let mut parts = Dense::default();
        parts.insert(0, part(&run, 0, "a\n"));
        s.offer(&parts);
        drop(s);
        assert!(!run.join("output.concat").exists());
        assert!(!out.exists());
    }

    #[test]
    fn no_stream_where_the_output_dir_is_missing_or_a_directory_is_in_the_way() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("run");
        fs::create_dir(&run).unwrap();
        assert!(Streamed::start(&d.path().join("missing/out.txt"), &run, vec![0]).is_none());
        fs::create_dir(d.path().join("dir")).unwrap();
        assert!(Streamed::start(&d.path().join("dir"), &run, vec![0]).is_none());
    }

    #[test]
    fn a_part_that_cannot_be_read_makes_the_caller_build_the_output() {
        let (_d, run, out) = dirs();
        let mut s = Streamed::start(&out, &run, vec![0, 1]).unwrap();
        let mut parts = Dense::default();
        parts.insert(0, Part { partition: 0, file: run.join("gone"), data: None, input_name: "in".into() });
        s.offer(&parts);
        parts.insert(1, held(1, "b\n"));
        // The writer fails on the missing file; the commit reports that it
        // could not use the streamed file rather than commit a short one.
        assert!(s.commit(&parts, &out, "r1").is_none());
        assert!(!out.exists());
    }
}
