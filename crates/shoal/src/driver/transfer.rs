//! `shoal push` and `shoal pull`: files to and from every host.
//!
//! `push --split` cuts a file at line boundaries into one chunk per host,
//! in proportion to speed x slots, and leaves each chunk in that host's
//! block cache as well as at the destination path. It records the cut in
//! `.shoal/pushed/`, so that a later job over the same file splits it the
//! same way: every partition is then already on a host, nothing is sent
//! again, and the scheduler runs each partition where its data lives.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shoal_wire::{hex, Message};
use tokio::task::JoinSet;

use super::blocks::{self, Source};
use super::host::{HostGone, RequestError};
use super::input;
use super::run::private;
use super::Cluster;
use crate::{Error, Result};

/// What one host received or sent.
#[derive(Clone, Debug, Serialize)]
pub struct TransferRow {
    pub host: String,
    pub path: String,
    pub bytes: u64,
    /// Bytes not sent because the host had them already.
    pub skipped: u64,
    pub error: Option<String>,
}

/// Why one host's push or pull failed (its row's `error`; the row names
/// the host).
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error(transparent)]
    Blocks(#[from] blocks::TransferError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Gone(#[from] HostGone),
    /// The agent could not place or read the file: its sentence as is.
    #[error("{0}")]
    Agent(String),
    /// The pulled file's directory could not be made, or the file written.
    #[error("{0}")]
    Local(#[source] std::io::Error),
    /// The pulled file could not be put in place.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// The record of a split push, keyed by the file's path, size and mtime.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PushRecord {
    pub size: u64,
    pub mtime_ns: u128,
    /// Byte offsets of each chunk's start, in host order.
    pub cuts: Vec<u64>,
    pub hosts: Vec<String>,
}

/// Copies `file` (or its chunks) to `to` on every host of the cluster.
pub async fn push(cluster: &Cluster, file: &Path, to: &str, split: bool, state: &Path) -> Result<Vec<TransferRow>> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Usage(format!("{} is not a file", file.display())))?;
    let sources = if split { split_sources(cluster, file, state)? } else { vec![whole(file)?; cluster.hosts.len()] };
    let dest = format!("{}/{name}", to.trim_end_matches('/'));
    let mut set = JoinSet::new();
    for (h, src) in cluster.hosts.iter().cloned().zip(sources) {
        let dest = dest.clone();
        set.spawn(async move {
            let (placed, (bytes, skipped)) = match blocks::ensure(&h, &[&src]).await {
                Ok(sent) => (place(&h, &src, &dest).await, sent),
                Err(e) => (Err(RowError::Blocks(e)), (0, 0)),
            };
            (h.index, TransferRow { host: h.name().into(), path: dest, bytes, skipped, error: placed.err().map(|e| e.to_string()) })
        });
    }
    Ok(collect(set).await)
}

async fn place(h: &super::Host, src: &Source, dest: &str) -> std::result::Result<(), RowError> {
    let id = h.next_id();
    match h.request(id, Message::PlaceBlock { id, hash: src.hash, path: dest.to_string() }).await {
        Ok(Message::Placed { error: None, .. }) => Ok(()),
        Ok(Message::Placed { error: Some(e), .. }) => Err(RowError::Agent(e)),
        _ => Err(RowError::Gone(HostGone { host: h.name().to_string() })),
    }
}

fn whole(file: &Path) -> Result<Source> {
    input::whole_file(file).map(|p| p.source).map_err(Error::from)
}

/// One chunk per host, weighted by speed x slots, cut at line boundaries.
fn split_sources(cluster: &Cluster, file: &Path, state: &Path) -> Result<Vec<Source>> {
    let weights: Vec<f64> = cluster.hosts.iter().map(|h| h.spec.speed * h.slots() as f64).collect();
    let size = std::fs::metadata(file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?.len();
    let cuts = weighted_cuts(file, size, &weights)?;
    let mut sources = Vec::new();
    for (i, &start) in cuts.iter().enumerate() {
        let end = cuts.get(i + 1).copied().unwrap_or(size);
        let hash = blocks::hash_range(file, start, end - start).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
        sources.push(Source { path: file.to_path_buf(), offset: start, len: end - start, hash, data: None });
    }
    let record = PushRecord { size, mtime_ns: mtime(file), cuts, hosts: cluster.hosts.iter().map(|h| h.name().to_string()).collect() };
    save_record(state, file, &record)?;
    Ok(sources)
}

fn weighted_cuts(file: &Path, size: u64, weights: &[f64]) -> Result<Vec<u64>> {
    let total: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let mut targets = Vec::new();
    let mut acc = 0.0;
    for w in &weights[..weights.len().saturating_sub(1)] {
        acc += w / total;
        targets.push((acc * size as f64) as u64);
    }
    let mut cuts = vec![0];
    for t in targets {
        let cut = input::line_start_at_or_after(file, t, size).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
        cuts.push(cut.max(*cuts.last().unwrap_or(&0)));
    }
    Ok(cuts)
}

fn mtime(file: &Path) -> u128 {
    std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

fn record_path(state: &Path, file: &Path) -> PathBuf {
    let abs = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    let key = hex(blake3::hash(abs.to_string_lossy().as_bytes()).as_bytes());
    state.join("pushed").join(format!("{}.json", &key[..16]))
}

fn save_record(state: &Path, file: &Path, r: &PushRecord) -> Result<()> {
    let path = record_path(state, file);
    let _ = private::dir(path.parent().unwrap_or(state));
    private::write_bytes(&path, &serde_json::to_vec_pretty(r).unwrap_or_default())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// The cut of an earlier `push --split` of this very file, if any.
pub fn pushed_cuts(state: &Path, file: &Path) -> Option<Vec<u64>> {
    let r: PushRecord = serde_json::from_slice(&std::fs::read(record_path(state, file)).ok()?).ok()?;
    let size = std::fs::metadata(file).ok()?.len();
    (r.size == size && r.mtime_ns == mtime(file)).then_some(r.cuts)
}

/// Fetches `path` from every host into `to/<host>/<name>`; with `combine`,
/// also concatenates them (in cluster order) into that file.
pub async fn pull(cluster: &Cluster, path: &str, to: &Path, combine: Option<&Path>) -> Result<Vec<TransferRow>> {
    let name = Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "pulled".into());
    let mut set = JoinSet::new();
    for h in cluster.hosts.iter().cloned() {
        let dest = to.join(h.name()).join(&name);
        let path = path.to_string();
        set.spawn(async move {
            let got = fetch_path(&h, &path, &dest).await;
            let (bytes, error) = match got {
                Ok(n) => (n, None),
                Err(e) => (0, Some(e.to_string())),
            };
            (h.index, TransferRow { host: h.name().into(), path: dest.display().to_string(), bytes, skipped: 0, error })
        });
    }
    let rows = collect(set).await;
    if let Some(out) = combine {
        combine_files(&rows, out)?;
    }
    Ok(rows)
}

/// Brings the parts of an `[output] on_hosts` output (a run summary's
/// `parts_on_hosts`) into `to`, each under its own name and checked
/// against the hash the run recorded; `_SUCCESS` last, when all came.
pub async fn pull_output(cluster: &Cluster, parts: &[crate::driver::run::summary::PartOnHost], to: &Path) -> Result<Vec<TransferRow>> {
    let mut set = JoinSet::new();
    for (i, p) in parts.iter().enumerate() {
        let name = p.path.rsplit('/').next().unwrap_or("part").to_string();
        let dest = to.join(&name);
        let (p, host) = (p.clone(), cluster.hosts.iter().find(|h| h.name() == p.host).cloned());
        set.spawn(async move {
            let row = |bytes, error| TransferRow { host: p.host.clone(), path: dest.display().to_string(), bytes, skipped: 0, error };
            let Some(h) = host else {
                return (
                    i,
                    row(
                        0,
                        Some(format!(
                            "host `{}` holds part {} but is not connected (not in this cluster file, or unreachable)",
                            p.host, p.partition
                        )),
                    ),
                );
            };
            let got = match fetch_path(&h, &p.path, &dest).await {
                Ok(n) => n,
                Err(e) => return (i, row(0, Some(e.to_string()))),
            };
            let hash = tokio::task::spawn_blocking({
                let dest = dest.clone();
                move || {
                    std::fs::File::open(&dest).and_then(|f| blake3::Hasher::new().update_reader(f).map(|h| hex(h.finalize().as_bytes())))
                }
            })
            .await;
            match hash {
                Ok(Ok(h)) if h == p.hash => (i, row(got, None)),
                _ => {
                    let _ = std::fs::remove_file(&dest);
                    (
                        i,
                        row(
                            0,
                            Some(format!(
                                "{} on `{}` is no longer what the run wrote there (its hash differs): run the job again",
                                p.path, p.host
                            )),
                        ),
                    )
                }
            }
        });
    }
    let rows = collect(set).await;
    if rows.iter().all(|r| r.error.is_none()) {
        std::fs::write(to.join("_SUCCESS"), b"").map_err(|e| Error::io(format!("cannot write {}", to.join("_SUCCESS").display()), e))?;
    }
    Ok(rows)
}

async fn fetch_path(h: &super::Host, path: &str, dest: &Path) -> std::result::Result<u64, RowError> {
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(RowError::Local)?;
    }
    let id = h.next_id();
    let mut rx = h.open_stream(id);
    h.send(Message::FetchPath { id, path: path.to_string() }).await?;
    let write = |source| RowError::Write { path: dest.to_path_buf(), source };
    let tmp = temp_beside(dest).map_err(write)?;
    let mut out = tokio::fs::File::from_std(tmp.as_file().try_clone().map_err(RowError::Local)?);
    let mut total = 0;
    loop {
        match rx.recv().await {
            Some(Message::Chunk { data, last, .. }) => {
                tokio::io::AsyncWriteExt::write_all(&mut out, &data).await.map_err(RowError::Local)?;
                total += data.len() as u64;
                if last {
                    break;
                }
            }
            // Dropping `tmp` removes it.
            Some(Message::FetchFailed { error, .. }) => return Err(RowError::Agent(error)),
            _ => return Err(RowError::Gone(HostGone { host: h.name().to_string() })),
        }
    }
    tokio::io::AsyncWriteExt::flush(&mut out).await.map_err(RowError::Local)?;
    tmp.persist(dest).map_err(|e| write(e.error))?;
    Ok(total)
}

/// A temp file beside `dest`: random name, created exclusively (nothing
/// planted at a guessable name is written through), removed unless
/// persisted; the usual mode for a user's file (less the umask).
fn temp_beside(dest: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    tempfile::Builder::new().prefix(".shoal-").suffix(".tmp").permissions(mode).tempfile_in(dir)
}

fn combine_files(rows: &[TransferRow], out: &Path) -> Result<()> {
    let write = |e| Error::io(format!("cannot write {}", out.display()), e);
    let mut tmp = temp_beside(out).map_err(write)?;
    for r in rows.iter().filter(|r| r.error.is_none()) {
        let mut part = std::fs::File::open(&r.path).map_err(|e| Error::io(format!("cannot read {}", r.path), e))?;
        std::io::copy(&mut part, tmp.as_file_mut()).map_err(write)?;
    }
    tmp.persist(out).map(|_| ()).map_err(|e| write(e.error))
}

async fn collect(mut set: JoinSet<(usize, TransferRow)>) -> Vec<TransferRow> {
    let mut rows = Vec::new();
    while let Some(Ok(r)) = set.join_next().await {
        rows.push(r);
    }
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combining_pulled_files_never_writes_through_a_planted_temp_name() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("part");
        std::fs::write(&part, b"pulled\n").unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep\n").unwrap();
        let out = dir.path().join("all.txt");
        // The name the temp file used to have, always the same.
        std::os::unix::fs::symlink(&victim, dir.path().join("all.shoal-tmp")).unwrap();
        let row = TransferRow { host: "a".into(), path: part.display().to_string(), bytes: 7, skipped: 0, error: None };
        combine_files(&[row], &out).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep\n", "the planted symlink was written through");
        assert_eq!(std::fs::read(&out).unwrap(), b"pulled\n");
        assert!(!std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
    }
}
