//! `shoal cluster up|status|down` and `shoal worker`.

use std::io::Read;
use std::path::PathBuf;

use shoal::printable::printable;
use shoal::standing::{control, worker, Access};

use crate::cli::{ClusterArg, ClusterCommand, WorkerArgs};

pub async fn cluster(c: ClusterCommand) -> anyhow::Result<i32> {
    match c {
        ClusterCommand::Up { name, cluster, hosts, coordinator_only, advertise, port, max_applications, heartbeat_timeout, json } => {
            let arg = ClusterArg { cluster, on: None, hosts };
            let mut spec = crate::commands::load_cluster(&arg, "").await?;
            if coordinator_only {
                spec.hosts.clear();
                spec.source = None;
            }
            let opts = control::UpOptions { name, cluster: spec, advertise, port, max_applications, heartbeat_timeout };
            let report = control::up(&opts).await?;
            let failed = report.hosts.iter().filter(|h| h.state == "failed").count();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let coordinator = if report.coordinator_started { "started" } else { "already running" };
                println!("coordinator of {} at {}: {coordinator}", report.cluster, report.coordinator);
                for h in &report.hosts {
                    match &h.error {
                        Some(e) => println!("  {:<16} failed: {}", h.host, printable(e)),
                        None => println!("  {:<16} worker {} (pid {})", h.host, h.state, h.pid.map_or("?".into(), |p| p.to_string())),
                    }
                }
                print!("{}", printable(&control::render(&report.status)));
                println!("run jobs with: shoal run job.toml --on {}", report.cluster);
                println!("workers elsewhere (Slurm, Docker) join with: shoal worker --join {}", report.worker_access.display());
            }
            Ok(if failed == 0 { 0 } else { 3 })
        }
        ClusterCommand::Status { name, json } => {
            let status = control::status(&name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", printable(&control::render(&status)));
            }
            Ok(0)
        }
        ClusterCommand::Slurm { name, nodes, time, workdir, wait, login, cluster, json, sbatch } => {
            let at = match login {
                None => shoal::standing::slurm::Submitter::Here,
                Some(host) => {
                    let spec = match &cluster {
                        Some(file) => Some(shoal::driver::specs::find_cluster(Some(file))?),
                        None => None,
                    };
                    let found = spec.as_ref().and_then(|s| s.host(&host).cloned());
                    let cluster_file = found.as_ref().and(cluster.clone()).map(|p| std::fs::canonicalize(&p).unwrap_or(p));
                    let host = found.unwrap_or_else(|| shoal::standing::slurm::login_host(&host));
                    shoal::standing::slurm::Submitter::Login { host: Box::new(host), cluster_file }
                }
            };
            let opts = shoal::standing::slurm::SlurmOptions {
                name,
                nodes,
                time,
                workdir,
                extra: sbatch,
                wait: std::time::Duration::from_secs(wait),
            };
            let sub = shoal::standing::slurm::submit(&opts, &at).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&sub)?);
            } else {
                println!("Slurm job {}: {} of {} workers joined ({})", sub.job, sub.joined.len(), sub.nodes, list(&sub.joined));
            }
            Ok(if sub.joined.len() as u32 >= nodes || wait == 0 { 0 } else { 3 })
        }
        ClusterCommand::Down { name, json } => {
            let report = control::down(&name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                if report.coordinator_stopped {
                    println!("cluster {}: coordinator stopped; workers stopped: {}", report.cluster, list(&report.workers_stopped));
                } else {
                    println!("cluster {}: nothing was running", report.cluster);
                }
                for n in &report.notes {
                    println!("  {}", printable(n));
                }
            }
            Ok(0)
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// `shoal worker`: reads the access, detaches if asked (before any
/// thread exists), then runs on a runtime of its own.
pub fn worker(a: WorkerArgs) -> anyhow::Result<i32> {
    let marker = |line: String| {
        if a.marker {
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = out.write_all(shoal::agent::START_MARKER);
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        } else {
            println!("{line}");
        }
    };
    let (text, path) = if a.join.as_os_str() == "-" {
        let mut t = String::new();
        std::io::stdin().read_to_string(&mut t)?;
        (t, PathBuf::from("(stdin)"))
    } else {
        let access = Access::load(&a.join)?;
        (access.to_text(), a.join.clone())
    };
    let access = match Access::parse(&text, &path) {
        Ok(a) => a,
        Err(e) => {
            marker(format!("SHOAL-WORKER failed {e}"));
            return Ok(1);
        }
    };
    let name =
        a.name.clone().unwrap_or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string());
    // `%n`: the worker's name (one work dir per node on a shared file system).
    let workdir = shoal::transport::local::expand_home(&a.workdir.replace("%n", &name));
    let coordinator = match (&a.coordinator, a.coordinator_port) {
        (Some(c), _) => c.clone(),
        (None, Some(port)) => {
            // The machine this ssh session came from runs the coordinator.
            let from = std::env::var("SSH_CONNECTION").ok().and_then(|v| v.split_whitespace().next().map(String::from));
            match from {
                Some(ip) if ip.contains(':') => format!("[{ip}]:{port}"),
                Some(ip) => format!("{ip}:{port}"),
                None => access.coordinator.clone(),
            }
        }
        (None, None) => access.coordinator.clone(),
    };
    let name =
        a.name.clone().unwrap_or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string());
    let slots = a.slots.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let dir = workdir.join("clusters").join(&access.cluster);
    let pid_file = dir.join("worker.pid");
    if a.stage {
        let staged = shoal::standing::access::stage_worker_access(&dir, &access);
        match staged {
            Ok(path) => {
                let exe = std::env::current_exe()?;
                marker(format!("SHOAL-WORKER staged {}\t{}\t{}", exe.display(), path.display(), dir.display()));
                return Ok(0);
            }
            Err(e) => {
                marker(format!("SHOAL-WORKER failed {e}"));
                return Ok(1);
            }
        }
    }
    if a.detach {
        std::fs::create_dir_all(&dir)?;
        if let Some(pid) = worker::running(&pid_file, &["worker", "--name", &name]) {
            marker(format!("SHOAL-WORKER running {pid}"));
            return Ok(0);
        }
        // SAFETY: no thread exists yet (no runtime has been built).
        unsafe { worker::detach(&dir.join("worker.log"), &pid_file, |pid| marker(format!("SHOAL-WORKER started {pid}"))) }.map_err(
            |e| {
                marker(format!("SHOAL-WORKER failed cannot start in the background: {e}"));
                e
            },
        )?;
    }
    let options = worker::WorkerOptions { name, slots, workdir, coordinator, started_by: a.started_by.clone() };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(worker::run(access, &path, options))?;
    let _ = std::fs::remove_file(&pid_file);
    Ok(0)
}
