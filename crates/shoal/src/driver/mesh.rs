//! Which pairs of hosts move data straight to each other.
//!
//! At the start of a run that shuffles, the driver makes the run's key
//! ([`crate::peer::new_key`]), hands it to every ssh host's agent over
//! its link and asks each to listen for the run's peers, then has every
//! agent probe every other one (connect, Noise handshake, one round
//! trip). A pair that answered moves its shuffle buckets directly; a pair
//! that did not, a host the driver started itself (the local transport,
//! where the relay costs no network), and every pair under
//! `data = "relay"` go through the driver. A direct fetch that fails later
//! moves its pair to the relay for the rest of the run.

use std::sync::{Arc, Mutex};

use shoal_core::cluster::DataPath;
use shoal_wire::{Message, RunKey};
use tokio::task::JoinSet;

use super::Host;

/// The run's direct paths.
pub struct Mesh {
    pub run: String,
    /// Each host's peer address (by its index in the run's host list);
    /// `None` for a host outside the mesh.
    addrs: Vec<Option<String>>,
    /// `direct[to][from]`: host `to` fetches from host `from` directly.
    direct: Mutex<Vec<Vec<bool>>>,
}

/// A pair that cannot move data directly, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreachable {
    pub to: usize,
    pub from: usize,
    pub why: String,
}

impl Mesh {
    /// Every pair through the driver.
    pub fn relay(run: &str, hosts: usize) -> Mesh {
        Mesh { run: run.to_string(), addrs: vec![None; hosts], direct: Mutex::new(vec![vec![false; hosts]; hosts]) }
    }

    /// Where `to` fetches `from`'s blocks directly, the address to fetch from.
    pub fn direct(&self, to: usize, from: usize) -> Option<&str> {
        let direct = self.direct.lock().unwrap();
        (to != from && direct[to][from]).then(|| self.addrs[from].as_deref()).flatten()
    }

    /// The pair failed a fetch: through the driver from now on. True the
    /// first time.
    pub fn fall_back(&self, to: usize, from: usize) -> bool {
        std::mem::replace(&mut self.direct.lock().unwrap()[to][from], false)
    }

    /// How many ordered pairs move data directly.
    pub fn direct_pairs(&self) -> usize {
        self.direct.lock().unwrap().iter().map(|row| row.iter().filter(|d| **d).count()).sum()
    }
}

/// Sets up the mesh of `run` over `hosts`; the pairs that could not be
/// reached come back with it (the caller says so).
pub async fn set_up(hosts: &[Arc<Host>], data: DataPath, run: &str) -> (Mesh, Vec<Unreachable>) {
    let mut mesh = Mesh::relay(run, hosts.len());
    let members: Vec<usize> = (0..hosts.len()).filter(|&i| hosts[i].spec.transport.is_remote() && !hosts[i].is_lost()).collect();
    if data == DataPath::Relay || members.len() < 2 {
        return (mesh, Vec::new());
    }
    let key = crate::peer::new_key();
    let mut unreachable = Vec::new();
    for (i, addr) in listen(hosts, &members, run, key).await {
        match addr {
            Ok(a) => mesh.addrs[i] = Some(a),
            Err(why) => unreachable.extend(members.iter().filter(|&&j| j != i).map(|&j| Unreachable { to: j, from: i, why: why.clone() })),
        }
    }
    let listening: Vec<usize> = members.iter().copied().filter(|&i| mesh.addrs[i].is_some()).collect();
    let mut probes = JoinSet::new();
    for &to in &listening {
        let peers: Vec<usize> = listening.iter().copied().filter(|&j| j != to).collect();
        let addrs: Vec<String> = peers.iter().map(|&j| mesh.addrs[j].clone().expect("listening")).collect();
        let (h, run) = (hosts[to].clone(), run.to_string());
        probes.spawn(async move {
            let id = h.next_id();
            let n = peers.len();
            let answers = match h.request(id, Message::PeerProbe { id, run, peers: addrs }).await {
                Ok(Message::PeerProbed { unreachable, .. }) if unreachable.len() == n => unreachable,
                Ok(_) => vec![Some("its agent answered the probe wrongly".to_string()); n],
                Err(e) => vec![Some(e.to_string()); n],
            };
            (to, peers, answers)
        });
    }
    let direct = mesh.direct.get_mut().unwrap();
    while let Some(Ok((to, peers, answers))) = probes.join_next().await {
        for (from, answer) in peers.into_iter().zip(answers) {
            match answer {
                None => direct[to][from] = true,
                Some(why) => unreachable.push(Unreachable { to, from, why }),
            }
        }
    }
    unreachable.sort_by_key(|u| (u.to, u.from));
    (mesh, unreachable)
}

/// Asks every member to listen for the run's peers; each one's address
/// or why not.
async fn listen(hosts: &[Arc<Host>], members: &[usize], run: &str, key: RunKey) -> Vec<(usize, Result<String, String>)> {
    let mut set = JoinSet::new();
    for &i in members {
        let (h, run) = (hosts[i].clone(), run.to_string());
        set.spawn(async move {
            let id = h.next_id();
            let addr = match h.request(id, Message::PeerListen { id, run, key }).await {
                Ok(Message::PeerListening { addr, .. }) => addr,
                Ok(_) => Err("its agent answered wrongly".to_string()),
                Err(e) => Err(e.to_string()),
            };
            (i, addr)
        });
    }
    let mut out = Vec::new();
    while let Some(Ok(a)) = set.join_next().await {
        out.push(a);
    }
    out
}

/// One sentence per host for the pairs that fall back to the relay, for
/// the user: which peers could not reach it, and the first reason.
pub fn describe(hosts: &[Arc<Host>], unreachable: &[Unreachable]) -> Vec<String> {
    let mut lines = Vec::new();
    for (to, h) in hosts.iter().enumerate() {
        let from: Vec<&Unreachable> = unreachable.iter().filter(|u| u.to == to).collect();
        let Some(first) = from.first() else { continue };
        let names: Vec<&str> = from.iter().map(|u| hosts[u.from].name()).collect();
        lines.push(format!(
            "{} cannot fetch directly from {} ({}): that shuffle data goes through the driver",
            h.name(),
            names.join(", "),
            crate::printable::printable(&first.why)
        ));
    }
    lines
}
