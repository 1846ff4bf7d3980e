//! Everything decided before a single host is contacted: the run id and
//! dir, the sync manifest, the input partitions and the tasks with their
//! identities. Bad input fails here, before anything runs.

use std::path::{Path, PathBuf};

use shoal_core::job::{JobSpec, Split};
use shoal_wire::hex;

use super::journal;
use crate::driver::blocks::Source;
use crate::driver::input::{self, Partition, SplitPlan};
use crate::driver::manifest::{self, ManifestFile, SyncRequest};
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
    pub run_id: String,
    pub run_dir: PathBuf,
    pub manifest: Vec<ManifestFile>,
    pub tasks: Vec<PlannedTask>,
}

/// Default partitions when the job file says nothing: a few per slot.
pub const PARTITIONS_PER_SLOT: u32 = 4;

/// Resolves the job against the local files.
pub fn prepare(job: &JobSpec, total_slots: u32, state_dir: &Path) -> Result<Plan> {
    supported(job)?;
    let run_id = new_run_id(&job.job.name);
    let run_dir = state_dir.join("runs").join(&run_id);
    std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(format!("cannot create {}", run_dir.display()), e))?;
    let planned = sync_manifest(job, &run_dir).and_then(|manifest| {
        let mut tasks = tasks(job, total_slots, &run_dir, &manifest, state_dir)?;
        tasks.extend(reduce_tasks(job, total_slots, &tasks));
        Ok((manifest, tasks))
    });
    let (manifest, tasks) = match planned {
        Ok(p) => p,
        Err(e) => {
            // Bad input: leave no half-made run behind.
            let _ = std::fs::remove_dir_all(&run_dir);
            return Err(e);
        }
    };
    Ok(Plan { run_id, run_dir, manifest, tasks })
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

fn new_run_id(job: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (d, s) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil(d as i64);
    let safe = safe_job_name(job);
    format!("{y:04}{m:02}{day:02}-{:02}{:02}{:02}-{safe}-{:04x}", s / 3600, s / 60 % 60, s % 60, now.subsec_nanos() & 0xffff)
}

/// A job name as run ids spell it (file-name safe, at most 32 characters).
pub fn safe_job_name(job: &str) -> String {
    job.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(32).collect()
}

/// Days since the epoch to (year, month, day), proleptic Gregorian.
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn sync_manifest(job: &JobSpec, run_dir: &Path) -> Result<Vec<ManifestFile>> {
    let mut paths = job.sync.files.clone();
    if let Some(list) = &job.sync.list_file {
        let text = input::read_to_string(&job.resolve(list)).map_err(|e| Error::Usage(format!("[sync] list_file: {e}")))?;
        paths.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
    }
    let req = SyncRequest { base: &job.base_dir, paths, max_size: job.sync.max_size, force: &job.sync.force, exclude: &job.sync.exclude };
    let mut files = manifest::build(&req).map_err(|e| Error::Usage(e.to_string()))?;
    files.push(params_file(job, run_dir)?);
    Ok(files)
}

/// The params as JSON, shipped as `.shoal/params.json` in the work dir.
fn params_file(job: &JobSpec, run_dir: &Path) -> Result<ManifestFile> {
    let json: serde_json::Map<String, serde_json::Value> = job.params.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
    let text = serde_json::to_vec_pretty(&json).map_err(|e| Error::Usage(e.to_string()))?;
    let path = run_dir.join("params.json");
    std::fs::write(&path, &text).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    let hash = *blake3::hash(&text).as_bytes();
    Ok(ManifestFile {
        entry: shoal_wire::FileEntry { path: PARAMS_PATH.into(), hash, size: text.len() as u64, executable: false },
        source: Source { path, offset: 0, len: text.len() as u64, hash, data: None },
    })
}

/// Where the params file lands in every work dir.
pub const PARAMS_PATH: &str = ".shoal/params.json";

fn tasks(job: &JobSpec, total_slots: u32, run_dir: &Path, manifest: &[ManifestFile], state_dir: &Path) -> Result<Vec<PlannedTask>> {
    let context = context_hash(job, manifest);
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
    let parts = partitions(job, total_slots, run_dir, state_dir)?;
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

/// Everything but the input that determines a map task's output.
fn context_hash(job: &JobSpec, manifest: &[ManifestFile]) -> Vec<u8> {
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
    h.finalize().as_bytes().to_vec()
}

fn partitions(job: &JobSpec, total_slots: u32, run_dir: &Path, state_dir: &Path) -> Result<Vec<Partition>> {
    if let Some(parts) = &job.input.parts {
        return given_parts(parts);
    }
    let Some(path) = &job.input.path else {
        return Err(Error::Usage("the job has no input: set [input] path or args".into()));
    };
    let full = job.resolve(path);
    let plan = split_plan(job, total_slots, &full)?;
    let unsized_lines = matches!(plan, SplitPlan::Lines { .. }) && job.input.partitions.is_none() && job.input.chunk.is_none();
    if let Some(cuts) = unsized_lines.then(|| crate::driver::transfer::pushed_cuts(state_dir, &full)).flatten() {
        // Split exactly as `shoal push --split` did: every chunk is already on a host.
        return input::at_cuts(&full, &cuts).map_err(|e| Error::Usage(e.to_string()));
    }
    input::split(&full, &plan, &run_dir.join("input")).map_err(|e| Error::Usage(e.to_string()))
}

/// Partitions a program handed over (the Dataset API), each hashed so that
/// a host holding it already (a cached partition it computed) is not sent
/// it again. A partition held in memory stays there: it travels inside
/// its task requests.
fn given_parts(parts: &[shoal_core::job::InputPart]) -> Result<Vec<Partition>> {
    parts
        .iter()
        .map(|p| {
            let hash = match (p.hash, &p.data) {
                (Some(h), _) => h,
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

#[cfg(test)]
mod tests {
    use super::civil;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_414), (2025, 11, 22));
    }
}
