//! Helpers for the Dataset API tests: run an example program (built by
//! `cargo test` into `target/<profile>/examples/`), make clusters and
//! data, and compute expected answers with plain single-threaded Rust.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// An example program built beside the tests. `cargo test` builds the
/// examples only when no test target is named, so the first call makes
/// sure they are built and current (a no-op when they are).
pub fn program(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "shoal", "--examples"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build --examples");
        assert!(status.success(), "cannot build the example programs");
    });
    dir.join("examples").join(name)
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    line: String,
}

/// Runs `name args...` in `dir`, with no cluster from the environment.
pub fn run(dir: &Path, name: &str, args: &[&str]) -> Ran {
    let out = Command::new(program(name))
        .args(args)
        .current_dir(dir)
        .env_remove("SHOAL_CLUSTER")
        .env_remove("RUST_BACKTRACE")
        .env("HOME", dir.join("home"))
        .output()
        .expect("start the program");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        line: format!("{name} {}", args.join(" ")),
    }
}

impl Ran {
    pub fn code(self, want: i32) -> Self {
        assert_eq!(
            self.code, want,
            "`{}` exited {}, wanted {want}\n--- stdout\n{}\n--- stderr\n{}",
            self.line, self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn success(self) -> Self {
        self.code(0)
    }

    pub fn stderr_has(self, s: &str) -> Self {
        assert!(self.stderr.contains(s), "`{}`: stderr lacks {s:?}\n--- stderr\n{}", self.line, self.stderr);
        self
    }

    /// The value after `word ` on a line of stdout.
    pub fn value(&self, word: &str) -> String {
        let prefix = format!("{word} ");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("`{}`: no `{word}` line\n--- stdout\n{}\n--- stderr\n{}", self.line, self.stdout, self.stderr))
            .to_string()
    }
}

/// A cluster file of `n` local hosts with one slot each (so `n` workers).
pub fn local_cluster(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::from("[defaults]\nheartbeat_timeout = 15\n");
    for i in 0..n {
        let work = dir.join(format!("hosts/w{i}"));
        text.push_str(&format!("\n[hosts.w{i}]\ntransport = \"local\"\nslots = 1\nworkdir = \"{}\"\n", work.display()));
    }
    let path = dir.join(format!("cluster-{n}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A small deterministic xorshift, so data needs no crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
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
        let n = 1 + rng.next() % 9;
        for j in 0..n {
            let w = words[(rng.next() % words.len() as u64) as usize];
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

/// `n` records of a 10-byte key and an 89-byte payload.
pub fn records(path: &Path, n: usize, seed: u64) {
    let mut rng = Rng(seed);
    let mut text = String::with_capacity(n * 100);
    for _ in 0..n {
        for _ in 0..10 {
            text.push((b'!' + (rng.next() % 94) as u8) as char);
        }
        for _ in 0..89 {
            text.push((b'a' + (rng.next() % 26) as u8) as char);
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
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
        let id = rng.next() % (users as u64 + 5);
        let amount = rng.next() % 1000;
        o.push_str(&format!("{id}\t{amount}\n"));
        if (id as usize) < users {
            *totals.entry(format!("user{:03}", id as usize % (users / 2).max(1))).or_default() += amount;
        }
    }
    std::fs::write(dir.join("users.tsv"), u).unwrap();
    std::fs::write(dir.join("orders.tsv"), o).unwrap();
    totals.into_iter().collect()
}
