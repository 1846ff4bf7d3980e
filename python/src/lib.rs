//! `shoal._native`: the part of the `shoal` Python package written in
//! Rust. The Python modules (python/python/shoal/) build plans and call
//! user functions; everything else (planning, deploying, scheduling,
//! shuffling, sorting, spilling) is the `shoal` library's.
//!
//! - `driver`: the driver's side, one [`driver::Driver`] per program run.
//! - `executor`: a host's side, the loop serving the agent's tasks.
//! - `records`: how records become lines and back, a batch per call.
//! - `keys`: the canonical encoding of shuffle keys.
//! - `agent_binary`: the `shoal` command deployed as every host's agent.

use pyo3::prelude::*;

mod agent_binary;
mod driver;
mod executor;
mod keys;
mod records;

pyo3::create_exception!(
    _native,
    ShoalError,
    pyo3::exceptions::PyException,
    "A job or the program's set-up failed; `exit_code` is the one `shoal` would exit with."
);

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(keys::encode_key_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(agent_binary::agent_binary_py, m)?)?;
    m.add("ShoalError", m.py().get_type::<ShoalError>())?;
    m.add_class::<driver::Driver>()?;
    m.add_function(wrap_pyfunction!(executor::serve, m)?)?;
    m.add_function(wrap_pyfunction!(records::read_lines, m)?)?;
    m.add_function(wrap_pyfunction!(records::encode_batches, m)?)?;
    m.add_function(wrap_pyfunction!(records::read_batches, m)?)?;
    m.add_function(wrap_pyfunction!(records::canonical, m)?)?;
    m.add_function(wrap_pyfunction!(records::encode_keyed, m)?)?;
    m.add_function(wrap_pyfunction!(records::encode_sorted, m)?)?;
    m.add_function(wrap_pyfunction!(records::read_groups, m)?)?;
    m.add_function(wrap_pyfunction!(records::read_sorted, m)?)?;
    Ok(())
}
