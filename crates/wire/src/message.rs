//! The typed messages of a driver-agent link.
//!
//! Requests carry an `id` chosen by the driver; replies echo it. Task
//! messages are keyed by the attempt id instead, which is unique within a
//! run. Bulk bytes travel only in [`Message::Chunk`], at most
//! [`crate::frame::CHUNK`] bytes each, so that a heartbeat or a kill is
//! never queued behind a whole file.

use serde::{Deserialize, Serialize};

use crate::frame;
use crate::{Hello, WireError};

/// BLAKE3 hash naming a block.
pub type Hash = [u8; 32];

/// Where a run's params file (`$SHOAL_PARAMS`) is, relative to its work dir.
pub const PARAMS_PATH: &str = ".shoal/params.json";

/// Input partitions and task outputs up to this size travel inside
/// [`TaskRequest`] and [`TaskReport`] instead of as blocks: for a tiny
/// task, a block file on each side and a fetch round trip cost far more
/// than the bytes (Spark sends small task results directly for the same
/// reason).
pub const INLINE_MAX: usize = 64 << 10;

/// Most hashes in one [`Message::QueryBlocks`] (1 MiB of them).
pub const HASHES_PER_QUERY: usize = 32 << 10;

/// Most bytes of file entries in one [`Message::MakeWorkdir`].
pub const MANIFEST_PIECE: usize = 1 << 20;

/// Most buckets a map task's report can carry: one per reduce partition,
/// all in one [`Message::TaskDone`], which must fit in a frame (each
/// bucket takes at most 52 bytes, so these take at most 3.25 MiB).
pub const MAX_BUCKETS: usize = 64 << 10;

/// Most input blocks one task can name: a reduce task names one bucket of
/// every map task, all in its [`Message::RunTask`] (32 bytes each, so at
/// most 3.05 MiB).
pub const MAX_TASK_INPUTS: usize = 100_000;

/// Everything one side can tell the other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    Hello(Hello),
    /// Agent -> driver, right after the handshake.
    HostInfo(HostInfo),
    /// Either way; any message proves the peer alive, this one when idle.
    Heartbeat,
    /// Driver -> agent: run a shell command and capture its output (`shoal exec`).
    Exec {
        id: u64,
        command: String,
    },
    /// The output is cut to its last [`crate::bounded::EXEC_OUTPUT_MAX`]
    /// bytes per stream; `*_cut` say how many bytes went before them.
    ExecDone {
        id: u64,
        status: ExitStatus,
        #[serde(with = "serde_bytes")]
        stdout: Vec<u8>,
        #[serde(with = "serde_bytes")]
        stderr: Vec<u8>,
        stdout_cut: u64,
        stderr_cut: u64,
    },
    /// Driver -> agent: which of these blocks do you lack? At most
    /// [`HASHES_PER_QUERY`] hashes: a longer list is asked in pieces.
    QueryBlocks {
        id: u64,
        hashes: Vec<Hash>,
    },
    /// Agent -> driver: the subset of a `QueryBlocks` that is missing.
    MissingBlocks {
        id: u64,
        hashes: Vec<Hash>,
    },
    /// Either way: one piece of a block. `stream` is the request id of a
    /// fetch, or a fresh id per upload. The receiver verifies the hash at `last`.
    Chunk {
        stream: u64,
        hash: Hash,
        // As one byte string: serde's default writes a Vec<u8> byte by
        // byte, which made bulk transfers CPU-bound.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        last: bool,
    },
    /// Agent -> driver: an uploaded block was stored (or refused).
    BlockStored {
        hash: Hash,
        error: Option<String>,
    },
    /// Driver -> agent: build a run's work dir from cached blocks. A
    /// long file list comes in pieces ([`manifest_pieces`]), one request
    /// each: the first (`fresh`) starts the work dir afresh, the others
    /// add to it.
    MakeWorkdir {
        id: u64,
        run: String,
        files: Vec<FileEntry>,
        fresh: bool,
    },
    /// Agent -> driver: `None` when the work dir is ready, else why not.
    WorkdirReady {
        id: u64,
        error: Option<String>,
    },
    /// Driver -> agent: the variables every task of a run shares on this
    /// host, sent once before the tasks that name it by `id`, and the
    /// run's params as JSON, which the agent writes to [`PARAMS_PATH`] in
    /// the run's work dir (0600; never a cached block, gone with the run).
    RunEnv {
        run: String,
        id: u64,
        env: Vec<(String, String)>,
        #[serde(with = "serde_bytes")]
        params: Vec<u8>,
    },
    /// Driver -> agent: start one task attempt.
    RunTask(TaskRequest),
    /// Agent -> driver: a progress report written by the task (0.0 to 1.0).
    TaskProgress {
        attempt: u32,
        fraction: f32,
    },
    /// Agent -> driver: log bytes of a running task.
    TaskLog {
        attempt: u32,
        stream: LogStream,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Agent -> driver: an attempt ended.
    TaskDone(TaskReport),
    /// Driver -> agent: kill an attempt's process group.
    KillTask {
        attempt: u32,
    },
    /// Driver -> agent: send a block back as `Chunk`s with `stream = id`.
    FetchBlock {
        id: u64,
        hash: Hash,
    },
    /// Agent -> driver: a fetch failed (block gone, I/O error).
    FetchFailed {
        id: u64,
        error: String,
    },
    /// Driver -> agent: put a cached block at a path (`shoal push`);
    /// relative paths are under the agent's work dir.
    PlaceBlock {
        id: u64,
        hash: Hash,
        path: String,
    },
    /// Agent -> driver: `None` when placed, else why not.
    Placed {
        id: u64,
        error: Option<String>,
    },
    /// Driver -> agent: send the file at `path` as `Chunk`s with
    /// `stream = id` (`shoal pull`); `FetchFailed` if it cannot.
    FetchPath {
        id: u64,
        path: String,
    },
    /// Driver -> agent: the run is over; remove its scratch, keep the cache.
    EndRun {
        run: String,
    },
    /// Either way: a request could not be understood or served.
    Error {
        id: u64,
        message: String,
    },
    /// Driver -> agent: listen for the peers of `run` (other agents of
    /// the same run) for as long as the run lives, admitting only those
    /// that hold `key`. Answered by [`Message::PeerListening`].
    PeerListen {
        id: u64,
        run: String,
        key: RunKey,
    },
    /// Agent -> driver: where peers reach it (`ip:port`), or why it cannot
    /// listen.
    PeerListening {
        id: u64,
        addr: Result<String, String>,
    },
    /// Driver -> agent: try to reach each of these peers of `run` (connect,
    /// handshake and one round trip); answered by [`Message::PeerProbed`]
    /// with one entry per peer, in order: `None` when it answered, else why not.
    PeerProbe {
        id: u64,
        run: String,
        peers: Vec<String>,
    },
    PeerProbed {
        id: u64,
        unreachable: Vec<Option<String>>,
    },
    /// Driver -> agent: fetch these blocks straight from the peers that
    /// hold them (blocks it already holds are skipped), each verified by
    /// its hash before it is stored; answered by [`Message::PeerFetched`].
    PeerFetch {
        id: u64,
        run: String,
        blocks: Vec<PeerBlock>,
    },
    /// Bytes that came from peers, and the blocks that could not be
    /// fetched, each with why.
    PeerFetched {
        id: u64,
        bytes: u64,
        failed: Vec<(Hash, String)>,
    },
    /// Agent -> driver: a connection to this run's peer listener was
    /// refused before anything it sent was decoded.
    PeerRefused {
        run: String,
        from: String,
        why: String,
    },
}

/// The secret that admits an agent's peers of one run: made by the
/// driver for each run and handed to every agent over its own (ssh)
/// link, never written to a file. Its `Debug` hides it.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey(pub [u8; 32]);

impl std::fmt::Debug for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunKey(..)")
    }
}

/// `len` bytes of the file at `path` from `offset`; `size` is the whole
/// file's size as the driver saw it, which the host checks, so that a
/// file system that shows hosts different files is caught, not read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: String,
    pub offset: u64,
    pub len: u64,
    pub size: u64,
    /// The range was cut blind (the driver cannot read the file): the
    /// host aligns it to lines, a line belonging to the range its first
    /// byte is in.
    pub lines: bool,
}

/// A block to fetch from the peer at `from` (`ip:port`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerBlock {
    pub hash: Hash,
    pub size: u64,
    pub from: String,
}

/// Facts about a host, reported once by its agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cores: u32,
    pub mem_bytes: u64,
    pub disk_free_bytes: u64,
    /// Agent's wall clock, milliseconds since the Unix epoch.
    pub clock_ms: u64,
    /// Absolute path of the agent's work dir (`~` expanded).
    pub workdir: String,
}

/// One file of a run's work dir.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative, normalised, `/`-separated; checked again by the agent.
    pub path: String,
    pub hash: Hash,
    pub size: u64,
    pub executable: bool,
}

impl FileEntry {
    /// The most bytes it can take encoded: the path, its length, the hash,
    /// the size and the flag.
    fn encoded_max(&self) -> usize {
        self.path.len() + 5 + 32 + 10 + 1
    }
}

/// Cuts a work dir's file list into pieces of at most [`MANIFEST_PIECE`]
/// encoded bytes, each sent in its own [`Message::MakeWorkdir`]. Always at
/// least one piece, so that an empty work dir is still made.
pub fn manifest_pieces(files: &[FileEntry]) -> Vec<&[FileEntry]> {
    let mut pieces = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, f) in files.iter().enumerate() {
        if bytes + f.encoded_max() > MANIFEST_PIECE && i > start {
            pieces.push(&files[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += f.encoded_max();
    }
    pieces.push(&files[start..]);
    pieces
}

/// How a process ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
    /// It never started (command not found, no such directory, ...).
    SpawnFailed(String),
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Code(0))
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
            ExitStatus::SpawnFailed(why) => write!(f, "could not start: {why}"),
        }
    }
}

/// Which output stream a log chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// Everything an agent needs to run one attempt of a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRequest {
    pub run: String,
    pub task: u32,
    pub attempt: u32,
    pub command: String,
    /// The argument of an `[input] args` task: it reaches the command as
    /// data, in `$SHOAL_ARG`, never as command text.
    pub arg: Option<String>,
    /// The [`Message::RunEnv`] whose variables the task gets.
    pub env_id: u64,
    /// Those variables, filled in by the agent from `env_id` (they do not
    /// travel with every task).
    #[serde(skip)]
    pub env: std::sync::Arc<Vec<(String, String)>>,
    /// The task's partition in its stage (`SHOAL_PARTITION`, `SHOAL_TASK`).
    pub partition: u32,
    /// 0 = map, 1 = reduce (`SHOAL_STAGE`).
    pub stage: u32,
    /// Tasks in its stage (`SHOAL_PARTITIONS`).
    pub partitions: u32,
    /// Blocks concatenated into the task's input, in order.
    pub inputs: Vec<Hash>,
    /// The whole input, when it is small (at most [`INLINE_MAX`]); then
    /// `inputs` is empty.
    #[serde(with = "serde_bytes")]
    pub input_data: Option<Vec<u8>>,
    /// The input read where it lives, a byte range of a file the host
    /// sees (on the driver's own machine, or a `shared:` path); then
    /// `inputs` and `input_data` are empty.
    pub input_file: Option<Box<InputFile>>,
    /// Feed the input on stdin (it is also at `$SHOAL_INPUT`).
    pub stdin: bool,
    /// Take the output from stdout (otherwise from the file `$SHOAL_OUTPUT`).
    pub stdout_is_output: bool,
    pub timeout_ms: Option<u64>,
    /// Map side of a shuffle: cut the output into sorted buckets.
    pub shuffle_out: Option<ShuffleOut>,
    /// Reduce side: the inputs are sorted runs to merge by key.
    pub merge_in: Option<KeyFormat>,
    /// Run the command inside this container instead of on the host.
    pub container: Option<Container>,
    /// The command is a Dataset program that can stay up and run many
    /// tasks of its run, one after another (see `shoal_wire::executor`).
    pub resident: bool,
    /// The host's slots: at most this many executors of a kind run at once.
    pub slots: u32,
    /// Skip mode: the task failed before, so run its input in pieces and
    /// leave out the records the command fails on, at most this many.
    pub skip_bad: Option<u32>,
    /// Keep the output as a block on this host however small (it is
    /// committed here, `[output] on_hosts`), never inline in the report.
    pub keep_output: bool,
}

impl TaskRequest {
    /// Attempt `attempt` of task `task` of run `run`, running `command`;
    /// everything else is a plain task's: the only partition of stage 0,
    /// no input, argument, shuffle, container or time limit, input on
    /// stdin, output from stdout, one slot, `RunEnv` 0. Callers set what
    /// differs with struct update syntax
    /// (`TaskRequest { stage: 1, ..TaskRequest::new(..) }`), so a field
    /// added here needs one default, not one per builder.
    pub fn new(run: impl Into<String>, task: u32, attempt: u32, command: impl Into<String>) -> TaskRequest {
        TaskRequest {
            run: run.into(),
            task,
            attempt,
            command: command.into(),
            arg: None,
            env_id: 0,
            env: Default::default(),
            partition: 0,
            stage: 0,
            partitions: 1,
            inputs: Vec::new(),
            input_data: None,
            input_file: None,
            stdin: true,
            stdout_is_output: true,
            timeout_ms: None,
            shuffle_out: None,
            merge_in: None,
            container: None,
            resident: false,
            slots: 1,
            skip_bad: None,
            keep_output: false,
        }
    }

    /// Every variable of the task: the run's, then its own.
    pub fn all_env(&self) -> impl Iterator<Item = (&str, String)> {
        let own = [
            ("SHOAL_PARTITION", self.partition),
            ("SHOAL_PARTITIONS", self.partitions),
            ("SHOAL_TASK", self.partition),
            ("SHOAL_STAGE", self.stage),
            ("SHOAL_ATTEMPT", self.attempt),
        ];
        let arg = self.arg.iter().map(|a| ("SHOAL_ARG", a.clone()));
        self.env.iter().map(|(k, v)| (k.as_str(), v.clone())).chain(own.into_iter().map(|(k, v)| (k, v.to_string()))).chain(arg)
    }
}

/// A task run in Docker: `docker run` with the work dir, input and output
/// mounted at `/shoal/work`, `/shoal/input`, `/shoal/output`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub image: String,
    /// Container name, unique per run and attempt, so that cancel, lease
    /// expiry and host loss can always remove it.
    pub name: String,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub network: bool,
}

/// How the key of a line is found and ordered (Hadoop Streaming style).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyFormat {
    pub sep: Vec<u8>,
    /// The key is the text before the `fields`-th separator.
    pub fields: u32,
    /// Order keys as numbers instead of bytes.
    pub numeric: bool,
}

/// Map side of a shuffle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShuffleOut {
    pub partitions: u32,
    pub key: KeyFormat,
    /// `key mod partitions` for integer keys instead of the stable hash.
    pub modulo: bool,
    /// Runs on each sorted bucket (a combiner).
    pub combine: Option<String>,
    /// Memory for sorting before spilling to disk.
    pub sort_buffer: u64,
}

/// One bucket of a map output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub block: BlockRef,
    pub records: u64,
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub attempt: u32,
    pub status: ExitStatus,
    /// The output block, when the attempt succeeded.
    pub output: Option<BlockRef>,
    /// The output's bytes when it is small (at most [`INLINE_MAX`]): the
    /// agent did not keep it as a block, so it cannot be fetched.
    #[serde(with = "serde_bytes")]
    pub output_data: Option<Vec<u8>>,
    /// Last lines of stderr, for error messages.
    pub stderr_tail: String,
    /// Wall time of the attempt on the host, in microseconds.
    pub wall_us: u64,
    pub cpu_ms: u64,
    pub timed_out: bool,
    /// Set when the failure was the host's fault (disk full, spawn error).
    pub host_trouble: Option<String>,
    /// Shuffle buckets, one per reduce partition, when the task had
    /// `shuffle_out`.
    pub buckets: Vec<Bucket>,
    /// Records the task wrote (lines of its output, before bucketing).
    pub records: u64,
    /// Records left out in skip mode (see [`TaskRequest::skip_bad`]).
    pub skipped: Vec<SkippedRecord>,
}

/// The most records one task may skip (`[job] skip_bad_records` is
/// checked against it), so that a report always fits in a frame.
pub const MAX_SKIPPED: usize = 1000;

/// The most bytes of a skipped record kept in its report.
pub const SKIPPED_HEAD: usize = 100;

/// A record that a task in skip mode failed on and left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRecord {
    /// Where it starts in the task's input, in bytes.
    pub offset: u64,
    pub len: u64,
    /// Its first bytes, for the report.
    pub head: String,
}

/// A block and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    pub hash: Hash,
    pub size: u64,
}

impl Message {
    /// Encodes the message as one whole frame (length and payload). A
    /// message too large for a frame is [`WireError::Unsendable`].
    pub fn to_frame(&self) -> Result<Vec<u8>, WireError> {
        let mut out = postcard::to_extend(self, vec![0u8; 4])?;
        let len = out.len() - 4;
        if len > frame::MAX_FRAME {
            return Err(WireError::Unsendable { what: self.kind(), len });
        }
        out[..4].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(out)
    }

    /// Encodes the message as one frame appended to `out`.
    pub fn encode_frame(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        out.extend_from_slice(&self.to_frame()?);
        Ok(())
    }

    /// The variant's name, for messages about it.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "Hello",
            Message::HostInfo(_) => "HostInfo",
            Message::Heartbeat => "Heartbeat",
            Message::Exec { .. } => "Exec",
            Message::ExecDone { .. } => "ExecDone",
            Message::QueryBlocks { .. } => "QueryBlocks",
            Message::MissingBlocks { .. } => "MissingBlocks",
            Message::Chunk { .. } => "Chunk",
            Message::BlockStored { .. } => "BlockStored",
            Message::MakeWorkdir { .. } => "MakeWorkdir",
            Message::WorkdirReady { .. } => "WorkdirReady",
            Message::RunEnv { .. } => "RunEnv",
            Message::RunTask(_) => "RunTask",
            Message::TaskProgress { .. } => "TaskProgress",
            Message::TaskLog { .. } => "TaskLog",
            Message::TaskDone(_) => "TaskDone",
            Message::KillTask { .. } => "KillTask",
            Message::FetchBlock { .. } => "FetchBlock",
            Message::FetchFailed { .. } => "FetchFailed",
            Message::PlaceBlock { .. } => "PlaceBlock",
            Message::Placed { .. } => "Placed",
            Message::FetchPath { .. } => "FetchPath",
            Message::EndRun { .. } => "EndRun",
            Message::Error { .. } => "Error",
            Message::PeerListen { .. } => "PeerListen",
            Message::PeerListening { .. } => "PeerListening",
            Message::PeerProbe { .. } => "PeerProbe",
            Message::PeerProbed { .. } => "PeerProbed",
            Message::PeerFetch { .. } => "PeerFetch",
            Message::PeerFetched { .. } => "PeerFetched",
            Message::PeerRefused { .. } => "PeerRefused",
        }
    }

    /// The request id a reply answers, for replies that answer one: an
    /// unsendable reply is answered with an [`Message::Error`] instead.
    pub fn reply_id(&self) -> Option<u64> {
        match self {
            Message::ExecDone { id, .. }
            | Message::MissingBlocks { id, .. }
            | Message::WorkdirReady { id, .. }
            | Message::Placed { id, .. }
            | Message::FetchFailed { id, .. }
            | Message::PeerListening { id, .. }
            | Message::PeerProbed { id, .. }
            | Message::PeerFetched { id, .. }
            | Message::Error { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Decodes a frame payload.
    pub fn decode(payload: &[u8]) -> Result<Message, WireError> {
        Ok(postcard::from_bytes(payload)?)
    }

    /// Bulk messages may wait behind control messages.
    pub fn is_bulk(&self) -> bool {
        matches!(self, Message::Chunk { .. } | Message::TaskLog { .. })
    }
}

/// Lower-case hex of a hash, for file names and messages.
pub fn hex(hash: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in hash {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Parses 64 hex digits back into a hash.
pub fn unhex(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn message_round_trips() {
        let m = Message::RunTask(TaskRequest {
            arg: Some("a b".into()),
            env_id: 1,
            partition: 3,
            partitions: 9,
            inputs: vec![[1; 32]],
            input_data: Some(b"inline".to_vec()),
            resident: true,
            slots: 2,
            ..TaskRequest::new("r1", 3, 7, "cat")
        });
        let mut buf = Vec::new();
        m.encode_frame(&mut buf).unwrap();
        let crate::frame::Parsed::Frame { payload, .. } = crate::frame::parse(&buf).unwrap() else { panic!("incomplete") };
        assert_eq!(Message::decode(payload).unwrap(), m);
    }

    #[test]
    fn a_new_request_is_a_plain_task_of_its_attempt() {
        let req = TaskRequest::new("r1", 5, 2, "cat");
        let env: Vec<(&str, String)> = req.all_env().collect();
        let want = [("SHOAL_PARTITION", "0"), ("SHOAL_PARTITIONS", "1"), ("SHOAL_TASK", "0"), ("SHOAL_STAGE", "0"), ("SHOAL_ATTEMPT", "2")];
        assert_eq!(env, want.map(|(k, v)| (k, v.to_string())));
        assert!(req.stdin && req.stdout_is_output && req.inputs.is_empty() && req.input_data.is_none());
        assert_eq!((req.run.as_str(), req.task, req.command.as_str(), req.slots), ("r1", 5, "cat", 1));
    }

    fn entry(i: usize, name_len: usize) -> FileEntry {
        FileEntry { path: format!("{}{i}", "p".repeat(name_len)), hash: [0xff; 32], size: u64::MAX, executable: true }
    }

    #[test]
    fn manifest_pieces_each_fit_and_keep_every_file_in_order() {
        let files: Vec<FileEntry> = (0..50_000).map(|i| entry(i, 100)).collect();
        let pieces = manifest_pieces(&files);
        assert!(pieces.len() > 4, "{} pieces", pieces.len());
        let mut again = Vec::new();
        for p in &pieces {
            let m = Message::MakeWorkdir { id: u64::MAX, run: "r".repeat(64), files: p.to_vec(), fresh: false };
            assert!(m.to_frame().unwrap().len() <= MANIFEST_PIECE + 200);
            again.extend_from_slice(p);
        }
        assert_eq!(again, files);
        assert_eq!(manifest_pieces(&[]), vec![&[] as &[FileEntry]], "an empty work dir is one empty piece");
        let huge = [entry(1, MANIFEST_PIECE)];
        assert_eq!(manifest_pieces(&huge).len(), 1, "an entry larger than a piece is a piece of its own");
    }

    fn worst_report() -> TaskReport {
        TaskReport {
            attempt: u32::MAX,
            status: ExitStatus::SpawnFailed("s".repeat(crate::bounded::STDERR_TAIL_MAX)),
            output: Some(BlockRef { hash: [0xff; 32], size: u64::MAX }),
            output_data: None,
            stderr_tail: "e".repeat(2 * crate::bounded::STDERR_TAIL_MAX),
            wall_us: u64::MAX,
            cpu_ms: u64::MAX,
            timed_out: true,
            host_trouble: Some("h".repeat(4096)),
            buckets: vec![Bucket { block: BlockRef { hash: [0xff; 32], size: u64::MAX }, records: u64::MAX }; MAX_BUCKETS],
            records: u64::MAX,
            // Each head is at most SKIPPED_HEAD bytes, each invalid one a
            // three-byte U+FFFD.
            skipped: vec![SkippedRecord { offset: u64::MAX, len: u64::MAX, head: "\u{fffd}".repeat(SKIPPED_HEAD) }; MAX_SKIPPED],
        }
    }

    #[test]
    fn a_report_with_the_most_buckets_fits_in_a_frame() {
        Message::TaskDone(worst_report()).to_frame().unwrap();
        let mut over = worst_report();
        over.buckets.extend(vec![over.buckets[0]; MAX_BUCKETS / 4]);
        assert!(matches!(Message::TaskDone(over).to_frame(), Err(WireError::Unsendable { what: "TaskDone", .. })));
    }

    #[test]
    fn a_task_with_the_most_inputs_fits_in_a_frame() {
        let m = Message::RunTask(TaskRequest {
            // Linux refuses a longer environment variable.
            arg: Some("a".repeat(128 << 10)),
            env_id: u64::MAX,
            partition: u32::MAX,
            stage: 1,
            partitions: u32::MAX,
            inputs: vec![[0xff; 32]; MAX_TASK_INPUTS],
            timeout_ms: Some(u64::MAX),
            merge_in: Some(KeyFormat { sep: b"\t".to_vec(), fields: u32::MAX, numeric: true }),
            container: Some(Container {
                image: "i".repeat(4096),
                name: "n".repeat(200),
                memory: Some(u64::MAX),
                cpus: Some(1.0),
                network: true,
            }),
            resident: true,
            slots: u32::MAX,
            skip_bad: Some(u32::MAX),
            // Linux refuses a longer argument to `sh -c`.
            ..TaskRequest::new("r".repeat(64), u32::MAX, u32::MAX, "c".repeat(128 << 10))
        });
        m.to_frame().unwrap();
    }

    #[test]
    fn hex_round_trips() {
        let h = [0xab; 32];
        assert_eq!(unhex(&hex(&h)), Some(h));
        assert_eq!(unhex("zz"), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Message::decode(&bytes);
        }
    }
}
