//! Skip mode: a map task that keeps failing is rerun in pieces, and the
//! records it fails on are left out (`[job] skip_bad_records`, Hadoop's
//! skipping of bad records).
//!
//! The driver asks for skip mode once a task has failed twice. The agent
//! first runs the command over the whole input once more (the failures may
//! have been passing); if that fails, it cuts the input in two at a line
//! boundary and runs each half, and so on down to single records, by
//! bisection: k bad records among n cost about 2k·log2(n) runs. A piece
//! that succeeds keeps its output; a single record that fails is skipped
//! and reported with its offset; more than the allowed number of skipped
//! records fails the task. Outputs of the pieces are concatenated in input
//! order, so a command that maps records independently (what skipping
//! assumes, as in Hadoop) gives the output of the input without the bad
//! records.
//!
//! This module only decides which byte ranges to run and joins their
//! outputs; running one piece (a process, its timeout, its kill) is the
//! a [`Runner`]; [`start`] runs an attempt's pieces as processes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_wire::{ExitStatus, SkippedRecord, TaskReport, TaskRequest};

use super::gate::Permit;
use super::task::{self, TaskPlace};
use super::tree;
use super::{private, BlockStore};

/// How the run of one piece ended.
pub enum PieceEnd {
    Succeeded,
    /// The command failed on the piece; the tail of its stderr.
    Failed(String),
    /// The attempt was killed: stop at once.
    Killed,
}

/// Runs the command with `input` on stdin (and at `$SHOAL_INPUT`), its
/// output going to `output`.
pub trait Runner {
    fn run(&mut self, input: &Path, output: &Path) -> io::Result<PieceEnd>;
}

/// How skip mode ended.
#[derive(Debug)]
pub enum Skipping {
    /// The output is complete but for the skipped records.
    Done(Vec<SkippedRecord>),
    /// More records failed than `limit`: the task fails.
    TooMany {
        skipped: Vec<SkippedRecord>,
        stderr_tail: String,
    },
    Killed,
}

/// The most of a skipped record kept in its report.
const HEAD_BYTES: usize = shoal_wire::SKIPPED_HEAD;

/// Runs `input` in pieces through `runner`, writing the joined outputs to
/// `output`; `scratch` holds the pieces.
pub fn run(input: &Path, output: &Path, scratch: &Path, limit: u32, runner: &mut dyn Runner) -> io::Result<Skipping> {
    let len = std::fs::metadata(input)?.len();
    let mut b = Bisection {
        input: File::open(input)?,
        output: private::create(output)?,
        piece_in: scratch.join("skip-input"),
        piece_out: scratch.join("skip-output"),
        limit,
        skipped: vec![],
        runner,
    };
    let ended = b.range(0, len);
    let _ = std::fs::remove_file(&b.piece_in);
    let _ = std::fs::remove_file(&b.piece_out);
    Ok(match ended? {
        Flow::Go => Skipping::Done(b.skipped),
        Flow::TooMany(stderr_tail) => Skipping::TooMany { skipped: b.skipped, stderr_tail },
        Flow::Killed => Skipping::Killed,
    })
}

enum Flow {
    Go,
    TooMany(String),
    Killed,
}

struct Bisection<'a> {
    input: File,
    output: File,
    piece_in: PathBuf,
    piece_out: PathBuf,
    limit: u32,
    skipped: Vec<SkippedRecord>,
    runner: &'a mut dyn Runner,
}

impl Bisection<'_> {
    /// Runs the bytes `[start, end)`, which begin and end at line
    /// boundaries; on failure, each half, down to single records.
    fn range(&mut self, start: u64, end: u64) -> io::Result<Flow> {
        if start == end {
            return Ok(Flow::Go);
        }
        self.write_piece(start, end)?;
        let why = match self.runner.run(&self.piece_in, &self.piece_out)? {
            PieceEnd::Succeeded => {
                io::copy(&mut File::open(&self.piece_out)?, &mut self.output)?;
                return Ok(Flow::Go);
            }
            PieceEnd::Killed => return Ok(Flow::Killed),
            PieceEnd::Failed(why) => why,
        };
        match self.middle(start, end)? {
            Some(mid) => match self.range(start, mid)? {
                Flow::Go => self.range(mid, end),
                stop => Ok(stop),
            },
            None => self.skip(start, end, why),
        }
    }

    /// A line boundary strictly inside `[start, end)` near its middle, or
    /// None when the range is one record.
    fn middle(&mut self, start: u64, end: u64) -> io::Result<Option<u64>> {
        let half = start + (end - start) / 2;
        for from in [half, start] {
            self.input.seek(SeekFrom::Start(from))?;
            let mut reader = BufReader::new((&self.input).take(end - from));
            let mut skipped = Vec::new();
            let n = reader.read_until(b'\n', &mut skipped)? as u64;
            let boundary = from + n;
            if skipped.last() == Some(&b'\n') && boundary < end && boundary > start {
                return Ok(Some(boundary));
            }
        }
        Ok(None)
    }

    fn skip(&mut self, start: u64, end: u64, stderr_tail: String) -> io::Result<Flow> {
        let mut head = vec![0; (end - start).min(HEAD_BYTES as u64) as usize];
        self.input.seek(SeekFrom::Start(start))?;
        self.input.read_exact(&mut head)?;
        let head = String::from_utf8_lossy(&head).trim_end_matches('\n').to_string();
        self.skipped.push(SkippedRecord { offset: start, len: end - start, head });
        if self.skipped.len() > self.limit as usize {
            return Ok(Flow::TooMany(stderr_tail));
        }
        Ok(Flow::Go)
    }

    fn write_piece(&mut self, start: u64, end: u64) -> io::Result<()> {
        self.input.seek(SeekFrom::Start(start))?;
        let mut piece = private::create(&self.piece_in)?;
        let copied = io::copy(&mut (&self.input).take(end - start), &mut piece)?;
        if copied != end - start {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the task's input shrank while it ran"));
        }
        piece.flush()
    }
}

/// An attempt in skip mode, started like [`super::task::start`]: its
/// pieces run one after another on a blocking thread. The process group
/// it returns is a sentinel's (a `sleep`): killing that group is how the
/// session kills the attempt, and the runner, which watches the sentinel,
/// then kills the piece that runs and stops.
pub fn start(
    req: TaskRequest,
    place: TaskPlace,
    slot: Permit,
    store: Arc<BlockStore>,
) -> Result<(i32, tokio::task::JoinHandle<TaskReport>), Box<TaskReport>> {
    let started = Instant::now();
    let fail = |why: String| Box::new(task::trouble(req.attempt, started, why));
    private::create_fresh_dir(&place.scratch).map_err(|e| fail(format!("cannot create task dir {}: {e}", place.scratch.display())))?;
    let input = task::prepare_input(&req, &place.scratch, &store).map_err(|e| fail(format!("cannot prepare input: {e}")))?;
    let sentinel = Command::new("/bin/sh")
        .args(["-c", "exec sleep 2147483647"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| fail(format!("cannot start /bin/sh: {e}")))?;
    let pgid = sentinel.id() as i32;
    let handle = tokio::task::spawn_blocking(move || {
        let limit = req.skip_bad.unwrap_or(0);
        let output = place.scratch.join("output");
        let mut pieces = Pieces { req: &req, place: &place, sentinel, timeout: req.timeout_ms.map(Duration::from_millis) };
        let ended = run(&input, &output, &place.scratch, limit, &mut pieces);
        task::kill_group(pgid);
        let _ = pieces.sentinel.wait();
        drop(slot);
        let (status, stderr_tail, skipped) = match ended {
            Ok(Skipping::Done(skipped)) => (ExitStatus::Code(0), String::new(), skipped),
            Ok(Skipping::TooMany { skipped, stderr_tail }) => {
                let why = format!(
                    "{stderr_tail}\nshoal: skip mode: this task failed on {} records, more than [job] skip_bad_records = {limit}",
                    skipped.len()
                );
                (ExitStatus::Code(1), why, vec![])
            }
            Ok(Skipping::Killed) => (ExitStatus::Signal(libc::SIGKILL), String::new(), vec![]),
            Err(e) => (ExitStatus::SpawnFailed(e.to_string()), format!("shoal: skip mode: {e}"), vec![]),
        };
        let args = task::FinishArgs {
            status,
            cpu_ms: 0,
            timed_out: false,
            stderr_tail,
            started,
            output,
            store,
            scratch: place.scratch.clone(),
            work: place.work.clone(),
            req,
        };
        let mut report = task::finish(args);
        report.skipped = skipped;
        report
    });
    Ok((pgid, handle))
}

/// Runs each piece as the task's command would run, in a process group
/// of its own, with the task's timeout; stderr goes to a file whose tail
/// explains a failure.
struct Pieces<'a> {
    req: &'a TaskRequest,
    place: &'a TaskPlace,
    sentinel: Child,
    timeout: Option<Duration>,
}

impl Runner for Pieces<'_> {
    fn run(&mut self, input: &Path, output: &Path) -> io::Result<PieceEnd> {
        let progress = self.place.scratch.join("progress");
        let stderr_path = self.place.scratch.join("skip-stderr");
        let mut cmd = task::shell(self.req, self.place, input, output, &progress);
        let stdout = if self.req.stdout_is_output { Stdio::from(private::create(output)?) } else { Stdio::null() };
        if !self.req.stdout_is_output {
            private::create(output)?;
        }
        let stdin = if self.req.stdin { Stdio::from(File::open(input)?) } else { Stdio::null() };
        let mark = tree::Mark::new();
        cmd.env(tree::MARK_ENV, mark.value());
        let mut child = cmd.stdin(stdin).stdout(stdout).stderr(private::create(&stderr_path)?).spawn()?;
        let group = child.id() as i32;
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if self.sentinel.try_wait()?.is_some() {
                tree::end_running(group, Some(mark.id()));
                let _ = child.wait();
                return Ok(PieceEnd::Killed);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                tree::end_running(group, Some(mark.id()));
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // What the piece left running ends with it.
        tree::end_leftovers(mark.id());
        task::kill_group(group);
        let tail = tail_of(&stderr_path);
        Ok(match status {
            Some(s) if s.success() => PieceEnd::Succeeded,
            Some(s) => PieceEnd::Failed(format!("{tail}{}", if tail.is_empty() { format!("({s})") } else { String::new() })),
            None => PieceEnd::Failed(format!("{tail}\nshoal: timed out")),
        })
    }
}

/// The last [`task::TAIL_BYTES`] of a file.
fn tail_of(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else { return String::new() };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(task::TAIL_BYTES as u64)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// A real `/bin/sh` command per piece.
    struct Sh(&'static str, u32);

    impl Runner for Sh {
        fn run(&mut self, input: &Path, output: &Path) -> io::Result<PieceEnd> {
            self.1 += 1;
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(self.0)
                .stdin(File::open(input)?)
                .stdout(File::create(output)?)
                .stderr(Stdio::piped())
                .output()?;
            Ok(if out.status.success() { PieceEnd::Succeeded } else { PieceEnd::Failed(String::from_utf8_lossy(&out.stderr).into_owned()) })
        }
    }

    /// Upper-cases lines, and dies on any line holding "poison".
    const MAPPER: &str = "while IFS= read -r l || [ -n \"$l\" ]; do case $l in *poison*) echo \"bad: $l\" >&2; exit 3;; esac; printf '%s\\n' \"$l\" | tr a-z A-Z; done";

    fn skip(input: &str, limit: u32) -> (Skipping, String, u32) {
        let dir = tempfile::tempdir().unwrap();
        let (inp, out) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::write(&inp, input).unwrap();
        let mut sh = Sh(MAPPER, 0);
        let ended = run(&inp, &out, dir.path(), limit, &mut sh).unwrap();
        (ended, std::fs::read_to_string(&out).unwrap(), sh.1)
    }

    #[test]
    fn bad_records_are_left_out_and_reported_with_offsets() {
        let input: String = (0..100).map(|i| if i == 37 || i == 80 { format!("poison {i}\n") } else { format!("r{i}\n") }).collect();
        let (ended, out, runs) = skip(&input, 5);
        let want: String = (0..100).filter(|i| *i != 37 && *i != 80).map(|i| format!("R{i}\n")).collect();
        assert_eq!(out, want);
        let Skipping::Done(skipped) = ended else { panic!("{ended:?}") };
        let offsets: Vec<u64> = skipped.iter().map(|s| s.offset).collect();
        assert_eq!(offsets, [input.find("poison 37").unwrap() as u64, input.find("poison 80").unwrap() as u64]);
        assert_eq!(skipped[0].head, "poison 37");
        assert_eq!(skipped[0].len, 10);
        assert!(runs <= 30, "bisection took {runs} runs");
    }

    #[test]
    fn a_passing_input_runs_once() {
        let (ended, out, runs) = skip("a\nb\n", 1);
        assert!(matches!(ended, Skipping::Done(s) if s.is_empty()));
        assert_eq!((out.as_str(), runs), ("A\nB\n", 1));
    }

    #[test]
    fn more_bad_records_than_allowed_fail() {
        let (ended, _, _) = skip("poison 1\nok\npoison 2\npoison 3\n", 2);
        let Skipping::TooMany { skipped, stderr_tail } = ended else { panic!("{ended:?}") };
        assert_eq!(skipped.len(), 3);
        assert_eq!(stderr_tail.trim(), "bad: poison 3");
    }

    #[test]
    fn a_last_record_without_newline_is_a_record() {
        let (ended, out, _) = skip("ok\npoison", 1);
        assert_eq!(out, "OK\n");
        assert!(matches!(ended, Skipping::Done(s) if s.len() == 1 && s[0].offset == 3 && s[0].head == "poison"));
    }
}
