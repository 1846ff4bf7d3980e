//! The driver's side of a standing cluster: the application (one
//! connection to the coordinator, open for as long as this process runs)
//! and the `standing` transport, whose links are sessions bridged by the
//! coordinator to fresh agents on the workers.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use shoal_core::cluster::{ClusterSpec, HostSpec, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::access::{Access, AccessError, ClusterFiles};
use super::proto::{AppEvent, Apply, AttachReply, ClientHello, Grant, SessionOutcome, Upload};
use super::secure::{self, Role, SecureError};
use crate::binary;
use crate::transport::{greet, handshake_over, Greeting, Link, StderrTail, TransportError};

/// Why an application could not start on a standing cluster.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("cannot reach the coordinator of cluster {cluster:?} at {addr}: {source}; is it up? (`shoal cluster status --name {cluster}`, or start it with `shoal cluster up --name {cluster}`)")]
    Unreachable { cluster: String, addr: String, source: SecureError },
    #[error("the coordinator of cluster {cluster:?} ended this application: {why}")]
    Ended { cluster: String, why: String },
    #[error("{0}")]
    Other(String),
}

/// The application this process runs on a standing cluster.
pub struct Application {
    pub cluster: String,
    pub access_path: PathBuf,
    access: Access,
    pub id: u64,
    secret: [u8; 16],
    /// Its current share of each worker (the coordinator's updates).
    pub shares: watch::Receiver<Vec<Grant>>,
    /// Shuffle data goes through the driver (workers behind ssh tunnels).
    pub relay: bool,
}

static APP: OnceLock<Application> = OnceLock::new();

/// The application of this process, once [`apply`] has been granted.
pub fn current() -> Option<&'static Application> {
    APP.get()
}

/// Where `--on` points: a cluster name (`~/.shoal/clusters/NAME/`), or
/// the path of a client access file.
pub fn access_path(on: &str) -> Result<PathBuf, AccessError> {
    if on.contains('/') || on.ends_with(".access") {
        return Ok(PathBuf::from(on));
    }
    let files = ClusterFiles::of(on)?;
    if !files.dir.exists() {
        return Err(AccessError::NoCluster { name: on.to_string(), dir: files.dir });
    }
    Ok(files.client())
}

/// Applies to run on the standing cluster `on`, waits in its queue if
/// need be (saying so on stderr), and returns the cluster spec of the
/// share granted: one host per worker, with its slots. The application
/// lasts as long as this process. `label` names it in `status`.
pub async fn apply(on: &str, label: &str) -> Result<ClusterSpec, ApplyError> {
    if let Some(app) = current() {
        return Ok(spec_of(app, &app.shares.borrow()));
    }
    let path = access_path(on)?;
    let access = Access::load(&path)?;
    if access.role() != Some(Role::Client) {
        return Err(ApplyError::Other(format!(
            "{} is a worker's access file: it can join the cluster, not run jobs on it; use the cluster's client.access",
            path.display()
        )));
    }
    let (own, coordinator) = access.keys(&path)?;
    let cluster = access.cluster.clone();
    let unreachable = |source| ApplyError::Unreachable { cluster: cluster.clone(), addr: access.coordinator.clone(), source };
    let conn = secure::connect(&access.coordinator, &cluster, &own, &coordinator, Role::Client).await.map_err(unreachable)?;
    let (mut rx, mut tx) = conn.split();
    let apply =
        Apply { label: label.to_string(), user: std::env::var("USER").unwrap_or_default(), pid: std::process::id(), machine: hostname() };
    tx.send(&ClientHello::Apply(apply)).await.map_err(unreachable)?;
    let mut said_queued = None;
    let (app, secret, grants, relay) = loop {
        let ended = |why: String| ApplyError::Ended { cluster: cluster.clone(), why };
        match rx.recv::<AppEvent>().await {
            Ok(Some(AppEvent::Granted { app, secret, workers, relay })) => break (app, secret, workers, relay),
            Ok(Some(AppEvent::Queued { ahead, running })) => {
                if said_queued != Some(ahead) {
                    eprintln!("shoal: cluster {cluster}: waiting in the queue ({running} running, {ahead} ahead of this one)");
                    said_queued = Some(ahead);
                }
            }
            Ok(Some(AppEvent::Stopping)) => return Err(ended("the cluster is being stopped (`shoal cluster down`)".into())),
            Ok(Some(_)) => {}
            Ok(None) => return Err(ended("the coordinator closed the connection".into())),
            Err(e) => return Err(ended(e.to_string())),
        }
    };
    let (share_tx, shares) = watch::channel(grants);
    let application = Application { cluster: cluster.clone(), access_path: path, access, id: app, secret, shares, relay };
    let app = APP.get_or_init(|| application);
    // The connection lives as long as this process: its end is what tells
    // the coordinator that the application is over. The sending half is
    // kept in the task so that it is never closed before.
    tokio::spawn(async move {
        let _keep = tx;
        loop {
            match rx.recv::<AppEvent>().await {
                Ok(Some(AppEvent::Share { workers })) => {
                    let _ = share_tx.send(workers);
                }
                // A lost worker's sessions end too: the run sees its links
                // break, and reruns what ran there.
                Ok(Some(AppEvent::Lost { worker, reason })) => tracing::info!("worker {worker} lost: {reason}"),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    tracing::warn!("the connection to the coordinator ended");
                    break;
                }
            }
        }
        // Keep the sending half open until the process ends, so that a
        // driver whose coordinator restarted fails on its links, not here.
        std::future::pending::<()>().await;
    });
    Ok(spec_of(app, &app.shares.borrow()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// The cluster spec of a share: one host per worker with slots in it.
fn spec_of(app: &Application, grants: &[Grant]) -> ClusterSpec {
    let mut spec = ClusterSpec::local();
    spec.source = Some(app.access_path.clone());
    if app.relay {
        spec.data = shoal_core::cluster::DataPath::Relay;
    }
    spec.hosts = grants
        .iter()
        .map(|g| {
            let mut h = HostSpec::new(&g.worker);
            h.transport = TransportKind::Standing;
            h.address = app.cluster.clone();
            h.workdir = g.workdir.clone();
            h.slots = Some(g.slots.max(1));
            h
        })
        .collect();
    spec
}

/// The `standing` transport: a session through the coordinator to a new
/// agent on the worker `host.name`, started from this program's binary
/// (uploaded first when the worker lacks it).
pub async fn start(host: &HostSpec, lease: Duration) -> Result<Link, TransportError> {
    let app = current().ok_or_else(|| TransportError::Standing("no application on a standing cluster in this process".into()))?;
    let bin = binary::current().map_err(TransportError::OwnExecutable)?.clone();
    let fail = |why: String| TransportError::Standing(why);
    let (own, coordinator) = app.access.keys(&app.access_path).map_err(|e| fail(e.to_string()))?;
    let conn = secure::connect(&app.access.coordinator, &app.cluster, &own, &coordinator, Role::Client)
        .await
        .map_err(|e| fail(format!("cannot reach the coordinator at {}: {e}", app.access.coordinator)))?;
    let (mut rx, mut tx) = conn.split();
    let attach = ClientHello::Attach {
        app: app.id,
        secret: app.secret,
        worker: host.name.clone(),
        binary_hash: bin.hash.clone(),
        lease_ms: lease.as_millis() as u64,
    };
    let lost = |e: SecureError| fail(format!("the session to worker {} broke: {e}", host.name));
    tx.send(&attach).await.map_err(lost)?;
    match rx.recv::<AttachReply>().await.map_err(lost)? {
        Some(AttachReply::Bridged) => {}
        Some(AttachReply::Refused(why)) => return Err(fail(why)),
        None => return Err(fail("the coordinator closed the session".into())),
    }
    loop {
        match rx.recv::<SessionOutcome>().await.map_err(lost)? {
            Some(SessionOutcome::Started) => break,
            Some(SessionOutcome::NeedBinary { uname }) => {
                if uname != crate::transport::ssh::local_uname() {
                    return Err(TransportError::Arch { remote: uname, local: crate::transport::ssh::local_uname() });
                }
                upload(&bin.path, bin.size, &mut tx)
                    .await
                    .map_err(|e| fail(format!("cannot send the agent binary to {}: {e}", host.name)))?;
            }
            Some(SessionOutcome::Failed(why)) => return Err(fail(format!("worker {}: {why}", host.name))),
            None => return Err(fail(format!("worker {} closed the session", host.name))),
        }
    }
    // The session's bytes are the agent's stdio: bridge them to two pipes
    // in this process, which the driver reads and writes as it would a
    // child's.
    let (to_agent, mut to_agent_far) = tokio::io::duplex(1 << 16);
    let (mut from_agent_far, from_agent) = tokio::io::duplex(1 << 16);
    let first = rx.take_pending();
    tokio::spawn(async move {
        if from_agent_far.write_all(&first).await.is_err() {
            return;
        }
        while let Ok(Some(chunk)) = rx.recv_bytes().await {
            if from_agent_far.write_all(chunk).await.is_err() {
                break;
            }
        }
        let _ = from_agent_far.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match to_agent_far.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send_bytes(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        tx.shutdown().await;
    });
    let mut reader: crate::transport::LinkReader = Box::new(from_agent);
    match greet(&mut reader).await? {
        Greeting::Agent(rest) => handshake_over(None, to_agent, reader, rest, StderrTail::spawn(None)).await,
        Greeting::NeedBinary(_) | Greeting::Eof(_) => Err(fail(format!("the agent on worker {} did not start", host.name))),
    }
}

async fn upload(path: &Path, size: u64, tx: &mut secure::Sender) -> Result<(), SecureError> {
    tx.send(&Upload { size }).await?;
    let mut f = tokio::fs::File::open(path).await?;
    let mut buf = vec![0u8; secure::MAX_PLAIN];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        tx.send_bytes(&buf[..n]).await?;
    }
}

impl From<ApplyError> for crate::Error {
    fn from(e: ApplyError) -> crate::Error {
        crate::Error::Standing(e.to_string())
    }
}
