//! The driver side of a Dataset program: each job becomes a command job
//! (a [`JobSpec`] built in memory) whose tasks run this executable, and
//! goes through `driver::run` like any other: sync, scheduling, retries,
//! host loss, the keyed shuffle, the journal and resume.
//!
//! - Map inputs are the partitions of the job's roots, handed over as
//!   byte ranges ([`InputPart`]): a text file cut at line boundaries,
//!   files of records for `parallelize` and `range`, or the parts of a
//!   materialized dataset, which the hosts that computed them still hold
//!   (so they run there and nothing is sent again).
//! - A shuffle is the job's `[reduce]`: keyed lines, hash-partitioned (or
//!   range-partitioned by `key mod R` on a bucket number for a sort).
//! - Results are written under the session dir and synced to every later
//!   job's work dir as `results/<job>`, which is how tasks replaying the
//!   program get them.
//! - Each job's params carry its number, the layout of its map partitions,
//!   the plan description, the default partitions and this executable's
//!   hash; the hash makes a rebuilt program's tasks new identities, so
//!   `--resume` never reuses output of other code.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use shoal_core::cluster::ClusterSpec;
use shoal_core::job::{InputPart, JobSpec};

use super::context::{JobPlan, Purpose};
use super::flags::DriverFlags;
use super::node::{Kind, Node, NodeId, Source};
use crate::driver::input::{self, SplitPlan};
use crate::driver::run::{self, prepare::PARTITIONS_PER_SLOT, private, RunOptions};
use crate::{quote, Error, Result};

/// Where a task finds the result of an earlier job (relative to its work dir).
pub fn result_path(job: u32) -> PathBuf {
    PathBuf::from("results").join(job.to_string())
}

/// The driver's state across the jobs of one program run.
pub struct Driver {
    rt: tokio::runtime::Runtime,
    cluster: ClusterSpec,
    flags: DriverFlags,
    /// Scratch of this program run: inputs, results, outputs.
    session: PathBuf,
    state_dir: PathBuf,
    program: String,
    binary_hash: String,
    slots: u32,
    /// Map partitions of roots already cut or materialized, by node.
    parts: RefCell<HashMap<NodeId, Vec<InputPart>>>,
    /// Sync paths of the results so far.
    results: RefCell<Vec<String>>,
}

impl Driver {
    pub fn new(flags: DriverFlags) -> Result<Driver> {
        let cluster = load_cluster(flags.cluster.as_deref())?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let slots = cluster.hosts.iter().map(|h| h.slots.unwrap_or(cores)).sum::<u32>().max(1);
        let exe = crate::binary::current().map_err(|e| Error::io("cannot read this program's executable", e))?;
        let program = exe.path.file_stem().map_or("program".into(), |s| s.to_string_lossy().into_owned());
        let cwd = std::env::current_dir().map_err(|e| Error::io("cannot find the current directory", e))?;
        let state_dir = cwd.join(".shoal");
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let session = state_dir.join("dataset").join(format!("{program}-{stamp}-{}", std::process::id()));
        private::dir(&session.join("results")).map_err(|e| Error::io(format!("cannot create {}", session.display()), e))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the driver's runtime", e))?;
        Ok(Driver {
            rt,
            cluster,
            flags,
            session,
            state_dir,
            program,
            binary_hash: exe.hash.clone(),
            slots,
            parts: RefCell::new(HashMap::new()),
            results: RefCell::new(Vec::new()),
        })
    }

    /// Default partitions of a shuffle: `--partitions`, else one per slot.
    pub fn slots(&self) -> u32 {
        self.flags.partitions.unwrap_or(self.slots)
    }

    /// Refuses a missing input, or one that is not a regular file or
    /// directory (a FIFO would hang the read), at the call that names it.
    pub fn check_input(&self, path: &str) -> Result<()> {
        std::fs::metadata(path).map_err(|e| {
            let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
            Error::Usage(format!("text_file({path:?}): cannot read it ({e}); relative paths start in {cwd}, where the program was started"))
        })?;
        let inner = std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path());
        for p in std::iter::once(PathBuf::from(path)).chain(inner) {
            if let Some(kind) = crate::driver::input::special_kind(&p) {
                return Err(Error::Usage(format!(
                    "text_file({path:?}): {} is {kind}, not a regular file or directory; text_file reads only files",
                    p.display()
                )));
            }
        }
        Ok(())
    }

    /// Runs one job to the end; returns its raw result for `Purpose::Result`.
    pub(crate) fn run(&self, plan: &JobPlan, purpose: &Purpose) -> Result<Option<Vec<u8>>> {
        let mut layout = Vec::new();
        let mut parts = Vec::new();
        for root in &plan.map_roots {
            let p = self.root_parts(root)?;
            layout.push(p.len().to_string());
            parts.extend(p);
        }
        let output = match purpose {
            Purpose::Result => self.session.join("jobs").join(format!("{}.out", plan.index)),
            Purpose::Materialize => self.session.join("jobs").join(plan.index.to_string()),
            Purpose::SaveText(path) => path.clone(),
        };
        let job = self.job_spec(plan, parts, &layout.join(","), &output, purpose)?;
        let opts = RunOptions {
            state_dir: self.state_dir.clone(),
            dry_run: false,
            resume: self.resume_for(&job.job.name),
            speculate: self.flags.speculate,
            quiet: self.flags.quiet,
            resume_hint: Some("rerun the program with --resume to reuse the tasks that finished".into()),
        };
        self.rt.block_on(run::run(&self.cluster, &job, &opts))?;
        self.keep_output(plan, purpose, &output)
    }

    fn keep_output(&self, plan: &JobPlan, purpose: &Purpose, output: &Path) -> Result<Option<Vec<u8>>> {
        match purpose {
            Purpose::Result => {
                let raw = std::fs::read(output).map_err(|e| Error::io(format!("cannot read {}", output.display()), e))?;
                let rel = result_path(plan.index);
                let dest = self.session.join(&rel);
                std::fs::rename(output, &dest).map_err(|e| Error::io(format!("cannot keep {}", dest.display()), e))?;
                self.results.borrow_mut().push(rel.display().to_string());
                Ok(Some(raw))
            }
            Purpose::Materialize => {
                let parts = materialized_parts(output)?;
                self.parts.borrow_mut().insert(plan.node.id, parts);
                Ok(None)
            }
            Purpose::SaveText(_) => Ok(None),
        }
    }

    /// The map partitions of one root, cut or written once per program run.
    fn root_parts(&self, root: &Node) -> Result<Vec<InputPart>> {
        if let Some(p) = self.parts.borrow().get(&root.id) {
            return Ok(p.clone());
        }
        let parts = match &root.kind {
            Kind::Source(Source::Text { path, partitions }) => self.text_parts(root, path, *partitions)?,
            Kind::Source(Source::Records { parts }) => self.write_parts(root, parts.iter().map(|p| p.as_slice()))?,
            Kind::Source(Source::Range { start, end, partitions }) => {
                let ranges = range_parts(*start, *end, *partitions);
                self.write_parts(root, ranges.iter().map(|r| r.as_bytes()))?
            }
            Kind::Source(Source::HostText { path }) => {
                // One partition per host, pinned there; it names the host and the path.
                let names: Vec<String> = self.cluster.hosts.iter().map(|h| h.name.clone()).collect();
                let specs: Vec<String> = names.iter().map(|h| format!("{h}\n{path}")).collect();
                let mut parts = self.write_parts(root, specs.iter().map(|s| s.as_bytes()))?;
                for (p, h) in parts.iter_mut().zip(names) {
                    p.name = format!("{h}:{path}");
                    p.host = Some(h);
                }
                parts
            }
            _ => return Err(Error::Usage(format!("internal: {} is read before it was materialized", root.site()))),
        };
        self.parts.borrow_mut().insert(root.id, parts.clone());
        Ok(parts)
    }

    fn text_parts(&self, root: &Node, path: &str, partitions: Option<u32>) -> Result<Vec<InputPart>> {
        let full = Path::new(path);
        let plan = if full.is_dir() {
            SplitPlan::Files
        } else {
            SplitPlan::Lines { partitions: partitions.or(self.flags.partitions).unwrap_or(self.slots * PARTITIONS_PER_SLOT) }
        };
        let scratch = self.session.join("inputs").join(root.id.to_string());
        let cut = input::split(full, &plan, &scratch).map_err(|e| Error::Usage(format!("{}: {e}", root.site())))?;
        Ok(cut
            .into_iter()
            .map(|p| InputPart {
                data: None,
                path: p.source.path,
                offset: p.source.offset,
                len: p.source.len,
                name: p.name,
                hash: Some(p.source.hash),
                host: None,
            })
            .collect())
    }

    /// Partitions made in memory (`parallelize`, `range`, host files):
    /// small ones stay in memory and travel inside their task requests,
    /// larger ones are written to the session dir and sent as blocks.
    fn write_parts<'a>(&self, root: &Node, data: impl Iterator<Item = &'a [u8]>) -> Result<Vec<InputPart>> {
        let dir = self.session.join("inputs").join(root.id.to_string());
        data.enumerate()
            .map(|(i, bytes)| {
                let name = format!("{}-{i}", root.op);
                let hash = Some(*blake3::hash(bytes).as_bytes());
                let len = bytes.len() as u64;
                if bytes.len() <= shoal_wire::INLINE_MAX {
                    return Ok(InputPart { data: Some(bytes.into()), path: PathBuf::new(), offset: 0, len, name, hash, host: None });
                }
                private::dir(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
                let path = dir.join(format!("part-{i:05}"));
                private::create(&path)
                    .and_then(|mut f| f.write_all(bytes))
                    .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
                Ok(InputPart { data: None, path, offset: 0, len, name, hash, host: None })
            })
            .collect()
    }

    fn job_spec(&self, plan: &JobPlan, parts: Vec<InputPart>, layout: &str, output: &Path, purpose: &Purpose) -> Result<JobSpec> {
        let name = format!("{}-{}", self.program, plan.index);
        let command = self.task_command()?;
        let merge = if matches!(purpose, Purpose::Materialize) { "none" } else { "concat" };
        let mut text = format!(
            "[job]\nname = {}\n[input]\nargs = [\"-\"]\n[map]\ncommand = {}\n[output]\npath = {}\nmerge = \"{merge}\"\n",
            toml_str(&name),
            toml_str(&command),
            toml_str(&output.display().to_string()),
        );
        if let Some(Kind::Shuffle(sh)) = plan.shuffle.as_ref().map(|s| &s.kind) {
            let (partitions, partitioner) = match &sh.range {
                Some(r) => (r.splits.borrow().as_ref().map_or(0, Vec::len) as u32 + 1, "modulo"),
                None => (sh.partitions.unwrap_or(self.slots()), "hash"),
            };
            text.push_str(&format!(
                "[reduce]\ncommand = {}\npartitions = {partitions}\npartitioner = \"{partitioner}\"\n",
                toml_str(&command)
            ));
            if let Some(b) = self.flags.sort_buffer {
                text.push_str(&format!("sort_buffer = {b}\n"));
            }
        }
        text.push_str(&format!(
            "[params]\njob = {}\nlayout = {}\nplan = {}\nslots = {}\nbinary = {}\n",
            plan.index,
            toml_str(layout),
            toml_str(&plan.description),
            self.slots(),
            toml_str(&self.binary_hash)
        ));
        let mut job = JobSpec::parse(&text, &self.session.join(format!("{name}.toml")))
            .map_err(|e| Error::Usage(format!("internal: the job made for {} is invalid: {e}", plan.node.site())))?;
        job.input.parts = Some(parts);
        // Tasks of this program can stay up and run one task after another.
        job.map.resident = true;
        if let Some(r) = job.reduce.as_mut() {
            r.step.resident = true;
        }
        job.sync.files = self.results.borrow().clone();
        job.sync.max_size = u64::MAX;
        Ok(job)
    }

    /// Tasks run this executable on the host, with the program's arguments.
    fn task_command(&self) -> Result<String> {
        let args: Vec<String> = self
            .flags
            .program_args
            .iter()
            .map(|a| quote::word(a).map_err(|e| Error::Usage(format!("a program argument cannot be passed to the tasks: {e}"))))
            .collect::<Result<_>>()?;
        let mut cmd = String::from("SHOAL_ROLE=task exec \"$SHOAL_AGENT_BINARY\"");
        for a in args {
            cmd.push(' ');
            cmd.push_str(&a);
        }
        Ok(cmd)
    }

    /// With `--resume`: the latest earlier run of the same job.
    fn resume_for(&self, name: &str) -> Option<String> {
        if !self.flags.resume {
            return None;
        }
        let entries = std::fs::read_dir(self.state_dir.join("runs")).ok()?;
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|id| {
                run_job_name(id) == Some(run::prepare::safe_job_name(name).as_str())
                    && self.state_dir.join("runs").join(id).join("journal.jsonl").exists()
            })
            .collect();
        ids.sort();
        ids.pop()
    }

    /// End of a successful program: the session's scratch goes (run dirs,
    /// journals and logs stay under `.shoal/runs`).
    pub fn finish(&self) -> Result<()> {
        let _ = std::fs::remove_dir_all(&self.session);
        Ok(())
    }
}

/// The job name inside a run id (`YYYYMMDD-HHMMSS-<name>-<hex4>`).
fn run_job_name(id: &str) -> Option<&str> {
    let rest = id.get(16..)?;
    Some(rest.rsplit_once('-')?.0)
}

/// A TOML basic string (JSON's escapes are TOML's).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `start end` of each of `n` nearly equal ranges.
fn range_parts(start: i64, end: i64, n: u32) -> Vec<String> {
    let len = (end - start).max(0) as i128;
    (0..n as i128).map(|i| format!("{} {}", start as i128 + len * i / n as i128, start as i128 + len * (i + 1) / n as i128)).collect()
}

/// The part files of a materialized job, in partition order.
fn materialized_parts(dir: &Path) -> Result<Vec<InputPart>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-")))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let len = std::fs::metadata(&path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?.len();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Ok(InputPart { data: None, path, offset: 0, len, name, hash: None, host: None })
        })
        .collect()
}

fn load_cluster(flag: Option<&Path>) -> Result<ClusterSpec> {
    let env = std::env::var_os("SHOAL_CLUSTER").map(PathBuf::from);
    crate::driver::specs::find_cluster(flag.map(Path::to_path_buf).or(env).as_deref())
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
    fn run_ids_name_their_job() {
        assert_eq!(run_job_name("20261201-231055-wordcount-3-ab12"), Some("wordcount-3"));
        assert_eq!(run_job_name("short"), None);
    }
}
