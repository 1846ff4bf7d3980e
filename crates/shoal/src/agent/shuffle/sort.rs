//! Sorting and merging line files in bounded memory.
//!
//! [`Spiller`] holds lines of many buckets in one memory budget; when the
//! budget is full every bucket's lines are sorted and written out as a
//! run. [`merge`] is the k-way merge of sorted files, used both to finish
//! a bucket from its runs and to feed a reducer its sorted input.
//! [`read_line`] is how every line that is held whole in memory is read
//! (here, by the driver's input splitters): never longer than a limit.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::order::{cmp_keys, KeyOrder, SortKey};
use crate::agent::private;

/// The longest line held whole in memory: a shuffle record, or an input
/// line cut by key. Longer ones are refused with a sentence, not an abort
/// for want of memory (a file of zeros has no newline at all).
pub const MAX_LINE: usize = 64 << 20;

/// The human size of [`MAX_LINE`], for error messages.
pub const MAX_LINE_TEXT: &str = "64 MiB";

/// Why [`read_line`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("the line is longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one line with its newline into `line` (appending, like
/// `read_until`), but never more than `limit` bytes of it. Ok(0) at the end.
pub fn read_line(r: &mut impl BufRead, line: &mut Vec<u8>, limit: usize) -> Result<usize, LineError> {
    let start = line.len();
    let n = r.by_ref().take(limit as u64 + 1).read_until(b'\n', line)?;
    if n > limit && line.last() != Some(&b'\n') {
        line.truncate(start);
        return Err(LineError::TooLong { limit });
    }
    Ok(n)
}

/// Lines of one bucket kept in memory: an arena and (start, end, key end)
/// ranges. The key's end is found once per line, not once per comparison.
#[derive(Default)]
struct Mem {
    bytes: Vec<u8>,
    lines: Vec<(usize, usize, usize)>,
}

/// Buckets of sorted runs under one memory budget.
pub struct Spiller {
    order: KeyOrder,
    budget: usize,
    used: usize,
    mem: Vec<Mem>,
    runs: Vec<Vec<PathBuf>>,
    dir: PathBuf,
    spills: usize,
}

impl Spiller {
    pub fn new(order: KeyOrder, buckets: usize, budget: u64, dir: &Path) -> io::Result<Self> {
        private::create_dir(dir)?;
        Ok(Spiller {
            order,
            budget: budget.max(1 << 16) as usize,
            used: 0,
            mem: (0..buckets).map(|_| Mem::default()).collect(),
            runs: vec![Vec::new(); buckets],
            dir: dir.to_path_buf(),
            spills: 0,
        })
    }

    /// Adds one line (with its newline) to a bucket.
    pub fn push(&mut self, bucket: usize, line: &[u8]) -> io::Result<()> {
        let m = &mut self.mem[bucket];
        let start = m.bytes.len();
        m.bytes.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            m.bytes.push(b'\n');
        }
        let key_end = start + self.order.key(line).len();
        m.lines.push((start, m.bytes.len(), key_end));
        self.used += line.len() + 32;
        if self.used >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes every bucket's lines as a sorted run and frees the memory.
    fn spill(&mut self) -> io::Result<()> {
        for b in 0..self.mem.len() {
            if self.mem[b].lines.is_empty() {
                continue;
            }
            let path = self.dir.join(format!("run-{b}-{}", self.spills));
            self.write_sorted(b, &path)?;
            self.runs[b].push(path);
        }
        self.spills += 1;
        self.used = 0;
        Ok(())
    }

    fn write_sorted(&mut self, b: usize, path: &Path) -> io::Result<()> {
        let m = std::mem::take(&mut self.mem[b]);
        let mut lines = m.lines;
        let order = &self.order;
        let b = &m.bytes;
        if order.is_numeric() {
            lines.sort_unstable_by(|x, y| order.compare(&b[x.0..x.1], &b[y.0..y.1]));
        } else {
            // Byte keys, then the whole line (without its newline), as KeyOrder::compare.
            lines.sort_unstable_by(|x, y| b[x.0..x.2].cmp(&b[y.0..y.2]).then_with(|| b[x.0..x.1 - 1].cmp(&b[y.0..y.1 - 1])));
        }
        let mut out = BufWriter::with_capacity(1 << 20, private::create_new(path)?);
        for (s, e, _) in lines {
            out.write_all(&m.bytes[s..e])?;
        }
        out.flush()
    }

    /// How many times memory was spilled to disk.
    pub fn spills(&self) -> usize {
        self.spills
    }

    /// Finishes bucket `b` into one sorted file at `dest`.
    pub fn finish(&mut self, b: usize, dest: &Path) -> io::Result<()> {
        if self.runs[b].is_empty() {
            return self.write_sorted(b, dest);
        }
        if !self.mem[b].lines.is_empty() {
            let path = self.dir.join(format!("run-{b}-last"));
            self.write_sorted(b, &path)?;
            self.runs[b].push(path);
        }
        let runs = std::mem::take(&mut self.runs[b]);
        let mut out = BufWriter::with_capacity(1 << 20, private::create_new(dest)?);
        merge(&runs, &self.order, &mut out)?;
        out.flush()?;
        runs.iter().for_each(|r| {
            let _ = std::fs::remove_file(r);
        });
        Ok(())
    }
}

struct Head {
    /// The key as a number, when keys are numeric and this one parses;
    /// otherwise the key is `line[..key_len]`, compared as bytes.
    num: Option<f64>,
    key_len: usize,
    line: Vec<u8>,
    src: usize,
}

impl Head {
    fn key(&self) -> SortKey {
        match self.num {
            Some(n) => SortKey::Num(n),
            None => SortKey::Bytes(Vec::new()),
        }
    }

    fn cmp_key(&self, other: &Head) -> Ordering {
        match (self.num, other.num) {
            (None, None) => self.line[..self.key_len].cmp(&other.line[..other.key_len]),
            _ => cmp_keys(&self.key(), &other.key()),
        }
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    /// Reversed, so that the max-heap pops the smallest line first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.cmp_key(self).then_with(|| other.line.cmp(&self.line)).then_with(|| other.src.cmp(&self.src))
    }
}

/// Merges sorted files into `out`, in key order.
pub fn merge(inputs: &[PathBuf], order: &KeyOrder, out: &mut impl Write) -> io::Result<()> {
    let mut readers: Vec<BufReader<File>> =
        inputs.iter().map(|p| File::open(p).map(|f| BufReader::with_capacity(256 * 1024, f))).collect::<Result<_, _>>()?;
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (src, r) in readers.iter_mut().enumerate() {
        if let Some(h) = next(r, src, order)? {
            heap.push(h);
        }
    }
    while let Some(h) = heap.pop() {
        out.write_all(&h.line)?;
        if let Some(n) = next(&mut readers[h.src], h.src, order)? {
            heap.push(n);
        }
    }
    Ok(())
}

fn next(r: &mut BufReader<File>, src: usize, order: &KeyOrder) -> io::Result<Option<Head>> {
    let mut line = Vec::new();
    // Runs are written by the shuffle, whose lines are already bounded.
    let n = read_line(r, &mut line, MAX_LINE).map_err(|e| match e {
        LineError::Io(e) => e,
        too_long => io::Error::new(io::ErrorKind::InvalidData, too_long),
    })?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        line.push(b'\n');
    }
    let (num, key_len) = match order.sort_key_num(&line) {
        Some(n) => (Some(n), 0),
        None => (None, order.key(&line).len()),
    };
    Ok(Some(Head { num, key_len, line, src }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_wire::KeyFormat;

    #[test]
    fn lines_are_read_up_to_the_limit_and_no_further() {
        let mut r = io::Cursor::new(b"abc\nabcd\nabcde\nxy".to_vec());
        let mut line = Vec::new();
        assert_eq!(read_line(&mut r, &mut line, 4).unwrap(), 4);
        assert_eq!(line, b"abc\n");
        line.clear();
        assert_eq!(read_line(&mut r, &mut line, 4).unwrap(), 5, "four bytes and the newline");
        line.clear();
        assert!(matches!(read_line(&mut r, &mut line, 4), Err(LineError::TooLong { limit: 4 })));
        assert!(line.is_empty(), "a refused line is not kept");
        let mut r = io::Cursor::new(b"xy".to_vec());
        assert_eq!(read_line(&mut r, &mut line, 4).unwrap(), 2, "a last line without a newline");
        assert_eq!(read_line(&mut r, &mut line, 4).unwrap(), 0);
    }

    #[test]
    fn spilled_buckets_come_out_sorted_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let order = KeyOrder::new(&KeyFormat { sep: b"\t".to_vec(), fields: 1, numeric: false });
        let mut sp = Spiller::new(order, 2, 1 << 16, dir.path()).unwrap();
        let mut want: Vec<Vec<String>> = vec![vec![], vec![]];
        for i in 0..20_000u32 {
            let line = format!("k{:05}\t{}\n", (i * 7919) % 20_000, i);
            let b = (i % 2) as usize;
            sp.push(b, line.as_bytes()).unwrap();
            want[b].push(line);
        }
        assert!(sp.spills() > 2, "the small budget forces spills");
        for (b, w) in want.iter_mut().enumerate() {
            let dest = dir.path().join(format!("out{b}"));
            sp.finish(b, &dest).unwrap();
            w.sort();
            let got = std::fs::read_to_string(&dest).unwrap();
            assert_eq!(got, w.concat());
        }
    }
}
