//! A standing cluster's keys and access files, under
//! `~/.shoal/clusters/<name>/` (a 0700 directory of 0600 files):
//!
//! - `coordinator.toml`: the coordinator's own key pair, the public keys
//!   it accepts for each role, the port it listens on;
//! - `client.access`: what a driver (or `status`, `down`) needs: the
//!   coordinator's address and public key, and the client key;
//! - `worker.access`: the same with the worker key, for `shoal worker
//!   --join` (Slurm, Docker, Kubernetes): a worker key cannot submit work.
//!
//! Every file is refused when others can read it, as ssh refuses a
//! private key others can read.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::secure::{Acceptor, KeyPair, Role};
use crate::driver::run::private;
use crate::transport::local::expand_home;

/// Why an access file or the cluster's directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("no standing cluster {name:?} here ({} does not exist); start it with `shoal cluster up --name {name}`", dir.display())]
    NoCluster { name: String, dir: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {why}; fix it, or run `shoal cluster up` again to write it anew", path.display())]
    Invalid { path: PathBuf, why: String },
    #[error("{} can be read by other users (mode {mode:o}), and it holds a key: run chmod 600 {} (a cluster's keys must be yours alone)", path.display(), path.display())]
    Open { path: PathBuf, mode: u32 },
    #[error("cluster name {0:?} is not a plain name: use letters, digits, '-' and '_'")]
    BadName(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AccessError + '_ {
    move |source| AccessError::Io { path: path.to_path_buf(), source }
}

/// The directory of cluster `name` on this machine.
pub fn cluster_dir(name: &str) -> Result<PathBuf, AccessError> {
    let plain = !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plain {
        return Err(AccessError::BadName(name.into()));
    }
    Ok(expand_home("~/.shoal/clusters").join(name))
}

/// What a client or a worker holds.
#[derive(Clone, Serialize, Deserialize)]
pub struct Access {
    pub cluster: String,
    /// `client` or `worker`.
    pub role: String,
    /// `HOST:PORT` of the coordinator. A worker started by `shoal cluster
    /// up` over ssh uses the address its ssh session came from instead.
    pub coordinator: String,
    /// The coordinator's public key (hex): the only one this file trusts.
    pub coordinator_key: String,
    /// This holder's private key (hex).
    pub key: String,
    /// Its public key (hex).
    pub public: String,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Access {{ cluster: {:?}, role: {:?}, coordinator: {:?}, key: (hidden) }}", self.cluster, self.role, self.coordinator)
    }
}

impl Access {
    pub fn role(&self) -> Option<Role> {
        match self.role.as_str() {
            "client" => Some(Role::Client),
            "worker" => Some(Role::Worker),
            _ => None,
        }
    }

    /// The key pair and the coordinator's key, decoded.
    pub fn keys(&self, path: &Path) -> Result<(KeyPair, [u8; 32]), AccessError> {
        let bad = |why: &str| AccessError::Invalid { path: path.to_path_buf(), why: why.into() };
        let private = shoal_wire::unhex(&self.key).ok_or_else(|| bad("`key` is not 64 hex digits"))?;
        let public = shoal_wire::unhex(&self.public).ok_or_else(|| bad("`public` is not 64 hex digits"))?;
        let coordinator = shoal_wire::unhex(&self.coordinator_key).ok_or_else(|| bad("`coordinator_key` is not 64 hex digits"))?;
        Ok((KeyPair { public, private }, coordinator))
    }

    /// Parses an access file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Access, AccessError> {
        let a: Access =
            toml::from_str(text).map_err(|e| AccessError::Invalid { path: path.to_path_buf(), why: e.message().to_string() })?;
        if a.role().is_none() {
            return Err(AccessError::Invalid {
                path: path.to_path_buf(),
                why: format!("role {:?} is neither \"client\" nor \"worker\"", a.role),
            });
        }
        a.keys(path)?;
        Ok(a)
    }

    /// Reads an access file, refusing one others can read.
    pub fn load(path: &Path) -> Result<Access, AccessError> {
        if !path.exists() {
            return Err(AccessError::Invalid {
                path: path.to_path_buf(),
                why: "no such access file (`shoal cluster up` writes client.access and worker.access in ~/.shoal/clusters/NAME/)".into(),
            });
        }
        check_private(path)?;
        let text = fs::read_to_string(path).map_err(io(path))?;
        Access::parse(&text, path)
    }

    pub fn to_text(&self) -> String {
        let head = match self.role.as_str() {
            "worker" => "# A worker's key to the standing cluster: `shoal worker --join THIS_FILE`.\n# It lets a worker join; it cannot submit work. Keep it private (0600).\n",
            _ => "# A client's key to the standing cluster: `shoal run ... --on NAME` reads it.\n# Whoever holds it can run jobs on the cluster. Keep it private (0600).\n",
        };
        format!("{head}{}", toml::to_string(self).expect("an access file serializes"))
    }
}

/// The coordinator's own file.
#[derive(Clone, Serialize, Deserialize)]
pub struct CoordinatorFile {
    pub cluster: String,
    /// Address to listen on (`0.0.0.0`).
    pub listen: String,
    pub port: u16,
    /// Address workers and clients are told to use.
    pub advertise: String,
    pub key: String,
    pub public: String,
    pub client_key: String,
    pub worker_key: String,
    /// The cluster file `up` used (hosts to start workers on, and to stop).
    pub cluster_file: Option<PathBuf>,
    /// Applications that may run at once; more wait in the queue.
    pub max_applications: u32,
    /// Silence after which a worker is lost, in milliseconds.
    pub heartbeat_timeout_ms: u64,
    /// Workers started by `up` reach the coordinator through ssh tunnels.
    #[serde(default)]
    pub tunnel: bool,
}

impl CoordinatorFile {
    pub fn acceptor(&self, path: &Path) -> Result<Acceptor, AccessError> {
        let bad = |what: &str| AccessError::Invalid { path: path.to_path_buf(), why: format!("`{what}` is not 64 hex digits") };
        Ok(Acceptor {
            cluster: self.cluster.clone(),
            own: KeyPair {
                private: shoal_wire::unhex(&self.key).ok_or_else(|| bad("key"))?,
                public: shoal_wire::unhex(&self.public).ok_or_else(|| bad("public"))?,
            },
            client: shoal_wire::unhex(&self.client_key).ok_or_else(|| bad("client_key"))?,
            worker: shoal_wire::unhex(&self.worker_key).ok_or_else(|| bad("worker_key"))?,
        })
    }

    pub fn load(path: &Path) -> Result<CoordinatorFile, AccessError> {
        check_private(path)?;
        let text = fs::read_to_string(path).map_err(io(path))?;
        toml::from_str(&text).map_err(|e| AccessError::Invalid { path: path.to_path_buf(), why: e.message().to_string() })
    }
}

/// The files of one cluster.
pub struct ClusterFiles {
    pub dir: PathBuf,
}

impl ClusterFiles {
    pub fn of(name: &str) -> Result<ClusterFiles, AccessError> {
        Ok(ClusterFiles { dir: cluster_dir(name)? })
    }

    pub fn coordinator(&self) -> PathBuf {
        self.dir.join("coordinator.toml")
    }
    pub fn client(&self) -> PathBuf {
        self.dir.join("client.access")
    }
    pub fn worker(&self) -> PathBuf {
        self.dir.join("worker.access")
    }
    pub fn pid(&self) -> PathBuf {
        self.dir.join("coordinator.pid")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("coordinator.log")
    }

    /// Makes the directory (0700, and closes an existing one to others).
    pub fn make_dir(&self) -> Result<(), AccessError> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(io(&self.dir))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(io(&self.dir))
    }

    /// Creates the keys and files of a new cluster, or keeps the ones
    /// there (running `up` again must not lock out the workers and
    /// clients that already hold them). Returns the coordinator's file.
    pub fn ensure(&self, fresh: impl FnOnce(&CoordinatorFile) -> CoordinatorFile) -> Result<CoordinatorFile, AccessError> {
        self.make_dir()?;
        let path = self.coordinator();
        if path.exists() {
            let old = CoordinatorFile::load(&path)?;
            let new = fresh(&old);
            write_private(&path, &toml::to_string(&new).expect("serializes"))?;
            self.write_access(&new, None)?;
            return Ok(new);
        }
        let (own, client, worker) = (KeyPair::generate(), KeyPair::generate(), KeyPair::generate());
        let hex = shoal_wire::hex;
        let base = CoordinatorFile {
            cluster: String::new(),
            listen: "0.0.0.0".into(),
            port: 0,
            advertise: "127.0.0.1".into(),
            key: hex(&own.private),
            public: hex(&own.public),
            client_key: hex(&client.public),
            worker_key: hex(&worker.public),
            cluster_file: None,
            max_applications: 0,
            heartbeat_timeout_ms: 5000,
            tunnel: false,
        };
        let new = fresh(&base);
        write_private(&path, &toml::to_string(&new).expect("serializes"))?;
        self.write_access(&new, Some((&client, &worker)))?;
        Ok(new)
    }

    /// (Re)writes the access files with the coordinator's address; keys
    /// are kept from the files there unless new ones are given.
    fn write_access(&self, c: &CoordinatorFile, new: Option<(&KeyPair, &KeyPair)>) -> Result<(), AccessError> {
        let own = c.acceptor(&self.coordinator())?.own;
        for (role, path, fresh) in [("client", self.client(), new.map(|n| n.0)), ("worker", self.worker(), new.map(|n| n.1))] {
            let (key, public) = match fresh {
                Some(k) => (shoal_wire::hex(&k.private), shoal_wire::hex(&k.public)),
                None => {
                    let old = Access::load(&path)?;
                    (old.key, old.public)
                }
            };
            let access = Access {
                cluster: c.cluster.clone(),
                role: role.into(),
                coordinator: format!("{}:{}", c.advertise, c.port),
                coordinator_key: shoal_wire::hex(&own.public),
                key,
                public,
            };
            write_private(&path, &access.to_text())?;
        }
        Ok(())
    }
}

/// Writes a 0600 file whole (temp, sync, rename).
pub fn write_private(path: &Path, text: &str) -> Result<(), AccessError> {
    private::write_atomic(path, |f| f.write_all(text.as_bytes())).map_err(io(path))
}

/// Refuses a key file others can read or write.
fn check_private(path: &Path) -> Result<(), AccessError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AccessError::Open { path: path.to_path_buf(), mode });
    }
    Ok(())
}

/// Writes a worker's access file into `dir` (0700, the file 0600), for
/// workers that a login host's Slurm starts; returns its path.
pub fn stage_worker_access(dir: &Path, access: &Access) -> Result<PathBuf, AccessError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
    let path = dir.join("worker.access");
    write_private(&path, &access.to_text())?;
    Ok(path)
}
