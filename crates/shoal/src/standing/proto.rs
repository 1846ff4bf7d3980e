//! What is said on a standing cluster's connections, after the Noise
//! handshake. A client connection opens with a [`ClientHello`]; a worker
//! connection with a [`WorkerHello`]. Everything is postcard-encoded.

use serde::{Deserialize, Serialize};

/// The first message of every client-role connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ClientHello {
    /// A driver asks to run an application; the connection then stays
    /// open for as long as the application runs (its end ends the
    /// application and frees its slots).
    Apply(Apply),
    /// A link of a granted application: bridge this connection to a new
    /// agent on `worker`, started from the binary with `binary_hash`.
    Attach { app: u64, secret: [u8; 16], worker: String, binary_hash: String, lease_ms: u64 },
    /// `shoal cluster status`.
    Status,
    /// `shoal cluster down`: stop every worker, then the coordinator.
    Shutdown,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Apply {
    /// What the application is (`wordcount`, a job file's name).
    pub label: String,
    /// Who runs it (user name) and from which process (pid, machine).
    pub user: String,
    pub pid: u32,
    pub machine: String,
}

/// What the coordinator says on an application's connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AppEvent {
    /// Waiting: `ahead` applications are queued before this one.
    Queued { ahead: u32, running: u32 },
    /// Admitted: the application's id, the secret its links show, its
    /// share of every worker, and whether shuffle data must go through
    /// the driver (a cluster whose workers reach it through ssh tunnels).
    Granted { app: u64, secret: [u8; 16], workers: Vec<Grant>, relay: bool },
    /// Its share changed (another application came or went).
    Share { workers: Vec<Grant> },
    /// A worker was lost: its agents are gone.
    Lost { worker: String, reason: String },
    /// The coordinator is stopping (`shoal cluster down`).
    Stopping,
}

/// An application's share of one worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub worker: String,
    pub slots: u32,
    pub cores: u32,
    pub workdir: String,
}

/// The coordinator's answer to [`ClientHello::Attach`]: from `Bridged`
/// on, the connection carries the worker session's bytes both ways (a
/// [`SessionOutcome`] from the worker first).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AttachReply {
    Bridged,
    Refused(String),
}

/// The first message of every worker-role connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WorkerHello {
    /// A worker daemon joins (or rejoins) the cluster; the connection is
    /// its control line, with heartbeats.
    Join(Join),
    /// The worker's side of session `session`, with the token its `Open`
    /// carried: from here the coordinator bridges it to the link that
    /// asked for it.
    Session { session: u64, worker: String, token: [u8; 16] },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Join {
    pub name: String,
    pub slots: u32,
    pub cores: u32,
    pub memory_bytes: u64,
    pub workdir: String,
    pub pid: u32,
    /// `slurm:JOBID` for a worker in a Slurm allocation, `docker`, or
    /// empty for one started over ssh by `shoal cluster up`.
    pub started_by: String,
}

/// The worker's first word on a bridged session, to the link.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SessionOutcome {
    /// The agent runs; its bytes follow, and the link's bytes are its stdin.
    Started,
    /// The binary is missing: the link sends an [`Upload`] and its bytes,
    /// then the worker says again.
    NeedBinary {
        uname: String,
    },
    Failed(String),
}

/// A binary the link sends after `NeedBinary`: `size` raw bytes follow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Upload {
    pub size: u64,
}

/// What the coordinator says on a worker's control line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// Start an agent from `binary_hash` and connect back for `session`.
    Open { session: u64, token: [u8; 16], binary_hash: String, lease_ms: u64 },
    /// Stop every agent and exit (`shoal cluster down`).
    Stop,
}

/// What a worker says on its control line after joining.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FromWorker {
    Heartbeat { agents: u32 },
}

/// `shoal cluster status`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Status {
    pub cluster: String,
    pub coordinator_pid: u32,
    pub uptime_ms: u64,
    pub workers: Vec<WorkerStatus>,
    pub applications: Vec<AppStatus>,
    pub queue: Vec<AppStatus>,
    /// Connections refused at the handshake, and the last few reasons.
    pub refused: u64,
    pub refusals: Vec<String>,
    /// Messages passed to the decoder, per role (only authenticated
    /// bytes ever are).
    pub decoded_client: u64,
    pub decoded_worker: u64,
    /// Slurm allocations of `shoal cluster slurm` (filled in by the
    /// client from the cluster's directory and `squeue`).
    pub allocations: Vec<super::slurm::Allocation>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub name: String,
    pub alive: bool,
    pub last_heartbeat_ms: u64,
    pub slots: u32,
    pub busy: u32,
    pub cores: u32,
    pub memory_bytes: u64,
    pub started_by: String,
    pub pid: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppStatus {
    pub id: u64,
    pub label: String,
    pub user: String,
    pub pid: u32,
    pub machine: String,
    pub slots: u32,
    pub age_ms: u64,
}
