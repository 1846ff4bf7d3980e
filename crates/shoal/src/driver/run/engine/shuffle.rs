//! The driver's part of a keyed shuffle, and of a program's cached parts.
//!
//! Map tasks keep their output on their host as R sorted buckets. When
//! reduce task r starts on host H, the driver makes sure H holds bucket r
//! of every map task. Where the run's mesh (`driver/mesh.rs`) says H
//! reaches the map's host directly, H's agent fetches the buckets from
//! that host's agent itself, several peers at once, verifying each by its
//! hash: the driver only says where they are. The other buckets, and any
//! a direct fetch could not get, are relayed: fetched from the map's host
//! and uploaded to H over the driver's links. A bucket whose host is gone
//! turns into a `FetchFailed` for the reduce, which makes the scheduler
//! rerun only the lost map task, without charging the reduce.
//!
//! A cached part of a program (a block only the host that made it holds)
//! reaches a task on another host the same way, and an input partition
//! that another host holds already is fetched from it where it can be.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use shoal_wire::{hex, Message, PeerBlock};

use super::super::book::Needed;
use super::super::private;
use crate::driver::mesh::Mesh;
use crate::driver::{blocks, Host};
use shoal_wire::Hash;

/// A block a task's host must hold before the task starts, held by
/// host `from`: bucket of map task `owner`, or a cached input part.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    pub hash: Hash,
    pub size: u64,
    pub from: usize,
    pub owner: u32,
}

impl From<Needed> for Wanted {
    fn from(n: Needed) -> Wanted {
        Wanted { hash: n.bucket.block.hash, size: n.bucket.block.size, from: n.from, owner: n.map }
    }
}

/// Why blocks could not be staged on a task's host.
pub enum StageError {
    /// The holder of task `owner`'s block is gone.
    Lost {
        owner: u32,
    },
    /// The reducer's own host is gone.
    Gone,
    Other(String),
}

/// What staging moved, and how.
#[derive(Debug, Default)]
pub struct Staged {
    /// Bytes that crossed the driver.
    pub relayed: u64,
    /// Bytes the reducer's host fetched from its peers.
    pub direct: u64,
    /// Pairs (map host, why) whose direct fetch failed and that use the
    /// relay from now on.
    pub fell_back: Vec<(usize, String)>,
}

/// Makes host `to` (`dest`) hold every wanted block.
pub async fn stage(dest: &Host, to: usize, needed: Vec<(Wanted, Arc<Host>)>, dir: PathBuf, mesh: &Mesh) -> Result<Staged, StageError> {
    let mut staged = Staged::default();
    let (direct, mut relay): (Vec<_>, Vec<_>) =
        needed.into_iter().partition(|(n, from)| !from.is_lost() && mesh.direct(to, n.from).is_some());
    if !direct.is_empty() {
        let blocks = direct
            .iter()
            .map(|(n, _)| PeerBlock { hash: n.hash, size: n.size, from: mesh.direct(to, n.from).unwrap_or_default().into() })
            .collect();
        let id = dest.next_id();
        match dest.request(id, Message::PeerFetch { id, run: mesh.run.clone(), blocks }).await {
            Ok(Message::PeerFetched { bytes, failed, .. }) => {
                staged.direct = bytes;
                for (n, from) in direct {
                    let Some((_, why)) = failed.iter().find(|(h, _)| *h == n.hash) else { continue };
                    if !from.is_lost() && mesh.fall_back(to, n.from) {
                        staged.fell_back.push((n.from, why.clone()));
                    }
                    relay.push((n, from));
                }
            }
            Err(e) if e.is_gone() => return Err(StageError::Gone),
            _ => relay.extend(direct),
        }
    }
    staged.relayed = relay_blocks(dest, relay, dir).await?;
    Ok(staged)
}

/// Host `to` (`dest`) fetches one block from host `from` itself, where the
/// mesh says the pair reaches each other: the bytes it fetched, or `None`
/// (the caller sends the block another way).
pub async fn fetch_from_peer(dest: &Host, to: usize, from: usize, hash: Hash, size: u64, mesh: &Mesh) -> Option<u64> {
    let blocks = vec![PeerBlock { hash, size, from: mesh.direct(to, from)?.into() }];
    let id = dest.next_id();
    match dest.request(id, Message::PeerFetch { id, run: mesh.run.clone(), blocks }).await {
        Ok(Message::PeerFetched { bytes, failed, .. }) if failed.is_empty() => Some(bytes),
        _ => None,
    }
}

/// Moves blocks through the driver; returns the bytes that crossed it.
async fn relay_blocks(dest: &Host, needed: Vec<(Wanted, Arc<Host>)>, dir: PathBuf) -> Result<u64, StageError> {
    if needed.is_empty() {
        return Ok(0);
    }
    let hashes = needed.iter().map(|(n, _)| n.hash).collect();
    let missing = blocks::missing(dest, hashes).await.map_err(|_| StageError::Gone)?;
    let _ = private::dir(&dir);
    let mut moved = 0;
    for (n, from) in needed.iter().filter(|(n, _)| missing.contains(&n.hash)) {
        let file = staging_name(&dir, &n.hash);
        if from.is_lost() {
            return Err(StageError::Lost { owner: n.owner });
        }
        if let Err(e) = blocks::fetch(from, n.hash, &file).await {
            let _ = tokio::fs::remove_file(&file).await;
            return Err(if from.is_lost() {
                StageError::Lost { owner: n.owner }
            } else {
                StageError::Other(format!("cannot fetch block {} from `{}`: {e}", hex(&n.hash), from.name()))
            });
        }
        let src = blocks::Source { path: file.clone(), offset: 0, len: n.size, hash: n.hash, data: None };
        let sent = blocks::upload(dest, &src).await;
        let _ = tokio::fs::remove_file(&file).await;
        sent.map_err(|e| if dest.is_lost() { StageError::Gone } else { StageError::Other(e.to_string()) })?;
        moved += n.size;
    }
    Ok(moved)
}

/// A name in the staging dir of the run that no other staging uses:
/// reducers staged at once may need buckets of the same content (empty
/// ones, say), and each file is created exclusively and removed after.
fn staging_name(dir: &Path, hash: &shoal_wire::Hash) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    dir.join(format!("{}.{}", hex(hash), NEXT.fetch_add(1, Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_job_file_allows_no_more_buckets_or_skipped_records_than_a_report_can_carry() {
        assert_eq!(shoal_core::job::MAX_REDUCE_PARTITIONS as usize, shoal_wire::MAX_BUCKETS);
        assert_eq!(shoal_core::job::MAX_SKIP_BAD_RECORDS as usize, shoal_wire::MAX_SKIPPED);
    }
}
