//! The driver side of a Rust Dataset program: each job of the plan graph
//! becomes a [`JobRun`] whose tasks run this executable, run by the
//! [`Session`] (which the Python package's driver shares).
//!
//! - Map inputs are the partitions of the job's roots: a text file cut at
//!   line boundaries, records for `parallelize` and `range`, or the parts
//!   of a materialized dataset, which the hosts that computed them hold
//!   (so tasks run there, and a task elsewhere fetches its part from the
//!   holder; see [`Session::materialize`]).
//! - A shuffle is the job's `[reduce]`: keyed lines, hash-partitioned (or
//!   range-partitioned by `key mod R` on a bucket number for a sort).
//! - Results are written under the session dir and synced to every later
//!   job's work dir as `results/<job>`, which is how tasks replaying the
//!   program get them.
//! - Each job's params carry its number, the layout of its map partitions,
//!   the plan description and the default partitions (a
//!   [`shoal_wire::task_env::ReplayEnv`], which the task reads back), and
//!   this executable's hash; the hash makes a rebuilt program's tasks new
//!   identities, so `--resume` never reuses output of other code.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use shoal_core::job::{InputPart, Merge, ParamValue, Partitioner};
use shoal_wire::task_env::{ReplayParam, ROLE_ENV, ROLE_TASK};

use super::flags::DriverFlags;
use super::node::{Kind, Node, NodeId, Source};
use super::plan::{result_path, JobPlan, Purpose};
use super::session::{JobRun, Session};
use crate::{quote, Error, Result};

/// The driver's state across the jobs of one program run.
pub struct Driver {
    session: Session,
    binary_hash: String,
    /// Map partitions of roots already cut or materialized, by node.
    parts: RefCell<HashMap<NodeId, Vec<InputPart>>>,
    /// Sync paths of the results so far.
    results: RefCell<Vec<String>>,
}

impl Driver {
    pub fn new(flags: DriverFlags) -> Result<Driver> {
        let exe = crate::binary::current().map_err(|e| Error::io("cannot read this program's executable", e))?;
        let program = exe.path.file_stem().map_or("program".into(), |s| s.to_string_lossy().into_owned());
        Ok(Driver {
            session: Session::new(flags, &program)?,
            binary_hash: exe.hash.clone(),
            parts: RefCell::new(HashMap::new()),
            results: RefCell::new(Vec::new()),
        })
    }

    /// Default partitions of a shuffle: `--partitions`, else one per slot.
    pub fn slots(&self) -> u32 {
        self.session.slots()
    }

    /// Refuses a missing input, or one that is not a regular file or
    /// directory, at the call that names it.
    pub fn check_input(&self, path: &str) -> Result<()> {
        self.session.check_input(path)
    }

    /// Runs one job to the end; returns its raw result for `Purpose::Result`.
    pub(crate) fn run(&self, plan: &JobPlan, purpose: &Purpose) -> Result<Option<Vec<u8>>> {
        let mut layout = Vec::new();
        let mut parts = Vec::new();
        for root in &plan.map_roots {
            let p = self.root_parts(root)?;
            layout.push(p.len() as u32);
            parts.extend(p);
        }
        let dir = self.session.dir();
        let output = match purpose {
            Purpose::Result => dir.join("jobs").join(format!("{}.out", plan.index)),
            Purpose::Materialize => dir.join("jobs").join(plan.index.to_string()),
            Purpose::SaveText(path) => path.clone(),
        };
        let job = self.job_run(plan, parts, layout, &output, purpose)?;
        if matches!(purpose, Purpose::Materialize) {
            let parts = self.session.materialize(job)?;
            self.parts.borrow_mut().insert(plan.node.id, parts);
            return Ok(None);
        }
        self.session.run(job)?;
        self.keep_output(plan, purpose, &output)
    }

    fn keep_output(&self, plan: &JobPlan, purpose: &Purpose, output: &Path) -> Result<Option<Vec<u8>>> {
        match purpose {
            Purpose::Result => {
                let raw = std::fs::read(output).map_err(|e| Error::io(format!("cannot read {}", output.display()), e))?;
                let rel = result_path(plan.index);
                let dest = self.session.dir().join(&rel);
                std::fs::rename(output, &dest).map_err(|e| Error::io(format!("cannot keep {}", dest.display()), e))?;
                self.results.borrow_mut().push(rel.display().to_string());
                Ok(Some(raw))
            }
            Purpose::Materialize | Purpose::SaveText(_) => Ok(None),
        }
    }

    /// The map partitions of one root, cut or written once per program run.
    fn root_parts(&self, root: &Node) -> Result<Vec<InputPart>> {
        if let Some(p) = self.parts.borrow().get(&root.id) {
            return Ok(p.clone());
        }
        let key = root.id.to_string();
        let parts = match &root.kind {
            Kind::Source(Source::Text { path, partitions }) => self.session.text_parts(&root.site(), &key, path, *partitions)?,
            Kind::Source(Source::Records { parts }) => self.session.memory_parts(root.op, &key, parts.iter().map(|p| p.as_slice()))?,
            Kind::Source(Source::Range { start, end, partitions }) => {
                let ranges = range_parts(*start, *end, *partitions);
                self.session.memory_parts(root.op, &key, ranges.iter().map(|r| r.as_bytes()))?
            }
            Kind::Source(Source::HostText { path }) => self.session.host_parts(root.op, &key, path)?,
            _ => return Err(Error::Internal(format!("{} is read before it was materialized", root.site()))),
        };
        self.parts.borrow_mut().insert(root.id, parts.clone());
        Ok(parts)
    }

    /// The command job of one job of the program.
    fn job_run(&self, plan: &JobPlan, parts: Vec<InputPart>, layout: Vec<u32>, output: &Path, purpose: &Purpose) -> Result<JobRun> {
        let reduce = match plan.shuffle.as_ref().map(|s| &s.kind) {
            Some(Kind::Shuffle(sh)) => Some(match &sh.range {
                Some(r) => (r.splits.borrow().as_ref().map_or(0, Vec::len) as u32 + 1, Partitioner::Modulo),
                None => (sh.partitions.unwrap_or(self.slots()), Partitioner::Hash),
            }),
            _ => None,
        };
        let mut params: BTreeMap<String, ParamValue> =
            plan.replay_env(layout, self.slots()).to_params().into_iter().map(|(k, v)| (k.to_string(), param(v))).collect();
        params.insert("binary".into(), ParamValue::Str(self.binary_hash.clone()));
        Ok(JobRun {
            index: plan.index,
            parts,
            reduce,
            command: self.task_command()?,
            params,
            sync: self.results.borrow().clone(),
            output: output.to_path_buf(),
            merge: if matches!(purpose, Purpose::Materialize) { Merge::None } else { Merge::Concat },
            site: plan.node.site(),
            setup: false,
        })
    }

    /// Tasks run this executable on the host, with the program's arguments.
    fn task_command(&self) -> Result<String> {
        let args: Vec<String> = self
            .session
            .flags()
            .program_args
            .iter()
            .map(|a| quote::word(a).map_err(|e| Error::Usage(format!("a program argument cannot be passed to the tasks: {e}"))))
            .collect::<Result<_>>()?;
        let mut cmd = format!("{ROLE_ENV}={ROLE_TASK} exec \"$SHOAL_AGENT_BINARY\"");
        for a in args {
            cmd.push(' ');
            cmd.push_str(&a);
        }
        Ok(cmd)
    }

    /// End of a successful program: the session's scratch goes.
    pub fn finish(&self) -> Result<()> {
        self.session.finish()
    }
}

/// A replay value as a job param.
fn param(v: ReplayParam) -> ParamValue {
    match v {
        ReplayParam::Int(n) => ParamValue::Int(i64::from(n)),
        ReplayParam::Str(s) => ParamValue::Str(s),
    }
}

/// `start end` of each of `n` nearly equal ranges.
fn range_parts(start: i64, end: i64, n: u32) -> Vec<String> {
    let len = (end - start).max(0) as i128;
    (0..n as i128).map(|i| format!("{} {}", start as i128 + len * i / n as i128, start as i128 + len * (i + 1) / n as i128)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_exactly() {
        assert_eq!(range_parts(0, 10, 3), ["0 3", "3 6", "6 10"]);
        assert_eq!(range_parts(5, 5, 2), ["5 5", "5 5"]);
        assert_eq!(range_parts(-4, 4, 2), ["-4 0", "0 4"]);
    }

    #[test]
    fn replay_params_keep_numbers_numbers() {
        assert_eq!(param(ReplayParam::Int(4)), ParamValue::Int(4));
        assert_eq!(param(ReplayParam::Str("2,3".into())), ParamValue::Str("2,3".into()));
    }
}
