//! The agent's block cache: immutable files named by the BLAKE3 of their
//! content, under `<workdir>/blocks/`.
//!
//! Blocks arrive in chunks and become visible only by an atomic rename
//! after their hash was verified, so a torn upload never poisons the cache.
//! The cache is bounded: least recently used blocks (by mtime, touched on
//! every use) are evicted, except those pinned by a live run.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use shoal_wire::{hex, BlockRef, Hash};

/// A block store rooted at one directory.
pub struct BlockStore {
    dir: PathBuf,
    /// Uploads in progress, by (hash, upload stream): two uploads of the
    /// same block (identical partitions, say) never share a temp file.
    uploads: Mutex<HashMap<(Hash, u64), Upload>>,
    pinned: Mutex<HashSet<Hash>>,
}

struct Upload {
    file: File,
    tmp: PathBuf,
    hasher: blake3::Hasher,
}

impl BlockStore {
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        Ok(BlockStore { dir, uploads: Mutex::new(HashMap::new()), pinned: Mutex::new(HashSet::new()) })
    }

    pub fn path(&self, hash: &Hash) -> PathBuf {
        self.dir.join(hex(hash))
    }

    /// True when the block is present; touches it so it counts as used.
    pub fn has(&self, hash: &Hash) -> bool {
        let path = self.path(hash);
        let present = path.is_file();
        if present {
            touch(&path);
        }
        present
    }

    pub fn pin(&self, hash: Hash) {
        self.pinned.lock().unwrap().insert(hash);
    }

    /// Appends one chunk of an upload; on `last`, verifies and publishes.
    pub fn receive_chunk(&self, stream: u64, hash: Hash, data: &[u8], last: bool) -> io::Result<bool> {
        let mut uploads = self.uploads.lock().unwrap();
        let up = match uploads.entry((hash, stream)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let tmp = self.dir.join(format!(".{}.{stream}.part", hex(&hash)));
                let file = File::create(&tmp)?;
                v.insert(Upload { file, tmp, hasher: blake3::Hasher::new() })
            }
        };
        let written = up.file.write_all(data);
        up.hasher.update(data);
        if let Err(e) = written {
            let up = uploads.remove(&(hash, stream)).expect("present");
            let _ = fs::remove_file(&up.tmp);
            return Err(e);
        }
        if !last {
            return Ok(false);
        }
        let up = uploads.remove(&(hash, stream)).expect("present");
        drop(uploads);
        self.publish(up, hash)
    }

    fn publish(&self, up: Upload, hash: Hash) -> io::Result<bool> {
        if *up.hasher.finalize().as_bytes() != hash {
            let _ = fs::remove_file(&up.tmp);
            return Err(io::Error::new(io::ErrorKind::InvalidData, "block content does not match its hash"));
        }
        up.file.sync_data()?;
        fs::rename(&up.tmp, self.path(&hash))?;
        Ok(true)
    }

    /// Moves a finished file (a task's output) into the store.
    pub fn insert_file(&self, file: &Path) -> io::Result<BlockRef> {
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(File::open(file)?)?;
        let hash = *hasher.finalize().as_bytes();
        let size = fs::metadata(file)?.len();
        let dest = self.path(&hash);
        if dest.exists() {
            fs::remove_file(file)?;
            touch(&dest);
        } else {
            fs::rename(file, &dest)?;
        }
        self.pin(hash);
        Ok(BlockRef { hash, size })
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

fn touch(path: &Path) {
    if let Ok(f) = File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
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
                File::options().append(true).open(store.path(&h)).unwrap().set_modified(t).unwrap();
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
