//! The executor on a host (`python -m shoal._executor`): the Rust
//! Dataset executor's loop (`shoal::dataset::executor::serve_with`),
//! computing each task with a Python callback.
//!
//! fd 1 is the frame channel to the agent: it is moved aside first and
//! fd 1 pointed at stderr, so that a user's `print` lands in the task's
//! log instead of corrupting the frames.

use std::io::{self, Write};
use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shoal::dataset::executor::{serve_with, Spill};
use shoal_wire::executor::{ExecInput, ExecOutput, ExecTask};

/// Serves the agent's tasks until it closes stdin, then exits the
/// process. `run_task(stage, partition, input, is_file, output_path,
/// inline_max)` computes one: it returns the output's bytes (or an
/// iterable of chunks of them), or `None` when it wrote the file at
/// `output_path` itself; an exception fails the task with its text. `label` names the executor (`job 3`).
#[pyfunction]
pub fn serve(py: Python<'_>, label: &str, run_task: Bound<'_, PyAny>) -> PyResult<()> {
    let replies = shoal::dataset::task::take_stdout().map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
    serve_with(label, replies, |task| compute(py, &run_task, task))
}

fn compute(py: Python<'_>, run_task: &Bound<'_, PyAny>, task: ExecTask) -> io::Result<ExecOutput> {
    let (input, is_file) = match &task.input {
        ExecInput::File(path) => (path.clone().into_pyobject(py).map_err(io::Error::other)?.into_any(), true),
        ExecInput::Data(data) => (PyBytes::new(py, data).into_any(), false),
    };
    let args = (task.stage, task.partition, input, is_file, task.output_path.as_str(), task.inline_max);
    let result = run_task.call1(args).map_err(|e| py_error(py, e))?;
    if result.is_none() {
        return Ok(ExecOutput::File);
    }
    let mut out = Spill::new(task.inline_max as usize, Path::new(&task.output_path));
    if let Ok(bytes) = result.cast::<PyBytes>() {
        out.write_all(bytes.as_bytes())?;
        return out.finish();
    }
    // An iterable of chunks: written as they come, so that a large output
    // goes to the file without being held whole.
    for chunk in result.try_iter().map_err(|e| py_error(py, e))? {
        let chunk = chunk.map_err(|e| py_error(py, e))?;
        out.write_all(chunk.cast::<PyBytes>().map_err(|e| io::Error::other(e.to_string()))?.as_bytes())?;
    }
    out.finish()
}

fn py_error(py: Python<'_>, e: PyErr) -> io::Error {
    io::Error::other(e.value(py).to_string())
}
