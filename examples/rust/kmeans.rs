//! k-means, iterative: each step's centers come from the previous step's
//! `collect`, which every task receives too (actions are collective).
//!
//! `kmeans POINTS K ITERATIONS`. Points are integer coordinates made from
//! a hash of their index, and centers are integer means, so the result is
//! exact and the same on any number of workers.

type Point = (i64, i64);

fn point(i: i64) -> Point {
    let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // Four clusters around (±500, ±500), spread ±200.
    let (cx, cy) = (if z & 1 == 0 { -500 } else { 500 }, if z & 2 == 0 { -500 } else { 500 });
    (cx + ((z >> 8) % 401) as i64 - 200, cy + ((z >> 24) % 401) as i64 - 200)
}

fn closest(p: Point, centers: &[Point]) -> usize {
    let d = |c: &Point| (p.0 - c.0).pow(2) + (p.1 - c.1).pow(2);
    (0..centers.len()).min_by_key(|&i| (d(&centers[i]), i)).unwrap_or(0)
}

fn main() -> shoal::Result<()> {
    shoal::main(|cx| {
        let arg = |i: usize, d: i64| cx.args().get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
        let (n, k, iterations) = (arg(0, 100_000), arg(1, 4) as usize, arg(2, 10));
        let points = cx.range(0..n, 8).map(point).cache();
        let mut centers: Vec<Point> = (0..k as i64).map(point).collect();
        for step in 0..iterations {
            let c = centers.clone();
            let mut sums = points
                .map(move |p| (closest(p, &c) as u64, (p.0, p.1, 1i64)))
                .reduce_by_key(|a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
                .collect()?;
            sums.sort();
            let next: Vec<Point> = (0..k)
                .map(|i| match sums.iter().find(|(c, _)| *c == i as u64) {
                    Some((_, (x, y, m))) => (x.div_euclid(*m), y.div_euclid(*m)),
                    None => centers[i],
                })
                .collect();
            if cx.is_driver() {
                eprintln!("step {step}: {next:?}");
            }
            if next == centers {
                break;
            }
            centers = next;
        }
        if cx.is_driver() {
            for c in &centers {
                println!("{}\t{}", c.0, c.1);
            }
        }
        Ok(())
    })
}
