//! Monte Carlo estimate of pi: `pi SAMPLES [PARTITIONS]`.
//!
//! Each sample is a point drawn from a hash of its index (splitmix64), so
//! the count inside the circle is the same on any number of workers and
//! can be checked exactly against a single-threaded loop.

/// splitmix64: a fixed, high-quality mix of the sample's index.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether sample `i` falls inside the unit circle.
pub fn inside(i: i64) -> bool {
    let a = mix(i as u64);
    let (x, y) = ((a >> 32) as f64 / u32::MAX as f64, (a & 0xffff_ffff) as f64 / u32::MAX as f64);
    x * x + y * y <= 1.0
}

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let samples: i64 = cx.args().first().and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
        let partitions: u32 = cx.args().get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
        let hits = cx.range(0..samples, partitions).filter(|&i| inside(i)).count()?;
        if cx.is_driver() {
            println!("inside {hits} of {samples}");
            println!("pi is about {:.6}", 4.0 * hits as f64 / samples as f64);
        }
        Ok(())
    })
}
