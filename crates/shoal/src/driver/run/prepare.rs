//! Everything decided before a single host is contacted: the run id and
//! dir, the sync manifest, the input partitions and the tasks with their
//! identities. Bad input fails here, before anything runs.

use std::path::Path;

use shoal_core::job::{JobSpec, Split};
use shoal_wire::hex;

use super::id::RunId;
use super::{guard, journal, output, private};
use crate::driver::blocks::Source;
use crate::driver::input::{self, Partition, SplitPlan};
use crate::driver::manifest::{self, ManifestFile, SyncRequest};
use crate::driver::state::{RunDir, StateDir};
use crate::{Error, Result};

/// One task of the plan: a map task per input partition, then (for a
/// keyed reduce) one reduce task per reduce partition.
#[derive(Clone, Debug)]
pub struct PlannedTask {
    /// 0 = map, 1 = reduce.
    pub stage: u32,
    pub partition: u32,
    pub input: Option<Source>,
    /// Name of the input it reads (file name, or the argument); shared
    /// with the task's output part.
    pub input_name: std::sync::Arc<str>,
    /// The argument of an argument job, passed to the task as `$SHOAL_ARG`.
    pub arg: Option<String>,
    pub identity: String,
    /// The host it must run on (a program's partition of host-local data).
    pub host: Option<String>,
}

/// The plan of one run.
pub struct Plan {
    pub run_id: RunId,
    /// The dir of `run_id` in the state dir.
    pub run_dir: RunDir,
    pub manifest: Vec<ManifestFile>,
    pub tasks: Vec<PlannedTask>,
    /// The params as JSON: they travel in each host's `RunEnv` and are
    /// written to the run's scratch there, never to a shared cache block.
    pub params: Vec<u8>,
    /// Every host reads its partitions' byte ranges itself, nothing is
    /// uploaded: a `shared:` path, or files that live on the hosts.
    pub shared_input: bool,
}

/// The longest argument of an argument job: Linux refuses an environment
/// variable (`$SHOAL_ARG`) over 128 KiB.
const MAX_ARG: usize = (128 << 10) - "SHOAL_ARG=".len() - 1;

/// Default partitions when the job file says nothing: a few per slot.
pub const PARTITIONS_PER_SLOT: u32 = 4;

/// Resolves the job against the local files. Everything that can be
/// checked without cutting the input is checked before the run dir is
/// made; a failure after it removes the run dir again.
/// `local_only`: every host is on this machine (the local transport), so
/// every host reads a file input in place and it is never hashed here.
pub fn prepare(job: &JobSpec, total_slots: u32, state_dir: &Path, local_only: bool) -> Result<Plan> {
    supported(job)?;
    check_input_kind(job)?;
    let sync_paths = sync_paths(job)?;
    guard::check_output(job, &sync_paths, state_dir)?;
    let manifest = sync_manifest(job, sync_paths, state_dir)?;
    let params = params_json(job)?;
    let run_id = RunId::now(&job.job.name);
    let run_dir = make_run_dir(state_dir, &run_id)?;
    let planned = tasks(job, total_slots, &run_dir, &manifest, &params, state_dir, local_only).and_then(|mut tasks| {
        tasks.extend(reduce_tasks(job, total_slots, &tasks));
        output_names(job, &tasks)?;
        Ok(tasks)
    });
    match planned {
        Ok(tasks) => Ok(Plan { run_id, run_dir, manifest, tasks, params, shared_input: job.input.in_place() }),
        Err(e) => {
            // Bad input: leave no half-made run behind.
            let _ = std::fs::remove_dir_all(run_dir.path());
            Err(e)
        }
    }
}

/// The run dir and the dirs the run fills, owner-only (`.shoal` too).
fn make_run_dir(state_dir: &Path, id: &RunId) -> Result<RunDir> {
    let state = StateDir::new(state_dir);
    state.create_run(id).map_err(|e| Error::io(format!("cannot create {}", state.run(id).path().display()), e))
}

/// Refuses an input that is not a regular file or directory (a FIFO would
/// hang the split forever).
fn check_input_kind(job: &JobSpec) -> Result<()> {
    match job.input_path() {
        Some(p) if job.input.parts.is_none() => input::check_kind(&p).map_err(Error::from),
        _ => Ok(()),
    }
}

/// Every path the job syncs, with the key that names it.
fn sync_paths(job: &JobSpec) -> Result<Vec<(String, &'static str)>> {
    let mut paths: Vec<(String, &'static str)> = job.sync.files.iter().map(|f| (f.clone(), "[sync] files")).collect();
    if let Some(list) = &job.sync.list_file {
        let full = job.resolve(list);
        input::check_regular(&full, "[sync] list_file", "point list_file at a regular file").map_err(Error::from)?;
        let text = input::read_to_string(&full).map_err(|e| Error::Usage(format!("[sync] list_file: {e}")))?;
        let listed = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
        paths.extend(listed.map(|l| (l.to_string(), "[sync] list_file")));
    }
    Ok(paths)
}

/// With `merge = "none"` every output file is named by the `[output]
/// name` pattern: refuse names that collide, before anything runs.
fn output_names(job: &JobSpec, tasks: &[PlannedTask]) -> Result<()> {
    if job.output.merge != shoal_core::job::Merge::None {
        return Ok(());
    }
    let collected = tasks.iter().filter(|t| t.stage == 1 || job.reduce.is_none());
    output::check_names(job.output.name.as_deref(), collected.map(|t| (t.partition, &*t.input_name)))
        .map_err(|e| Error::Usage(e.to_string()))
}

/// Refuses job features this build cannot run, before anything starts.
fn supported(job: &JobSpec) -> Result<()> {
    let unsupported = |what: &str| {
        Error::Usage(format!("{what} is not supported by this version of shoal yet; combine partial results with [output] merge = {{ command = \"...\" }} instead"))
    };
    if job.combine.is_some() && job.reduce.is_none() {
        return Err(unsupported("[combine] without [reduce]"));
    }
    if job.combine.as_ref().is_some_and(|c| c.image.is_some()) {
        return Err(Error::Usage(
            "[combine] image is not supported yet: the combiner runs on the host; do the combining in the reducer's image instead".into(),
        ));
    }
    Ok(())
}

fn sync_manifest(job: &JobSpec, sync_paths: Vec<(String, &str)>, state_dir: &Path) -> Result<Vec<ManifestFile>> {
    let paths = sync_paths.into_iter().map(|(p, _)| p).collect();
    let (force, exclude) = (&job.sync.force, &job.sync.exclude);
    let req = SyncRequest { base: &job.base_dir, paths, max_size: job.sync.max_size, force, exclude, state_dir };
    manifest::build(&req).map_err(Error::from)
}

/// The params as JSON, the content of `$SHOAL_PARAMS` on every host.
fn params_json(job: &JobSpec) -> Result<Vec<u8>> {
    let json: serde_json::Map<String, serde_json::Value> = job.params.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
    serde_json::to_vec_pretty(&json).map_err(|e| Error::Internal(format!("the params cannot be written as JSON: {e}")))
}

/// Where the params file lands in every work dir.
pub const PARAMS_PATH: &str = shoal_wire::PARAMS_PATH;

fn tasks(
    job: &JobSpec,
    total_slots: u32,
    run_dir: &RunDir,
    manifest: &[ManifestFile],
    params: &[u8],
    state_dir: &Path,
    local_only: bool,
) -> Result<Vec<PlannedTask>> {
    let context = context_hash(job, manifest, params);
    if let Some(args) = job.input.args.as_ref().filter(|_| job.input.parts.is_none()) {
        return args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if a.contains('\0') {
                    return Err(Error::Usage(format!(
                        "[input] args: argument {} ({a:?}) contains a NUL byte, which no command can receive",
                        i + 1
                    )));
                }
                if a.len() > MAX_ARG {
                    return Err(Error::Usage(format!(
                        "[input] args: argument {} is {} bytes; it reaches its task as the variable $SHOAL_ARG, and Linux refuses one over {MAX_ARG} bytes: put long data in a file and pass its name",
                        i + 1,
                        a.len()
                    )));
                }
                let identity = journal::identity(&[&context, a.as_bytes()]);
                Ok(PlannedTask {
                    stage: 0,
                    partition: i as u32,
                    input: None,
                    input_name: a.as_str().into(),
                    arg: Some(a.clone()),
                    identity,
                    host: None,
                })
            })
            .collect();
    }
    let parts = partitions(job, total_slots, run_dir, state_dir, local_only)?;
    let hosts: Vec<Option<String>> = job.input.parts.iter().flatten().map(|p| p.host.clone()).collect();
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| PlannedTask {
            stage: 0,
            partition: i as u32,
            identity: journal::identity(&[&context, &p.source.hash]),
            input_name: p.name.into(),
            input: Some(p.source),
            arg: None,
            host: hosts.get(i).cloned().flatten(),
        })
        .collect())
}

/// The reduce partitions: R = `[reduce] partitions`, or every slot.
pub fn reduce_count(job: &JobSpec, total_slots: u32) -> u32 {
    job.reduce.as_ref().map_or(0, |r| r.partitions.unwrap_or(total_slots.max(1)))
}

/// One reduce task per reduce partition; its identity covers the reduce
/// command and key, and every map task's identity (its whole input).
fn reduce_tasks(job: &JobSpec, total_slots: u32, maps: &[PlannedTask]) -> Vec<PlannedTask> {
    let Some(reduce) = &job.reduce else { return vec![] };
    let r_count = reduce_count(job, total_slots);
    let mut ctx = blake3::Hasher::new();
    ctx.update(b"reduce\0");
    ctx.update(reduce.step.command.as_bytes());
    ctx.update(
        format!("{:?}{:?}{:?}{:?}", reduce.key, reduce.sort, reduce.partitioner, job.combine.as_ref().map(|c| &c.command)).as_bytes(),
    );
    for m in maps {
        ctx.update(m.identity.as_bytes());
    }
    on_hosts(&mut ctx, job);
    let ctx = ctx.finalize();
    (0..r_count)
        .map(|r| PlannedTask {
            stage: 1,
            partition: r,
            input: None,
            input_name: format!("reduce-{r:05}").into(),
            arg: None,
            host: None,
            identity: journal::identity(&[ctx.as_bytes(), &r.to_le_bytes()]),
        })
        .collect()
}

/// An output kept on the hosts is part of a task's identity, with its
/// path and part names: `--resume` reuses a part only where the earlier
/// run put it on its host, never an output that came back here.
fn on_hosts(h: &mut blake3::Hasher, job: &JobSpec) {
    if job.output.on_hosts {
        h.update(b"on_hosts\0");
        h.update(job.output.path.as_bytes());
        h.update(b"\0");
        h.update(job.output.name.as_deref().unwrap_or("").as_bytes());
    }
}

/// Everything but the input that determines a map task's output.
fn context_hash(job: &JobSpec, manifest: &[ManifestFile], params: &[u8]) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(b"map\0");
    h.update(job.map.command.as_bytes());
    for (host, cmd) in &job.map.command_on {
        h.update(host.as_bytes());
        h.update(b"\0");
        h.update(cmd.as_bytes());
    }
    for m in manifest {
        h.update(m.entry.path.as_bytes());
        h.update(&m.entry.hash);
    }
    h.update(b"params\0");
    h.update(params);
    on_hosts(&mut h, job);
    h.finalize().as_bytes().to_vec()
}

fn partitions(job: &JobSpec, total_slots: u32, run_dir: &RunDir, state_dir: &Path, local_only: bool) -> Result<Vec<Partition>> {
    if let Some(parts) = &job.input.parts {
        return given_parts(parts);
    }
    let Some(full) = job.input_path() else {
        return Err(Error::Usage("the job has no input: set [input] path or args".into()));
    };
    let plan = split_plan(job, total_slots, &full)?;
    if job.input.is_shared() {
        // The hosts read the ranges themselves: named by where they are,
        // the input is never read whole here.
        return input::split_shared(&full, &plan).map_err(Error::from);
    }
    let unsized_lines = matches!(plan, SplitPlan::Lines { .. }) && job.input.partitions.is_none() && job.input.chunk.is_none();
    if let Some(cuts) = unsized_lines.then(|| crate::driver::transfer::pushed_cuts(state_dir, &full)).flatten() {
        // Split exactly as `shoal push --split` did: every chunk is already on a host.
        return input::at_cuts(&full, &cuts).map_err(Error::from);
    }
    if local_only && matches!(plan, SplitPlan::Lines { .. } | SplitPlan::Files) {
        // Every host is on this machine and reads the file in place.
        return input::split_shared(&full, &plan).map_err(Error::from);
    }
    let scratch = run_dir.input();
    if matches!(plan, SplitPlan::Hash { .. } | SplitPlan::Range { .. }) {
        // Routed partitions are copies of the input: owner-only, like the run.
        private::dir(&scratch).map_err(|e| Error::io(format!("cannot create {}", scratch.display()), e))?;
    }
    input::split(&full, &plan, &scratch).map_err(Error::from)
}

/// Partitions a program handed over (the Dataset API), each hashed so that
/// a host holding it already (a cached partition it computed) is not sent
/// it again. A partition held in memory stays there: it travels inside
/// its task requests. A partition held on a host (a cached part the
/// driver never had) is named by its hash alone.
fn given_parts(parts: &[shoal_core::job::InputPart]) -> Result<Vec<Partition>> {
    parts
        .iter()
        .map(|p| {
            let hash = match (p.hash, &p.data) {
                (Some(h), _) => h,
                (None, _) if p.held_on.is_some() => {
                    return Err(Error::Internal(format!("input partition {} is held on a host but has no hash", p.name)))
                }
                (None, Some(data)) => *blake3::hash(data).as_bytes(),
                (None, None) => crate::driver::blocks::hash_range(&p.path, p.offset, p.len)
                    .map_err(|e| Error::io(format!("cannot read input partition {}", p.path.display()), e))?,
            };
            let source = Source { path: p.path.clone(), offset: p.offset, len: p.len, hash, data: p.data.clone() };
            Ok(Partition { source, name: p.name.clone() })
        })
        .collect()
}

fn split_plan(job: &JobSpec, total_slots: u32, full: &Path) -> Result<SplitPlan> {
    let i = &job.input;
    let size = std::fs::metadata(full).map(|m| m.len()).unwrap_or(0);
    let count = match (i.partitions, i.chunk) {
        (Some(p), _) => p,
        (None, Some(chunk)) => size.div_ceil(chunk.max(1)).max(1) as u32,
        (None, None) => total_slots.max(1) * PARTITIONS_PER_SLOT,
    };
    let key = i.key.clone().unwrap_or_default();
    let split = i.split.unwrap_or(if full.is_dir() { Split::Files } else { Split::Lines });
    Ok(match split {
        Split::Lines => SplitPlan::Lines { partitions: count },
        Split::Files => SplitPlan::Files,
        Split::Hash => SplitPlan::Hash {
            partitions: count,
            field: key.field,
            sep: key.sep.into_bytes(),
            modulo: i.partitioner == shoal_core::job::Partitioner::Modulo,
        },
        Split::Range => SplitPlan::Range { partitions: count, field: key.field, sep: key.sep.into_bytes() },
    })
}

/// Short hex of a hash, for tables.
pub fn short(hash: &shoal_wire::Hash) -> String {
    hex(hash)[..12].to_string()
}
