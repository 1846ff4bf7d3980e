//! Task logs on the driver: `.shoal/runs/<run>/logs/<host>/<task>.log`.
//!
//! Each line is stored as `<ms since run start> <attempt> <o|e> <text>` so
//! that `shoal logs --merged` can interleave every task's lines by time.
//! Files are compressed with zstd when the run ends (`.log.zst`), as a
//! stream (a log may be larger than memory); readers accept both.
//!
//! Every byte that arrives is looked at once: a line still open keeps
//! only what came after its last newline, and a line longer than
//! [`PIECE`] is stored in pieces of that size, so neither memory nor time
//! grows with the length of one line. The agent cuts each attempt's log
//! at its cap (`agent/task.rs`), so a file stays bounded too.
//!
//! A task's log may print anything it read, secrets included: every
//! directory here is 0700 and every file 0600 (`private.rs`).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use shoal_wire::LogStream;

use super::private;

/// The longest piece of one line stored as one log line; the rest of a
/// longer line follows in further pieces.
pub const PIECE: usize = 1 << 20;

/// What the engine inspects: Hadoop Streaming's `reporter:` lines.
const INSPECTED: &[u8] = b"reporter:";

/// Writes task log lines as they arrive.
pub struct LogSink {
    dir: PathBuf,
    started: Instant,
    /// Per (host, task): the file, the line still open, and the prefix
    /// of that line (when and from which attempt it began).
    open: HashMap<(String, u32), (File, Vec<u8>, String)>,
}

impl LogSink {
    pub fn new(dir: PathBuf, started: Instant) -> Self {
        LogSink { dir, started, open: HashMap::new() }
    }

    pub fn path(dir: &Path, host: &str, task: u32) -> PathBuf {
        dir.join(host).join(format!("task-{task:05}.log"))
    }

    /// Appends bytes of one stream; complete lines are written at once.
    /// Returns the Hadoop Streaming `reporter:` lines this chunk finished.
    pub fn write(&mut self, host: &str, task: u32, attempt: u32, stream: LogStream, data: &[u8]) -> Vec<String> {
        let mut done = Vec::new();
        let ms = self.started.elapsed().as_millis();
        let key = (host.to_string(), task);
        if !self.open.contains_key(&key) {
            let path = Self::path(&self.dir, host, task);
            let _ = private::dir(path.parent().unwrap_or(&self.dir));
            let Ok(f) = private::append(&path) else {
                return done;
            };
            self.open.insert(key.clone(), (f, Vec::new(), String::new()));
        }
        let Some((file, pending, open_prefix)) = self.open.get_mut(&key) else {
            return done;
        };
        let tag = if stream == LogStream::Stderr { 'e' } else { 'o' };
        let mut put = |line: &[u8]| {
            let _ = file.write_all(format!("{ms} {attempt} {tag} ").as_bytes());
            let _ = file.write_all(line);
        };
        let mut rest = data;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let (end, after) = rest.split_at(i + 1);
            let line = if pending.is_empty() {
                end
            } else {
                pending.extend_from_slice(end);
                &pending[..]
            };
            put(line);
            if line.starts_with(INSPECTED) {
                done.push(String::from_utf8_lossy(line).trim_end().to_string());
            }
            pending.clear();
            rest = after;
        }
        if pending.is_empty() && !rest.is_empty() {
            *open_prefix = format!("{ms} {attempt} {tag} ");
        }
        pending.extend_from_slice(rest);
        while pending.len() >= PIECE {
            let mut piece: Vec<u8> = pending.drain(..PIECE).collect();
            piece.push(b'\n');
            put(&piece);
        }
        done
    }

    /// Flushes partial lines and compresses every log file.
    pub fn finish(mut self) {
        for ((_, _), (mut f, pending, prefix)) in self.open.drain() {
            if !pending.is_empty() {
                let _ = f.write_all(prefix.as_bytes());
                let _ = f.write_all(&pending);
                let _ = f.write_all(b"\n");
            }
        }
        compress_all(&self.dir);
    }
}

fn compress_all(dir: &Path) {
    let Ok(hosts) = fs::read_dir(dir) else { return };
    for host in hosts.flatten() {
        let Ok(files) = fs::read_dir(host.path()) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "log") {
                let _ = compress(&p);
            }
        }
    }
}

fn compress(p: &Path) -> std::io::Result<()> {
    let mut dest = p.as_os_str().to_owned();
    dest.push(".zst");
    // A `.zst` left by a compression that a crash cut short is only a
    // worse copy of the `.log` still beside it.
    let _ = fs::remove_file(&dest);
    let mut out = std::io::BufWriter::new(private::create(Path::new(&dest))?);
    zstd::stream::copy_encode(File::open(p)?, &mut out, 3)?;
    out.flush()?;
    fs::remove_file(p)
}

/// One stored log line.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub ms: u64,
    pub host: String,
    pub task: u32,
    pub attempt: u32,
    pub stderr: bool,
    pub text: String,
}

/// Reads every log of a run, optionally filtered by host and task.
pub fn read_all(dir: &Path, host: Option<&str>, task: Option<u32>) -> std::io::Result<Vec<LogLine>> {
    let mut out = Vec::new();
    let Ok(hosts) = fs::read_dir(dir) else {
        return Ok(out);
    };
    for h in hosts.flatten() {
        let hname = h.file_name().to_string_lossy().into_owned();
        if host.is_some_and(|want| want != hname) {
            continue;
        }
        for f in fs::read_dir(h.path())?.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let Some(t) = name.strip_prefix("task-").and_then(|s| s.split('.').next()).and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if task.is_some_and(|want| want != t) {
                continue;
            }
            read_file(&f.path(), &hname, t, &mut out)?;
        }
    }
    out.sort_by(|a, b| (a.ms, &a.host, a.task).cmp(&(b.ms, &b.host, b.task)));
    Ok(out)
}

fn read_file(p: &Path, host: &str, task: u32, out: &mut Vec<LogLine>) -> std::io::Result<()> {
    let raw: Box<dyn Read> =
        if p.extension().is_some_and(|e| e == "zst") { Box::new(zstd::Decoder::new(File::open(p)?)?) } else { Box::new(File::open(p)?) };
    for line in BufReader::new(raw).lines() {
        let line = line?;
        let mut it = line.splitn(4, ' ');
        let (Some(ms), Some(att), Some(tag)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        out.push(LogLine {
            ms: ms.parse().unwrap_or(0),
            host: host.to_string(),
            task,
            attempt: att.parse().unwrap_or(0),
            stderr: tag == "e",
            text: it.next().unwrap_or("").to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_survive_compression_and_merge_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = LogSink::new(dir.path().to_path_buf(), Instant::now());
        sink.write("a", 1, 7, LogStream::Stderr, b"one\ntw");
        sink.write("b", 2, 8, LogStream::Stdout, b"x\n");
        sink.write("a", 1, 7, LogStream::Stderr, b"o\n");
        sink.finish();
        assert!(LogSink::path(dir.path(), "a", 1).with_extension("log.zst").exists());
        let lines = read_all(dir.path(), None, None).unwrap();
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts.len(), 3);
        assert!(texts.contains(&"one") && texts.contains(&"two") && texts.contains(&"x"));
        let only_b = read_all(dir.path(), Some("b"), None).unwrap();
        assert_eq!(only_b.len(), 1);
        assert!(!only_b[0].stderr);
    }

    #[test]
    fn a_line_longer_than_a_piece_is_stored_in_pieces_as_it_comes() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = LogSink::new(dir.path().to_path_buf(), Instant::now());
        let chunk = vec![b'x'; 64 << 10];
        for _ in 0..(2 * PIECE / chunk.len() + 1) {
            sink.write("a", 1, 7, LogStream::Stderr, &chunk);
        }
        let stored = fs::read(LogSink::path(dir.path(), "a", 1)).unwrap();
        assert_eq!(stored.iter().filter(|b| **b == b'\n').count(), 2, "two whole pieces are on disk before the line ends");
        let counters = sink.write("a", 1, 7, LogStream::Stderr, b"y\nreporter:counter:g,n,1\nz\n");
        assert_eq!(counters, ["reporter:counter:g,n,1"], "only reporter lines are handed back");
        sink.write("a", 1, 7, LogStream::Stderr, b"no newline at the end");
        sink.finish();
        let lines = read_all(dir.path(), None, None).unwrap();
        let texts: Vec<usize> = lines.iter().map(|l| l.text.len()).collect();
        assert_eq!(texts, [PIECE, PIECE, (64 << 10) + 1, "reporter:counter:g,n,1".len(), 1, "no newline at the end".len()]);
        assert!(lines.iter().all(|l| l.attempt == 7 && l.stderr), "an open line is flushed with its prefix");
    }
}
