//! The worker daemon: `shoal worker --join ACCESS`. It joins the
//! coordinator with the worker key, heartbeats, and for every session the
//! coordinator opens starts a fresh agent (the driver's binary, uploaded
//! through the session when this host lacks it) whose stdio is the
//! session. It reconnects when the coordinator goes away, and stops its
//! agents and exits when the coordinator says `Stop`.
//!
//! An agent ends when its session does (its stdin closes), so a worker
//! killed outright leaves nothing running either: its sessions end.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_wire::agent_args::{self, AgentArgs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tracing::{info, warn};

use super::access::Access;
use super::proto::{FromWorker, Join, SessionOutcome, ToWorker, Upload, WorkerHello};
use super::secure::{self, KeyPair, Receiver, Role, Sender};

/// How often a worker heartbeats.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// What a worker is.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    pub name: String,
    pub slots: u32,
    pub workdir: PathBuf,
    /// `HOST:PORT` of the coordinator.
    pub coordinator: String,
    pub started_by: String,
}

struct Worker {
    options: WorkerOptions,
    access: Access,
    own: KeyPair,
    coordinator_key: [u8; 32],
    /// The agents running now, by session: their process group ids.
    agents: Mutex<HashMap<u64, i32>>,
}

/// Runs the worker until the coordinator says `Stop`.
pub async fn run(access: Access, access_path: &Path, options: WorkerOptions) -> super::Result<()> {
    let (own, coordinator_key) = access.keys(access_path)?;
    if access.role() != Some(Role::Worker) {
        return Err(super::said!(
            "{} is not a worker's access file (role {:?}); give `shoal worker --join` the cluster's worker.access",
            access_path.display(),
            access.role
        ));
    }
    std::fs::create_dir_all(options.workdir.join("bin"))?;
    std::fs::set_permissions(&options.workdir, std::fs::Permissions::from_mode(0o700))?;
    let me = Arc::new(Worker { options, access, own, coordinator_key, agents: Mutex::new(HashMap::new()) });
    let mut backoff = Duration::from_millis(100);
    loop {
        match me.clone().session_with_coordinator().await {
            Ok(Stop::Asked) => {
                info!("stopping: the coordinator asked");
                me.stop_agents();
                return Ok(());
            }
            Ok(Stop::Lost(why)) => {
                warn!("lost the coordinator ({why}); reconnecting");
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                warn!("cannot join the coordinator at {}: {e}; trying again in {:.1}s", me.options.coordinator, backoff.as_secs_f64())
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

enum Stop {
    Asked,
    Lost(String),
}

impl Worker {
    async fn connect(&self) -> Result<(Receiver, Sender), secure::SecureError> {
        let conn = secure::connect(&self.options.coordinator, &self.access.cluster, &self.own, &self.coordinator_key, Role::Worker).await?;
        Ok(conn.split())
    }

    async fn session_with_coordinator(self: Arc<Self>) -> Result<Stop, secure::SecureError> {
        let (mut rx, mut tx) = self.connect().await?;
        let join = Join {
            name: self.options.name.clone(),
            slots: self.options.slots,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            memory_bytes: memory_bytes(),
            workdir: self.options.workdir.display().to_string(),
            pid: std::process::id(),
            started_by: self.options.started_by.clone(),
        };
        tx.send(&WorkerHello::Join(join)).await?;
        info!("joined the coordinator at {}", self.options.coordinator);
        let beats = {
            let me = self.clone();
            async move {
                loop {
                    let agents = me.agents.lock().expect("agents").len() as u32;
                    if tx.send(&FromWorker::Heartbeat { agents }).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(HEARTBEAT).await;
                }
            }
        };
        let commands = async {
            loop {
                match rx.recv::<ToWorker>().await {
                    Ok(Some(ToWorker::Open { session, token, binary_hash, lease_ms })) => {
                        let me = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = me.open(session, token, &binary_hash, Duration::from_millis(lease_ms)).await {
                                warn!("session {session}: {e}");
                            }
                        });
                    }
                    Ok(Some(ToWorker::Stop)) => return Stop::Asked,
                    Ok(None) => return Stop::Lost("the connection closed".into()),
                    Err(e) => return Stop::Lost(e.to_string()),
                }
            }
        };
        tokio::select! {
            stop = commands => Ok(stop),
            () = beats => Ok(Stop::Lost("a heartbeat could not be sent".into())),
        }
    }

    /// One session: connect back, install the binary if need be, start
    /// the agent and bridge its stdio.
    async fn open(self: Arc<Self>, session: u64, token: [u8; 16], hash: &str, lease: Duration) -> super::Result<()> {
        let (mut rx, mut tx) = self.connect().await?;
        tx.send(&WorkerHello::Session { session, worker: self.options.name.clone(), token }).await?;
        if !is_hash(hash) {
            tx.send(&SessionOutcome::Failed(format!("{hash:?} is not a binary hash"))).await?;
            return Ok(());
        }
        let bin = self.options.workdir.join("bin").join(format!("shoal-{hash}"));
        if !bin.exists() {
            tx.send(&SessionOutcome::NeedBinary { uname: crate::transport::ssh::local_uname() }).await?;
            let Some(Upload { size }) = rx.recv::<Upload>().await? else { return Ok(()) };
            if let Err(e) = install(&mut rx, size, hash, &bin, session).await {
                tx.send(&SessionOutcome::Failed(format!("cannot install the agent binary: {e}"))).await?;
                return Ok(());
            }
        }
        let args = AgentArgs::new(&self.options.workdir).with_lease(lease);
        let peer_ip = own_ip(&self.options.coordinator).await;
        let spawned = Command::new(&bin)
            .arg(agent_args::SUBCOMMAND)
            .args(args.to_args())
            .env(crate::peer::PEER_IP_ENV, peer_ip)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                tx.send(&SessionOutcome::Failed(format!("cannot start the agent {}: {e}", bin.display()))).await?;
                return Ok(());
            }
        };
        if let Some(pid) = child.id() {
            self.agents.lock().expect("agents").insert(session, pid as i32);
        }
        tx.send(&SessionOutcome::Started).await?;
        let (mut stdin, mut stdout) = (child.stdin.take().expect("piped"), child.stdout.take().expect("piped"));
        let first = rx.take_pending();
        let down = async move {
            if stdin.write_all(&first).await.is_ok() {
                while let Ok(Some(chunk)) = rx.recv_bytes().await {
                    if stdin.write_all(chunk).await.is_err() {
                        break;
                    }
                }
            }
            // Dropping stdin is the agent's signal to end.
        };
        let up = async move {
            let mut buf = vec![0u8; secure::MAX_PLAIN];
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send_bytes(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            tx.shutdown().await;
        };
        tokio::join!(down, up);
        let _ = child.wait().await;
        self.agents.lock().expect("agents").remove(&session);
        Ok(())
    }

    /// Ends every agent (their process groups, tasks included).
    fn stop_agents(&self) {
        for (_, pgid) in self.agents.lock().expect("agents").drain() {
            // SAFETY: plain syscalls on process groups this worker started.
            unsafe {
                libc::kill(-pgid, libc::SIGTERM);
            }
        }
    }
}

/// A BLAKE3 hash as `shoal` names binaries: 64 lower-case hex digits.
fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Receives `size` bytes of binary and installs it at `bin` if its hash
/// is the one asked for: temp file created exclusively, synced, 0700,
/// renamed.
async fn install(rx: &mut Receiver, size: u64, hash: &str, bin: &Path, session: u64) -> super::Result<()> {
    let nonce: u64 = rand::random();
    let tmp = bin.with_extension(format!("{session}.{nonce:016x}.part"));
    let mut f = crate::driver::run::private::create(&tmp)?;
    let mut hasher = blake3::Hasher::new();
    let mut left = size;
    let mut first = rx.take_pending();
    let result: super::Result<()> = async {
        while left > 0 {
            let chunk: &[u8] = if !first.is_empty() {
                &first
            } else {
                match rx.recv_bytes().await? {
                    Some(c) => c,
                    None => return Err(super::said!("the session ended after {} of {size} bytes", size - left)),
                }
            };
            let n = chunk.len().min(left as usize);
            hasher.update(&chunk[..n]);
            f.write_all(&chunk[..n])?;
            left -= n as u64;
            first.clear();
        }
        f.sync_all()?;
        let got = hasher.finalize().to_hex().to_string();
        if got != hash {
            return Err(super::said!("the binary sent hashes to {got}, not {hash}"));
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))?;
        std::fs::rename(&tmp, bin)?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The address of this host on the network the coordinator is reached
/// by: the one peers of a run use to fetch from its agents.
async fn own_ip(coordinator: &str) -> String {
    let Ok(sock) = tokio::net::UdpSocket::bind("0.0.0.0:0").await else { return "127.0.0.1".into() };
    match sock.connect(coordinator).await.and_then(|()| sock.local_addr()) {
        Ok(a) => a.ip().to_string(),
        Err(_) => "127.0.0.1".into(),
    }
}

fn memory_bytes() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Detaches this process (before any thread exists): the parent calls
/// `announce(pid)` (which prints) and exits 0; the child continues in a new
/// session with stdin from /dev/null and stdout and stderr appended to
/// `log`, and its pid written to `pid_file`.
///
/// # Safety
/// Must be called while the process has one thread (before tokio starts).
pub unsafe fn detach(log: &Path, pid_file: &Path, announce: impl FnOnce(u32)) -> std::io::Result<()> {
    let log_file = crate::driver::run::private::append(log)?;
    match libc::fork() {
        -1 => return Err(std::io::Error::last_os_error()),
        0 => {}
        child => {
            announce(child as u32);
            let _ = std::io::stdout().flush();
            libc::_exit(0);
        }
    }
    libc::setsid();
    let null = std::fs::File::open("/dev/null")?;
    use std::os::fd::AsRawFd;
    libc::dup2(null.as_raw_fd(), 0);
    libc::dup2(log_file.as_raw_fd(), 1);
    libc::dup2(log_file.as_raw_fd(), 2);
    crate::driver::run::private::write_atomic(pid_file, |f| writeln!(f, "{}", std::process::id()))?;
    Ok(())
}

/// The pid in `pid_file` if that process is alive and its command line
/// has every one of `words` (`["coordinator", "--name", "lab"]`): a pid
/// reused by another process is not taken for the daemon.
pub fn running(pid_file: &Path, words: &[&str]) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let have: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    words.iter().all(|w| have.contains(&w.as_bytes())).then_some(pid)
}
