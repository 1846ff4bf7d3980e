//! The run journal: one JSON line per committed task, fsynced before the
//! commit counts, so that `--resume` after a crash (even `kill -9`) reuses
//! exactly the tasks whose outputs are safe on disk.
//!
//! A task's identity is the BLAKE3 of everything that determines its
//! output: the stage, its command (and per-host overrides), its input
//! partition, the job's params and the sync manifest. A resumed run reuses
//! an entry only when the identity matches and the output file is intact,
//! so an edited command reruns exactly the tasks it affects. A small
//! output (at most [`DATA_MAX`] bytes) is kept in its line itself, so a
//! run of many tiny tasks writes no file per task.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Outputs up to this size live in their journal line (base64).
pub const DATA_MAX: usize = 4096;

/// Bytes appended after which a sync starts in the background, so that
/// the sync the run waits for at its end has little left to write.
const SYNC_EVERY: usize = 256 << 10;

/// One committed task.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub task: u32,
    pub identity: String,
    /// BLAKE3 of the output, hex.
    pub output: String,
    pub size: u64,
    pub host: String,
    /// The output itself, base64, when it is small; else it is the run's
    /// part file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Entry {
    /// The output kept in the line, if it is there and matches its hash.
    pub fn data(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(self.data.as_ref()?).ok()?;
        (blake3::hash(&bytes).to_hex().as_str() == self.output).then_some(bytes)
    }

    /// Keeps `bytes` in the line.
    pub fn with_data(mut self, bytes: &[u8]) -> Entry {
        use base64::Engine;
        self.data = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        self
    }
}

/// The line of an [`Entry`], written from borrowed parts.
#[derive(Serialize)]
struct Line<'a> {
    task: u32,
    identity: &'a str,
    output: &'a str,
    size: u64,
    host: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
}

/// An open journal file.
pub struct Journal {
    /// Lines are buffered until the next sync: one write and one fsync
    /// per group, not a write per task.
    file: BufWriter<File>,
    pub path: PathBuf,
    dirty: bool,
    /// Reused for the base64 of outputs kept in their lines.
    scratch: String,
    /// About how many bytes were appended since the last sync began.
    unsynced: usize,
    /// A sync running on a thread of its own (the run loop goes on
    /// meanwhile), and what it will answer.
    syncing: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Journal {
    pub fn create(path: &Path) -> std::io::Result<Journal> {
        let file = super::private::append(path)?;
        Ok(Journal {
            file: BufWriter::with_capacity(1 << 16, file),
            path: path.to_path_buf(),
            dirty: false,
            scratch: String::new(),
            unsynced: 0,
            syncing: None,
        })
    }

    /// Appends one entry. It becomes durable at the next [`Journal::sync`]:
    /// a line lost in a crash only means that its task runs again, while
    /// its output file was already synced before the line was written, so
    /// the journal never names an output that is not on disk.
    pub fn append(&mut self, e: &Entry) -> std::io::Result<()> {
        let line = Line { task: e.task, identity: &e.identity, output: &e.output, size: e.size, host: &e.host, data: e.data.as_deref() };
        self.write_line(&line)?;
        self.written(line_len(&e.identity, &e.output, &e.host, e.data.as_deref()))
    }

    /// Appends the entry of task `task`, committed now: its identity, the
    /// output's hash (hex) and size, the host it ran on, and the output
    /// itself when it is kept in the line (as [`Entry::with_data`] does).
    pub fn commit(&mut self, task: u32, identity: &str, output: &str, size: u64, host: &str, data: Option<&[u8]>) -> std::io::Result<()> {
        use base64::Engine;
        let mut b64 = std::mem::take(&mut self.scratch);
        b64.clear();
        if let Some(d) = data {
            base64::engine::general_purpose::STANDARD.encode_string(d, &mut b64);
        }
        let data = data.map(|_| b64.as_str());
        // One line per task, at tens of thousands a second: hex and base64
        // need no JSON escaping, so only the host name goes through serde.
        let plain = |s: &str| s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let written = if plain(identity) && plain(output) {
            self.write_plain(task, identity, output, size, host, data)
        } else {
            self.write_line(&Line { task, identity, output, size, host, data })
        };
        let len = line_len(identity, output, host, data);
        self.scratch = b64;
        written?;
        self.written(len)
    }

    /// Counts appended bytes; past [`SYNC_EVERY`], starts a sync.
    fn written(&mut self, len: usize) -> std::io::Result<()> {
        self.unsynced += len;
        if self.unsynced >= SYNC_EVERY && self.syncing.is_none() {
            self.sync_soon()?;
        }
        Ok(())
    }

    /// The line of [`Line`], written directly; `identity`, `output` and
    /// `data` hold nothing JSON escapes.
    fn write_plain(&mut self, task: u32, identity: &str, output: &str, size: u64, host: &str, data: Option<&str>) -> std::io::Result<()> {
        let f = &mut self.file;
        f.write_all(b"{\"task\":")?;
        f.write_all(itoa::Buffer::new().format(task).as_bytes())?;
        f.write_all(b",\"identity\":\"")?;
        f.write_all(identity.as_bytes())?;
        f.write_all(b"\",\"output\":\"")?;
        f.write_all(output.as_bytes())?;
        f.write_all(b"\",\"size\":")?;
        f.write_all(itoa::Buffer::new().format(size).as_bytes())?;
        f.write_all(b",\"host\":")?;
        serde_json::to_writer(&mut *f, host).map_err(std::io::Error::other)?;
        if let Some(d) = data {
            f.write_all(b",\"data\":\"")?;
            f.write_all(d.as_bytes())?;
            f.write_all(b"\"")?;
        }
        f.write_all(b"}\n")?;
        self.dirty = true;
        Ok(())
    }

    fn write_line(&mut self, line: &Line<'_>) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.file, line).map_err(std::io::Error::other)?;
        self.file.write_all(b"\n")?;
        self.dirty = true;
        Ok(())
    }

    /// Makes every appended line durable (group commit: one fsync for all
    /// the lines since the last call), waiting for it; reports a failed
    /// background sync too.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.finish_sync(true)?;
        if std::mem::take(&mut self.dirty) {
            self.file.flush()?;
            self.file.get_ref().sync_data()?;
        }
        self.unsynced = 0;
        Ok(())
    }

    /// Starts making the lines appended so far durable, on a thread of its
    /// own, unless a sync is still running; reports a background sync that
    /// failed since the last call.
    pub fn sync_soon(&mut self) -> std::io::Result<()> {
        self.finish_sync(false)?;
        if self.syncing.is_some() || !self.dirty {
            return Ok(());
        }
        self.file.flush()?;
        let file = self.file.get_ref().try_clone()?;
        self.syncing = Some(std::thread::Builder::new().name("shoal-journal".into()).spawn(move || file.sync_data())?);
        self.dirty = false;
        self.unsynced = 0;
        Ok(())
    }

    /// Collects the background sync once it is over (or, with `wait`, when
    /// it is over), with its error.
    fn finish_sync(&mut self, wait: bool) -> std::io::Result<()> {
        match self.syncing.take() {
            Some(t) if wait || t.is_finished() => {
                t.join().unwrap_or_else(|_| Err(std::io::Error::other("the journal's sync thread panicked")))
            }
            running => {
                self.syncing = running;
                Ok(())
            }
        }
    }
}

/// About how long the line of an entry is.
fn line_len(identity: &str, output: &str, host: &str, data: Option<&str>) -> usize {
    64 + identity.len() + output.len() + host.len() + data.map_or(0, str::len)
}

/// Reads the entries of a journal, keyed by identity. A torn last line
/// (the driver died mid-write) is ignored: its task simply runs again.
pub fn load(path: &Path) -> std::io::Result<HashMap<String, Entry>> {
    let mut out = HashMap::new();
    for line in BufReader::new(File::open(path)?).lines() {
        let Ok(e) = serde_json::from_str::<Entry>(&line?) else {
            continue;
        };
        out.insert(e.identity.clone(), e);
    }
    Ok(out)
}

/// The identity of a task from its determining parts.
pub fn identity(parts: &[&[u8]]) -> String {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut j = Journal::create(&path).unwrap();
        let e = Entry { task: 1, identity: "id1".into(), output: "ab".into(), size: 3, host: "a".into(), data: None };
        j.append(&e).unwrap();
        j.sync().unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"task\":2,\"iden").unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded["id1"], e);
    }

    #[test]
    fn small_outputs_ride_in_the_line_and_are_checked() {
        let hash = blake3::hash(b"42\n").to_hex().to_string();
        let e = Entry { task: 0, identity: "i".into(), output: hash, size: 3, host: "h".into(), data: None }.with_data(b"42\n");
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.contains("\"data\":\"NDIK\""), "{line}");
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap().data(), Some(b"42\n".to_vec()));
        let forged = Entry { output: blake3::hash(b"other").to_hex().to_string(), ..e };
        assert_eq!(forged.data(), None, "data that does not match the output hash is not trusted");
    }

    #[test]
    fn a_committed_line_reads_back_as_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut j = Journal::create(&path).unwrap();
        let hash = blake3::hash(b"7\n").to_hex().to_string();
        j.commit(3, "id3", &hash, 2, "h1", Some(b"7\n")).unwrap();
        j.commit(4, "id4", "ab", 9, "h\"2\\", None).unwrap();
        j.commit(5, "not hex!", "ab", 1, "h", None).unwrap();
        j.commit(6, "ID6", "ab", 1, "h", None).unwrap();
        j.sync().unwrap();
        let loaded = load(&path).unwrap();
        let small = Entry { task: 3, identity: "id3".into(), output: hash, size: 2, host: "h1".into(), data: None }.with_data(b"7\n");
        assert_eq!(loaded["id3"], small);
        assert_eq!(loaded["id3"].data(), Some(b"7\n".to_vec()));
        assert_eq!(
            loaded["id4"],
            Entry { task: 4, identity: "id4".into(), output: "ab".into(), size: 9, host: "h\"2\\".into(), data: None }
        );
        assert_eq!(loaded["not hex!"].task, 5);
        assert_eq!(loaded["ID6"].task, 6);
        let line = std::fs::read_to_string(&path).unwrap().lines().next().unwrap().to_string();
        assert_eq!(serde_json::to_string(&small).unwrap(), line, "the same line as serde writes");
    }

    #[test]
    fn lines_are_synced_in_the_background_and_all_of_them_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut j = Journal::create(&path).unwrap();
        let data = vec![b'x'; DATA_MAX];
        let hash = blake3::hash(&data).to_hex().to_string();
        // Enough lines to pass SYNC_EVERY a few times.
        for t in 0..300 {
            j.commit(t, &format!("{t:064x}"), &hash, data.len() as u64, "h", Some(&data)).unwrap();
        }
        j.sync_soon().unwrap();
        j.sync().unwrap();
        assert!(j.syncing.is_none() && !j.dirty);
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.len(), 300);
        assert!(loaded.values().all(|e| e.data().as_deref() == Some(&data[..])));
    }

    #[test]
    fn identity_separates_fields() {
        assert_ne!(identity(&[b"ab", b"c"]), identity(&[b"a", b"bc"]));
    }
}
