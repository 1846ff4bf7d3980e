//! Python keys to canonical bytes: walks a key object and writes it with
//! `shoal_core::canon`, whose module doc has the encoding and why it
//! exists (equal keys route together on every host and run, order is
//! Python's). This module owns only the mapping of Python types to that
//! value model and the sentences for keys it refuses; the record codecs
//! call [`encode_key`] for every key they write.
//!
//! Accepted, subclasses included (an `IntEnum` member is its int, a
//! namedtuple its tuple): None, bool, int, float, str, bytes, tuple,
//! frozenset. Anything else, hashable or not, is refused with a
//! `TypeError`: a type outside this list has no canonical form, and
//! routing it by `hash()` would scatter equal keys across reducers.

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyFrozenSet, PyInt, PyString, PyTuple};
use shoal_core::canon::{self, CanonError};

/// Appends the canonical encoding of the key `obj` to `out`. On error
/// `out` may hold part of the key: callers drop the whole batch.
pub fn encode_key(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    walk(obj, out, 0)
}

/// `shoal._native.encode_key(key) -> bytes`: the canonical encoding of one
/// key, for tests and for tools that want to predict where a key lands
/// (FNV-1a 64 of these bytes, modulo the partition count).
#[pyfunction]
#[pyo3(name = "encode_key")]
pub fn encode_key_bytes<'py>(key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::new();
    encode_key(key, &mut out)?;
    Ok(PyBytes::new(key.py(), &out))
}

/// `depth` is the number of tuples and frozensets around `obj`. The most
/// common key types are tried first.
fn walk(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if let Ok(s) = obj.cast::<PyString>() {
        str(s, out)?;
    } else if let Ok(b) = obj.cast::<PyBool>() {
        // Before int: bool is an int subclass, but one with its own fast answer.
        canon::bool(out, b.is_true());
    } else if let Ok(n) = obj.cast::<PyInt>() {
        int(n, out)?;
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        canon::open_tuple(out, depth + 1).map_err(to_py)?;
        for item in t.iter() {
            walk(&item, out, depth + 1)?;
        }
        canon::close_tuple(out);
    } else if obj.is_none() {
        canon::none(out);
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        canon::float(out, f.value());
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        canon::bytes(out, b.as_bytes());
    } else if let Ok(set) = obj.cast::<PyFrozenSet>() {
        let mut elements = Vec::with_capacity(set.len());
        for item in set.iter() {
            let mut element = Vec::new();
            walk(&item, &mut element, depth + 1)?;
            elements.push(element);
        }
        canon::frozenset(out, depth + 1, elements).map_err(to_py)?;
    } else {
        return Err(refused(obj, depth));
    }
    Ok(())
}

/// A str as UTF-8; one with lone surrogates (which UTF-8 cannot hold) as
/// its `surrogatepass` bytes, which keep code point order.
fn str(s: &Bound<'_, PyString>, out: &mut Vec<u8>) -> PyResult<()> {
    match s.encode_utf8() {
        Ok(utf8) => canon::str(out, utf8.as_bytes()),
        Err(_) => {
            let raw = s.py().get_type::<PyString>().call_method1("encode", (s, "utf-8", "surrogatepass"))?;
            canon::str(out, raw.cast::<PyBytes>()?.as_bytes());
        }
    }
    Ok(())
}

/// An int: machine-sized ones directly, larger ones through their bytes.
/// The big path calls `int`'s own methods, not the object's, so a subclass
/// that overrides them still encodes as its value.
fn int(n: &Bound<'_, PyInt>, out: &mut Vec<u8>) -> PyResult<()> {
    if let Ok(small) = n.extract::<i64>() {
        canon::i64(out, small);
        return Ok(());
    }
    let int = n.py().get_type::<PyInt>();
    let bits: u64 = int.call_method1("bit_length", (n,))?.extract()?;
    if bits > canon::MAX_INT_BITS {
        return Err(to_py(CanonError::IntTooLarge { bits }));
    }
    let negative = n.lt(0)?;
    let magnitude = int.call_method1("__abs__", (n,))?;
    let bytes = int.call_method1("to_bytes", (magnitude, bits.div_ceil(8), "big"))?;
    canon::int(out, negative, bytes.cast::<PyBytes>()?.as_bytes()).map_err(to_py)
}

fn to_py(err: CanonError) -> PyErr {
    match err {
        CanonError::IntTooLarge { .. } => PyOverflowError::new_err(err.to_string()),
        CanonError::TooDeep => PyValueError::new_err(err.to_string()),
    }
}

/// The `TypeError` for a key, or a part of one, of a type with no
/// canonical form.
fn refused(obj: &Bound<'_, PyAny>, depth: usize) -> PyErr {
    let ty = obj.get_type();
    let name = ty.fully_qualified_name().map_or_else(|_| "?".to_string(), |n| n.to_string());
    let what = if depth == 0 { format!("a key of type `{name}`") } else { format!("a key that holds a `{name}` in a tuple or frozenset") };
    let hint = match name.as_str() {
        "list" => " (a list key can be turned into a tuple)",
        "set" => " (a set key can be turned into a frozenset)",
        "bytearray" => " (a bytearray key can be turned into bytes)",
        "dict" => " (a dict key can be turned into a tuple of its sorted items)",
        _ => "",
    };
    PyTypeError::new_err(format!(
        "{what} cannot be used to route records: keys must be None, bool, int, float, str, bytes, \
         or tuples/frozensets of these{hint}"
    ))
}
