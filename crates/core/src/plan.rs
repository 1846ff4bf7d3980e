//! Pure planning helpers: weighted shares, the seeded task order, and the
//! ideal cut points of a line split (the I/O code moves each cut to the
//! next line start).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Splits `n` items among hosts in proportion to `weights` (speed x slots)
/// by the largest-remainder method; ties go to the lower index. The shares
/// sum to exactly `n`. All-zero weights share equally.
pub fn weighted_shares(n: u32, weights: &[f64]) -> Vec<u32> {
    if weights.is_empty() {
        return vec![];
    }
    let clean: Vec<f64> = weights.iter().map(|w| if w.is_finite() && *w > 0.0 { *w } else { 0.0 }).collect();
    let total: f64 = clean.iter().sum();
    let weights: Vec<f64> = if total > 0.0 { clean } else { vec![1.0; weights.len()] };
    let total: f64 = weights.iter().sum();
    let quotas: Vec<f64> = weights.iter().map(|w| n as f64 * w / total).collect();
    let mut shares: Vec<u32> = quotas.iter().map(|q| q.floor() as u32).collect();
    let mut left = n - shares.iter().sum::<u32>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| (quotas[b] - quotas[b].floor()).total_cmp(&(quotas[a] - quotas[a].floor())).then(a.cmp(&b)));
    for i in order.into_iter().cycle() {
        if left == 0 {
            break;
        }
        if weights[i] > 0.0 {
            shares[i] += 1;
            left -= 1;
        }
    }
    shares
}

/// A permutation of `0..n` from ChaCha8 seeded with `seed` (Fisher-Yates),
/// the same on every platform and version.
pub fn seeded_order(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.gen_range(0..=i as u64) as usize;
        v.swap(i, j);
    }
    v
}

/// Ideal cut offsets for `partitions` equal byte ranges of `total_bytes`
/// (without the leading 0).
pub fn line_chunk_targets(total_bytes: u64, partitions: u32) -> Vec<u64> {
    let p = u64::from(partitions.max(1));
    (1..p).map(|i| (u128::from(total_bytes) * u128::from(i) / u128::from(p)) as u64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shares_follow_weights() {
        assert_eq!(weighted_shares(10, &[1.0, 1.0]), [5, 5]);
        assert_eq!(weighted_shares(10, &[3.0, 1.0]), [8, 2]);
        assert_eq!(weighted_shares(3, &[1.0, 1.0]), [2, 1]);
        assert_eq!(weighted_shares(4, &[0.0, 0.0]), [2, 2]);
        assert_eq!(weighted_shares(4, &[0.0, 2.0]), [0, 4]);
    }

    #[test]
    fn seeded_order_is_pinned() {
        let a = seeded_order(8, 42);
        assert_eq!(a, seeded_order(8, 42));
        assert_ne!(a, seeded_order(8, 43));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn targets() {
        assert_eq!(line_chunk_targets(100, 4), [25, 50, 75]);
        assert!(line_chunk_targets(100, 1).is_empty());
    }

    proptest! {
        #[test]
        fn shares_sum_and_stay_near_quota(n in 0u32..1000, w in proptest::collection::vec(0.1f64..10.0, 1..8)) {
            let s = weighted_shares(n, &w);
            prop_assert_eq!(s.iter().sum::<u32>(), n);
            let total: f64 = w.iter().sum();
            for (share, weight) in s.iter().zip(&w) {
                let quota = n as f64 * weight / total;
                prop_assert!((*share as f64 - quota).abs() <= 1.0 + 1e-9);
            }
        }
    }
}
