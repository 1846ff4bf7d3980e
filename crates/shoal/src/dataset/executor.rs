//! A resident executor: this program, replayed up to one job, serving
//! that job's tasks one after another until the agent closes its stdin.
//!
//! Starting a process, loading the program and replaying `main` cost far
//! more than a small partition's work; an executor pays that once per
//! slot instead of once per task (Spark's executors, for the same reason).
//! The agent owns everything around a task (scratch, logs, timeouts,
//! kills); this side only reads [`ExecTask`]s from stdin, computes, and
//! answers each with an [`ExecDone`] on the original stdout. A panic is
//! not caught: it ends the executor, and the agent reports the task
//! failed with the panic's sentence, exactly as for a one-task process.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};

use shoal_wire::bounded::{tail_text, STDERR_TAIL_MAX};
use shoal_wire::executor::{read_frame, write_frame, ExecDone, ExecInput, ExecOutput, ExecTask};
use shoal_wire::frame::{self, Parsed};

use super::node::{Input, StageFn};
use super::panics::set_panic_context;
use super::plan::{Assignment, JobPlan};

/// Serves tasks until stdin ends; never returns. `layout` is the one the
/// driver sent.
pub(super) fn serve(layout: &[u32], plan: &JobPlan, finish: &StageFn, replies: File) -> ! {
    serve_with(&format!("job {}", plan.index), replies, |task| run(layout, plan, finish, task))
}

/// Serves tasks with `compute` until stdin ends; never returns: the loop
/// of every resident executor, whatever computes its tasks (this
/// program's plan, or the Python package's). `label` names the executor
/// in messages (`job 3`); `replies` is the original stdout.
pub fn serve_with(label: &str, replies: File, mut compute: impl FnMut(ExecTask) -> io::Result<ExecOutput>) -> ! {
    // Our own buffer over fd 0, to see whether more tasks are already here.
    // SAFETY: fd 0 is this process's stdin, which nothing else reads now.
    let stdin = unsafe { File::from_raw_fd(0) };
    let mut requests = BufReader::with_capacity(1 << 16, stdin);
    let mut replies = BufWriter::with_capacity(1 << 16, replies);
    // A task's CPU time runs from the end of the one before (reading the
    // next frame costs next to nothing): one clock reading per task.
    let mut last = cpu_us();
    loop {
        let task: ExecTask = match read_frame(&mut requests) {
            Ok(Some(t)) => t,
            Ok(None) => std::process::exit(0),
            Err(e) => {
                eprintln!("shoal: executor of {label}: cannot read the next task from the agent: {e}");
                std::process::exit(1);
            }
        };
        let attempt = task.attempt;
        // The error's text is the program's: cut, so that the reply fits a frame.
        let result = compute(task).map_err(|e| tail_text(&format!("shoal: task of {label} failed: {e}"), STDERR_TAIL_MAX));
        let now = cpu_us();
        let done = ExecDone { attempt, result, cpu_us: now.saturating_sub(last), log_end: stderr_len() };
        last = now;
        // Replies wait in the buffer while more tasks are already read, so
        // that a burst of tasks is answered with one write.
        let more = matches!(frame::parse(requests.buffer()), Ok(Parsed::Frame { .. }));
        let sent = write_frame(&mut replies, &done).and_then(|()| if more { Ok(()) } else { replies.flush() });
        if let Err(e) = sent {
            eprintln!("shoal: executor of {label}: cannot answer the agent: {e}");
            std::process::exit(1);
        }
    }
}

/// How long the stderr file is (0 when stderr is not a file).
fn stderr_len() -> u64 {
    // SAFETY: fstat fills the struct it is given.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
        return 0;
    }
    st.st_size as u64
}

fn run(layout: &[u32], plan: &JobPlan, finish: &StageFn, task: ExecTask) -> io::Result<ExecOutput> {
    let input = match task.input {
        ExecInput::File(path) => Input::File(PathBuf::from(path)),
        ExecInput::Data(data) => Input::Data(data.into()),
    };
    let assignment = Assignment { stage: task.stage, partition: task.partition, input };
    set_panic_context(plan, &assignment);
    let mut out = Spill::new(task.inline_max as usize, Path::new(&task.output_path));
    plan.execute(layout, finish, &assignment, &mut out)?;
    out.finish()
}

/// Keeps an output in memory while it is small, and moves it to a file
/// (synced, as a one-task process would leave it) once it is not.
pub struct Spill<'a> {
    limit: usize,
    path: &'a Path,
    buf: Vec<u8>,
    file: Option<BufWriter<File>>,
}

impl<'a> Spill<'a> {
    /// Output kept inline up to `limit` bytes (0: always the file at `path`).
    pub fn new(limit: usize, path: &'a Path) -> Self {
        Spill { limit, path, buf: Vec::new(), file: None }
    }

    /// Where the output ended: inline, or the file (flushed and synced).
    pub fn finish(self) -> io::Result<ExecOutput> {
        let Some(mut file) = self.file else {
            if self.limit > 0 {
                return Ok(ExecOutput::Data(self.buf));
            }
            // Asked for a file even when small (a shuffle's map output).
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = File::create(self.path)?;
            f.write_all(&self.buf)?;
            f.sync_all()?;
            return Ok(ExecOutput::File);
        };
        file.flush()?;
        file.get_ref().sync_all()?;
        Ok(ExecOutput::File)
    }
}

impl Write for Spill<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(f) = &mut self.file {
            return f.write(data);
        }
        if self.buf.len() + data.len() <= self.limit {
            self.buf.extend_from_slice(data);
            return Ok(data.len());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = BufWriter::with_capacity(1 << 20, File::create(self.path)?);
        f.write_all(&std::mem::take(&mut self.buf))?;
        f.write_all(data)?;
        self.file = Some(f);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

/// CPU time of this process so far, user and system, in microseconds.
fn cpu_us() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_outputs_stay_in_memory_and_large_ones_spill() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/output");
        let mut small = Spill::new(8, &path);
        small.write_all(b"abc").unwrap();
        assert_eq!(small.finish().unwrap(), ExecOutput::Data(b"abc".to_vec()));
        assert!(!path.exists());
        let mut large = Spill::new(8, &path);
        large.write_all(b"abcdef").unwrap();
        large.write_all(b"ghijkl").unwrap();
        assert_eq!(large.finish().unwrap(), ExecOutput::File);
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefghijkl");
    }

    #[test]
    fn a_zero_limit_always_writes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output");
        let mut out = Spill::new(0, &path);
        out.write_all(b"k\tv\n").unwrap();
        assert_eq!(out.finish().unwrap(), ExecOutput::File);
        assert_eq!(std::fs::read(&path).unwrap(), b"k\tv\n");
    }
}
