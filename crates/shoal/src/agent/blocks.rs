//! The agent's block cache: immutable files named by the BLAKE3 of their
//! content, under `<workdir>/blocks/`.
//!
//! Blocks arrive in chunks into a temp file with a random name, opened
//! exclusively, and become visible only by an atomic rename after their
//! hash was verified, so a torn upload never poisons the cache.
//!
//! A published block is *sealed*: mode 0400, and the nanoseconds of its
//! mtime set to a function of its hash and size. Any write, append or
//! truncation sets the mtime to the current time (and the size changes
//! the expected seal), so one `stat` tells whether a block may have
//! changed since it was verified; such a block (or one from a version
//! without seals) is hashed again before use, and removed when it no
//! longer matches its name. Tasks never get a link to a block (see
//! [`super::private::copy`]); the seal catches what else may change it.
//!
//! The cache is bounded: least recently used blocks (by the seconds of
//! their mtime, set on every use) are evicted, except those pinned by a
//! live run.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use shoal_wire::{hex, BlockRef, Hash};
use tempfile::NamedTempFile;

use super::private;

/// Temp files older than this are left over from an agent that died.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// A block store rooted at one directory.
pub struct BlockStore {
    dir: PathBuf,
    /// Uploads in progress, by (hash, upload stream): two uploads of the
    /// same block (identical partitions, say) never share a temp file.
    uploads: Mutex<HashMap<(Hash, u64), Upload>>,
    pinned: Mutex<HashSet<Hash>>,
}

struct Upload {
    file: NamedTempFile,
    hasher: blake3::Hasher,
}

impl BlockStore {
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        private::create_dir(&dir)?;
        remove_stale_temps(&dir);
        Ok(BlockStore { dir, uploads: Mutex::new(HashMap::new()), pinned: Mutex::new(HashSet::new()) })
    }

    /// Where the block lives; use [`Self::verified`] before reading it.
    pub fn path(&self, hash: &Hash) -> PathBuf {
        self.dir.join(hex(hash))
    }

    /// True when the block is present and intact; touches it so it counts
    /// as used.
    pub fn has(&self, hash: &Hash) -> bool {
        self.verify(hash)
    }

    /// The path of a present, intact block.
    pub fn verified(&self, hash: &Hash) -> io::Result<PathBuf> {
        if self.verify(hash) {
            return Ok(self.path(hash));
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("block {} is not in the cache, or no longer holds what its name says", hex(hash)),
        ))
    }

    pub fn pin(&self, hash: Hash) {
        self.pinned.lock().unwrap().insert(hash);
    }

    /// Appends one chunk of an upload; on `last`, verifies and publishes.
    pub fn receive_chunk(&self, stream: u64, hash: Hash, data: &[u8], last: bool) -> io::Result<bool> {
        let mut uploads = self.uploads.lock().unwrap();
        let up = match uploads.entry((hash, stream)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(Upload { file: self.temp()?, hasher: blake3::Hasher::new() }),
        };
        let written = up.file.as_file_mut().write_all(data);
        up.hasher.update(data);
        if let Err(e) = written {
            // Dropping the upload removes its temp file.
            uploads.remove(&(hash, stream));
            return Err(e);
        }
        if !last {
            return Ok(false);
        }
        let up = uploads.remove(&(hash, stream)).expect("present");
        drop(uploads);
        self.publish(up, hash)
    }

    /// Drops an upload that will not be finished (its sender broke off);
    /// its temp file goes with it.
    pub fn abandon(&self, stream: u64, hash: Hash) {
        self.uploads.lock().unwrap().remove(&(hash, stream));
    }

    fn publish(&self, up: Upload, hash: Hash) -> io::Result<bool> {
        if *up.hasher.finalize().as_bytes() != hash {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "block content does not match its hash"));
        }
        up.file.as_file().sync_data()?;
        seal(up.file.as_file(), &hash, up.hasher.count())?;
        up.file.persist(self.path(&hash)).map_err(|e| e.error)?;
        Ok(true)
    }

    /// Moves a finished file (a task's output) into the store.
    pub fn insert_file(&self, file: &Path) -> io::Result<BlockRef> {
        let f = private::open_nofollow(file)?;
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", file.display())));
        }
        if meta.nlink() == 1 {
            return self.adopt(&f, file);
        }
        // Another name shares this inode (a task linked its output to some
        // file): sealing it would change that file, and writes through the
        // other name would change the block. Keep a copy instead.
        let tmp = self.temp()?;
        io::copy(&mut &f, &mut tmp.as_file())?;
        let (copy, path) = tmp.keep().map_err(|e| e.error)?;
        let _ = fs::remove_file(file);
        let adopted = self.adopt(&copy, &path);
        if adopted.is_err() {
            let _ = fs::remove_file(&path);
        }
        adopted
    }

    /// Makes the file `f`, open at `path`, the block its content names.
    fn adopt(&self, mut f: &File, path: &Path) -> io::Result<BlockRef> {
        f.rewind()?;
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(f)?;
        let (hash, size) = (*hasher.finalize().as_bytes(), hasher.count());
        if self.verify(&hash) {
            fs::remove_file(path)?;
        } else {
            f.sync_data()?;
            seal(f, &hash, size)?;
            fs::rename(path, self.path(&hash))?;
        }
        self.pin(hash);
        Ok(BlockRef { hash, size })
    }

    /// A new temp file in the store: random name, created exclusively,
    /// 0600, removed when dropped.
    fn temp(&self) -> io::Result<NamedTempFile> {
        tempfile::Builder::new().prefix(".tmp-").suffix(".part").tempfile_in(&self.dir)
    }

    /// True when the block is present and intact (sealed, or hashed again
    /// and sealed now); a block that no longer matches its name is
    /// removed. Touches an intact block.
    fn verify(&self, hash: &Hash) -> bool {
        let path = self.path(hash);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return false;
        };
        if meta.is_file() && meta.mtime_nsec() == seal_nanos(hash, meta.len()) as i64 {
            touch(&path, hash, meta.len());
            return true;
        }
        match rehash(&path, hash) {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!("cached block {} no longer holds what its name says; removed", path.display());
                let _ = fs::remove_file(&path);
                false
            }
            Err(_) => false,
        }
    }
    /// Evicts least recently used, unpinned blocks until the cache holds at
    /// most `bound` bytes.
    pub fn evict(&self, bound: u64) -> io::Result<u64> {
        let mut blocks = self.list()?;
        let mut total: u64 = blocks.iter().map(|b| b.2).sum();
        blocks.sort_by_key(|b| b.1);
        let pinned = self.pinned.lock().unwrap();
        let mut freed = 0;
        for (path, _, size, hash) in blocks {
            if total <= bound {
                break;
            }
            if hash.is_some_and(|h| pinned.contains(&h)) {
                continue;
            }
            if fs::remove_file(&path).is_ok() {
                total -= size;
                freed += size;
            }
        }
        Ok(freed)
    }

    fn list(&self) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(hash) = name.to_str().and_then(shoal_wire::unhex) else {
                continue;
            };
            let meta = entry.metadata()?;
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            out.push((entry.path(), used, meta.len(), Some(hash)));
        }
        Ok(out)
    }
}

/// A cached block: path, last use, size, hash.
type Listed = (PathBuf, SystemTime, u64, Option<Hash>);

/// Hashes the block at `path` again; on a match, seals it (it predates
/// seals, or something set its mtime without changing it).
fn rehash(path: &Path, hash: &Hash) -> io::Result<bool> {
    let f = private::open_nofollow(path)?;
    if !f.metadata()?.is_file() {
        return Ok(false);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&f)?;
    if hasher.finalize().as_bytes() != hash {
        return Ok(false);
    }
    seal(&f, hash, hasher.count())?;
    Ok(true)
}

/// The nanoseconds of a sealed block's mtime: a function of its hash and
/// size that a write at the current time matches by chance once in 10^9.
fn seal_nanos(hash: &Hash, size: u64) -> u32 {
    let mut h = blake3::Hasher::new();
    h.update(b"shoal block seal");
    h.update(hash);
    h.update(&size.to_le_bytes());
    let b = h.finalize();
    u32::from_le_bytes([b.as_bytes()[0], b.as_bytes()[1], b.as_bytes()[2], b.as_bytes()[3]]) % 1_000_000_000
}

/// Now, to the second (the eviction order), with the seal's nanoseconds.
fn sealed_now(hash: &Hash, size: u64) -> SystemTime {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + Duration::new(secs, seal_nanos(hash, size))
}

/// Marks a verified block: read-only, and sealed in its mtime.
fn seal(f: &File, hash: &Hash, size: u64) -> io::Result<()> {
    f.set_permissions(fs::Permissions::from_mode(0o400))?;
    f.set_modified(sealed_now(hash, size))
}

/// Marks a verified block as used now, keeping its seal. Setting times
/// needs ownership, not write access, so the block stays read-only.
fn touch(path: &Path, hash: &Hash, size: u64) {
    if let Ok(f) = private::open_nofollow(path) {
        let _ = f.set_modified(sealed_now(hash, size));
    }
}

/// Removes temp files that an agent which died mid-upload left behind
/// (another agent sharing this work dir may be writing young ones).
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".part")) {
            continue;
        }
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TEMP));
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(data: &[u8]) -> Hash {
        *blake3::hash(data).as_bytes()
    }

    #[test]
    fn chunked_upload_verifies_and_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().join("blocks")).unwrap();
        let h = hash(b"hello world");
        assert!(!store.has(&h));
        assert!(!store.receive_chunk(1, h, b"hello ", false).unwrap());
        assert!(!store.has(&h), "a partial block must stay invisible");
        assert!(store.receive_chunk(1, h, b"world", true).unwrap());
        assert_eq!(fs::read(store.path(&h)).unwrap(), b"hello world");
    }

    #[test]
    fn corrupt_upload_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().to_path_buf()).unwrap();
        let h = hash(b"good");
        let err = store.receive_chunk(1, h, b"evil", true).unwrap_err();
        assert_eq!(err.to_string(), "block content does not match its hash");
        assert!(!store.has(&h));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    fn store_with(data: &[u8]) -> (tempfile::TempDir, BlockStore, Hash) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().join("blocks")).unwrap();
        let h = hash(data);
        store.receive_chunk(1, h, data, true).unwrap();
        (dir, store, h)
    }

    #[test]
    fn a_published_block_is_read_only_and_sealed() {
        let (_d, store, h) = store_with(b"sealed");
        let meta = fs::metadata(store.path(&h)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o400);
        assert_eq!(meta.mtime_nsec(), seal_nanos(&h, 6) as i64);
        assert!(store.has(&h));
    }

    #[test]
    fn a_block_changed_in_place_is_found_out_and_removed() {
        let (_d, store, h) = store_with(b"original");
        let path = store.path(&h);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        File::options().append(true).open(&path).unwrap().write_all(b" poison").unwrap();
        assert!(!store.has(&h), "a changed block must not be reused");
        assert!(!path.exists(), "a changed block is removed, so that it is sent again");
        let err = store.verified(&h).unwrap_err().to_string();
        assert_eq!(err, format!("block {} is not in the cache, or no longer holds what its name says", hex(&h)));
    }

    #[test]
    fn a_block_whose_seal_is_lost_but_content_is_intact_is_hashed_and_kept() {
        let (_d, store, h) = store_with(b"intact");
        let path = store.path(&h);
        File::open(&path).unwrap().set_modified(SystemTime::UNIX_EPOCH + Duration::new(5, 1)).unwrap();
        assert!(store.has(&h));
        assert_eq!(fs::metadata(&path).unwrap().mtime_nsec(), seal_nanos(&h, 6) as i64, "sealed again");
    }

    #[test]
    fn an_output_is_moved_in_sealed_and_one_linked_elsewhere_is_copied() {
        let (dir, store, _) = store_with(b"x");
        let out = dir.path().join("output");
        fs::write(&out, b"task output").unwrap();
        let block = store.insert_file(&out).unwrap();
        assert!(!out.exists());
        assert!(store.has(&block.hash));
        let user = dir.path().join("user-file");
        fs::write(&user, b"user data").unwrap();
        fs::hard_link(&user, &out).unwrap();
        let block = store.insert_file(&out).unwrap();
        assert_eq!(fs::read(store.path(&block.hash)).unwrap(), b"user data");
        assert_eq!(fs::metadata(&user).unwrap().mode() & 0o777, 0o644, "the user's file is left alone");
        assert_eq!(fs::metadata(&user).unwrap().nlink(), 1);
    }

    #[test]
    fn an_output_that_is_a_symlink_is_refused() {
        let (dir, store, _) = store_with(b"x");
        let out = dir.path().join("output");
        std::os::unix::fs::symlink("/etc/hostname", &out).unwrap();
        assert!(store.insert_file(&out).is_err());
    }

    #[test]
    fn stale_temp_files_are_removed_and_young_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (old, young) = (dir.path().join(".tmp-old.part"), dir.path().join(".tmp-young.part"));
        fs::write(&old, b"torn").unwrap();
        fs::write(&young, b"in flight").unwrap();
        File::open(&old).unwrap().set_modified(SystemTime::now() - 2 * STALE_TEMP).unwrap();
        BlockStore::open(dir.path().to_path_buf()).unwrap();
        assert!(!old.exists());
        assert!(young.exists());
    }

    #[test]
    fn eviction_removes_oldest_unpinned_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().to_path_buf()).unwrap();
        let blocks: Vec<Hash> = (0..3u8)
            .map(|i| {
                let data = vec![i; 100];
                let h = hash(&data);
                store.receive_chunk(1, h, &data, true).unwrap();
                let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
                File::open(store.path(&h)).unwrap().set_modified(t).unwrap();
                h
            })
            .collect();
        store.pin(blocks[0]);
        assert_eq!(store.evict(150).unwrap(), 200);
        assert!(store.path(&blocks[0]).exists(), "pinned survives");
        assert!(!store.path(&blocks[1]).exists());
        assert!(!store.path(&blocks[2]).exists());
    }
}
