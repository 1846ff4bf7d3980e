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
//!   the plan description and the default partitions (a
//!   [`shoal_wire::task_env::ReplayEnv`], which the task reads back), and
//!   this executable's hash; the hash makes a rebuilt program's tasks new
//!   identities, so `--resume` never reuses output of other code.
//! - The job is written as a job file by core's writer
//!   (`JobSpec::to_toml`) and parsed back, so it is checked like any job
//!   file; no text is quoted by hand.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use shoal_core::cluster::ClusterSpec;
use shoal_core::job::{InputPart, JobSpec, Merge, ParamValue, Partitioner};
use shoal_core::spec_error::SpecError;
use shoal_wire::task_env::{ReplayParam, ROLE_ENV, ROLE_TASK};

use super::flags::DriverFlags;
use super::node::{Kind, Node, NodeId, Source};
use super::plan::{result_path, JobPlan, Purpose};
use crate::driver::input::{self, SplitPlan};
use crate::driver::run::{self, prepare::PARTITIONS_PER_SLOT, private, RunOptions};
use crate::{quote, Error, Result};

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
        let state_dir = cwd.join(crate::driver::state::NAME);
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
            layout.push(p.len() as u32);
            parts.extend(p);
        }
        let output = match purpose {
            Purpose::Result => self.session.join("jobs").join(format!("{}.out", plan.index)),
            Purpose::Materialize => self.session.join("jobs").join(plan.index.to_string()),
            Purpose::SaveText(path) => path.clone(),
        };
        let job = self.job_spec(plan, parts, layout, &output, purpose)?;
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
            _ => return Err(Error::Internal(format!("{} is read before it was materialized", root.site()))),
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

    /// The command job of one job of the program; the map partitions and
    /// what no job file can say are set in memory.
    fn job_spec(&self, plan: &JobPlan, parts: Vec<InputPart>, layout: Vec<u32>, output: &Path, purpose: &Purpose) -> Result<JobSpec> {
        let name = format!("{}-{}", self.program, plan.index);
        let path = self.session.join(format!("{name}.toml"));
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
        let draft = Draft {
            name,
            command: self.task_command()?,
            output: output.display().to_string(),
            merge: if matches!(purpose, Purpose::Materialize) { Merge::None } else { Merge::Concat },
            reduce,
            sort_buffer: self.flags.sort_buffer,
            params,
        };
        let mut job =
            draft.into_spec(&path).map_err(|e| Error::Internal(format!("the job made for {} is invalid: {e}", plan.node.site())))?;
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
        let mut cmd = format!("{ROLE_ENV}={ROLE_TASK} exec \"$SHOAL_AGENT_BINARY\"");
        for a in args {
            cmd.push(' ');
            cmd.push_str(&a);
        }
        Ok(cmd)
    }

    /// With `--resume`: the latest earlier run of the same job.
    fn resume_for(&self, name: &str) -> Option<run::id::RunId> {
        if !self.flags.resume {
            return None;
        }
        crate::driver::state::StateDir::new(&self.state_dir).latest_for_job(name)
    }

    /// End of a successful program: the session's scratch goes (run dirs,
    /// journals and logs stay under `.shoal/runs`).
    pub fn finish(&self) -> Result<()> {
        let _ = std::fs::remove_dir_all(&self.session);
        Ok(())
    }
}

/// What a job of the program sets beyond the defaults: the same command
/// for both steps, the reduce's partitions and partitioner when it has a
/// shuffle.
struct Draft {
    name: String,
    command: String,
    output: String,
    merge: Merge,
    reduce: Option<(u32, Partitioner)>,
    sort_buffer: Option<u64>,
    params: BTreeMap<String, ParamValue>,
}

impl Draft {
    /// The job, written as a job file by core's writer and parsed back,
    /// so that it is checked as any job file is (its name, the size of
    /// its command and params, its reduce partitions); `path` names it in
    /// errors.
    fn into_spec(self, path: &Path) -> std::result::Result<JobSpec, SpecError> {
        let mut spec = JobSpec::parse(SKELETON, path)?;
        spec.job.name = self.name;
        spec.map.command = self.command.clone();
        spec.output.path = self.output;
        spec.output.merge = self.merge;
        let reduce = spec.reduce.take().zip(self.reduce);
        spec.reduce = reduce.map(|(mut r, (partitions, partitioner))| {
            r.step.command = self.command;
            r.partitions = Some(partitions);
            r.partitioner = partitioner;
            r.sort_buffer = self.sort_buffer.unwrap_or(r.sort_buffer);
            r
        });
        spec.params = self.params;
        JobSpec::parse(&spec.to_toml(), path)
    }
}

/// Every setting of a job at its default, a reduce included (dropped
/// when the job has no shuffle): where [`Draft::into_spec`] starts. It
/// holds no text of the program's; that goes in as typed fields.
const SKELETON: &str = "[input]\nargs = [\"-\"]\n[map]\ncommand = \"-\"\n[reduce]\ncommand = \"-\"\n[output]\npath = \"-\"\n";

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
    use shoal_wire::task_env::ReplayEnv;

    use super::*;

    #[test]
    fn ranges_cover_exactly() {
        assert_eq!(range_parts(0, 10, 3), ["0 3", "3 6", "6 10"]);
        assert_eq!(range_parts(5, 5, 2), ["5 5", "5 5"]);
        assert_eq!(range_parts(-4, 4, 2), ["-4 0", "0 4"]);
    }

    fn draft(reduce: Option<(u32, Partitioner)>, command: &str, plan: &str) -> Draft {
        let replay = ReplayEnv { job: 4, layout: vec![2, 3], plan: plan.into(), slots: 6 };
        let mut params: BTreeMap<String, ParamValue> = replay.to_params().into_iter().map(|(k, v)| (k.to_string(), param(v))).collect();
        params.insert("binary".into(), ParamValue::Str("ab12".into()));
        Draft {
            name: "prog-4".into(),
            command: command.into(),
            output: "/tmp/session/jobs/4.out".into(),
            merge: Merge::Concat,
            reduce,
            sort_buffer: None,
            params,
        }
    }

    #[test]
    fn a_job_with_a_shuffle_says_what_the_program_set_and_defaults_the_rest() {
        let mut d = draft(Some((5, Partitioner::Modulo)), "SHOAL_ROLE=task exec \"$SHOAL_AGENT_BINARY\" a", "job 4: #0 map");
        d.sort_buffer = Some(1 << 20);
        let spec = d.into_spec(Path::new("/tmp/session/prog-4.toml")).unwrap();
        assert_eq!(spec.job.name, "prog-4");
        assert_eq!(spec.map.command, "SHOAL_ROLE=task exec \"$SHOAL_AGENT_BINARY\" a");
        assert_eq!(spec.input.args.as_deref(), Some(&["-".to_string()][..]));
        assert_eq!((spec.output.path.as_str(), &spec.output.merge), ("/tmp/session/jobs/4.out", &Merge::Concat));
        let r = spec.reduce.expect("a shuffle is the job's reduce");
        assert_eq!(r.step.command, spec.map.command);
        assert_eq!((r.partitions, r.partitioner, r.sort_buffer), (Some(5), Partitioner::Modulo, 1 << 20));
        let env: Vec<(String, String)> = spec.params.iter().map(|(k, v)| (k.clone(), v.to_env())).collect();
        let want = [("binary", "ab12"), ("job", "4"), ("layout", "2,3"), ("plan", "job 4: #0 map"), ("slots", "6")];
        assert_eq!(env, want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(spec.params["job"], ParamValue::Int(4), "numbers stay numbers in $SHOAL_PARAMS");
    }

    #[test]
    fn a_job_without_a_shuffle_has_no_reduce_and_keeps_the_default_sort_buffer() {
        let spec = draft(None, "x", "p").into_spec(Path::new("prog-4.toml")).unwrap();
        assert_eq!(spec.reduce, None);
        let with = draft(Some((2, Partitioner::Hash)), "x", "p").into_spec(Path::new("prog-4.toml")).unwrap();
        let default = JobSpec::parse("[input]\nargs = [\"-\"]\n[map]\ncommand = \"x\"\n[reduce]\ncommand = \"x\"\n", Path::new("j.toml"));
        assert_eq!(with.reduce.unwrap().sort_buffer, default.unwrap().reduce.unwrap().sort_buffer);
    }

    #[test]
    fn any_text_in_a_command_or_plan_survives_the_job_file() {
        // JSON quoting left DEL (0x7f) raw, which TOML refuses in a string.
        let text = "a \"quoted\" \\ back\tslash\nline \u{7f} del \u{1b}[0m é ☃";
        let spec = draft(None, text, text).into_spec(Path::new("prog-4.toml")).unwrap();
        assert_eq!(spec.map.command, text);
        assert_eq!(spec.params["plan"], ParamValue::Str(text.into()));
    }

    #[test]
    fn a_plan_too_large_for_the_environment_is_refused_with_the_param_named() {
        let err = draft(None, "x", &"p".repeat(200 << 10)).into_spec(Path::new("prog-4.toml")).unwrap_err().to_string();
        assert!(err.contains("[params] plan is 204800 bytes; each param reaches every task as one environment variable"), "{err}");
    }
}
