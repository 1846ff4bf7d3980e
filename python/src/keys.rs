//! STUB: replaced by the keys helper (`shoal_core::canon`). Handles str
//! and int only, in a type-tagged encoding whose bytes order ints
//! numerically and strings by code point.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};

/// Appends the canonical encoding of `obj` to `out`.
pub fn encode_key(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    if let Ok(s) = obj.cast::<PyString>() {
        out.push(b's');
        out.extend_from_slice(s.to_cow()?.as_bytes());
        return Ok(());
    }
    if obj.cast::<PyInt>().is_ok() {
        let n: i64 = obj.extract()?;
        out.push(b'i');
        out.extend_from_slice(&((n as u64) ^ (1 << 63)).to_be_bytes());
        return Ok(());
    }
    let name = obj.get_type().name()?.to_string();
    Err(PyTypeError::new_err(format!("a shuffle key must be str or int in this build, not {name}")))
}
