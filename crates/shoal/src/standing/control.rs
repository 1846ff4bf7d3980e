//! `shoal cluster up | status | down`, and the coordinator's process.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use shoal_core::cluster::{ClusterSpec, HostSpec, TransportKind, Tunnel};
use tokio::task::JoinSet;

use super::access::{Access, AccessError, ClusterFiles, CoordinatorFile};
use super::coordinator::{Coordinator, Settings};
use super::proto::{ClientHello, Status};
use super::secure::{self, Role};
use super::worker;
use crate::transport::local::expand_home;
use crate::transport::ssh;

/// What `up` is asked to do.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub name: String,
    /// The hosts to start workers on (none: only the coordinator).
    pub cluster: ClusterSpec,
    /// The address workers and clients are told to reach the coordinator
    /// at; else the one this machine uses toward the first host.
    pub advertise: Option<String>,
    pub port: Option<u16>,
    pub max_applications: Option<u32>,
    pub heartbeat_timeout: Option<Duration>,
}

/// One host's outcome in `up`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HostOutcome {
    pub host: String,
    /// `started`, `running` (already), or `failed`.
    pub state: String,
    pub pid: Option<u32>,
    pub error: Option<String>,
}

/// What `up` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UpReport {
    pub cluster: String,
    pub coordinator: String,
    pub coordinator_started: bool,
    pub client_access: PathBuf,
    pub worker_access: PathBuf,
    pub hosts: Vec<HostOutcome>,
    pub status: Status,
}

/// Starts what is missing: keys and access files, the coordinator, a
/// worker on every host; waits until the workers have joined.
pub async fn up(opts: &UpOptions) -> super::Result<UpReport> {
    let files = ClusterFiles::of(&opts.name)?;
    let advertise = match &opts.advertise {
        Some(a) => Some(a.clone()),
        None => guess_advertise(&opts.cluster).await,
    };
    let cluster_file = opts.cluster.source.clone().map(|p| std::fs::canonicalize(&p).unwrap_or(p));
    if let (Some(port), Ok(old)) = (opts.port, CoordinatorFile::load(&files.coordinator())) {
        if old.port != port && worker::running(&files.pid(), &["coordinator", "--name", &opts.name]).is_some() {
            return Err(super::said!(
                "the coordinator of {} runs on port {}: stop the cluster first (`shoal cluster down --name {}`) to move it to {port}",
                opts.name,
                old.port,
                opts.name
            ));
        }
    }
    let file = files.ensure(|old| {
        let mut new = old.clone();
        new.cluster = opts.name.clone();
        if let Some(p) = opts.port {
            new.port = p;
        }
        if new.port == 0 {
            new.port = free_port();
        }
        if let Some(a) = &advertise {
            new.advertise = a.clone();
        }
        if cluster_file.is_some() {
            new.cluster_file = cluster_file.clone();
        }
        if let Some(m) = opts.max_applications {
            new.max_applications = m;
        }
        if let Some(t) = opts.heartbeat_timeout {
            new.heartbeat_timeout_ms = t.as_millis() as u64;
        }
        if !opts.cluster.hosts.is_empty() {
            new.tunnel = opts.cluster.tunnel == Tunnel::Ssh;
        }
        new
    })?;
    let coordinator_started = ensure_coordinator(&files, &opts.name).await?;
    let access_text = std::fs::read_to_string(files.worker())?;
    let tunnel = opts.cluster.tunnel == Tunnel::Ssh;
    let mut set = JoinSet::new();
    for host in opts.cluster.hosts.clone() {
        let (text, port, worker_access) = (access_text.clone(), file.port, files.worker());
        // Told explicitly where the coordinator is: the workers use that
        // rather than the address their ssh session came from (NAT, ProxyJump).
        let at = opts.advertise.as_ref().map(|a| format!("{a}:{port}"));
        let tunnel_pid = files.dir.join(format!("tunnel-{}.pid", host.name));
        set.spawn(async move {
            if tunnel && host.transport == TransportKind::Ssh {
                if let Err(e) = ensure_tunnel(&host, port, &tunnel_pid) {
                    return (host.name.clone(), Err(e));
                }
            }
            let started = start_worker(&host, port, at.as_deref(), tunnel, &text, &worker_access).await;
            (host.name.clone(), started)
        });
    }
    let mut hosts = Vec::new();
    while let Some(Ok((host, result))) = set.join_next().await {
        hosts.push(match result {
            Ok((state, pid)) => HostOutcome { host, state, pid, error: None },
            Err(e) => HostOutcome { host, state: "failed".into(), pid: None, error: Some(e) },
        });
    }
    hosts.sort_by(|a, b| a.host.cmp(&b.host));
    // Wait for every worker that runs to have joined.
    let want: Vec<String> = hosts.iter().filter(|h| h.state != "failed").map(|h| h.host.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let s = status(&opts.name).await?;
        let joined = want.iter().all(|w| s.workers.iter().any(|x| &x.name == w && x.alive));
        if joined || Instant::now() > deadline {
            for h in hosts.iter_mut().filter(|h| h.state != "failed") {
                if !s.workers.iter().any(|x| x.name == h.host && x.alive) {
                    h.state = "failed".into();
                    let log = format!("{}/clusters/{}/worker.log on that host", worker_dir_hint(&opts.cluster, &h.host), opts.name);
                    h.error = Some(if tunnel {
                        format!(
                            "its worker started but did not join the coordinator through the ssh tunnel within 20s: see {} here, and {log}",
                            files.dir.join(format!("tunnel-{}.log", h.host)).display()
                        )
                    } else {
                        format!(
                            "its worker started but did not join the coordinator at {}:{} within 20s: can the host reach this machine on that port? (see {log}; set --advertise to an address the hosts reach, or tunnel = \"ssh\" in the cluster file when only ssh reaches them)",
                            file.advertise, file.port
                        )
                    });
                }
            }
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Ok(UpReport {
        cluster: opts.name.clone(),
        coordinator: format!("{}:{}", file.advertise, file.port),
        coordinator_started,
        client_access: files.client(),
        worker_access: files.worker(),
        hosts,
        status,
    })
}

fn worker_dir_hint(cluster: &ClusterSpec, host: &str) -> String {
    cluster.hosts.iter().find(|h| h.name == host).map_or("~/.shoal".into(), |h| h.workdir.clone())
}

/// A port free now on this machine.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0").and_then(|l| l.local_addr()).map_or(7077, |a| a.port())
}

/// The address this machine uses toward the first remote host.
async fn guess_advertise(cluster: &ClusterSpec) -> Option<String> {
    let host = cluster.hosts.iter().find(|h| h.transport == TransportKind::Ssh)?;
    let target = tokio::net::lookup_host((host.address.as_str(), host.port.unwrap_or(22))).await.ok()?.next()?;
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect(target).ok()?;
    Some(sock.local_addr().ok()?.ip().to_string())
}

/// Starts the coordinator if it is not running; true if it was started.
async fn ensure_coordinator(files: &ClusterFiles, name: &str) -> super::Result<bool> {
    if worker::running(&files.pid(), &["coordinator", "--name", name]).is_some() && status(name).await.is_ok() {
        return Ok(false);
    }
    let exe = crate::binary::current()?.path.clone();
    let log = crate::driver::run::private::append(&files.log())?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["coordinator", "--name", name]).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // SAFETY: setsid in the child between fork and exec touches no memory
    // of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if status(name).await.is_ok() {
            // Reaped by nobody: it lives on, a daemon of its own session.
            std::mem::forget(child);
            return Ok(true);
        }
        if let Ok(Some(code)) = child.try_wait() {
            let tail = std::fs::read_to_string(files.log()).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(super::said!(
                "the coordinator of {name} exited at once ({code}); its log ({}) ends with:\n{}",
                files.log().display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        if Instant::now() > deadline {
            return Err(super::said!("the coordinator of {name} did not answer within 10s; see {}", files.log().display()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts (or finds) the worker on `host`; returns `started` or
/// `running` and its pid.
/// The `-R` argument of a tunnel to the coordinator's `port`.
fn tunnel_forward(port: u16) -> String {
    format!("127.0.0.1:{port}:127.0.0.1:{port}")
}

/// Starts the ssh tunnel to `host` unless it runs (its pid file). Its
/// stderr goes to `tunnel-HOST.log` beside the pid file. Refused when the
/// user's ssh config adds forwardings of its own to that host: a
/// long-lived connection must not open other doors into this machine.
fn ensure_tunnel(host: &HostSpec, port: u16, pid_file: &std::path::Path) -> Result<(), String> {
    let forward = tunnel_forward(port);
    if worker::running(pid_file, &["-N", "-R", &forward]).is_some() {
        return Ok(());
    }
    let extra = ssh::config_forwards(host, port).map_err(|e| format!("cannot read the ssh configuration for the tunnel: {e}"))?;
    if !extra.is_empty() {
        return Err(format!(
            "the ssh configuration for this host adds forwardings ({}), which the long-lived tunnel would open too: remove them for this host, or use tunnel = \"none\"",
            extra.join(", ")
        ));
    }
    let log = pid_file.with_extension("log");
    let log = crate::driver::run::private::append(&log).map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let mut cmd = ssh::tunnel_command(host, port);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    // SAFETY: setsid in the child between fork and exec touches no memory
    // of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start the ssh tunnel: {e}"))?;
    crate::driver::run::private::write_atomic(pid_file, |f| std::io::Write::write_all(f, format!("{}\n", child.id()).as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", pid_file.display()))?;
    // Reaped by nobody: it lives on in its own session, as the coordinator.
    std::mem::forget(child);
    Ok(())
}

async fn start_worker(
    host: &HostSpec,
    port: u16,
    at: Option<&str>,
    tunnel: bool,
    access: &str,
    access_path: &std::path::Path,
) -> Result<(String, Option<u32>), String> {
    let out = match host.transport {
        TransportKind::Ssh => {
            let mut args: Vec<String> =
                ["worker", "--join", "-", "--name", &host.name, "--workdir", ssh::WORKDIR_WORD].map(String::from).to_vec();
            if tunnel {
                // The tunnel's end on the host's loopback.
                args.extend(["--coordinator".into(), format!("127.0.0.1:{port}")]);
            } else if let Some(at) = at {
                args.extend(["--coordinator".into(), at.to_string()]);
            } else {
                args.extend(["--coordinator-port".into(), port.to_string()]);
            }
            args.extend(["--detach".into(), "--marker".into()]);
            if let Some(s) = host.slots {
                args.extend(["--slots".into(), s.to_string()]);
            }
            ssh::run_deployed(host, &args, access.as_bytes()).await.map_err(|e| e.to_string())?
        }
        _ => {
            let exe = crate::binary::current().map_err(|e| e.to_string())?.path.clone();
            let mut cmd = tokio::process::Command::new(exe);
            cmd.args(["worker", "--join"]).arg(access_path).args(["--name", &host.name, "--workdir"]).arg(expand_home(&host.workdir));
            cmd.args(["--coordinator", &format!("127.0.0.1:{port}"), "--detach", "--started-by", "local"]);
            if let Some(s) = host.slots {
                cmd.args(["--slots", &s.to_string()]);
            }
            let out = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).output().await.map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
            }
            out.stdout
        }
    };
    let text = String::from_utf8_lossy(&out);
    let line =
        text.lines().find_map(|l| l.strip_prefix("SHOAL-WORKER ")).ok_or_else(|| format!("the worker did not start: {}", text.trim()))?;
    let mut words = line.split_whitespace();
    let state = words.next().unwrap_or_default().to_string();
    let pid = words.next().and_then(|p| p.parse().ok());
    if state == "failed" {
        return Err(line.trim_start_matches("failed").trim().to_string());
    }
    Ok((state, pid))
}

async fn client(name: &str) -> super::Result<(secure::Receiver, secure::Sender, String)> {
    let files = ClusterFiles::of(name)?;
    if !files.dir.exists() {
        return Err(AccessError::NoCluster { name: name.into(), dir: files.dir }.into());
    }
    let path = files.client();
    let access = Access::load(&path)?;
    let (own, coordinator) = access.keys(&path)?;
    // This machine's own coordinator: reach it on loopback, whatever the
    // address it gives the workers.
    let port = access.coordinator.rsplit(':').next().unwrap_or_default().to_string();
    let addr = format!("127.0.0.1:{port}");
    let conn = secure::connect(&addr, &access.cluster, &own, &coordinator, Role::Client).await.map_err(|e| {
        super::said!("the coordinator of {name} does not answer at {addr}: {e}; start it with `shoal cluster up --name {name}`")
    })?;
    let (rx, tx) = conn.split();
    Ok((rx, tx, addr))
}

/// The coordinator's view: workers, applications, queue.
pub async fn status(name: &str) -> super::Result<Status> {
    let (mut rx, mut tx, addr) = client(name).await?;
    tx.send(&ClientHello::Status).await?;
    let mut status = rx.recv::<Status>().await?.ok_or_else(|| super::said!("the coordinator at {addr} closed the connection"))?;
    status.allocations = super::slurm::allocations(&ClusterFiles::of(name)?).await;
    Ok(status)
}

/// What `down` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DownReport {
    pub cluster: String,
    /// Whether a coordinator was running (and was stopped).
    pub coordinator_stopped: bool,
    pub workers_stopped: Vec<String>,
    /// Hosts where a worker had to be killed over ssh, or could not be checked.
    pub notes: Vec<String>,
}

/// Stops the coordinator and every worker; safe to run twice.
pub async fn down(name: &str) -> super::Result<DownReport> {
    let files = ClusterFiles::of(name)?;
    let mut report = DownReport { cluster: name.into(), coordinator_stopped: false, workers_stopped: Vec::new(), notes: Vec::new() };
    if !files.dir.exists() {
        return Ok(report);
    }
    let file = CoordinatorFile::load(&files.coordinator()).ok();
    if let Ok((mut rx, mut tx, _)) = client(name).await {
        if tx.send(&ClientHello::Shutdown).await.is_ok() {
            if let Ok(Some(s)) = rx.recv::<Status>().await {
                report.workers_stopped = s.workers.iter().filter(|w| w.alive).map(|w| w.name.clone()).collect();
            }
            report.coordinator_stopped = true;
        }
    }
    let ours = ["coordinator", "--name", name];
    if let Some(pid) = worker::running(&files.pid(), &ours) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while worker::running(&files.pid(), &ours).is_some() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if worker::running(&files.pid(), &ours).is_some() {
            // SAFETY: a plain syscall on the coordinator's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            report.notes.push(format!("the coordinator (pid {pid}) did not stop when asked: killed"));
        }
        report.coordinator_stopped = true;
    }
    let _ = std::fs::remove_file(files.pid());
    match super::slurm::cancel_all(&files).await {
        Ok(jobs) => report.notes.extend(jobs.into_iter().map(|job| format!("Slurm job {job}: cancelled"))),
        // Noted, and the rest is stopped all the same; `down` again retries it.
        Err(e) => report.notes.push(e.to_string()),
    }
    // Workers that were cut off from the coordinator did not hear `Stop`:
    // make sure over ssh, on every host of the cluster file `up` used.
    let forward = file.as_ref().map(|f| tunnel_forward(f.port));
    let cluster = file.and_then(|f| f.cluster_file).and_then(|p| crate::driver::specs::find_cluster(Some(&p)).ok());
    if let Some(cluster) = cluster {
        let mut set = JoinSet::new();
        for host in cluster.hosts {
            let name = name.to_string();
            set.spawn(async move { (host.name.clone(), stop_worker(&host, &name).await) });
        }
        while let Some(Ok((host, result))) = set.join_next().await {
            match result {
                Ok(true) => report.notes.push(format!("{host}: its worker was still running: stopped")),
                Ok(false) => {}
                Err(e) => report.notes.push(format!("{host}: cannot check for a worker left running: {e}")),
            }
        }
    }
    // Last, the ssh tunnels (the workers needed them to hear `Stop`).
    for entry in std::fs::read_dir(&files.dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("tunnel-") && name.ends_with(".pid") {
            let words: Vec<&str> = ["-N", "-R"].into_iter().chain(forward.as_deref()).collect();
            if let Some(pid) = worker::running(&entry.path(), &words) {
                // SAFETY: a plain syscall on the tunnel's ssh process.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            let _ = std::fs::remove_file(entry.path());
        }
    }
    report.notes.sort();
    Ok(report)
}

/// The shell words that stop a worker of `name` left on a host; prints
/// `stopped` when there was one.
fn stop_script(workdir: &str, name: &str) -> Result<String, crate::quote::QuoteError> {
    let body = r#"w=@DIR@; f="$w/clusters/@NAME@/worker.pid"
p=$(cat "$f" 2>/dev/null) || exit 0
case "$p" in *[!0-9]*|'') exit 0;; esac
if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q ' worker '; then
  kill "$p"; i=0
  while [ -e "/proc/$p" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  [ -e "/proc/$p" ] && kill -9 "$p"
  echo stopped
fi
rm -f "$f""#;
    let script = body.replace("@DIR@", &crate::quote::path(workdir)?).replace("@NAME@", &crate::quote::word(name)?);
    crate::quote::sh_script(&script)
}

async fn stop_worker(host: &HostSpec, name: &str) -> Result<bool, String> {
    let script = stop_script(&host.workdir, name).map_err(|e| e.to_string())?;
    let out = match host.transport {
        TransportKind::Ssh => ssh::ssh_command(host).arg(script).stdin(Stdio::null()).output().await,
        _ => {
            let local = stop_script(&expand_home(&host.workdir).display().to_string(), name).map_err(|e| e.to_string())?;
            tokio::process::Command::new("/bin/sh").arg("-c").arg(local).stdin(Stdio::null()).output().await
        }
    }
    .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).contains("stopped"))
}

/// The coordinator's process: listens, writes its pid file, serves until
/// `down`.
pub async fn serve_coordinator(name: &str) -> super::Result<()> {
    let files = ClusterFiles::of(name)?;
    let path = files.coordinator();
    let file = CoordinatorFile::load(&path)?;
    let acceptor = file.acceptor(&path)?;
    raise_open_files();
    let listener = tokio::net::TcpListener::bind((file.listen.as_str(), file.port)).await.map_err(|e| {
        super::said!("cannot listen on {}:{}: {e} (another coordinator, or another program, holds that port?)", file.listen, file.port)
    })?;
    crate::driver::run::private::write_atomic(&files.pid(), |f| {
        std::io::Write::write_all(f, format!("{}\n", std::process::id()).as_bytes())
    })?;
    tracing::info!("coordinator of {name} listening on {}:{} (pid {})", file.listen, file.port, std::process::id());
    let settings = Settings {
        cluster: name.to_string(),
        max_applications: file.max_applications,
        heartbeat_timeout: Duration::from_millis(file.heartbeat_timeout_ms.max(500)),
        relay: file.tunnel,
    };
    Coordinator::new(settings, acceptor).serve(listener).await;
    let _ = std::fs::remove_file(files.pid());
    tracing::info!("coordinator of {name} stopped");
    Ok(())
}

/// Lets the coordinator hold as many connections as the system allows
/// this user (the soft limit up to the hard one): a crowd of strangers
/// then waits for its handshakes instead of starving the descriptors.
fn raise_open_files() {
    // SAFETY: plain syscalls on this process's own limits.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Renders `status` as text.
pub fn render(s: &Status) -> String {
    let mut out = format!("cluster {} (coordinator pid {}, up {:.0}s)\n", s.cluster, s.coordinator_pid, s.uptime_ms as f64 / 1000.0);
    out.push_str(&format!(
        "{:<16} {:<6} {:>10} {:>11} {:>9} {:>8}  {}\n",
        "WORKER", "ALIVE", "HEARTBEAT", "SLOTS BUSY", "CORES", "MEMORY", "STARTED BY"
    ));
    for w in &s.workers {
        out.push_str(&format!(
            "{:<16} {:<6} {:>8}ms {:>5}/{:<5} {:>9} {:>6}Gi  {}\n",
            w.name,
            if w.alive { "yes" } else { "LOST" },
            w.last_heartbeat_ms,
            w.busy,
            w.slots,
            w.cores,
            w.memory_bytes >> 30,
            if w.started_by.is_empty() { "ssh" } else { &w.started_by }
        ));
    }
    out.push_str(&format!("applications: {} running, {} queued\n", s.applications.len(), s.queue.len()));
    for (state, a) in s.applications.iter().map(|a| ("running", a)).chain(s.queue.iter().map(|a| ("queued", a))) {
        out.push_str(&format!(
            "  {state:<8} #{:<4} {:<24} {} pid {} on {}, {} slots, {:.1}s\n",
            a.id,
            a.label,
            a.user,
            a.pid,
            a.machine,
            a.slots,
            a.age_ms as f64 / 1000.0
        ));
    }
    for a in &s.allocations {
        out.push_str(&format!("slurm job {}: {} {}\n", a.job, a.state, a.nodes));
    }
    if s.refused > 0 {
        out.push_str(&format!("refused connections: {} (last: {})\n", s.refused, s.refusals.last().map_or("", |r| r.as_str())));
    }
    out
}
