//! One task attempt: a shell command in its own process group, fed its
//! input block, its output kept as a block.
//!
//! The child is spawned with std's `Command` and reaped with `wait4` once
//! its pidfd turns readable (on a blocking thread where pidfds are
//! missing), because `wait4` is the one call that reports the CPU time of
//! the child and of every descendant it waited for. Its stderr (and its
//! stdout when stdout is not the output) is drained by tasks of its own on
//! the runtime's poller (not a thread per pipe, whose start and stack cost
//! more than a no-op task), so a chatty child can never block on a full
//! pipe, and never faster than the link takes it: the channel to the
//! driver is bounded, so a chatty child waits on a full pipe instead of
//! filling the agent's memory. At most [`LOG_CAP`] of an attempt's output
//! is forwarded, then a note.
//!
//! Kill, timeout and lease expiry act on the whole tree (see `tree`):
//! the process group, and descendants that left it. Once the child is
//! reaped, its leftovers are ended too, and a pipe that a process outside
//! every group we know still holds is given up after [`PIPE_GRACE`], so a
//! task can never outlast its timeout by holding stderr.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(super) use shoal_wire::bounded::Tail;
use shoal_wire::bounded::STDERR_TAIL_MAX;
use shoal_wire::{ExitStatus, LogStream, Message, Outbox, TaskReport, TaskRequest};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use super::gate::Permit;
use super::shuffle::CombinerError;
use super::tree::{self, Mark};
use super::{private, BlockStore};

/// Where an attempt runs on this host.
#[derive(Clone, Debug)]
pub struct TaskPlace {
    pub work: PathBuf,
    pub scratch: PathBuf,
}

/// How much of a task's stderr its report carries.
pub(super) const TAIL_BYTES: usize = 4096;

/// The most of one attempt's output (stderr, and stdout when it is not
/// the output) forwarded to the driver's log.
pub(super) const LOG_CAP: u64 = 256 << 20;

/// How long the pipes of an ended task may stay silent before they are
/// given up: only a process that escaped every kill still holds them.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Log chunks in flight between a task's pipes and the driver.
pub(super) const LOG_QUEUE: usize = 16;

/// Starts an attempt that holds `slot` (one of the host's slots, given
/// back the moment the child is reaped: its output is stored and its
/// report sent while the next attempt starts); returns its process group
/// id and a future that completes with the report. The caller kills with
/// [`kill_group`].
pub fn start(
    req: TaskRequest,
    place: TaskPlace,
    slot: Permit,
    store: Arc<BlockStore>,
    outbox: Outbox,
) -> Result<(i32, tokio::task::JoinHandle<TaskReport>), Box<TaskReport>> {
    if req.skip_bad.is_some() {
        return super::skip::start(req, place, slot, store);
    }
    let started = Instant::now();
    let fail = |why: String| Box::new(trouble(req.attempt, started, why));
    private::create_fresh_dir(&place.scratch).map_err(|e| fail(format!("cannot create task dir {}: {e}", place.scratch.display())))?;
    // Read in place and streamed into stdin, unless the command names
    // `$SHOAL_INPUT`: then it gets a file of its own, which it may read
    // twice, seek in or write to (one copy, made by the kernel).
    let streamed = match &req.input_file {
        Some(f) if req.stdin && req.container.is_none() && !req.command.contains("SHOAL_INPUT") => {
            Some(InPlace::open(f).map_err(|e| fail(e.to_string()))?)
        }
        _ => None,
    };
    let input = match &streamed {
        Some(s) => s.path(),
        None => prepare_input(&req, &place.scratch, &store).map_err(|e| fail(format!("cannot prepare input: {e}")))?,
    };
    let output = place.scratch.join("output");
    let progress = place.scratch.join("progress");
    let mut cmd =
        command(&req, &place, &input, &output, &progress).map_err(|why| Box::new(refused(req.attempt, started, why.to_string())))?;
    if let Some(s) = streamed {
        cmd.stdin(s.stdin().map_err(|e| fail(format!("cannot feed the input to the task: {e}")))?);
    }
    let mark = Mark::new();
    cmd.env(tree::MARK_ENV, mark.value());
    let stdout_target = if req.stdout_is_output {
        Stdio::from(private::create(&output).map_err(|e| fail(format!("cannot create output: {e}")))?)
    } else {
        Stdio::piped()
    };
    cmd.stdout(stdout_target);
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot start /bin/sh in {}: {e}", place.work.display())))?;
    let pid = child.id() as i32;
    let (log_tx, log_rx) = mpsc::channel(LOG_QUEUE);
    let (ended, ended_rx) = watch::channel(None);
    let stderr = drain(child.stderr.take(), LogStream::Stderr, log_tx.clone(), ended_rx.clone());
    let stdout = drain(child.stdout.take(), LogStream::Stdout, log_tx, ended_rx);
    let handle = tokio::spawn(supervise(Supervised {
        req,
        pid,
        mark,
        ended,
        slot,
        started,
        output,
        progress,
        store,
        outbox,
        log_rx,
        drains: vec![stderr, stdout],
        scratch: place.scratch,
        work: place.work,
    }));
    Ok((pid, handle))
}

/// Sends an attempt's report. After log lines (which travel as bulk
/// messages) it queues behind them, so that the driver never sees a task
/// end before the last of its log; otherwise it goes ahead of any bulk
/// transfer.
pub async fn send_report(outbox: &Outbox, report: TaskReport) {
    let forged = super::failpoint::forged_reports(&report);
    if report.stderr_tail.is_empty() {
        send_report_now(outbox, report);
    } else {
        let attempt = report.attempt;
        if let Err(e) = outbox.send_after_bulk(Message::TaskDone(report)).await {
            unsendable_report(outbox, attempt, e);
        }
    }
    for msg in forged {
        let _ = outbox.send_after_bulk(msg).await;
    }
}

/// Sends an attempt's report ahead of any bulk transfer.
pub(super) fn send_report_now(outbox: &Outbox, report: TaskReport) {
    let attempt = report.attempt;
    if let Err(e) = outbox.send_now(Message::TaskDone(report)) {
        unsendable_report(outbox, attempt, e);
    }
}

/// A report too large for a message (never expected: what a task
/// controls is bounded before) still ends its attempt, as a failure.
fn unsendable_report(outbox: &Outbox, attempt: u32, e: shoal_wire::WireError) {
    if matches!(e, shoal_wire::WireError::Unsendable { .. }) {
        let why = format!("the task's report cannot be sent: {e}");
        let _ = outbox.send_now(Message::TaskDone(trouble(attempt, Instant::now(), why)));
    }
}

/// The report of an attempt killed before it started.
pub(super) fn killed(attempt: u32) -> TaskReport {
    let mut report = trouble(attempt, Instant::now(), String::new());
    report.status = ExitStatus::Signal(libc::SIGKILL);
    report.host_trouble = None;
    report
}

/// Sends SIGKILL to a whole process group.
pub fn kill_group(pgid: i32) {
    // SAFETY: plain syscall; a negative pid addresses the group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn command(
    req: &TaskRequest,
    place: &TaskPlace,
    input: &Path,
    output: &Path,
    progress: &Path,
) -> Result<Command, super::container::EnvFileError> {
    if let Some(c) = &req.container {
        // Bind mounts need the files to exist (else Docker makes directories).
        let _ = private::create_new(output);
        let _ = private::create_new(progress);
        let mounts = super::container::Mounts { work: &place.work, input, output, progress, scratch: &place.scratch };
        let mut cmd = super::container::command(req, c, &mounts)?;
        let stdin = if req.stdin { File::open(input).map(Stdio::from).unwrap_or_else(|_| Stdio::null()) } else { Stdio::null() };
        cmd.current_dir(&place.work).stdin(stdin).stderr(Stdio::piped()).process_group(0);
        return Ok(cmd);
    }
    let mut cmd = shell(req, place, input, output, progress);
    let stdin = if req.stdin { File::open(input).map(Stdio::from).unwrap_or_else(|_| Stdio::null()) } else { Stdio::null() };
    cmd.stdin(stdin).stderr(Stdio::piped());
    Ok(cmd)
}

/// `/bin/sh -c COMMAND` in the work dir, in a process group of its own,
/// with the task's environment and the `SHOAL_*` paths.
pub(super) fn shell(req: &TaskRequest, place: &TaskPlace, input: &Path, output: &Path, progress: &Path) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(&req.command).current_dir(&place.work);
    cmd.envs(req.all_env());
    cmd.env("SHOAL_INPUT", input)
        .env("SHOAL_OUTPUT", output)
        .env("SHOAL_PROGRESS", progress)
        .env("SHOAL_WORKDIR", &place.work)
        .env("SHOAL_SCRATCH", &place.scratch);
    // A Rust Dataset program's tasks run the agent's own executable: it is
    // the program (see `crate::dataset`).
    if let Ok(exe) = crate::binary::current() {
        cmd.env("SHOAL_AGENT_BINARY", &exe.path);
    }
    cmd.process_group(0);
    cmd
}

/// The task's input as one file of its own: a private copy of its block
/// (a reflink where the file system can; a container gets the block
/// itself, mounted read-only), a concatenation of blocks, a merge of
/// sorted runs (a reducer), or the bytes that came inline. Never a cached
/// block a task could write to.
pub(super) fn prepare_input(req: &TaskRequest, scratch: &Path, store: &BlockStore) -> io::Result<PathBuf> {
    let path = scratch.join("input");
    if let Some(data) = &req.input_data {
        private::create_new(&path)?.write_all(data)?;
        return Ok(path);
    }
    if let Some(f) = &req.input_file {
        // Read where it lives, copied once into the task's own file (the
        // kernel copies: `copy_file_range` where it can).
        // The range as aligned to lines, when the driver cut it blind.
        let InPlace { file: mut src, input } = InPlace::open(f).map_err(io::Error::other)?;
        io::Seek::seek(&mut src, io::SeekFrom::Start(input.offset))?;
        let mut out = private::create_new(&path)?;
        let copied = io::copy(&mut io::Read::take(src, input.len), &mut out)?;
        if copied != input.len {
            return Err(io::Error::other(format!("{} ended after {copied} of its {} bytes from {}", f.path, input.len, input.offset)));
        }
        return Ok(path);
    }
    let blocks = req.inputs.iter().map(|h| store.verified(h)).collect::<io::Result<Vec<PathBuf>>>()?;
    if let Some(key) = &req.merge_in {
        // A reducer's input: sorted runs from every map, merged by key.
        let mut out = io::BufWriter::with_capacity(1 << 20, private::create_new(&path)?);
        super::shuffle::merge_into(&blocks, key, &mut out)?;
        return Ok(path);
    }
    match blocks.as_slice() {
        [one] if req.container.is_some() => Ok(one.clone()),
        [one] => private::copy(one, &path, private::FILE_MODE).map(|_| path),
        many => {
            let mut out = private::create_new(&path)?;
            for block in many {
                io::copy(&mut File::open(block)?, &mut out)?;
            }
            Ok(path)
        }
    }
}

/// A task's input read where it lives (`TaskRequest::input_file`): on
/// its stdin, through a pipe that a thread fills from the range. Never
/// the file itself, nor its path: the file is the user's data, and a task
/// that writes to its input (even through `/dev/stdin`, which the kernel
/// would reopen by path) must not reach it.
struct InPlace {
    file: File,
    input: shoal_wire::InputFile,
}

/// Why an input could not be read where it lives.
#[derive(Debug, thiserror::Error)]
enum InPlaceError {
    #[error("cannot read the input {path} on this host ({source}): a shared: input must be at the same path on every host (NFS, a parallel file system)")]
    Open { path: String, source: io::Error },
    #[error("the input {path} is {kind} on this host, not a regular file")]
    NotAFile { path: String, kind: &'static str },
    #[error("the input {path} has {here} bytes on this host but {there} on the driver's: the hosts do not see the same file (is the shared file system in sync?)")]
    Size { path: String, here: u64, there: u64 },
}

impl InPlace {
    fn open(f: &shoal_wire::InputFile) -> Result<InPlace, InPlaceError> {
        let open = |source| InPlaceError::Open { path: f.path.clone(), source };
        let file = File::open(&f.path).map_err(open)?;
        let meta = file.metadata().map_err(open)?;
        if !meta.is_file() {
            let kind = if meta.is_dir() { "a directory" } else { "a special file" };
            return Err(InPlaceError::NotAFile { path: f.path.clone(), kind });
        }
        if meta.len() != f.size {
            return Err(InPlaceError::Size { path: f.path.clone(), here: meta.len(), there: f.size });
        }
        let mut input = f.clone();
        if f.lines {
            let start = line_start(&file, f.offset).map_err(open)?;
            let end = line_start(&file, f.offset + f.len).map_err(open)?;
            (input.offset, input.len, input.lines) = (start, end.saturating_sub(start), false);
        }
        Ok(InPlace { file, input })
    }

    /// `$SHOAL_INPUT`: the task's stdin (a pipe).
    fn path(&self) -> PathBuf {
        PathBuf::from("/dev/stdin")
    }

    fn stdin(self) -> io::Result<Stdio> {
        let (reader, writer) = io::pipe()?;
        let InPlace { file, input } = self;
        // Ends when the range is written or the task closes its stdin.
        std::thread::Builder::new().name("shoal-input".into()).spawn(move || {
            let _ = pump(&file, input.offset, input.len, writer);
        })?;
        Ok(Stdio::from(reader))
    }
}

/// Where the first line that starts at or after `at` begins: `at` itself
/// at the start of the file or just after a newline, else just after the
/// next newline (or the end of the file).
fn line_start(file: &File, at: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let size = file.metadata()?.len();
    if at == 0 || at >= size {
        return Ok(at.min(size));
    }
    let mut pos = at - 1;
    let mut buf = vec![0u8; 64 << 10];
    while pos < size {
        let n = file.read_at(&mut buf, pos)?;
        if n == 0 {
            break;
        }
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            return Ok(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
    Ok(size)
}

/// Writes `len` bytes of `file` from `offset` into a pipe: spliced by the
/// kernel, or read and written where splice does not apply.
fn pump(file: &File, mut offset: u64, len: u64, pipe: io::PipeWriter) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let end = offset + len;
    while offset < end {
        let mut off = offset as libc::loff_t;
        let want = ((end - offset) as usize).min(1 << 20);
        // SAFETY: both descriptors are open for the call; `off` is ours.
        let n = unsafe { libc::splice(file.as_raw_fd(), &mut off, pipe.as_raw_fd(), std::ptr::null_mut(), want, libc::SPLICE_F_MORE) };
        if n > 0 {
            offset += n as u64;
            continue;
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the input ended early"));
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
        // No splice here: plain reads and writes.
        let mut f = file;
        io::Seek::seek(&mut f, io::SeekFrom::Start(offset))?;
        let mut reader = io::Read::take(io::BufReader::with_capacity(1 << 20, f), end - offset);
        let mut pipe = pipe;
        io::copy(&mut reader, &mut pipe)?;
        return Ok(());
    }
    Ok(())
}

/// Checks that an input read where it lives is there, as the driver saw it.
pub(super) fn check_in_place(f: &shoal_wire::InputFile) -> Result<(), String> {
    InPlace::open(f).map(drop).map_err(|e| e.to_string())
}

type LogRx = mpsc::Receiver<(LogStream, Vec<u8>)>;

/// When the pipes of an ended task are given up (None while it runs).
type Ended = watch::Receiver<Option<tokio::time::Instant>>;

/// Forwards what the child writes to `pipe` until it closes, or until
/// the deadline `ended` names passes with nothing left to read. Call it
/// inside the runtime.
pub(super) fn drain(
    pipe: Option<impl Into<OwnedFd>>,
    stream: LogStream,
    tx: mpsc::Sender<(LogStream, Vec<u8>)>,
    mut ended: Ended,
) -> Option<tokio::task::JoinHandle<()>> {
    // Always a pipe (`Stdio::piped`): the conversion only fails outside a
    // runtime, and then the child's writes end with EPIPE, not a hang.
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(pipe?.into()).ok()?;
    Some(tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::select! {
                // What is already in the pipe is read before any deadline.
                biased;
                r = pipe.read(&mut buf) => r.unwrap_or(0),
                () = past_deadline(&mut ended) => 0,
            };
            if n == 0 || tx.send((stream, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    }))
}

/// Completes once `ended` names a deadline and it has passed.
async fn past_deadline(ended: &mut Ended) {
    let Ok(deadline) = ended.wait_for(Option::is_some).await.map(|d| d.expect("waited for Some")) else {
        return std::future::pending().await;
    };
    tokio::time::sleep_until(deadline).await;
}

struct Supervised {
    req: TaskRequest,
    pid: i32,
    /// Dropped when the attempt is over: what it left running is ended.
    mark: Mark,
    /// Tells the drains when to give up the pipes.
    ended: watch::Sender<Option<tokio::time::Instant>>,
    slot: Permit,
    started: Instant,
    output: PathBuf,
    progress: PathBuf,
    store: Arc<BlockStore>,
    outbox: Outbox,
    log_rx: LogRx,
    drains: Vec<Option<tokio::task::JoinHandle<()>>>,
    scratch: PathBuf,
    work: PathBuf,
}

async fn supervise(s: Supervised) -> TaskReport {
    let attempt = s.req.attempt;
    let forward = tokio::spawn(forward_logs(attempt, s.log_rx, s.outbox.clone()));
    let watch = tokio::spawn(watch_progress(attempt, s.progress.clone(), s.outbox.clone()));
    let pid = s.pid;
    let wait = wait_child(pid);
    tokio::pin!(wait);
    let timeout = s.req.timeout_ms.map(Duration::from_millis).unwrap_or(Duration::MAX);
    let (status, cpu_ms, timed_out) = tokio::select! {
        (st, cpu) = &mut wait => (st, cpu, false),
        _ = tokio::time::sleep(timeout) => {
            tree::kill_running(pid, Some(s.mark.id()));
            let (st, cpu) = wait.await;
            (st, cpu, true)
        }
    };
    // The group may still hold background children that keep pipes open.
    kill_group(pid);
    drop(s.slot);
    let drains: Vec<_> = s.drains.into_iter().flatten().collect();
    close_pipes(drains, &s.mark, &s.ended).await;
    let oom = match &s.req.container {
        Some(c) => {
            let name = c.name.clone();
            tokio::task::spawn_blocking(move || {
                let oom = super::container::oom_killed(&name);
                super::container::remove(&name);
                oom
            })
            .await
            .unwrap_or(false)
        }
        None => false,
    };
    watch.abort();
    let mut stderr_tail = forward.await.unwrap_or_default();
    if oom {
        stderr_tail.push_str("\nshoal: the container was killed for exceeding its memory limit");
    } else if s.req.container.is_some() && status == ExitStatus::Code(super::container::DOCKER_ERROR) {
        stderr_tail.push_str("\nshoal: docker itself failed (exit 125), not the command: see the docker error above");
    }
    let args = FinishArgs {
        status,
        cpu_ms,
        timed_out,
        stderr_tail,
        started: s.started,
        output: s.output,
        store: s.store,
        scratch: s.scratch,
        work: s.work,
        req: s.req,
    };
    // A small output is kept right here, in a few system calls; bucketing
    // and sorting a shuffle output, or hashing a large one, is heavy,
    // blocking work.
    let small = args.req.shuffle_out.is_none() && fs::metadata(&args.output).map_or(true, |m| m.len() <= shoal_wire::INLINE_MAX as u64);
    if small {
        return finish(args);
    }
    match tokio::task::spawn_blocking(move || finish(args)).await {
        Ok(report) => report,
        Err(e) => trouble(attempt, Instant::now(), format!("finishing the task panicked: {e}")),
    }
}

/// How an attempt ended, and where its output and scratch are.
pub(super) struct FinishArgs {
    pub status: ExitStatus,
    pub cpu_ms: u64,
    pub timed_out: bool,
    pub stderr_tail: String,
    pub started: Instant,
    pub output: PathBuf,
    pub store: Arc<BlockStore>,
    pub scratch: PathBuf,
    pub work: PathBuf,
    pub req: TaskRequest,
}

/// The report of an ended attempt: its output kept (inline, as a block or
/// as shuffle buckets) when it succeeded; its scratch removed.
pub(super) fn finish(a: FinishArgs) -> TaskReport {
    let mut report = TaskReport {
        attempt: a.req.attempt,
        status: a.status.clone(),
        output: None,
        output_data: None,
        stderr_tail: a.stderr_tail.clone(),
        wall_us: a.started.elapsed().as_micros() as u64,
        cpu_ms: a.cpu_ms,
        timed_out: a.timed_out,
        host_trouble: None,
        buckets: vec![],
        records: 0,
        skipped: vec![],
    };
    if report.status.success() && !a.timed_out {
        if !a.output.exists() {
            let _ = private::create_new(&a.output);
        }
        keep_output(&a, &mut report);
    } else if disk_is_full(&a.scratch, &report.stderr_tail) {
        report.host_trouble = Some("no space left on device in the host's work dir".into());
    }
    let _ = fs::remove_dir_all(&a.scratch);
    report
}

/// Keeps the output: inline in the report when it is small, else as one
/// block, or as shuffle buckets.
fn keep_output(a: &FinishArgs, report: &mut TaskReport) {
    let Some(spec) = &a.req.shuffle_out else {
        let kept = match small_file(&a.output).map(|d| d.filter(|_| !a.req.keep_output)) {
            Ok(Some(data)) => {
                inline_output(report, data);
                Ok(())
            }
            Ok(None) => a.store.insert_file(&a.output).map(|block| report.output = Some(block)),
            Err(e) => Err(e),
        };
        if let Err(e) = kept {
            report.host_trouble = Some(format!("cannot keep the task output: {e}"));
        }
        return;
    };
    let combine = |input: &Path, output: &Path| run_combiner(a, input, output);
    match super::shuffle::bucketize(&a.output, spec, &a.scratch, &a.store, &combine) {
        Ok((buckets, records)) => {
            report.output = buckets.first().map(|b| b.block);
            report.buckets = buckets;
            report.records = records;
        }
        // A full disk is the host's trouble; anything else fails the attempt.
        Err(e) => match e.to_string() {
            why if disk_is_full(&a.scratch, &why) => report.host_trouble = Some(why),
            why => {
                report.status = ExitStatus::SpawnFailed(why.lines().next().unwrap_or_default().to_string());
                report.stderr_tail.push_str(&format!("\n{why}"));
            }
        },
    }
}

/// The file's bytes when it is small enough to travel inline.
fn small_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    if fs::metadata(path)?.len() > shoal_wire::INLINE_MAX as u64 {
        return Ok(None);
    }
    fs::read(path).map(Some)
}

/// Puts a small output into the report itself: its hash names it, and no
/// block is kept (the driver has the bytes and never fetches them).
pub(super) fn inline_output(report: &mut TaskReport, data: Vec<u8>) {
    let hash = *blake3::hash(&data).as_bytes();
    report.output = Some(shoal_wire::BlockRef { hash, size: data.len() as u64 });
    report.output_data = Some(data);
}

/// Runs the job's combiner over one sorted bucket, in the work dir with
/// the task's environment. Like a task, it is over when its shell ends:
/// its group is killed then, and what it left behind is ended (its
/// [`Mark`]), so a `setsid` child holding its stderr never holds up the
/// map task.
fn run_combiner(a: &FinishArgs, input: &Path, output: &Path) -> Result<(), CombinerError> {
    let Some(cmd) = a.req.shuffle_out.as_ref().and_then(|s| s.combine.as_ref()) else {
        return Ok(());
    };
    let out = private::create_new(output).map_err(CombinerError::Open)?;
    let inp = private::open_nofollow(input).map_err(CombinerError::Open)?;
    let mark = Mark::new();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(&a.work)
        .envs(a.req.all_env())
        .env(tree::MARK_ENV, mark.value())
        .stdin(inp)
        .stdout(out)
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| CombinerError::Start { cmd: cmd.clone(), source })?;
    // Only the tail of its stderr is kept: it goes into the task's
    // report, which must fit in one message whatever the combiner prints.
    let stderr = StderrTail::start(child.stderr.take());
    let status = child.wait();
    kill_group(child.id() as i32);
    let stderr = stderr.finish(&mark);
    let status = status.map_err(|source| CombinerError::Wait { cmd: cmd.clone(), source })?;
    if status.success() {
        return Ok(());
    }
    Err(CombinerError::Failed { cmd: cmd.clone(), status, stderr: stderr.trim_end().to_string() })
}

/// The last [`STDERR_TAIL_MAX`] bytes of a child's stderr, read on a
/// thread of its own, so that the child's end, not the pipe's, ends the
/// wait: a process that escaped the child's group may hold the pipe.
struct StderrTail {
    tail: Arc<Mutex<Tail>>,
    /// Closes when the pipe is read to its end.
    done: std_mpsc::Receiver<()>,
}

impl StderrTail {
    fn start(pipe: Option<impl io::Read + Send + 'static>) -> StderrTail {
        let tail = Arc::new(Mutex::new(Tail::new(STDERR_TAIL_MAX)));
        let (done_tx, done) = std_mpsc::channel::<()>();
        let filled = tail.clone();
        let read = move || {
            let _done = done_tx;
            let mut buf = vec![0u8; 64 << 10];
            let Some(mut pipe) = pipe else { return };
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                filled.lock().unwrap_or_else(|e| e.into_inner()).push(&buf[..n]);
            }
        };
        // Without a thread the pipe closes and a chatty child gets EPIPE:
        // it fails, it does not hang.
        let _ = std::thread::Builder::new().name("shoal-combiner-stderr".into()).spawn(read);
        StderrTail { tail, done }
    }

    /// Call it once the child is reaped and its group killed. A pipe
    /// still open a moment later is held by a leftover: the leftovers of
    /// `mark` are ended; what still holds it after [`PIPE_GRACE`] shed
    /// every trace of the child and is given up.
    fn finish(self, mark: &Mark) -> String {
        if self.done.recv_timeout(Duration::from_millis(100)) == Err(std_mpsc::RecvTimeoutError::Timeout) {
            tree::end_leftovers(mark.id());
            let _ = self.done.recv_timeout(PIPE_GRACE);
        }
        let tail = std::mem::replace(&mut *self.tail.lock().unwrap_or_else(|e| e.into_inner()), Tail::new(0));
        let (kept, cut) = tail.finish();
        let text = String::from_utf8_lossy(&kept);
        if cut == 0 {
            return text.into_owned();
        }
        format!("(the first {cut} of {} bytes are cut)\n{text}", cut + kept.len() as u64)
    }
}

pub(super) fn disk_is_full(scratch: &Path, stderr_tail: &str) -> bool {
    stderr_tail.contains("No space left on device") || super::hostinfo::disk_free(scratch) == Some(0)
}

/// Waits for the drains of an ended task to read their pipes to the end.
/// A pipe still open a moment later is held by a process the task left
/// behind: its leftovers are ended now, and what still holds a pipe after
/// that (a process that shed every trace of the task) is given up after
/// [`PIPE_GRACE`] of silence.
pub(super) async fn close_pipes(
    mut drains: Vec<tokio::task::JoinHandle<()>>,
    mark: &Mark,
    ended: &watch::Sender<Option<tokio::time::Instant>>,
) {
    let quick = tokio::time::timeout(Duration::from_millis(100), join_all(&mut drains)).await;
    if quick.is_err() {
        let id = mark.id();
        let _ = tokio::task::spawn_blocking(move || tree::end_leftovers(id)).await;
        let _ = ended.send(Some(tokio::time::Instant::now() + PIPE_GRACE));
        join_all(&mut drains).await;
    }
}

async fn join_all(drains: &mut [tokio::task::JoinHandle<()>]) {
    for d in drains.iter_mut().filter(|d| !d.is_finished()) {
        let _ = d.await;
    }
}

async fn forward_logs(attempt: u32, mut rx: LogRx, outbox: Outbox) -> String {
    let mut tail = Tail::new(TAIL_BYTES);
    let mut cap = LogCap::new(LOG_CAP);
    while let Some((stream, data)) = rx.recv().await {
        if stream == LogStream::Stderr {
            tail.push(&data);
        }
        if let Some(data) = cap.admit(data) {
            let _ = outbox.send(Message::TaskLog { attempt, stream, data }).await;
        }
    }
    tail_text(tail)
}

/// A stream's last [`TAIL_BYTES`], as text for a report.
pub(super) fn tail_text(tail: Tail) -> String {
    String::from_utf8_lossy(&tail.finish().0).into_owned()
}

/// How much of an attempt's log still goes to the driver: up to `cap`
/// bytes, then one note, then nothing (the report's tail still shows how
/// it ended).
pub(super) struct LogCap {
    cap: u64,
    left: u64,
    cut: bool,
}

impl LogCap {
    pub fn new(cap: u64) -> Self {
        LogCap { cap, left: cap, cut: false }
    }

    /// The part of `data` to forward, or None once the cap is reached.
    pub fn admit(&mut self, mut data: Vec<u8>) -> Option<Vec<u8>> {
        if self.cut {
            return None;
        }
        if (data.len() as u64) <= self.left {
            self.left -= data.len() as u64;
            return Some(data);
        }
        data.truncate(self.left as usize);
        self.cut = true;
        data.extend_from_slice(
            format!("\nshoal: log cut at {} MiB; the rest of this attempt's output is not kept\n", self.cap >> 20).as_bytes(),
        );
        Some(data)
    }
}

/// Polls the file behind `$SHOAL_PROGRESS`; its last line is `n/m` or a
/// fraction. A file is simpler for scripts than a FIFO (no blocking open)
/// and works from any language with `echo 3/10 > "$SHOAL_PROGRESS"`.
async fn watch_progress(attempt: u32, path: PathBuf, outbox: Outbox) {
    let mut last = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(fraction) = fs::read_to_string(&path).ok().as_deref().and_then(parse_progress) else {
            continue;
        };
        if last != Some(fraction) {
            last = Some(fraction);
            let _ = outbox.send(Message::TaskProgress { attempt, fraction }).await;
        }
    }
}

/// Parses the last non-empty line of a progress file.
pub fn parse_progress(text: &str) -> Option<f32> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    let value = match line.split_once('/') {
        Some((n, m)) => n.trim().parse::<f32>().ok()? / m.trim().parse::<f32>().ok()?,
        None => line.trim_end_matches('%').parse::<f32>().ok()? / if line.ends_with('%') { 100.0 } else { 1.0 },
    };
    value.is_finite().then(|| value.clamp(0.0, 1.0))
}

/// Waits for the child to end and reaps it, with its CPU time. On Linux
/// 5.3 and later no thread waits: the child's pidfd turns readable on the
/// runtime's poller when it exits; elsewhere a blocking thread waits.
pub(super) async fn wait_child(pid: i32) -> (ExitStatus, u64) {
    if let Some(fd) = pidfd(pid) {
        // SAFETY: the AsyncFd owns `fd`, which stays open and the same
        // until it is dropped.
        let registered = unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
        if let Ok(fd) = registered {
            while let Ok(mut ready) = fd.readable().await {
                if let Some(ended) = wait4(pid, libc::WNOHANG) {
                    return ended;
                }
                ready.clear_ready();
            }
        }
    }
    let blocking = tokio::task::spawn_blocking(move || wait4(pid, 0));
    blocking.await.ok().flatten().unwrap_or((ExitStatus::Signal(libc::SIGKILL), 0))
}

/// A descriptor that polls readable once the process `pid` exits.
fn pidfd(pid: i32) -> Option<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall; it returns a fresh descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: `fd` is open and owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Reaps the child `pid`: None while it runs (with `WNOHANG`).
fn wait4(pid: i32, flags: i32) -> Option<(ExitStatus, u64)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our child; status and usage are valid out-pointers.
        let rc = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if rc == pid {
            break;
        }
        if rc == 0 {
            return None;
        }
        if rc < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Some((ExitStatus::Signal(0), 0));
        }
    }
    let cpu = tv_ms(usage.ru_utime) + tv_ms(usage.ru_stime);
    let st =
        if libc::WIFSIGNALED(status) { ExitStatus::Signal(libc::WTERMSIG(status)) } else { ExitStatus::Code(libc::WEXITSTATUS(status)) };
    Some((st, cpu))
}

fn tv_ms(tv: libc::timeval) -> u64 {
    tv.tv_sec as u64 * 1000 + tv.tv_usec as u64 / 1000
}

/// The report of an attempt that could not run for its own sake (what
/// the job asks cannot be done): a task failure, not the host's.
fn refused(attempt: u32, started: Instant, why: String) -> TaskReport {
    let mut report = trouble(attempt, started, why.clone());
    report.host_trouble = None;
    report.stderr_tail = format!("shoal: {why}");
    report
}

/// The report of an attempt that could not run for the host's sake.
pub(super) fn trouble(attempt: u32, started: Instant, why: String) -> TaskReport {
    TaskReport {
        attempt,
        status: ExitStatus::SpawnFailed(why.clone()),
        output: None,
        output_data: None,
        stderr_tail: String::new(),
        wall_us: started.elapsed().as_micros() as u64,
        cpu_ms: 0,
        timed_out: false,
        host_trouble: Some(why),
        buckets: vec![],
        records: 0,
        skipped: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_cut_at_its_cap_with_a_note() {
        let mut cap = LogCap::new(1 << 20);
        assert_eq!(cap.admit(vec![b'a'; 1000]).map(|d| d.len()), Some(1000));
        let cut = cap.admit(vec![b'b'; 2 << 20]).unwrap();
        let note = b"\nshoal: log cut at 1 MiB; the rest of this attempt's output is not kept\n";
        assert_eq!(cut.len(), (1 << 20) - 1000 + note.len());
        assert!(cut.ends_with(note));
        assert_eq!(cap.admit(b"more".to_vec()), None, "nothing after the note");
    }

    #[test]
    fn the_tail_keeps_the_last_bytes_of_a_long_stream() {
        let mut tail = Tail::new(TAIL_BYTES);
        for i in 0..10_000u32 {
            tail.push(format!("{i:08}\n").as_bytes());
        }
        tail.push(&vec![b'x'; 3 * TAIL_BYTES]);
        tail.push(b"end");
        let text = tail_text(tail);
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("xxend"));
    }

    #[test]
    fn progress_formats() {
        assert_eq!(parse_progress("37/100\n"), Some(0.37));
        assert_eq!(parse_progress("0.5"), Some(0.5));
        assert_eq!(parse_progress("1/4\n2/4\n"), Some(0.5));
        assert_eq!(parse_progress("50%"), Some(0.5));
        assert_eq!(parse_progress("7/0"), None);
        assert_eq!(parse_progress("junk"), None);
        assert_eq!(parse_progress(""), None);
    }
}
