//! `shoal._native`: the part of the `shoal` Python package written in
//! Rust. The Python modules (python/python/shoal/) build plans and call
//! user functions; everything else (planning, deploying, scheduling,
//! shuffling, sorting, spilling) is the `shoal` library's.

use pyo3::prelude::*;

mod agent_binary;
mod keys;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(keys::encode_key_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(agent_binary::agent_binary_py, m)?)?;
    Ok(())
}
