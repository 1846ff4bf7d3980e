//! STUB: replaced by the embed helper (the embedded `shoal` command,
//! extracted once and registered with the library). This stub takes the
//! path in `$SHOAL_AGENT_BINARY_PATH`.

use std::path::PathBuf;
use std::sync::OnceLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// The `shoal` command every host runs as its agent, registered with the
/// library (`shoal::binary::set_agent`) on the first call.
pub fn agent_binary() -> PyResult<PathBuf> {
    static CHOSEN: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = CHOSEN.get() {
        return Ok(p.clone());
    }
    let path = std::env::var_os("SHOAL_AGENT_BINARY_PATH")
        .map(PathBuf::from)
        .ok_or_else(|| PyRuntimeError::new_err("set SHOAL_AGENT_BINARY_PATH to the `shoal` command (this build does not embed it)"))?;
    shoal::binary::set_agent(path.clone())
        .map_err(|e| PyRuntimeError::new_err(format!("cannot use {} as the agent: {e}", path.display())))?;
    Ok(CHOSEN.get_or_init(|| path).clone())
}
