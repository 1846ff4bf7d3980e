//! How fast one agent fetches a block from another over the direct path
//! (`shoal::peer`: a Noise session on loopback, ChaCha20-Poly1305 both
//! ways, the block streamed into the fetcher's store and verified by its
//! BLAKE3 hash): `peer_throughput [MIB]` prints `MB/s` of one fetch.
//!
//! Both ends run in this one process on this machine's cores, so the
//! number is the CPU cost per byte of the direct path (encrypt on the
//! serving host, decrypt, hash and store on the fetching one), which
//! bench/shuffle_model.py takes as `direct_mbps`.

use std::sync::Arc;
use std::time::Instant;

use shoal::agent::BlockStore;
use shoal::peer::{fetch, new_key, serve};
use shoal::wire::PeerBlock;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mib: u64 = std::env::args().nth(1).map_or(512, |a| a.parse().expect("MIB: a whole number"));
    let dir = tempfile::tempdir()?;
    let (from, to) = (Arc::new(BlockStore::open(dir.path().join("a"))?), Arc::new(BlockStore::open(dir.path().join("b"))?));
    let file = dir.path().join("block");
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        for _ in 0..mib {
            std::io::Write::write_all(&mut f, &chunk)?;
        }
    }
    let block = from.insert_file(&file)?;
    let key = new_key();
    let listener = serve::Listener::start("127.0.0.1".parse().unwrap(), "bench".into(), key, from, Arc::new(|_, _| {}))?;
    let wanted = vec![PeerBlock { hash: block.hash, size: block.size, from: listener.addr.to_string() }];
    let t = Instant::now();
    let (bytes, failed) = fetch::fetch_all("bench", &key, wanted, to).await;
    let secs = t.elapsed().as_secs_f64();
    assert!(failed.is_empty() && bytes == block.size, "the fetch failed: {failed:?}");
    println!("{:.0} MB/s ({} MiB in {secs:.2} s)", bytes as f64 / secs / 1e6, mib);
    Ok(())
}
