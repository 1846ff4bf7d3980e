//! How Python records travel: one line each, so that the agent's blocks,
//! shuffle (hash route, sort, k-way merge) and merged outputs handle them
//! like any Hadoop Streaming line. Every function works on a batch, never
//! one native call per record.
//!
//! - Text input: raw lines ([`read_lines`]).
//! - Plain records: `esc(pickle(list_of_records))\n`, a batch per line
//!   ([`encode_batches`], [`read_batches`]).
//! - Keyed records (a shuffle): `esc(canonical(key))\t esc(pickle((key,
//!   value)))\n`; the canonical key (`keys`) is equal for equal keys on
//!   every host, so the agent routes and groups them by its bytes, and
//!   the pickled pair gives back the key object itself ([`encode_keyed`],
//!   [`read_groups`]).
//! - Sorted records (`sort_by_key`): `bucket\t` before a keyed line, the
//!   bucket being the key's range by the split points
//!   ([`encode_sorted`], [`read_sorted`]).
//!
//! `esc` is the Rust Dataset codec's (`shoal::dataset::codec`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor};

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use shoal::dataset::codec::{escape_into, unescape};

use crate::keys::encode_key;

/// Records per pickled batch line.
const BATCH: usize = 4096;
/// Lines per batch handed to Python.
const LINES: usize = 8192;

/// A task's input read line by line, never whole: the file at `src`, or
/// the bytes `src`.
struct Source {
    reader: Box<dyn BufRead>,
    /// Byte offset of the next line in the input.
    offset: u64,
    /// A line read ahead (a group's end), given back by the next read.
    ahead: Option<(u64, Vec<u8>)>,
}

impl Source {
    fn open(src: &Bound<'_, PyAny>, is_file: bool) -> PyResult<Source> {
        let reader: Box<dyn BufRead> = if is_file {
            let path: String = src.extract()?;
            let file = File::open(&path).map_err(|e| PyOSError::new_err(format!("cannot read the task's input {path}: {e}")))?;
            Box::new(BufReader::with_capacity(1 << 20, file))
        } else {
            Box::new(Cursor::new(src.extract::<Vec<u8>>()?))
        };
        Ok(Source { reader, offset: 0, ahead: None })
    }

    /// The next line without its `\n` (or `\r\n`), and its offset.
    fn line(&mut self) -> PyResult<Option<(u64, Vec<u8>)>> {
        if let Some(l) = self.ahead.take() {
            return Ok(Some(l));
        }
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf).map_err(read_error)?;
        if n == 0 {
            return Ok(None);
        }
        let at = self.offset;
        self.offset += n as u64;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        Ok(Some((at, buf)))
    }

    /// The next line that is not empty.
    fn record(&mut self) -> PyResult<Option<(u64, Vec<u8>)>> {
        while let Some(l) = self.line()? {
            if !l.1.is_empty() {
                return Ok(Some(l));
            }
        }
        Ok(None)
    }
}

fn read_error(e: io::Error) -> PyErr {
    PyOSError::new_err(format!("cannot read the task's input: {e}"))
}

fn damaged(what: &str) -> PyErr {
    PyValueError::new_err(format!("a {what} line of the task's input is damaged (bad escape); was it written by shoal?"))
}

struct Pickle<'py> {
    dumps: Bound<'py, PyAny>,
    loads: Bound<'py, PyAny>,
}

impl<'py> Pickle<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let m = py.import("pickle")?;
        Ok(Pickle { dumps: m.getattr("dumps")?, loads: m.getattr("loads")? })
    }

    fn put(&self, obj: &Bound<'py, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
        let raw = self.dumps.call1((obj, 5))?;
        escape_into(raw.cast::<PyBytes>()?.as_bytes(), out);
        Ok(())
    }

    fn get(&self, enc: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let raw = unescape(enc).map_err(|_| damaged("record"))?;
        self.loads.call1((PyBytes::new(self.dumps.py(), &raw),))
    }
}

/// Iterator of lists of str: the lines of a text input, in batches.
#[pyclass(unsendable)]
pub struct Lines {
    source: Source,
}

#[pymethods]
impl Lines {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let mut batch = Vec::new();
        while batch.len() < LINES {
            let Some((at, line)) = self.source.line()? else { break };
            let text = String::from_utf8(line).map_err(|e| {
                PyValueError::new_err(format!(
                    "the input is not UTF-8 text: byte {} of this partition starts an invalid sequence; text_file reads UTF-8 only",
                    at + e.utf8_error().valid_up_to() as u64
                ))
            })?;
            batch.push(text);
        }
        if batch.is_empty() {
            return Ok(None);
        }
        PyList::new(py, batch).map(Some)
    }
}

/// The lines of a text input (`src` a path when `is_file`, else bytes),
/// as an iterator of lists of about 8192 str.
#[pyfunction]
pub fn read_lines(src: &Bound<'_, PyAny>, is_file: bool) -> PyResult<Lines> {
    Ok(Lines { source: Source::open(src, is_file)? })
}

/// Plain records as batch lines: one pickled list of up to 4096 records a line.
#[pyfunction]
pub fn encode_batches<'py>(py: Python<'py>, records: &Bound<'py, PyList>) -> PyResult<Bound<'py, PyBytes>> {
    let pickle = Pickle::new(py)?;
    let mut out = Vec::new();
    let n = records.len();
    for start in (0..n).step_by(BATCH) {
        pickle.put(records.get_slice(start, (start + BATCH).min(n)).as_any(), &mut out)?;
        out.push(b'\n');
    }
    Ok(PyBytes::new(py, &out))
}

/// Iterator of lists of records: plain records, a batch per line.
#[pyclass(unsendable)]
pub struct Batches {
    source: Source,
}

#[pymethods]
impl Batches {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some((_, line)) = self.source.record()? else { return Ok(None) };
        Pickle::new(py)?.get(&line).map(Some)
    }
}

/// Plain records back, as an iterator of lists (one per line).
#[pyfunction]
pub fn read_batches(src: &Bound<'_, PyAny>, is_file: bool) -> PyResult<Batches> {
    Ok(Batches { source: Source::open(src, is_file)? })
}

/// The canonical encoding of a key, as bytes (for sampling split points).
#[pyfunction]
pub fn canonical<'py>(py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::new();
    encode_key(key, &mut out)?;
    Ok(PyBytes::new(py, &out))
}

/// Appends `esc(canonical(key))\t esc(pickle(pair))` for a `(key, value)` pair.
fn put_keyed<'py>(pickle: &Pickle<'py>, pair: &Bound<'py, PyAny>, key_buf: &mut Vec<u8>, out: &mut Vec<u8>) -> PyResult<()> {
    let key = pair.get_item(0)?;
    key_buf.clear();
    encode_key(&key, key_buf)?;
    escape_into(key_buf, out);
    out.push(b'\t');
    pickle.put(pair, out)?;
    out.push(b'\n');
    Ok(())
}

/// Keyed lines of `(key, value)` pairs, for a shuffle's map side.
#[pyfunction]
pub fn encode_keyed<'py>(py: Python<'py>, pairs: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let pickle = Pickle::new(py)?;
    let (mut out, mut key) = (Vec::new(), Vec::new());
    for pair in pairs.try_iter()? {
        put_keyed(&pickle, &pair?, &mut key, &mut out)?;
    }
    Ok(PyBytes::new(py, &out))
}

/// Keyed lines with their range bucket first (`sort_by_key`): the bucket
/// is the number of split points at or below the key's encoding, counted
/// from the other end when `descending`.
#[pyfunction]
pub fn encode_sorted<'py>(
    py: Python<'py>,
    pairs: &Bound<'py, PyAny>,
    splits: Vec<Vec<u8>>,
    descending: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let pickle = Pickle::new(py)?;
    let (mut out, mut key) = (Vec::new(), Vec::new());
    for pair in pairs.try_iter()? {
        let pair = pair?;
        key.clear();
        encode_key(&pair.get_item(0)?, &mut key)?;
        let below = splits.partition_point(|s| s.as_slice() <= key.as_slice());
        let bucket = if descending { splits.len() - below } else { below };
        out.extend_from_slice(format!("{bucket}\t").as_bytes());
        put_keyed(&pickle, &pair, &mut key, &mut out)?;
    }
    Ok(PyBytes::new(py, &out))
}

/// The key and value parts of a keyed line.
fn split_keyed(line: &[u8]) -> PyResult<(&[u8], &[u8])> {
    let tab = line.iter().position(|&b| b == b'\t').ok_or_else(|| damaged("shuffled"))?;
    Ok((&line[..tab], &line[tab + 1..]))
}

/// Iterator of `(key, [values])`: the runs of equal keys of a reduce
/// input (sorted and merged by the agent), one group in memory at a time.
#[pyclass(unsendable)]
pub struct Groups {
    source: Source,
}

#[pymethods]
impl Groups {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let pickle = Pickle::new(py)?;
        let Some((_, first)) = self.source.record()? else { return Ok(None) };
        let (kb, pair) = split_keyed(&first)?;
        let pair = pickle.get(pair)?;
        let values = PyList::new(py, [pair.get_item(1)?])?;
        while let Some((at, line)) = self.source.record()? {
            let (k, v) = split_keyed(&line)?;
            if k != kb {
                self.source.ahead = Some((at, line));
                break;
            }
            values.append(pickle.get(v)?.get_item(1)?)?;
        }
        PyTuple::new(py, [pair.get_item(0)?, values.into_any()]).map(Some)
    }
}

/// The groups of a reduce input (sorted and merged by the agent).
#[pyfunction]
pub fn read_groups(src: &Bound<'_, PyAny>, is_file: bool) -> PyResult<Groups> {
    Ok(Groups { source: Source::open(src, is_file)? })
}

/// The `(key, value)` pairs of a sorted reduce input, in key order
/// (stable: equal keys keep the order the agent merged them in).
#[pyfunction]
pub fn read_sorted<'py>(py: Python<'py>, src: &Bound<'py, PyAny>, is_file: bool) -> PyResult<Bound<'py, PyList>> {
    let pickle = Pickle::new(py)?;
    let mut source = Source::open(src, is_file)?;
    let mut keyed = Vec::new();
    while let Some((_, line)) = source.record()? {
        let (_, rest) = split_keyed(&line)?;
        let (k, v) = split_keyed(rest)?;
        keyed.push((k.to_vec(), v.to_vec()));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let out = PyList::empty(py);
    for (_, pair) in keyed {
        out.append(pickle.get(&pair)?)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(data: &[u8]) -> Source {
        Source { reader: Box::new(Cursor::new(data.to_vec())), offset: 0, ahead: None }
    }

    #[test]
    fn lines_drop_their_ends_know_their_offsets_and_a_missing_last_newline_is_fine() {
        let mut s = source(b"a\r\nbc\n\nd");
        let mut got = Vec::new();
        while let Some(l) = s.line().unwrap() {
            got.push(l);
        }
        assert_eq!(got, [(0, b"a".to_vec()), (3, b"bc".to_vec()), (6, vec![]), (7, b"d".to_vec())]);
    }

    #[test]
    fn records_skip_empty_lines_and_a_line_read_ahead_comes_back_first() {
        let mut s = source(b"\nx\n\ny\n");
        assert_eq!(s.record().unwrap(), Some((1, b"x".to_vec())));
        s.ahead = Some((1, b"x".to_vec()));
        assert_eq!(s.record().unwrap(), Some((1, b"x".to_vec())));
        assert_eq!(s.record().unwrap(), Some((4, b"y".to_vec())));
        assert_eq!(s.record().unwrap(), None);
    }

    #[test]
    fn a_keyed_line_splits_at_its_first_tab() {
        assert_eq!(split_keyed(b"k\tv\tw").unwrap(), (&b"k"[..], &b"v\tw"[..]));
    }
}
