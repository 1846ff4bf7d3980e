//! One program run's driver state, whatever language the program is
//! written in: the cluster, Shoal's flags, the scratch (session) dir, and
//! how a job of the program becomes a command job ([`JobSpec`], built in
//! memory) and runs through `driver::run` like any other: sync,
//! scheduling, retries, host loss, the keyed shuffle, the journal and
//! resume.
//!
//! It knows nothing of plan graphs: the Rust Dataset driver (`jobs.rs`)
//! and the Python package's native driver each cut their plans into
//! [`JobRun`]s and hand them here, so both run jobs through this one
//! path.
//!
//! - Map inputs are byte ranges ([`InputPart`]): a text file cut at line
//!   boundaries ([`Session::text_parts`]), partitions made in memory
//!   ([`Session::memory_parts`]), or the parts of a materialized job
//!   ([`Session::materialize`]). On a cluster of remote hosts those stay
//!   in the block stores of the hosts that made them, and only there: a
//!   later task on another host fetches its part from the holder (directly
//!   where the two reach each other), and a part no host can give any
//!   more is made again by rerunning the job that made it. On this
//!   machine's own hosts they come back to the session dir.
//! - The job is written as a job file by core's writer
//!   (`JobSpec::to_toml`) and parsed back, so it is checked like any job
//!   file; no text is quoted by hand.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use shoal_core::cluster::ClusterSpec;
use shoal_core::job::{InputPart, InputSpec, JobSpec, Merge, ParamValue, Partitioner};
use shoal_core::spec_error::SpecError;

use super::flags::DriverFlags;
use crate::driver::input::{self, SplitPlan};
use crate::driver::run::{self, prepare::PARTITIONS_PER_SLOT, private, RunOptions};
use crate::{Error, Result};

/// The driver's state across the jobs of one program run.
pub struct Session {
    rt: tokio::runtime::Runtime,
    cluster: ClusterSpec,
    flags: DriverFlags,
    /// Scratch of this program run: inputs, results, outputs.
    dir: PathBuf,
    state_dir: PathBuf,
    program: String,
    slots: u32,
    /// The materialized jobs whose parts the hosts hold, to make again
    /// when a part is lost.
    made: Mutex<Vec<Made>>,
    /// Parts made again, by the hash of the part they replace.
    remade: Mutex<HashMap<[u8; 32], InputPart>>,
}

/// A materialized job whose parts the hosts hold.
struct Made {
    job: JobRun,
    parts: Vec<InputPart>,
}

/// Times a job is run again after its cached inputs were made again.
const REMAKES: u32 = 2;

/// One job of a program, as its driver cut it.
#[derive(Clone)]
pub struct JobRun {
    /// The job's number in the program run (`<program>-<index>` names it).
    pub index: u32,
    /// Map partitions, in task order.
    pub parts: Vec<InputPart>,
    /// Partitions and partitioner of the shuffle, when the job has one.
    pub reduce: Option<(u32, Partitioner)>,
    /// The command of both steps (run in the work dir, resident).
    pub command: String,
    pub params: BTreeMap<String, ParamValue>,
    /// Paths under the session dir every task finds in its work dir.
    pub sync: Vec<String>,
    pub output: PathBuf,
    pub merge: Merge,
    /// The program's call that made the job, for messages.
    pub site: String,
    /// A set-up job (the Python package's check of every host's
    /// interpreter and environment): named `<program>-setup`, its command
    /// runs once per task instead of serving tasks (not resident), and it
    /// is never resumed, since what it checks may have changed.
    pub setup: bool,
}

impl Session {
    /// A program run named `program` (its state and jobs are named after it).
    pub fn new(flags: DriverFlags, program: &str) -> Result<Session> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the driver's runtime", e))?;
        let on = flags.on.clone().or_else(|| std::env::var("SHOAL_ON").ok().filter(|v| !v.is_empty()));
        let cluster = match on {
            Some(on) if flags.cluster.is_none() => {
                rt.block_on(crate::standing::link::apply(&on, program)).map_err(|e| Error::Standing(e.to_string()))?
            }
            _ => load_cluster(flags.cluster.as_deref())?,
        };
        let slots = total_slots(&cluster);
        let cwd = std::env::current_dir().map_err(|e| Error::io("cannot find the current directory", e))?;
        let state_dir = cwd.join(crate::driver::state::NAME);
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let dir = state_dir.join("dataset").join(format!("{program}-{stamp}-{}", std::process::id()));
        private::dir(&dir.join("results")).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let (made, remade) = Default::default();
        Ok(Session { rt, cluster, flags, dir, state_dir, program: program.to_string(), slots, made, remade })
    }

    pub fn flags(&self) -> &DriverFlags {
        &self.flags
    }

    /// The scratch dir of this program run; synced paths are relative to it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// Names of the cluster's hosts, in the cluster file's order.
    pub fn hosts(&self) -> Vec<String> {
        self.cluster.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// Whether host `name` is reached as this machine's child process.
    pub fn is_local(&self, name: &str) -> bool {
        self.cluster.host(name).is_some_and(|h| h.transport == shoal_core::cluster::TransportKind::Local)
    }

    /// The cluster as loaded (with the changes below).
    pub fn cluster(&self) -> &ClusterSpec {
        &self.cluster
    }

    /// Sets variable `key` for every task on host `name` from now on.
    pub fn set_host_env(&mut self, name: &str, key: &str, value: &str) -> Result<()> {
        let host = self.cluster.hosts.iter_mut().find(|h| h.name == name);
        let host = host.ok_or_else(|| Error::Internal(format!("set_host_env: {name} is not a host of the cluster")))?;
        host.env.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Leaves host `name` out of the program's later jobs; refused when
    /// it is the last host, with `why` (the reason it is left out).
    pub fn leave_out(&mut self, name: &str, why: &str) -> Result<()> {
        if self.cluster.host(name).is_none() {
            return Err(Error::Internal(format!("leave_out: {name} is not a host of the cluster")));
        }
        if self.cluster.hosts.len() == 1 {
            return Err(Error::Usage(format!("{name}, the cluster's only host, cannot be used: {why}")));
        }
        self.cluster.hosts.retain(|h| h.name != name);
        self.slots = total_slots(&self.cluster);
        Ok(())
    }

    /// Default partitions of a shuffle: `--partitions`, else one per slot.
    pub fn slots(&self) -> u32 {
        self.flags.partitions.unwrap_or(self.slots)
    }

    /// Refuses a missing input, or one that is not a regular file or
    /// directory (a FIFO would hang the read), at the call that names it.
    pub fn check_input(&self, path: &str) -> Result<()> {
        let path = match InputSpec::shared_path(path) {
            Some(p) if !p.starts_with('/') => {
                return Err(Error::Usage(format!(
                    "text_file({path:?}): a shared: path is one every host sees the same way (NFS, a parallel file system): write it from the root, shared:/data/logs"
                )))
            }
            Some(p) => p,
            None => path,
        };
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

    /// A text file (or a directory of them) cut at line boundaries:
    /// `partitions`, else `--partitions`, else a few per slot. `key`
    /// names the scratch dir; `site` the call, in errors.
    /// A `shared:` path is only cut here; every host reads its ranges
    /// itself.
    pub fn text_parts(&self, site: &str, key: &str, path: &str, partitions: Option<u32>) -> Result<Vec<InputPart>> {
        let shared = InputSpec::shared_path(path);
        let full = Path::new(shared.unwrap_or(path));
        let plan = if full.is_dir() {
            SplitPlan::Files
        } else {
            SplitPlan::Lines { partitions: partitions.or(self.flags.partitions).unwrap_or(self.slots * PARTITIONS_PER_SLOT) }
        };
        let scratch = self.dir.join("inputs").join(key);
        let cut = match shared {
            Some(_) => input::split_shared(full, &plan),
            None => input::split(full, &plan, &scratch),
        }
        .map_err(|e| Error::Usage(format!("{site}: {e}")))?;
        Ok(cut
            .into_iter()
            .map(|p| InputPart {
                file_size: shared.and_then(|_| std::fs::metadata(&p.source.path).ok()).map(|m| m.len()),
                data: None,
                path: p.source.path,
                offset: p.source.offset,
                len: p.source.len,
                name: p.name,
                hash: Some(p.source.hash),
                host: None,
                held_on: None,
            })
            .collect())
    }

    /// Partitions made in memory (`parallelize`, `range`, host files),
    /// named `<op>-<i>`: small ones stay in memory and travel inside
    /// their task requests, larger ones are written to the session dir
    /// (under `key`) and sent as blocks.
    pub fn memory_parts<'a>(&self, op: &str, key: &str, data: impl Iterator<Item = &'a [u8]>) -> Result<Vec<InputPart>> {
        let dir = self.dir.join("inputs").join(key);
        data.enumerate()
            .map(|(i, bytes)| {
                let name = format!("{op}-{i}");
                let hash = Some(*blake3::hash(bytes).as_bytes());
                let len = bytes.len() as u64;
                if bytes.len() <= shoal_wire::INLINE_MAX {
                    return Ok(InputPart {
                        data: Some(bytes.into()),
                        path: PathBuf::new(),
                        offset: 0,
                        len,
                        name,
                        hash,
                        host: None,
                        file_size: None,
                        held_on: None,
                    });
                }
                private::dir(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
                let path = dir.join(format!("part-{i:05}"));
                private::create(&path)
                    .and_then(|mut f| f.write_all(bytes))
                    .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
                Ok(InputPart { data: None, path, offset: 0, len, name, hash, host: None, file_size: None, held_on: None })
            })
            .collect()
    }

    /// One partition per host, pinned there, whose data is `host\npath`:
    /// the task reads `path` on the host it runs on.
    pub fn host_parts(&self, op: &str, key: &str, path: &str) -> Result<Vec<InputPart>> {
        let names = self.hosts();
        let specs: Vec<String> = names.iter().map(|h| format!("{h}\n{path}")).collect();
        let mut parts = self.memory_parts(op, key, specs.iter().map(|s| s.as_bytes()))?;
        for (p, h) in parts.iter_mut().zip(names) {
            p.name = format!("{h}:{path}");
            p.host = Some(h);
        }
        Ok(parts)
    }

    /// Runs one job to the end (its output is where `job.output` says).
    /// A cached part it reads that no host can give any more is made
    /// again (the job that made it reruns), and the job runs again.
    pub fn run(&self, job: JobRun) -> Result<run::summary::RunSummary> {
        self.run_remaking(job, false).map(|(_, summary)| summary)
    }

    /// Runs a job whose output the program keeps for later jobs (a cached
    /// dataset, a shuffle another shuffle reads), and returns its parts:
    /// held by the hosts that made them on a cluster of remote hosts,
    /// else files of the session dir.
    pub fn materialize(&self, job: JobRun) -> Result<Vec<InputPart>> {
        let held = self.holds_parts();
        let (job, summary) = self.run_remaking(job, held)?;
        if !held {
            return materialized_parts(&job.output);
        }
        let parts = held_parts(&summary)?;
        self.made.lock().unwrap().push(Made { job, parts: parts.clone() });
        Ok(parts)
    }

    /// Runs a job, making its lost cached inputs again and running it
    /// again (at most [`REMAKES`] times); returns the job as it last ran.
    fn run_remaking(&self, mut job: JobRun, held: bool) -> Result<(JobRun, run::summary::RunSummary)> {
        for again in 0.. {
            self.swap_remade(&mut job.parts);
            match self.run_once(&job, held, false) {
                Err(Error::InputsLost { hashes, why }) if again < REMAKES => {
                    let why = why.lines().next().unwrap_or_default().to_string();
                    eprintln!("shoal: {}: {why}; making the lost cached parts again", job.site);
                    self.make_again(&hashes)?;
                }
                done => return done.map(|summary| (job, summary)),
            }
        }
        unreachable!("the loop returns")
    }

    /// Parts stay on the hosts when no host is this machine's child
    /// process (whose store is no nearer than the session dir).
    fn holds_parts(&self) -> bool {
        self.cluster.hosts.iter().all(|h| h.transport.is_remote())
    }

    /// Replaces the parts that were made again.
    fn swap_remade(&self, parts: &mut [InputPart]) {
        let remade = self.remade.lock().unwrap();
        for p in parts.iter_mut() {
            if let Some(new) = p.hash.and_then(|h| remade.get(&h)) {
                *p = new.clone();
            }
        }
    }

    /// Reruns (from scratch) every materialized job one of whose parts
    /// is lost, and notes the new parts.
    fn make_again(&self, lost: &[[u8; 32]]) -> Result<()> {
        let stale: Vec<usize> = {
            let made = self.made.lock().unwrap();
            (0..made.len()).filter(|&i| made[i].parts.iter().any(|p| p.hash.is_some_and(|h| lost.contains(&h)))).collect()
        };
        if stale.is_empty() {
            return Err(Error::Internal("a job lost cached parts that no job of the program made".into()));
        }
        for i in stale {
            let mut job = self.made.lock().unwrap()[i].job.clone();
            self.swap_remade(&mut job.parts);
            let parts = held_parts(&self.run_once(&job, true, true)?)?;
            let mut remade = self.remade.lock().unwrap();
            let mut made = self.made.lock().unwrap();
            for (old, new) in made[i].parts.iter().zip(&parts) {
                if let Some(h) = old.hash {
                    remade.insert(h, new.clone());
                }
            }
            made[i] = Made { job, parts };
        }
        Ok(())
    }

    /// One run of a job: `held`, its parts stay on the hosts; `fresh`,
    /// never resumed (its earlier run's parts are gone).
    fn run_once(&self, job: &JobRun, held: bool, fresh: bool) -> Result<run::summary::RunSummary> {
        let job = job.clone();
        let name = if job.setup { format!("{}-setup", self.program) } else { format!("{}-{}", self.program, job.index) };
        let path = self.dir.join(format!("{name}.toml"));
        let draft = Draft {
            name: name.clone(),
            command: job.command,
            output: job.output.display().to_string(),
            merge: job.merge,
            reduce: job.reduce,
            sort_buffer: self.flags.sort_buffer,
            params: job.params,
        };
        let site = job.site;
        let mut spec = draft.into_spec(&path).map_err(|e| Error::Internal(format!("the job made for {site} is invalid: {e}")))?;
        spec.input.parts = Some(job.parts);
        spec.output.held = held;
        // Tasks of a program can stay up and run one task after another.
        spec.map.resident = !job.setup;
        if let Some(r) = spec.reduce.as_mut() {
            r.step.resident = !job.setup;
        }
        spec.sync.files = job.sync;
        spec.sync.max_size = u64::MAX;
        let opts = RunOptions {
            state_dir: self.state_dir.clone(),
            dry_run: false,
            resume: if job.setup || fresh { None } else { self.resume_for(&name) },
            speculate: self.flags.speculate,
            quiet: self.flags.quiet,
            resume_hint: Some("rerun the program with --resume to reuse the tasks that finished".into()),
        };
        self.rt.block_on(run::run(&self.cluster, &spec, &opts))
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
        let _ = std::fs::remove_dir_all(&self.dir);
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

/// The parts of a materialized job held by the hosts that made them, in
/// partition order, from its run's summary.
fn held_parts(summary: &run::summary::RunSummary) -> Result<Vec<InputPart>> {
    let mut on_hosts = summary.parts_on_hosts.clone();
    on_hosts.sort_by_key(|p| p.partition);
    on_hosts
        .into_iter()
        .map(|p| {
            let hash = shoal_wire::unhex(&p.hash)
                .ok_or_else(|| Error::Internal(format!("part {} of a materialized job has no hash", p.partition)))?;
            Ok(InputPart {
                data: None,
                path: PathBuf::new(),
                offset: 0,
                len: p.bytes,
                name: format!("part-{:05}", p.partition),
                hash: Some(hash),
                host: None,
                file_size: None,
                held_on: Some(p.host),
            })
        })
        .collect()
}

/// The part files of a materialized job (its output dir), in partition order.
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
            Ok(InputPart { data: None, path, offset: 0, len, name, hash: None, host: None, file_size: None, held_on: None })
        })
        .collect()
}

/// Slots of all hosts (a host without `slots` counts this machine's
/// cores: the real count is known only once connected).
fn total_slots(cluster: &ClusterSpec) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    cluster.hosts.iter().map(|h| h.slots.unwrap_or(cores)).sum::<u32>().max(1)
}

fn load_cluster(flag: Option<&Path>) -> Result<ClusterSpec> {
    let env = std::env::var_os("SHOAL_CLUSTER").map(PathBuf::from);
    crate::driver::specs::find_cluster(flag.map(Path::to_path_buf).or(env).as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(reduce: Option<(u32, Partitioner)>, command: &str, plan: &str) -> Draft {
        let params = BTreeMap::from([
            ("binary".to_string(), ParamValue::Str("ab12".into())),
            ("job".to_string(), ParamValue::Int(4)),
            ("layout".to_string(), ParamValue::Str("2,3".into())),
            ("plan".to_string(), ParamValue::Str(plan.into())),
            ("slots".to_string(), ParamValue::Int(6)),
        ]);
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

    #[test]
    fn held_parts_come_in_partition_order_named_by_hash_and_holder() {
        let on = |partition: u32, host: &str, hash: String| run::summary::PartOnHost {
            partition,
            host: host.into(),
            path: String::new(),
            bytes: 10 + u64::from(partition),
            hash,
        };
        let mut summary = run::summary::RunSummary {
            parts_on_hosts: vec![on(1, "h2", "22".repeat(32)), on(0, "h1", "11".repeat(32))],
            ..Default::default()
        };
        let parts = held_parts(&summary).unwrap();
        let seen: Vec<(&str, Option<&str>, u64, [u8; 32])> =
            parts.iter().map(|p| (p.name.as_str(), p.held_on.as_deref(), p.len, p.hash.unwrap())).collect();
        assert_eq!(seen, [("part-00000", Some("h1"), 10, [0x11; 32]), ("part-00001", Some("h2"), 11, [0x22; 32])]);
        assert!(parts.iter().all(|p| p.data.is_none() && p.host.is_none()), "a held part is neither in memory nor pinned");
        summary.parts_on_hosts[0].hash = String::new();
        let err = held_parts(&summary).unwrap_err().to_string();
        assert!(err.contains("part 1 of a materialized job has no hash"), "{err}");
    }
}
