//! The driver of a Python program: Shoal's flags, and each job the
//! Python planner (`shoal/context.py`) cut from the plan, run through the
//! same [`Session`] as a Rust Dataset program's jobs.
//!
//! Python decides what a job computes (a pickled `JobPlan` it writes to
//! the session dir); this side owns the map partitions (cut, written or
//! materialized, kept by key for later jobs), the command that starts
//! the executor on a host, what is synced there (the plan file and the
//! package under `.shoal-python/`), and where the output goes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shoal::dataset::flags;
use shoal::dataset::session::{JobRun, Session};
use shoal_core::job::{InputPart, Merge, ParamValue, Partitioner};

use crate::agent_binary::agent_binary;
use crate::ShoalError;

/// Where the package is synced in every work dir (relative to it).
const PACKAGE_DIR: &str = ".shoal-python";

/// The command of every task: the executor, on the host's Python (or
/// `$SHOAL_PYTHON`), importing the synced package first.
fn task_command(plan_file: &str) -> String {
    format!(
        "PYTHONPATH=\"$PWD/{PACKAGE_DIR}${{PYTHONPATH:+:$PYTHONPATH}}\" exec \"${{SHOAL_PYTHON:-python3}}\" -m shoal._executor {plan_file}"
    )
}

/// A `shoal::Error` as a `ShoalError` carrying the documented exit code.
pub fn to_py(py: Python<'_>, e: shoal::Error) -> PyErr {
    let err = ShoalError::new_err(e.to_string());
    let _ = err.value(py).setattr("exit_code", e.exit_code());
    err
}

#[pyclass(unsendable)]
pub struct Driver {
    session: Session,
    /// Map partitions by key: sources once cut, jobs once materialized.
    parts: HashMap<String, Vec<InputPart>>,
}

#[pymethods]
impl Driver {
    /// `argv` is the program's arguments (`sys.argv[1:]`); the keyword
    /// settings override the flags.
    #[new]
    #[pyo3(signature = (argv, program, cluster=None, partitions=None, quiet=None, resume=None))]
    fn new(
        py: Python<'_>,
        argv: Vec<String>,
        program: &str,
        cluster: Option<PathBuf>,
        partitions: Option<u32>,
        quiet: Option<bool>,
        resume: Option<bool>,
    ) -> PyResult<Self> {
        let mut f = flags::parse(&argv).map_err(|e| to_py(py, e))?;
        f.cluster = cluster.or(f.cluster);
        f.partitions = partitions.or(f.partitions);
        f.quiet = quiet.unwrap_or(f.quiet);
        f.resume = resume.unwrap_or(f.resume);
        agent_binary()?;
        let session = Session::new(f, program).map_err(|e| to_py(py, e))?;
        Ok(Driver { session, parts: HashMap::new() })
    }

    /// The program's own arguments (Shoal's flags taken out).
    #[getter]
    fn args(&self) -> Vec<String> {
        self.session.flags().program_args.clone()
    }

    /// Default partitions of a shuffle: `--partitions`, else one per slot.
    #[getter]
    fn slots(&self) -> u32 {
        self.session.slots()
    }

    /// `--quiet` (or `quiet=True`): no progress, no notes.
    #[getter]
    fn quiet(&self) -> bool {
        self.session.flags().quiet
    }

    /// `--partitions`, when given.
    #[getter]
    fn partitions(&self) -> Option<u32> {
        self.session.flags().partitions
    }

    /// The session dir, where the plan files and the package copy go.
    #[getter]
    fn session_dir(&self) -> String {
        self.session.dir().display().to_string()
    }

    #[getter]
    fn package_dir(&self) -> String {
        self.session.dir().join(PACKAGE_DIR).display().to_string()
    }

    fn check_input(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        self.session.check_input(path).map_err(|e| to_py(py, e))
    }

    /// Partitions of `key` so far (`None` until made).
    fn part_count(&self, key: &str) -> Option<usize> {
        self.parts.get(key).map(Vec::len)
    }

    /// Cuts a text file (or a directory of them) into partitions, kept as `key`.
    #[pyo3(signature = (key, site, path, partitions=None))]
    fn text_parts(&mut self, py: Python<'_>, key: &str, site: &str, path: &str, partitions: Option<u32>) -> PyResult<usize> {
        let parts = self.session.text_parts(site, key, path, partitions).map_err(|e| to_py(py, e))?;
        Ok(self.keep(key, parts))
    }

    /// Partitions made in memory (each `bytes`), kept as `key`.
    fn memory_parts(&mut self, py: Python<'_>, key: &str, op: &str, data: Vec<Vec<u8>>) -> PyResult<usize> {
        let parts = self.session.memory_parts(op, key, data.iter().map(Vec::as_slice)).map_err(|e| to_py(py, e))?;
        Ok(self.keep(key, parts))
    }

    /// One partition per host (`host\npath`, pinned there), kept as `key`.
    fn host_parts(&mut self, py: Python<'_>, key: &str, path: &str) -> PyResult<usize> {
        let parts = self.session.host_parts("text_file_on_hosts", key, path).map_err(|e| to_py(py, e))?;
        Ok(self.keep(key, parts))
    }

    /// Runs job `index`, whose plan Python wrote to `plan_file` (relative
    /// to the session dir), over the partitions of `roots` in order.
    /// `shuffle` is `(partitions, "hash" | "range")`; `sink` is `result`
    /// (the merged output comes back as bytes), `materialize` (the parts
    /// are kept as `job-<index>`) or `text` (merged into `path`).
    #[pyo3(signature = (index, roots, plan_file, shuffle, sink, path, site))]
    #[allow(clippy::too_many_arguments)]
    fn run_job<'py>(
        &mut self,
        py: Python<'py>,
        index: u32,
        roots: Vec<String>,
        plan_file: &str,
        shuffle: Option<(u32, String)>,
        sink: &str,
        path: Option<PathBuf>,
        site: String,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut parts = Vec::new();
        for root in &roots {
            let p = self.parts.get(root).ok_or_else(|| ShoalError::new_err(format!("internal: {root} has no partitions yet")))?;
            parts.extend(p.iter().cloned());
        }
        let jobs = self.session.dir().join("jobs");
        let (output, merge) = match (sink, path) {
            ("result", _) => (jobs.join(format!("{index}.out")), Merge::Concat),
            ("materialize", _) => (jobs.join(index.to_string()), Merge::None),
            ("text", Some(p)) => (p, Merge::Concat),
            _ => return Err(ShoalError::new_err(format!("internal: unknown sink {sink:?}"))),
        };
        let plan = std::fs::read(self.session.dir().join(plan_file))?;
        let reduce = shuffle.map(|(n, kind)| (n, if kind == "range" { Partitioner::Modulo } else { Partitioner::Hash }));
        let params = BTreeMap::from([
            ("job".to_string(), ParamValue::Int(i64::from(index))),
            ("python_plan".to_string(), ParamValue::Str(blake3::hash(&plan).to_hex().to_string())),
        ]);
        let job = JobRun {
            index,
            parts,
            reduce,
            command: task_command(plan_file),
            params,
            sync: vec![PACKAGE_DIR.to_string(), plan_file.to_string()],
            output: output.clone(),
            merge,
            site,
            setup: false,
        };
        // Other Python threads run while the job does.
        let session = &self.session;
        let materialize = sink == "materialize";
        let ran = py.detach(|| match materialize {
            true => session.materialize(job).map(Some),
            false => session.run(job).map(|_| None),
        });
        let made = match ran {
            Ok(made) => made,
            Err(e) => {
                if e.exit_code() == 130 {
                    // The engine saw the Ctrl-C and stopped the run; Python saw
                    // it too: its KeyboardInterrupt would only repeat it.
                    let _ = py.check_signals();
                }
                return Err(to_py(py, e));
            }
        };
        if let Some(parts) = made {
            self.keep(&format!("job-{index}"), parts);
            return Ok(None);
        }
        match sink {
            "result" => {
                let raw = std::fs::read(&output)?;
                let _ = std::fs::remove_file(&output);
                Ok(Some(PyBytes::new(py, &raw)))
            }
            _ => Ok(None),
        }
    }

    /// The hosts, in the cluster file's order: `(name, local, env)`, with
    /// `env` the variables the cluster file gives the host's tasks.
    fn hosts(&self) -> Vec<(String, bool, BTreeMap<String, String>)> {
        self.session.cluster().hosts.iter().map(|h| (h.name.clone(), self.session.is_local(&h.name), h.env.clone())).collect()
    }

    /// The cluster file's `[python]` table: `(python, python_on,
    /// requirements, wheels)`, paths resolved against the file's dir.
    fn python_config(&self) -> (Option<String>, BTreeMap<String, String>, Option<PathBuf>, Option<PathBuf>) {
        let cluster = self.session.cluster();
        let p = &cluster.python;
        let source = cluster.source.as_deref();
        (p.python.clone(), p.python_on.clone(), p.requirements_path(source), p.wheels_path(source))
    }

    /// Sets variable `key` for every later task on host `name`.
    fn set_host_env(&mut self, py: Python<'_>, name: &str, key: &str, value: &str) -> PyResult<()> {
        self.session.set_host_env(name, key, value).map_err(|e| to_py(py, e))
    }

    /// Leaves host `name` out of the later jobs (`why` words the refusal
    /// when it is the last host).
    fn leave_out(&mut self, py: Python<'_>, name: &str, why: &str) -> PyResult<()> {
        self.session.leave_out(name, why).map_err(|e| to_py(py, e))
    }

    /// Runs `command` once on every host (a task pinned to each, not
    /// resident, never resumed) with `sync` (paths under the session dir)
    /// in its work dir; returns the tasks' outputs, in host order.
    fn run_setup<'py>(&mut self, py: Python<'py>, command: String, sync: Vec<String>) -> PyResult<Bound<'py, PyBytes>> {
        let parts = self.session.host_parts("python-setup", "python-setup", "-").map_err(|e| to_py(py, e))?;
        let output = self.session.dir().join("jobs").join("setup.out");
        let job = JobRun {
            index: 0,
            parts,
            reduce: None,
            command,
            params: BTreeMap::new(),
            sync,
            output: output.clone(),
            merge: Merge::Concat,
            site: "the check of every host's Python".into(),
            setup: true,
        };
        let session = &self.session;
        py.detach(|| session.run(job)).map_err(|e| to_py(py, e))?;
        let raw = std::fs::read(&output)?;
        let _ = std::fs::remove_file(&output);
        Ok(PyBytes::new(py, &raw))
    }

    /// End of a successful program: the session's scratch goes.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        self.session.finish().map_err(|e| to_py(py, e))
    }
}

impl Driver {
    fn keep(&mut self, key: &str, parts: Vec<InputPart>) -> usize {
        let n = parts.len();
        self.parts.insert(key.to_string(), parts);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_command_imports_the_synced_package_first() {
        assert_eq!(
            task_command("plans/3.pkl"),
            "PYTHONPATH=\"$PWD/.shoal-python${PYTHONPATH:+:$PYTHONPATH}\" exec \"${SHOAL_PYTHON:-python3}\" -m shoal._executor plans/3.pkl"
        );
    }
}
