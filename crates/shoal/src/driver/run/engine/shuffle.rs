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

use shoal_wire::hex;

use super::super::book::Needed;
use super::super::private;
use crate::driver::{blocks, Host};

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

/// Makes `dest` hold every needed bucket; returns the bytes that crossed
/// the driver.
pub async fn stage_buckets(dest: &Host, needed: Vec<(Needed, Arc<Host>)>, dir: PathBuf) -> Result<u64, StageError> {
    let hashes = needed.iter().map(|(n, _)| n.bucket.block.hash).collect();
    let missing = blocks::missing(dest, hashes).await.map_err(|_| StageError::Gone)?;
    let _ = private::dir(&dir);
    let mut moved = 0;
    for (n, from) in needed.iter().filter(|(n, _)| missing.contains(&n.bucket.block.hash)) {
        let file = staging_name(&dir, &n.bucket.block.hash);
        if from.is_lost() {
            return Err(StageError::Lost { map: n.map });
        }
        if blocks::fetch(from, n.bucket.block.hash, &file).await.is_err() {
            let _ = tokio::fs::remove_file(&file).await;
            return Err(if from.is_lost() {
                StageError::Lost { map: n.map }
            } else {
                StageError::Other(format!("cannot fetch a shuffle bucket from `{}`", from.name()))
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
