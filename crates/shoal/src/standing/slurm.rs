//! Workers started by Slurm: `shoal cluster slurm --nodes N` submits an
//! allocation (`sbatch`) whose one step (`srun`, one task per node) runs
//! `shoal worker --join` on every node; the job ids are kept in the
//! cluster's directory (`slurm.jobs`), shown by `status` and cancelled
//! (`scancel`) by `down`.
//!
//! The nodes must see this machine's `shoal` binary and the cluster's
//! worker access file at the same paths (a shared home, as Slurm
//! clusters have), and reach the coordinator at its advertised address.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::access::{ClusterFiles, CoordinatorFile};
use super::{said, Result};

/// What `shoal cluster slurm` is asked for.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    pub name: String,
    pub nodes: u32,
    /// `--time` of the allocation (Slurm's syntax: `1:00:00`, `60`).
    pub time: Option<String>,
    /// Work dir of each node's worker; `%n` is the node's name.
    pub workdir: String,
    /// Extra `sbatch` arguments, after Shoal's own.
    pub extra: Vec<String>,
    /// How long to wait for the workers to join (0: do not wait).
    pub wait: Duration,
}

/// What was submitted.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Submitted {
    pub job: String,
    pub nodes: u32,
    /// Workers of this allocation that had joined when `slurm` returned.
    pub joined: Vec<String>,
}

/// The batch script: one worker per node, named after the node (the
/// worker expands `%n` in its work dir to its name).
fn script(exe: &Path, access: &Path, workdir: &str) -> Result<String> {
    let word = |s: &str| crate::quote::word(s).map_err(|e| said!("cannot put {s:?} in the batch script: {e}"));
    Ok(format!(
        "#!/bin/sh\n# A Shoal standing cluster's workers, one per node (shoal cluster slurm).\nexec srun --ntasks-per-node=1 --kill-on-bad-exit=0 sh -c 'exec \"$0\" worker --join \"$1\" --name \"$SLURMD_NODENAME\" --workdir \"$2\" --started-by \"slurm:$SLURM_JOB_ID\"' {} {} {}\n",
        word(&exe.display().to_string())?,
        word(&access.display().to_string())?,
        word(workdir)?,
    ))
}

/// Submits the allocation; waits until its workers joined (or `wait`).
pub async fn submit(opts: &SlurmOptions) -> Result<Submitted> {
    let files = ClusterFiles::of(&opts.name)?;
    let file = CoordinatorFile::load(&files.coordinator())?;
    if super::control::status(&opts.name).await.is_err() {
        return Err(said!("the coordinator of {} is not running: start it first with `shoal cluster up --name {}`", opts.name, opts.name));
    }
    if file.advertise.starts_with("127.") {
        return Err(said!(
            "the coordinator of {} is advertised at {}, which Slurm's nodes cannot reach: run `shoal cluster up --name {} --advertise ADDRESS` with this machine's address on the nodes' network",
            opts.name,
            file.advertise,
            opts.name
        ));
    }
    let exe = crate::binary::current().map_err(|e| said!("cannot find this program's executable: {e}"))?.path.clone();
    let batch = files.dir.join("slurm-batch.sh");
    super::access::write_private(&batch, &script(&exe, &files.worker(), &opts.workdir)?)?;
    let mut cmd = tokio::process::Command::new("sbatch");
    cmd.arg("--parsable")
        .arg(format!("--nodes={}", opts.nodes))
        .arg("--ntasks-per-node=1")
        .arg(format!("--job-name=shoal-{}", opts.name))
        .arg(format!("--output={}", files.dir.join("slurm-%j.out").display()));
    if let Some(t) = &opts.time {
        cmd.arg(format!("--time={t}"));
    }
    cmd.args(&opts.extra).arg(&batch);
    let out = cmd.stdin(Stdio::null()).output().await.map_err(|e| said!("cannot run sbatch: {e}; is Slurm's client installed here?"))?;
    if !out.status.success() {
        return Err(said!("sbatch refused the allocation ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let job = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or_default().to_string();
    if job.is_empty() || !job.bytes().all(|b| b.is_ascii_digit()) {
        return Err(said!("sbatch printed no job id: {:?}", String::from_utf8_lossy(&out.stdout)));
    }
    let mut jobs = read_jobs(&files);
    jobs.push(job.clone());
    super::access::write_private(&files.dir.join("slurm.jobs"), &(jobs.join("\n") + "\n"))?;
    let tag = format!("slurm:{job}");
    let deadline = Instant::now() + opts.wait;
    let joined = loop {
        let joined: Vec<String> = super::control::status(&opts.name)
            .await
            .map(|s| s.workers.into_iter().filter(|w| w.alive && w.started_by == tag).map(|w| w.name).collect())
            .unwrap_or_default();
        if joined.len() as u32 >= opts.nodes || Instant::now() >= deadline {
            break joined;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    Ok(Submitted { job, nodes: opts.nodes, joined })
}

/// The allocations `slurm` submitted that `down` has not cancelled yet.
pub fn read_jobs(files: &ClusterFiles) -> Vec<String> {
    std::fs::read_to_string(files.dir.join("slurm.jobs"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .map(String::from)
        .collect()
}

/// One allocation and its state in Slurm's queue (`squeue`), for status.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Allocation {
    pub job: String,
    /// `RUNNING`, `PENDING`, ..., or `gone` when Slurm no longer lists it.
    pub state: String,
    pub nodes: String,
}

pub async fn allocations(files: &ClusterFiles) -> Vec<Allocation> {
    let mut out = Vec::new();
    for job in read_jobs(files) {
        let q = tokio::process::Command::new("squeue").args(["-h", "-j", &job, "-o", "%T %N"]).stdin(Stdio::null()).output().await;
        let text = q.ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
        let mut words = text.split_whitespace();
        let state = words.next().unwrap_or("gone").to_string();
        out.push(Allocation { job, state, nodes: words.next().unwrap_or_default().to_string() });
    }
    out
}

/// Cancels every allocation of the cluster (`scancel`); returns the ids.
pub async fn cancel_all(files: &ClusterFiles) -> Result<Vec<String>> {
    let jobs = read_jobs(files);
    for job in &jobs {
        let out = tokio::process::Command::new("scancel")
            .arg(job)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| said!("cannot run scancel for Slurm job {job}: {e}"))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            // A job that already ended is what we want.
            if !text.contains("Invalid job id") {
                return Err(said!("scancel {job} failed: {}", text.trim()));
            }
        }
    }
    let _ = std::fs::remove_file(files.dir.join("slurm.jobs"));
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::script;
    use std::path::Path;

    #[test]
    fn the_batch_script_starts_one_worker_per_node_named_after_it() {
        let s = script(Path::new("/opt/shoal"), Path::new("/home/u/.shoal/clusters/lab/worker.access"), "/scratch/%n").unwrap();
        assert!(s.starts_with("#!/bin/sh\n"), "{s}");
        assert!(s.contains("exec srun --ntasks-per-node=1"), "{s}");
        assert!(s.contains("--name \"$SLURMD_NODENAME\""), "{s}");
        assert!(s.contains("--started-by \"slurm:$SLURM_JOB_ID\""), "{s}");
        assert!(s.ends_with("/opt/shoal /home/u/.shoal/clusters/lab/worker.access /scratch/%n\n"), "{s}");
    }
}
