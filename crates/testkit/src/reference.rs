//! Expected answers computed the plain single-threaded way, and parsers
//! of what the example programs print, for comparing the two.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Word counts the plain way (the same tokenizing as the example).
pub fn wordcount(path: &Path) -> BTreeMap<String, u64> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for w in std::fs::read_to_string(path).unwrap().split_whitespace() {
        *counts.entry(w.to_lowercase()).or_default() += 1;
    }
    counts.into_iter().collect()
}

/// Parses `word<TAB>count` lines.
pub fn parse_counts(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .map(|l| {
            let (w, n) = l.rsplit_once('\t').unwrap_or_else(|| panic!("not word<TAB>count: {l:?}"));
            (w.to_string(), n.parse().unwrap())
        })
        .collect()
}

/// The lines of a file, sorted as bytes (what `sort` must produce).
pub fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path).unwrap().lines().map(String::from).collect();
    lines.sort();
    lines
}

/// The pi example's sample test, for an exact expected count.
pub fn pi_hits(samples: i64) -> u64 {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..samples)
        .filter(|&i| {
            let a = mix(i as u64);
            let (x, y) = ((a >> 32) as f64 / u32::MAX as f64, (a & 0xffff_ffff) as f64 / u32::MAX as f64);
            x * x + y * y <= 1.0
        })
        .count() as u64
}

/// The k-means example computed in one thread: the final centers.
pub fn kmeans(n: i64, k: usize, iterations: i64) -> Vec<(i64, i64)> {
    let point = |i: i64| {
        let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let (cx, cy) = (if z & 1 == 0 { -500 } else { 500 }, if z & 2 == 0 { -500 } else { 500 });
        (cx + ((z >> 8) % 401) as i64 - 200, cy + ((z >> 24) % 401) as i64 - 200)
    };
    let points: Vec<(i64, i64)> = (0..n).map(point).collect();
    let mut centers: Vec<(i64, i64)> = (0..k as i64).map(point).collect();
    for _ in 0..iterations {
        let mut sums = vec![(0i64, 0i64, 0i64); k];
        for p in &points {
            let d = |c: &(i64, i64)| (p.0 - c.0).pow(2) + (p.1 - c.1).pow(2);
            let best = (0..k).min_by_key(|&i| (d(&centers[i]), i)).unwrap();
            sums[best] = (sums[best].0 + p.0, sums[best].1 + p.1, sums[best].2 + 1);
        }
        let next: Vec<(i64, i64)> = (0..k)
            .map(|i| if sums[i].2 == 0 { centers[i] } else { (sums[i].0.div_euclid(sums[i].2), sums[i].1.div_euclid(sums[i].2)) })
            .collect();
        if next == centers {
            break;
        }
        centers = next;
    }
    centers
}

/// Parses the k-means example's `x<TAB>y` lines.
pub fn parse_points(text: &str) -> Vec<(i64, i64)> {
    text.lines().filter_map(|l| l.split_once('\t')).map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap())).collect()
}
