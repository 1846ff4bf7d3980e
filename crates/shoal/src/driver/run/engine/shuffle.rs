//! The driver's part of a keyed shuffle.
//!
//! Map tasks keep their output on their host as R sorted buckets. When
//! reduce task r starts on host H, the driver makes sure H holds bucket r
//! of every map task: buckets H lacks are fetched from the map's host and
//! uploaded to H over the existing links (the data path goes through the
//! driver; [`stage_buckets`] is the one place to change for a direct
//! host-to-host path). A bucket whose host is gone turns into a
//! `FetchFailed` for the reduce, which makes the scheduler rerun only the
//! lost map task, without charging the reduce.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use shoal_core::job::{Partitioner, SortOrder};
use shoal_wire::{hex, Bucket, KeyFormat, ShuffleOut};

use super::super::private;
use super::Engine;
use crate::driver::{blocks, Host};

/// Where a committed map output lives.
#[derive(Clone, Debug)]
pub struct MapOutput {
    pub host: usize,
    pub buckets: Vec<Bucket>,
}

/// Why buckets could not be staged on a reducer's host.
pub enum StageError {
    /// The map task's host is gone: rerun that map.
    Lost {
        map: u32,
    },
    /// The reducer's own host is gone.
    Gone,
    Other(String),
}

/// One bucket a reducer needs: from map `map`, on `from`.
pub struct Needed {
    pub map: u32,
    pub from: Arc<Host>,
    pub bucket: Bucket,
}

impl Engine<'_> {
    /// The key format of the shuffle, from `[reduce]`.
    pub(super) fn key_format(&self) -> Option<KeyFormat> {
        let r = self.job.reduce.as_ref()?;
        Some(KeyFormat { sep: r.key.sep.as_bytes().to_vec(), fields: r.key.fields as u32, numeric: r.sort == SortOrder::Numeric })
    }

    /// What a map task does with its output when the job has a reduce.
    pub(super) fn shuffle_out(&self) -> Option<ShuffleOut> {
        let r = self.job.reduce.as_ref()?;
        Some(ShuffleOut {
            partitions: self.reduce_partitions(),
            key: self.key_format()?,
            modulo: r.partitioner == Partitioner::Modulo,
            combine: self.job.combine.as_ref().map(|c| c.command.clone()),
            sort_buffer: r.sort_buffer,
        })
    }

    pub(super) fn reduce_partitions(&self) -> u32 {
        self.plan.tasks.iter().filter(|t| t.stage == 1).count() as u32
    }

    pub(super) fn map_count(&self) -> usize {
        self.plan.tasks.iter().filter(|t| t.stage == 0).count()
    }

    /// Bucket `r` of every map task, with the host that holds it.
    pub(super) fn needed_buckets(&self, r: u32) -> Vec<Needed> {
        (0..self.map_count() as u32)
            .filter_map(|m| {
                let out = self.map_outputs.get(&m)?;
                Some(Needed { map: m, from: self.hosts[out.host].clone(), bucket: *out.buckets.get(r as usize)? })
            })
            .collect()
    }

    /// Bytes and records per reduce partition, over every committed map.
    pub fn partition_sizes(&self) -> Vec<(u64, u64)> {
        let mut sizes = vec![(0, 0); self.reduce_partitions() as usize];
        for out in self.map_outputs.values() {
            for (r, b) in out.buckets.iter().enumerate() {
                if let Some(s) = sizes.get_mut(r) {
                    s.0 += b.block.size;
                    s.1 += b.records;
                }
            }
        }
        sizes
    }
}

/// Makes `dest` hold every needed bucket; returns the bytes that crossed
/// the driver.
pub async fn stage_buckets(dest: &Host, needed: Vec<Needed>, dir: PathBuf) -> Result<u64, StageError> {
    let hashes = needed.iter().map(|n| n.bucket.block.hash).collect();
    let missing = blocks::missing(dest, hashes).await.map_err(|_| StageError::Gone)?;
    let _ = private::dir(&dir);
    let mut moved = 0;
    for n in needed.iter().filter(|n| missing.contains(&n.bucket.block.hash)) {
        let file = staging_name(&dir, &n.bucket.block.hash);
        if n.from.is_lost() {
            return Err(StageError::Lost { map: n.map });
        }
        if blocks::fetch(&n.from, n.bucket.block.hash, &file).await.is_err() {
            let _ = tokio::fs::remove_file(&file).await;
            return Err(if n.from.is_lost() {
                StageError::Lost { map: n.map }
            } else {
                StageError::Other(format!("cannot fetch a shuffle bucket from `{}`", n.from.name()))
            });
        }
        let src = blocks::Source { path: file.clone(), offset: 0, len: n.bucket.block.size, hash: n.bucket.block.hash, data: None };
        let sent = blocks::upload(dest, &src).await;
        let _ = tokio::fs::remove_file(&file).await;
        sent.map_err(|e| if dest.is_lost() { StageError::Gone } else { StageError::Other(e.to_string()) })?;
        moved += n.bucket.block.size;
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
