//! Deterministic test data: a corpus of words, fixed-width records, users
//! and orders for the join (with its expected totals), all drawn from a
//! small seeded xorshift so that data needs no crate and a seed replays.

use std::collections::BTreeMap;
use std::path::Path;

/// A small deterministic xorshift, so data needs no crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A corpus with mixed case, repeated spaces and tabs, and empty lines.
pub fn corpus(path: &Path, lines: usize, seed: u64) {
    let words = ["the", "Sea", "fish", "SHOAL", "reef", "a", "deep", "swim", "tide", "Kelp", "éclair", "x"];
    let mut rng = Rng(seed);
    let mut text = String::new();
    for i in 0..lines {
        if i % 17 == 0 {
            text.push('\n');
            continue;
        }
        let n = 1 + rng.next_u64() % 9;
        for j in 0..n {
            let w = words[(rng.next_u64() % words.len() as u64) as usize];
            text.push_str(w);
            text.push_str(if j % 4 == 3 {
                "\t"
            } else if j % 3 == 2 {
                "  "
            } else {
                " "
            });
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// `n` records of a 10-byte key and an 89-byte payload.
pub fn records(path: &Path, n: usize, seed: u64) {
    let mut rng = Rng(seed);
    let mut text = String::with_capacity(n * 100);
    for _ in 0..n {
        for _ in 0..10 {
            text.push((b'!' + (rng.next_u64() % 94) as u8) as char);
        }
        for _ in 0..89 {
            text.push((b'a' + (rng.next_u64() % 26) as u8) as char);
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Users and orders for the join example, and the expected totals.
pub fn join_data(dir: &Path, users: usize, orders: usize) -> Vec<(String, u64)> {
    let mut rng = Rng(99);
    let mut u = String::new();
    for id in 0..users {
        u.push_str(&format!("{id}\tuser{:03}\n", id % (users / 2).max(1)));
    }
    let mut o = String::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..orders {
        let id = rng.next_u64() % (users as u64 + 5);
        let amount = rng.next_u64() % 1000;
        o.push_str(&format!("{id}\t{amount}\n"));
        if (id as usize) < users {
            *totals.entry(format!("user{:03}", id as usize % (users / 2).max(1))).or_default() += amount;
        }
    }
    std::fs::write(dir.join("users.tsv"), u).unwrap();
    std::fs::write(dir.join("orders.tsv"), o).unwrap();
    totals.into_iter().collect()
}
