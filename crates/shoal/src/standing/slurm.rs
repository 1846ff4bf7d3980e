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

use shoal_core::cluster::HostSpec;
use std::time::{Duration, Instant};

use super::access::{ClusterFiles, CoordinatorFile};
use super::{said, Result};
use crate::quote;

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

/// Where Slurm's commands run: here, or on a login host over ssh.
#[derive(Clone, Debug)]
pub enum Submitter {
    Here,
    /// A login host: `sbatch`, `squeue` and `scancel` run there (with this
    /// machine's `SLURM_CONF`, when set, passed along); the binary and the
    /// worker access file are staged in its work dir first. `cluster_file`
    /// is where its ssh settings came from, if anywhere.
    Login {
        host: Box<HostSpec>,
        cluster_file: Option<std::path::PathBuf>,
    },
}

impl Submitter {
    /// Runs a Slurm command with `args`, `stdin` on its standard input.
    async fn run(&self, program: &str, args: &[String], stdin: &[u8]) -> Result<std::process::Output> {
        use tokio::io::AsyncWriteExt;
        let mut cmd = match self {
            Submitter::Here => {
                let mut c = tokio::process::Command::new(program);
                c.args(args);
                c
            }
            Submitter::Login { host, .. } => {
                let mut words = Vec::new();
                if let Ok(conf) = std::env::var("SLURM_CONF") {
                    words.push(format!("SLURM_CONF={}", quote::word(&conf).map_err(|e| said!("SLURM_CONF {conf:?}: {e}"))?));
                }
                for w in std::iter::once(program.to_string()).chain(args.iter().cloned()) {
                    words.push(quote::word(&w).map_err(|e| said!("cannot pass {w:?} to the login host: {e}"))?);
                }
                let mut c = crate::transport::ssh::ssh_command(host);
                c.arg(words.join(" "));
                c
            }
        };
        let where_ = match self {
            Submitter::Here => "here".to_string(),
            Submitter::Login { host, .. } => format!("on {}", host.name),
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| said!("cannot run {program} {where_}: {e}; is Slurm's client installed there?"))?;
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin).await;
        }
        child.wait_with_output().await.map_err(|e| said!("cannot wait for {program} {where_}: {e}"))
    }

    /// How a job is recorded in `slurm.jobs`: its id, and for a login
    /// host that host and the cluster file that names it.
    fn record(&self, job: &str) -> String {
        match self {
            Submitter::Here => job.to_string(),
            Submitter::Login { host, cluster_file } => {
                let file = cluster_file.as_ref().map_or("-".to_string(), |p| p.display().to_string());
                format!("{job} {} {file}", host.name)
            }
        }
    }

    fn from_record(rest: &[&str]) -> Submitter {
        match rest {
            [] => Submitter::Here,
            [host, file, ..] => {
                let cluster_file = (*file != "-").then(|| std::path::PathBuf::from(file));
                let spec = cluster_file.as_ref().and_then(|p| crate::driver::specs::find_cluster(Some(p)).ok());
                let host = spec.and_then(|s| s.host(host).cloned()).unwrap_or_else(|| login_host(host));
                Submitter::Login { host: Box::new(host), cluster_file }
            }
            [host] => Submitter::Login { host: Box::new(login_host(host)), cluster_file: None },
        }
    }
}

/// An ssh host by address alone (`~/.ssh/config` decides the rest).
pub fn login_host(address: &str) -> HostSpec {
    let mut h = HostSpec::new(address);
    h.address = address.to_string();
    h
}

/// Submits the allocation; waits until its workers joined (or `wait`).
pub async fn submit(opts: &SlurmOptions, at: &Submitter) -> Result<Submitted> {
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
    let (exe, access, output) = match at {
        Submitter::Here => {
            let exe = crate::binary::current().map_err(|e| said!("cannot find this program's executable: {e}"))?.path.clone();
            (exe, files.worker(), files.dir.join("slurm-%j.out"))
        }
        Submitter::Login { host, .. } => stage(host, &std::fs::read_to_string(files.worker())?).await?,
    };
    let batch = script(&exe, &access, &opts.workdir)?;
    let mut args = vec![
        "--parsable".to_string(),
        format!("--nodes={}", opts.nodes),
        "--ntasks-per-node=1".into(),
        format!("--job-name=shoal-{}", opts.name),
        format!("--output={}", output.display()),
    ];
    if let Some(t) = &opts.time {
        args.push(format!("--time={t}"));
    }
    args.extend(opts.extra.iter().cloned());
    // The batch script on sbatch's stdin: nothing to leave on a disk.
    let out = at.run("sbatch", &args, batch.as_bytes()).await?;
    if !out.status.success() {
        return Err(said!("sbatch refused the allocation ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let job = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or_default().to_string();
    if job.is_empty() || !job.bytes().all(|b| b.is_ascii_digit()) {
        return Err(said!("sbatch printed no job id: {:?}", String::from_utf8_lossy(&out.stdout)));
    }
    let mut jobs: Vec<String> =
        std::fs::read_to_string(files.dir.join("slurm.jobs")).unwrap_or_default().lines().map(String::from).collect();
    jobs.push(at.record(&job));
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

/// Puts this program's binary (deployed as for any run) and the worker
/// access file (0600, sent on stdin) in the login host's work dir;
/// returns their paths there and the allocation's output path.
async fn stage(host: &HostSpec, access: &str) -> Result<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)> {
    use crate::transport::ssh;
    let args: Vec<String> = ["worker", "--join", "-", "--workdir", ssh::WORKDIR_WORD, "--stage", "--marker"].map(String::from).to_vec();
    let out =
        ssh::run_deployed(host, &args, access.as_bytes()).await.map_err(|e| said!("cannot stage the workers on {}: {e}", host.name))?;
    let text = String::from_utf8_lossy(&out);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("SHOAL-WORKER staged "))
        .ok_or_else(|| said!("staging on {} failed: {}", host.name, text.trim()))?;
    let mut parts = line.split('\t');
    let (exe, access, dir) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    Ok((exe.into(), access.into(), std::path::Path::new(dir).join("slurm-%j.out")))
}

/// The allocations `slurm` submitted that `down` has not cancelled yet,
/// each with where its commands run.
fn read_records(files: &ClusterFiles) -> Vec<(String, Submitter)> {
    std::fs::read_to_string(files.dir.join("slurm.jobs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let job = words.first().filter(|j| j.bytes().all(|b| b.is_ascii_digit()))?;
            Some((job.to_string(), Submitter::from_record(&words[1..])))
        })
        .collect()
}

/// The ids of the allocations `slurm` submitted that are not cancelled.
pub fn read_jobs(files: &ClusterFiles) -> Vec<String> {
    read_records(files).into_iter().map(|(j, _)| j).collect()
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
    for (job, at) in read_records(files) {
        let args = ["-h", "-j", &job, "-o", "%T %N"].map(String::from);
        let q = at.run("squeue", &args, b"").await;
        let text = q.ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
        let mut words = text.split_whitespace();
        let state = words.next().unwrap_or("gone").to_string();
        out.push(Allocation { job, state, nodes: words.next().unwrap_or_default().to_string() });
    }
    out
}

/// Cancels every allocation of the cluster (`scancel`); returns the ids.
pub async fn cancel_all(files: &ClusterFiles) -> Result<Vec<String>> {
    let records = read_records(files);
    for (job, at) in &records {
        let out = at.run("scancel", std::slice::from_ref(job), b"").await?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            // A job that already ended is what we want.
            if !text.contains("Invalid job id") {
                return Err(said!("scancel {job} failed: {}; run `shoal cluster down` again once it can be reached", text.trim()));
            }
        }
    }
    let _ = std::fs::remove_file(files.dir.join("slurm.jobs"));
    Ok(records.into_iter().map(|(j, _)| j).collect())
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
