//! The map side and reduce side of a keyed shuffle, on the agent.
//!
//! Map side ([`bucketize`]): the mapper's output lines are routed to R
//! buckets by the stable partitioner (or `key mod R`), each bucket sorted
//! by key in bounded memory (spilling sorted runs to disk), optionally run
//! through the combiner, and kept as blocks on this host. Reduce side
//! ([`merge_into`]): the buckets of every map task, already sorted, are
//! merged by key into the reducer's stdin, so all values of one key arrive
//! together, as Hadoop Streaming promises.

mod error;
pub mod order;
pub mod sort;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use shoal_core::partitioner::{hash_partition, modulo_partition};
use shoal_wire::{Bucket, KeyFormat, ShuffleOut};

pub use self::error::{CombinerError, ShuffleError};
use self::order::KeyOrder;
use self::sort::{read_line, LineError, Spiller, MAX_LINE};
use super::BlockStore;

/// Runs a combiner: reads the first path, writes the second.
pub type Combiner<'a> = dyn Fn(&Path, &Path) -> Result<(), CombinerError> + 'a;

/// Cuts a map output into sorted (and combined) bucket blocks.
pub fn bucketize(
    output: &Path,
    spec: &ShuffleOut,
    scratch: &Path,
    store: &BlockStore,
    combine: &Combiner<'_>,
) -> Result<(Vec<Bucket>, u64), ShuffleError> {
    let r = spec.partitions.max(1) as usize;
    let order = KeyOrder::new(&spec.key);
    let mut spiller = Spiller::new(order.clone(), r, spec.sort_buffer, &scratch.join("spill"))?;
    let mut reader = BufReader::with_capacity(1 << 20, File::open(output)?);
    let mut line = Vec::new();
    let mut records = 0u64;
    let mut offset = 0u64;
    while let n @ 1.. = read_line(&mut reader, &mut line, MAX_LINE).map_err(|e| too_long(e, "the map output", records + 1, offset))? {
        records += 1;
        offset += n as u64;
        let key = order.key(&line);
        let b = if spec.modulo {
            modulo_partition(key, r as u32).map_err(|key| ShuffleError::Modulo { key, record: records })?
        } else {
            hash_partition(key, r as u32)
        };
        spiller.push(b as usize, &line)?;
        line.clear();
    }
    let buckets = (0..r).map(|b| finish_bucket(&mut spiller, b, spec, scratch, store, combine)).collect::<Result<Vec<_>, _>>()?;
    Ok((buckets, records))
}

fn finish_bucket(
    spiller: &mut Spiller,
    b: usize,
    spec: &ShuffleOut,
    scratch: &Path,
    store: &BlockStore,
    combine: &Combiner<'_>,
) -> Result<Bucket, ShuffleError> {
    let sorted = scratch.join(format!("bucket-{b}"));
    spiller.finish(b, &sorted)?;
    let path = match &spec.combine {
        Some(_) => combined(&sorted, b, spec, scratch, combine)?,
        None => sorted,
    };
    let records = count_lines(&path)?;
    let block = store.insert_file(&path)?;
    Ok(Bucket { block, records })
}

/// Runs the combiner on one sorted bucket and sorts what it wrote (a
/// combiner may reorder keys; the reducer's merge needs sorted runs).
fn combined(sorted: &Path, b: usize, spec: &ShuffleOut, scratch: &Path, combine: &Combiner<'_>) -> Result<PathBuf, ShuffleError> {
    if std::fs::metadata(sorted).map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(sorted.to_path_buf());
    }
    let raw = scratch.join(format!("combined-{b}"));
    combine(sorted, &raw)?;
    let _ = std::fs::remove_file(sorted);
    let mut again = Spiller::new(KeyOrder::new(&spec.key), 1, spec.sort_buffer, &scratch.join(format!("spill-combined-{b}")))
        .map_err(ShuffleError::Combined)?;
    let mut reader = BufReader::new(File::open(&raw).map_err(ShuffleError::Combined)?);
    let (mut line, mut records, mut offset) = (Vec::new(), 0u64, 0u64);
    while let n @ 1.. =
        read_line(&mut reader, &mut line, MAX_LINE).map_err(|e| too_long(e, "the combiner's output", records + 1, offset))?
    {
        records += 1;
        offset += n as u64;
        again.push(0, &line).map_err(ShuffleError::Combined)?;
        line.clear();
    }
    let dest = scratch.join(format!("bucket-{b}-combined"));
    again.finish(0, &dest).map_err(ShuffleError::Combined)?;
    let _ = std::fs::remove_file(&raw);
    Ok(dest)
}

/// The sentence for a record the shuffle cannot hold.
fn too_long(e: LineError, what: &'static str, record: u64, offset: u64) -> ShuffleError {
    match e {
        LineError::TooLong { .. } => ShuffleError::TooLong { what, record, offset },
        LineError::Io(e) => ShuffleError::Io(e),
    }
}

fn count_lines(path: &Path) -> io::Result<u64> {
    let mut n = 0;
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(n);
        }
        n += buf.iter().filter(|b| **b == b'\n').count() as u64;
        let len = buf.len();
        reader.consume(len);
    }
}

/// Merges sorted inputs by key into `out` (a reducer's stdin).
pub fn merge_into(inputs: &[PathBuf], key: &KeyFormat, out: &mut impl Write) -> io::Result<()> {
    sort::merge(inputs, &KeyOrder::new(key), out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(r: u32, modulo: bool) -> ShuffleOut {
        ShuffleOut {
            partitions: r,
            key: KeyFormat { sep: b"\t".to_vec(), fields: 1, numeric: false },
            modulo,
            combine: None,
            sort_buffer: 1 << 16,
        }
    }

    #[test]
    fn every_key_lands_in_exactly_one_sorted_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().join("blocks")).unwrap();
        let out = dir.path().join("out");
        let text: String = (0..5000).map(|i| format!("key{}\t{i}\n", i % 97)).collect();
        std::fs::write(&out, &text).unwrap();
        let (buckets, records) = bucketize(&out, &spec(4, false), &dir.path().join("s"), &store, &|_, _| Ok(())).unwrap();
        assert_eq!(records, 5000);
        assert_eq!(buckets.iter().map(|b| b.records).sum::<u64>(), 5000);
        let mut seen = std::collections::HashMap::new();
        for (i, b) in buckets.iter().enumerate() {
            let data = std::fs::read_to_string(store.path(&b.block.hash)).unwrap();
            let keys: Vec<&str> = data.lines().map(|l| l.split('\t').next().unwrap()).collect();
            assert!(keys.windows(2).all(|w| w[0] <= w[1]), "bucket {i} is sorted");
            for k in keys {
                assert_eq!(*seen.entry(k.to_string()).or_insert(i), i, "key {k} in two buckets");
            }
        }
    }

    #[test]
    fn lines_without_tab_and_empty_values_are_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().join("blocks")).unwrap();
        let out = dir.path().join("out");
        std::fs::write(&out, b"whole line key\nk\t\nk\tv\n\xff\xfe\tbin\n").unwrap();
        let (buckets, _) = bucketize(&out, &spec(1, false), &dir.path().join("s"), &store, &|_, _| Ok(())).unwrap();
        let data = std::fs::read(store.path(&buckets[0].block.hash)).unwrap();
        assert_eq!(data, b"k\t\nk\tv\nwhole line key\n\xff\xfe\tbin\n");
    }

    #[test]
    fn one_mebibyte_lines_survive_a_small_sort_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().join("blocks")).unwrap();
        let out = dir.path().join("out");
        let long = "v".repeat(1 << 20);
        let text: String = (0..8).map(|i| format!("key{}\t{long}{i}\n", 7 - i)).collect();
        std::fs::write(&out, &text).unwrap();
        let (buckets, records) = bucketize(&out, &spec(1, false), &dir.path().join("s"), &store, &|_, _| Ok(())).unwrap();
        assert_eq!(records, 8);
        let data = std::fs::read_to_string(store.path(&buckets[0].block.hash)).unwrap();
        let keys: Vec<&str> = data.lines().map(|l| l.split('\t').next().unwrap()).collect();
        assert_eq!(keys, ["key0", "key1", "key2", "key3", "key4", "key5", "key6", "key7"]);
        assert!(data.lines().all(|l| l.len() == 4 + 1 + (1 << 20) + 1));
    }

    #[test]
    fn a_record_over_the_line_limit_is_refused_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().join("blocks")).unwrap();
        let out = dir.path().join("out");
        let mut data = b"k\tv\nk\t".to_vec();
        data.resize(data.len() + MAX_LINE, b'v');
        std::fs::write(&out, data).unwrap();
        let err = bucketize(&out, &spec(2, false), &dir.path().join("s"), &store, &|_, _| Ok(())).unwrap_err();
        assert!(matches!(err, ShuffleError::TooLong { record: 2, offset: 4, .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "shuffle: record 2 of the map output (at byte 4) is longer than 64 MiB, the longest record a shuffle sorts; \
             write shorter lines (a record is one line)"
        );
    }

    #[test]
    fn modulo_needs_integer_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().join("blocks")).unwrap();
        let out = dir.path().join("out");
        std::fs::write(&out, "1\ta\nx\tb\n").unwrap();
        let err = bucketize(&out, &spec(2, true), &dir.path().join("s"), &store, &|_, _| Ok(())).unwrap_err();
        assert!(matches!(err, ShuffleError::Modulo { record: 2, .. }), "{err:?}");
        assert_eq!(err.to_string(), "partitioner = \"modulo\": key \"x\" is not an integer (record 2 of the map output)");
    }

    #[test]
    fn combined_buckets_that_spill_each_sort_in_files_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path().join("blocks")).unwrap();
        let out = dir.path().join("out");
        let text: String = (0..30_000).map(|i| format!("key{:05}\t{i}\n", (i * 7919) % 30_000)).collect();
        std::fs::write(&out, &text).unwrap();
        let mut spec = spec(3, false);
        spec.combine = Some("copy".into());
        let copy = |input: &Path, output: &Path| std::fs::copy(input, output).map(|_| ()).map_err(CombinerError::Open);
        let (buckets, records) = bucketize(&out, &spec, &dir.path().join("s"), &store, &copy).unwrap();
        assert_eq!(records, 30_000);
        for b in &buckets {
            let data = std::fs::read_to_string(store.path(&b.block.hash)).unwrap();
            let keys: Vec<&str> = data.lines().map(|l| l.split('\t').next().unwrap()).collect();
            assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
