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

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use shoal::dataset::codec::{escape_into, unescape};

use crate::keys::encode_key;

/// Records per pickled batch line.
const BATCH: usize = 4096;
/// Lines per batch handed to Python.
const LINES: usize = 8192;

/// A task's input, whole: the file at `src`, or the bytes `src`.
fn load(src: &Bound<'_, PyAny>, is_file: bool) -> PyResult<Vec<u8>> {
    if is_file {
        let path: String = src.extract()?;
        return std::fs::read(&path).map_err(|e| PyOSError::new_err(format!("cannot read the task's input {path}: {e}")));
    }
    src.extract()
}

/// The lines of `data`, without their `\n` (or `\r\n`).
fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= data.len() {
            return None;
        }
        let start = pos;
        let end = data[pos..].iter().position(|&b| b == b'\n').map_or(data.len(), |i| pos + i);
        pos = end + 1;
        let line = &data[start..end];
        Some((start, line.strip_suffix(b"\r").unwrap_or(line)))
    })
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
    data: Vec<u8>,
    pos: usize,
}

#[pymethods]
impl Lines {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let rest = &self.data[self.pos..];
        let mut batch = Vec::with_capacity(LINES);
        let mut used = rest.len();
        for (at, line) in lines(rest) {
            if batch.len() == LINES {
                used = at;
                break;
            }
            let text = std::str::from_utf8(line).map_err(|e| {
                PyValueError::new_err(format!(
                    "the input is not UTF-8 text: byte {} of this partition starts an invalid sequence; text_file reads UTF-8 only",
                    self.pos + at + e.valid_up_to()
                ))
            })?;
            batch.push(text);
        }
        let list = PyList::new(py, batch)?;
        self.pos += used;
        Ok(Some(list))
    }
}

/// The lines of a text input (`src` a path when `is_file`, else bytes),
/// as an iterator of lists of about 8192 str.
#[pyfunction]
pub fn read_lines(src: &Bound<'_, PyAny>, is_file: bool) -> PyResult<Lines> {
    Ok(Lines { data: load(src, is_file)?, pos: 0 })
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

/// Plain records back: a list of lists of records (one per line).
#[pyfunction]
pub fn read_batches<'py>(py: Python<'py>, src: &Bound<'py, PyAny>, is_file: bool) -> PyResult<Bound<'py, PyList>> {
    let pickle = Pickle::new(py)?;
    let data = load(src, is_file)?;
    let batches = PyList::empty(py);
    for (_, line) in lines(&data) {
        if !line.is_empty() {
            batches.append(pickle.get(line)?)?;
        }
    }
    Ok(batches)
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

/// Iterator of `(key, [values])`: the runs of equal keys of a reduce input.
#[pyclass(unsendable)]
pub struct Groups {
    data: Vec<u8>,
    pos: usize,
}

#[pymethods]
impl Groups {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let pickle = Pickle::new(py)?;
        let rest = &self.data[self.pos..];
        let mut key: Option<(&[u8], Bound<'py, PyAny>)> = None;
        let values = PyList::empty(py);
        let mut used = rest.len();
        for (at, line) in lines(rest) {
            if line.is_empty() {
                continue;
            }
            let (kb, pair) = split_keyed(line)?;
            match &key {
                Some((k, _)) if *k != kb => {
                    used = at;
                    break;
                }
                Some(_) => values.append(pickle.get(pair)?.get_item(1)?)?,
                None => {
                    let pair = pickle.get(pair)?;
                    values.append(pair.get_item(1)?)?;
                    key = Some((kb, pair.get_item(0)?));
                }
            }
        }
        self.pos += used;
        key.map(|(_, k)| PyTuple::new(py, [k, values.into_any()])).transpose()
    }
}

/// The groups of a reduce input (sorted and merged by the agent).
#[pyfunction]
pub fn read_groups(src: &Bound<'_, PyAny>, is_file: bool) -> PyResult<Groups> {
    Ok(Groups { data: load(src, is_file)?, pos: 0 })
}

/// The `(key, value)` pairs of a sorted reduce input, in key order
/// (stable: equal keys keep the order the agent merged them in).
#[pyfunction]
pub fn read_sorted<'py>(py: Python<'py>, src: &Bound<'py, PyAny>, is_file: bool) -> PyResult<Bound<'py, PyList>> {
    let pickle = Pickle::new(py)?;
    let data = load(src, is_file)?;
    let mut keyed = Vec::new();
    for (_, line) in lines(&data) {
        if line.is_empty() {
            continue;
        }
        let (_, rest) = split_keyed(line)?;
        keyed.push(split_keyed(rest)?);
    }
    keyed.sort_by(|a, b| a.0.cmp(b.0));
    let out = PyList::empty(py);
    for (_, pair) in keyed {
        out.append(pickle.get(pair)?)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_drop_their_ends_and_a_missing_last_newline_is_fine() {
        let got: Vec<(usize, &[u8])> = lines(b"a\r\nbc\n\nd").collect();
        assert_eq!(got, [(0, &b"a"[..]), (3, b"bc"), (6, b""), (7, b"d")]);
    }

    #[test]
    fn a_keyed_line_splits_at_its_first_tab() {
        assert_eq!(split_keyed(b"k\tv\tw").unwrap(), (&b"k"[..], &b"v\tw"[..]));
    }
}
