//! The jobs of the soak, each with its data, how to run it (and resume
//! it), and its answer computed here in one process without Shoal:
//!
//! - `map`: a command map job over line partitions (`tr a-z A-Z`);
//! - `shuffle`: a Hadoop-streaming word count, synced awk script as both
//!   combiner and reducer;
//! - `wordcount`: the Dataset API example (`text_file`, `map_partitions`,
//!   `reduce_by_key`, `sort_by_key`, `save_as_text`, `collect`);
//! - `groups`: the Dataset `faults slow` program, whose tasks are long
//!   enough that faults land while they run.
//!
//! Every task sleeps a little, so that a job lasts a few seconds and the
//! faults hit it while it runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use shoal_testkit::data::corpus;
use shoal_testkit::reference::{parse_counts, wordcount};
use shoal_testkit::Shoal;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Map,
    Shuffle,
    WordCount,
    Groups,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Map, Kind::Shuffle, Kind::WordCount, Kind::Groups];
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Map => "map",
            Kind::Shuffle => "shuffle",
            Kind::WordCount => "wordcount",
            Kind::Groups => "groups",
        })
    }
}

const MAP_PARTITIONS: usize = 12;
const REDUCE_PARTITIONS: usize = 5;
/// `faults slow N MS`: N records over 12 partitions, MS each.
const GROUP_RECORDS: i64 = 240;
const GROUP_MS: u64 = 25;

/// Retries that make recovery quick; host loss is never charged.
const JOB_HEADER: &str = "max_attempts = 6\nexclude_after = 6\n";

/// One prepared job in its own directory.
pub struct Job {
    pub kind: Kind,
    pub dir: PathBuf,
    cluster: PathBuf,
}

impl Job {
    /// Writes the job's data (drawn from `seed`) and files into `dir`.
    pub fn prepare(kind: Kind, dir: &Path, cluster: &Path, seed: u64) -> Job {
        std::fs::create_dir_all(dir).expect("make the job dir");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match kind {
            Kind::Map => write_map_job(dir, &mut rng),
            Kind::Shuffle => write_shuffle_job(dir, &mut rng),
            Kind::WordCount => corpus(&dir.join("corpus.txt"), 3000, seed | 1),
            Kind::Groups => {}
        }
        Job { kind, dir: dir.to_path_buf(), cluster: cluster.to_path_buf() }
    }

    /// The command that runs the job (`resume`: reusing the last run's
    /// committed tasks).
    pub fn command(&self, resume: bool) -> Shoal {
        let cluster = self.cluster.display().to_string();
        let cmd = match self.kind {
            Kind::Map | Kind::Shuffle => Shoal::new().args(["run", "job.toml", "--json", "--cluster", &cluster]),
            Kind::WordCount => Shoal::program("wordcount").args(["--quiet", "--cluster", &cluster, "corpus.txt", "counts.tsv"]),
            Kind::Groups => {
                Shoal::program("faults").args(["--quiet", "--cluster", &cluster, "slow", &GROUP_RECORDS.to_string(), &GROUP_MS.to_string()])
            }
        };
        let cmd = if resume { cmd.arg("--resume") } else { cmd };
        cmd.in_dir(&self.dir).env_remove("SHOAL_CLUSTER").env_remove("RUST_BACKTRACE").env("NO_COLOR", "1")
    }

    /// Whether the job's output equals the single-process reference.
    pub fn check_output(&self, stdout: &str) -> Result<(), String> {
        match self.kind {
            Kind::Map => {
                let want = self.read("data.txt")?.to_ascii_uppercase();
                same("out/result.txt", &self.read("out/result.txt")?, &want)
            }
            Kind::Shuffle => {
                let mut got: Vec<String> = self.read("out/result.txt")?.lines().map(String::from).collect();
                got.sort();
                let mut want: Vec<String> = word_counts(&self.read("data.txt")?).into_iter().map(|(w, n)| format!("{w}\t{n}")).collect();
                want.sort();
                same("out/result.txt (lines sorted)", &got.join("\n"), &want.join("\n"))
            }
            Kind::WordCount => {
                let got = parse_counts(&self.read("counts.tsv")?);
                let want: Vec<(String, u64)> = wordcount(&self.dir.join("corpus.txt")).into_iter().collect();
                match got == want {
                    true => Ok(()),
                    false => Err(format!("counts.tsv differs from the reference: {} lines, want {}", got.len(), want.len())),
                }
            }
            Kind::Groups => {
                let want: Vec<(i64, u64)> = (0..7).map(|k| (k, (0..GROUP_RECORDS).filter(|i| i % 7 == k).count() as u64)).collect();
                let line = format!("groups {want:?}");
                match stdout.lines().any(|l| l == line) {
                    true => Ok(()),
                    false => Err(format!("stdout lacks {line:?}:\n{stdout}")),
                }
            }
        }
    }

    /// How many tasks the last run's journal must hold, each once: the
    /// tasks whose outputs make the job's output. Dataset programs run
    /// several jobs of their own choosing, so only duplicates are checked.
    pub fn committed(&self) -> Option<usize> {
        match self.kind {
            Kind::Map => Some(MAP_PARTITIONS),
            Kind::Shuffle => Some(REDUCE_PARTITIONS),
            Kind::WordCount | Kind::Groups => None,
        }
    }

    fn read(&self, rel: &str) -> Result<String, String> {
        std::fs::read_to_string(self.dir.join(rel)).map_err(|e| format!("cannot read {rel}: {e}"))
    }
}

fn same(what: &str, got: &str, want: &str) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    let line = got.lines().zip(want.lines()).position(|(g, w)| g != w).map_or(got.lines().count().min(want.lines().count()), |i| i);
    Err(format!(
        "{what} differs from the single-process reference at line {} ({} lines, want {}): got {:?}, want {:?}",
        line + 1,
        got.lines().count(),
        want.lines().count(),
        got.lines().nth(line),
        want.lines().nth(line)
    ))
}

/// Lines of a few random words.
fn random_lines(rng: &mut ChaCha8Rng, lines: usize, vocabulary: usize) -> String {
    let mut text = String::new();
    for _ in 0..lines {
        let words: Vec<String> = (0..rng.gen_range(1..8)).map(|_| format!("w{}", rng.gen_range(0..vocabulary))).collect();
        text.push_str(&words.join(" "));
        text.push('\n');
    }
    text
}

fn write_map_job(dir: &Path, rng: &mut ChaCha8Rng) {
    std::fs::write(dir.join("data.txt"), random_lines(rng, 4000, 5000)).expect("write data.txt");
    let job = format!(
        "[job]\nname = \"map\"\n{JOB_HEADER}\n[input]\npath = \"data.txt\"\npartitions = {MAP_PARTITIONS}\n\
         [map]\ncommand = \"sleep 0.4; tr a-z A-Z\"\n[output]\npath = \"out/result.txt\"\n"
    );
    std::fs::write(dir.join("job.toml"), job).expect("write job.toml");
}

/// Sums the values of each run of equal keys (input sorted by key), so
/// it serves as combiner and reducer alike.
const SUM_AWK: &str = "$1 != k { if (NR > 1) print k \"\\t\" s; k = $1; s = 0 }\n{ s += $2 }\nEND { if (NR > 0) print k \"\\t\" s }\n";

fn write_shuffle_job(dir: &Path, rng: &mut ChaCha8Rng) {
    std::fs::write(dir.join("data.txt"), random_lines(rng, 3000, 300)).expect("write data.txt");
    std::fs::write(dir.join("sum.awk"), SUM_AWK).expect("write sum.awk");
    let job = format!(
        "[job]\nname = \"shuffle\"\n{JOB_HEADER}\n[sync]\nfiles = [\"sum.awk\"]\n\
         [input]\npath = \"data.txt\"\npartitions = {MAP_PARTITIONS}\n\
         [map]\ncommand = '''sleep 0.3; awk '{{ for (i = 1; i <= NF; i++) print $i \"\\t1\" }}' '''\n\
         [combine]\ncommand = '''awk -F'\\t' -f sum.awk'''\n\
         [reduce]\npartitions = {REDUCE_PARTITIONS}\ncommand = '''sleep 0.3; awk -F'\\t' -f sum.awk'''\n\
         [output]\npath = \"out/result.txt\"\n"
    );
    std::fs::write(dir.join("job.toml"), job).expect("write job.toml");
}

/// The shuffle job's answer, counted here.
fn word_counts(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for w in text.split_whitespace() {
        *counts.entry(w.to_string()).or_insert(0) += 1;
    }
    counts
}
