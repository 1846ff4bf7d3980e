//! Moving blocks between the driver and an agent.
//!
//! A [`Source`] is where the driver finds a block's bytes: a whole local
//! file or a byte range of one (an input partition cut from a big file is
//! never copied on the driver). Uploads ask the agent first which hashes it
//! lacks, so a block is sent at most once per host; fetches stream a block
//! into a local file.

use std::collections::HashSet;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use shoal_wire::{frame, Hash, Message, HASHES_PER_QUERY};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::run::private;
use super::Host;

/// Where the bytes of a block live on the driver.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
    pub hash: Hash,
    /// The bytes themselves, for a partition small enough to travel inside
    /// its task request ([`shoal_wire::INLINE_MAX`]); never uploaded.
    pub data: Option<std::sync::Arc<[u8]>>,
}

/// Why a block transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("host `{0}` is gone")]
    Gone(String),
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("host `{host}` could not store a block: {why}")]
    Refused { host: String, why: String },
    #[error("host `{host}` could not send block: {why}")]
    Fetch { host: String, why: String },
}

/// Hashes of `hashes` that `host` does not hold, each asked once, in
/// pieces of at most [`HASHES_PER_QUERY`] so that any number fits in
/// messages.
pub async fn missing(host: &Host, mut hashes: Vec<Hash>) -> Result<HashSet<Hash>, TransferError> {
    hashes.sort_unstable();
    hashes.dedup();
    let mut lacking = HashSet::new();
    for piece in hashes.chunks(HASHES_PER_QUERY) {
        let id = host.next_id();
        match host.request(id, Message::QueryBlocks { id, hashes: piece.to_vec() }).await {
            Ok(Message::MissingBlocks { hashes, .. }) => lacking.extend(hashes),
            Err(e) if !e.is_gone() => return Err(TransferError::Refused { host: host.name().into(), why: e.to_string() }),
            _ => return Err(TransferError::Gone(host.name().into())),
        }
    }
    Ok(lacking)
}

/// Sends blocks the host lacks; returns (bytes sent, bytes skipped).
/// Sources held in memory are left out: they travel with their task.
pub async fn ensure(host: &Host, sources: &[&Source]) -> Result<(u64, u64), TransferError> {
    let sources: Vec<&Source> = sources.iter().copied().filter(|s| s.data.is_none()).collect();
    let lacking = missing(host, sources.iter().map(|s| s.hash).collect()).await?;
    let mut sent = 0;
    let mut skipped = 0;
    let mut seen = HashSet::new();
    for s in sources {
        if !lacking.contains(&s.hash) || !seen.insert(s.hash) {
            skipped += s.len;
            continue;
        }
        upload(host, s).await?;
        sent += s.len;
    }
    Ok((sent, skipped))
}

/// Streams one block to the host and waits until it is verified and stored.
pub async fn upload(host: &Host, s: &Source) -> Result<(), TransferError> {
    if host.spec.transport == shoal_core::cluster::TransportKind::Local {
        let (src, store, stream) = (s.clone(), Path::new(&host.info.workdir).join("blocks"), host.next_id());
        return tokio::task::spawn_blocking(move || store_local(&src, &store, stream))
            .await
            .map_err(|e| TransferError::Refused { host: host.name().into(), why: e.to_string() })?;
    }
    let read_err = |e| TransferError::Read { path: s.path.display().to_string(), source: e };
    let gone = || TransferError::Gone(host.name().into());
    let stored = host.await_stored(s.hash);
    // Each upload is its own stream, so two uploads of one block (equal
    // partitions) interleave safely on the agent.
    let stream = host.next_id();
    let mut file = tokio::fs::File::open(&s.path).await.map_err(read_err)?;
    file.seek(SeekFrom::Start(s.offset)).await.map_err(read_err)?;
    let mut left = s.len;
    loop {
        let n = left.min(frame::CHUNK as u64) as usize;
        let mut data = vec![0u8; n];
        file.read_exact(&mut data).await.map_err(read_err)?;
        left -= n as u64;
        let last = left == 0;
        host.send(Message::Chunk { stream, hash: s.hash, data, last }).await.map_err(|_| gone())?;
        if last {
            break;
        }
    }
    match stored.await {
        Ok(None) => Ok(()),
        Ok(Some(why)) => Err(TransferError::Refused { host: host.name().into(), why }),
        Err(_) => Err(gone()),
    }
}

/// Fetches a block from the host into `dest`, a new file of the driver's
/// state (0600, created exclusively: `run/private.rs`); a failed fetch
/// leaves no file behind.
pub async fn fetch(host: &Host, hash: Hash, dest: &Path) -> Result<u64, TransferError> {
    if let Some(size) = link_local(host, hash, dest) {
        return Ok(size);
    }
    let write_err = |e| TransferError::Write { path: dest.display().to_string(), source: e };
    let file = private::create(dest).map_err(write_err)?;
    let fetched = stream_into(host, hash, dest, tokio::fs::File::from_std(file)).await;
    if fetched.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    fetched
}

async fn stream_into(host: &Host, hash: Hash, dest: &Path, mut file: tokio::fs::File) -> Result<u64, TransferError> {
    let write_err = |e| TransferError::Write { path: dest.display().to_string(), source: e };
    let id = host.next_id();
    let mut rx = host.open_stream(id);
    host.send(Message::FetchBlock { id, hash }).await.map_err(|_| TransferError::Gone(host.name().into()))?;
    let mut hasher = blake3::Hasher::new();
    let mut total = 0;
    loop {
        match rx.recv().await {
            Some(Message::Chunk { data, last, .. }) => {
                hasher.update(&data);
                file.write_all(&data).await.map_err(write_err)?;
                total += data.len() as u64;
                if last {
                    break;
                }
            }
            Some(Message::FetchFailed { error, .. }) => return Err(TransferError::Fetch { host: host.name().into(), why: error }),
            _ => return Err(TransferError::Gone(host.name().into())),
        }
    }
    if *hasher.finalize().as_bytes() != hash {
        return Err(TransferError::Fetch { host: host.name().into(), why: "the block arrived corrupted (hash mismatch)".into() });
    }
    file.flush().await.map_err(write_err)?;
    file.sync_data().await.map_err(write_err)?;
    Ok(total)
}

/// BLAKE3 of a byte range of a file.
pub fn hash_range(path: &Path, offset: u64, len: u64) -> std::io::Result<Hash> {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(f.take(len))?;
    Ok(*hasher.finalize().as_bytes())
}

/// Uploads to a local agent: it shares this machine's file systems, so the
/// driver writes the block into its store itself, on the store's terms:
/// hashed while copied (the source may have changed since it was cut),
/// synced, published by rename. Saves the pipe and two copies.
fn store_local(s: &Source, store: &Path, stream: u64) -> Result<(), TransferError> {
    use std::io::{Read, Seek, Write};
    let read_err = |e| TransferError::Read { path: s.path.display().to_string(), source: e };
    let hex = shoal_wire::hex(&s.hash);
    // Unique to this driver (two may share a local work dir), created
    // exclusively and owner-only as the agent's own temp files are; the
    // agent removes `.part` files a crash left behind.
    let tmp = store.join(format!(".{hex}.{}.{stream}.part", std::process::id()));
    let write_err = |e| TransferError::Write { path: tmp.display().to_string(), source: e };
    let mut src = std::fs::File::open(&s.path).map_err(read_err)?;
    src.seek(SeekFrom::Start(s.offset)).map_err(read_err)?;
    let mut src = src.take(s.len);
    let mut out = private::create(&tmp).map_err(write_err)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; frame::CHUNK];
    let copied = loop {
        let n = src.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break Ok(());
        }
        hasher.update(&buf[..n]);
        if let Err(e) = out.write_all(&buf[..n]) {
            break Err(write_err(e));
        }
    };
    let published = copied.and_then(|()| {
        if *hasher.finalize().as_bytes() != s.hash {
            return Err(TransferError::Read {
                path: s.path.display().to_string(),
                source: std::io::Error::other("the file changed after it was split: its content no longer matches its hash"),
            });
        }
        out.sync_data().map_err(write_err)?;
        std::fs::rename(&tmp, store.join(&hex)).map_err(write_err)
    });
    if published.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    published
}

/// A local agent shares this machine's file systems: its blocks are
/// verified, immutable files (0400, never written again, only unlinked
/// when evicted), so the driver takes one by a hard link (one more name
/// for the same bytes: nothing is copied or written) or, across file
/// systems, copies it (the kernel's copy_file_range) instead of streaming
/// it through the pipe. A part that shares its bytes with a block is
/// never handed to the user as it is: a directory output copies a part
/// that has other names (`run/output.rs`), so that editing an output can
/// never reach into the agent's cache. `None` means "stream it" (another
/// transport, or the block is gone).
fn link_local(host: &Host, hash: Hash, dest: &Path) -> Option<u64> {
    if host.spec.transport != shoal_core::cluster::TransportKind::Local {
        return None;
    }
    let src = Path::new(&host.info.workdir).join("blocks").join(shoal_wire::hex(&hash));
    if std::fs::hard_link(&src, dest).is_ok() {
        return std::fs::metadata(dest).ok().map(|m| m.len());
    }
    let mut from = std::fs::File::open(src).ok()?;
    let mut to = private::create(dest).ok()?;
    let copied = std::io::copy(&mut from, &mut to).and_then(|size| to.sync_data().map(|()| size));
    if copied.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    copied.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_block_written_into_a_local_agents_store_is_owner_only_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let (file, store) = (dir.path().join("data"), dir.path().join("blocks"));
        std::fs::write(&file, "skip\nthe block\n").unwrap();
        std::fs::create_dir(&store).unwrap();
        let hash = hash_range(&file, 5, 10).unwrap();
        store_local(&Source { path: file, offset: 5, len: 10, hash, data: None }, &store, 7).unwrap();
        let names: Vec<String> =
            std::fs::read_dir(&store).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, [shoal_wire::hex(&hash)]);
        let block = store.join(&names[0]);
        assert_eq!(std::fs::read(&block).unwrap(), b"the block\n");
        let mode = std::fs::metadata(&block).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "the block is open to others: {mode:o}");
    }
}
