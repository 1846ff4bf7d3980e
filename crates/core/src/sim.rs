//! Scaffolding for seeded random simulations: the scheduler's
//! (`scheduler/sim_tests.rs`) and the run book's in the `shoal` crate
//! (`driver/run/book/sim_tests.rs`). Each simulation drives its own state
//! machine with random legal events and checks it after every step; this
//! module runs its seeds (spread over threads, one seed replayed by an
//! environment variable), turns a panic into a failure, keeps the last
//! steps for the failure message, and checks that every interesting path
//! was reached, since a simulation that never reaches a path proves
//! nothing about it.
//!
//! Test code only: it is compiled for this crate's tests and, with the
//! `sim` feature, for other crates' tests. Unlike the rest of the crate it
//! reads environment variables, prints and starts threads.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The outcome of one check: `Err` says what went wrong.
pub type Check = Result<(), String>;

/// Returns `Err(format!(...))` from the enclosing function unless `$cond`.
#[macro_export]
macro_rules! sim_ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// How often each interesting path ran, by name, summed over seeds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paths(BTreeMap<&'static str, u64>);

impl Paths {
    /// Counts `n` more passes through `path`.
    pub fn hit(&mut self, path: &'static str, n: u64) {
        *self.0.entry(path).or_default() += n;
    }

    fn add(&mut self, other: Paths) {
        for (path, n) in other.0 {
            self.hit(path, n);
        }
    }

    /// The paths of `required` that never ran.
    pub fn missing<'a>(&self, required: &[&'a str]) -> Vec<&'a str> {
        required.iter().copied().filter(|p| self.0.get(p).copied().unwrap_or(0) == 0).collect()
    }
}

/// The last steps of a run, for the failure message; printed as they
/// happen when the simulation's trace variable is set.
pub struct Trace<T> {
    steps: VecDeque<T>,
    keep: usize,
    print: bool,
    show: fn(&T) -> String,
}

impl<T> Trace<T> {
    /// Keeps the last `keep` steps, each shown by `show`; prints every
    /// step when the environment variable `var` is set.
    pub fn new(keep: usize, var: &str, show: fn(&T) -> String) -> Trace<T> {
        Trace { steps: VecDeque::with_capacity(keep), keep, print: std::env::var_os(var).is_some(), show }
    }

    pub fn note(&mut self, step: T) {
        if self.print {
            eprintln!("{}", (self.show)(&step));
        }
        if self.steps.len() == self.keep {
            self.steps.pop_front();
        }
        self.steps.push_back(step);
    }

    /// The steps kept, oldest first, one per line.
    pub fn dump(&self) -> String {
        self.steps.iter().map(|s| (self.show)(s) + "\n").collect()
    }
}

/// A simulation: what it drives and how to replay one of its seeds.
pub struct Simulation {
    /// What a panic came from, e.g. "the scheduler".
    pub what: &'static str,
    /// Seeds run by default: `0..seeds`.
    pub seeds: u64,
    /// The environment variable that picks one seed to replay.
    pub seed_var: &'static str,
    /// The environment variable that prints every step.
    pub trace_var: &'static str,
    /// The command that runs the test, for the replay hint.
    pub command: &'static str,
    /// Paths every full set of seeds must reach.
    pub required: &'static [&'static str],
}

impl Simulation {
    /// Runs every seed (or the one in `seed_var`) through `one`, which
    /// returns the paths its run took or what went wrong, and panics with
    /// the lowest failing seed and how to replay it.
    pub fn run(&self, one: impl Fn(u64) -> Result<Paths, String> + Sync) {
        let seeds: Vec<u64> = match std::env::var(self.seed_var) {
            Ok(s) => vec![s.trim().parse().unwrap_or_else(|_| panic!("{} must be a number", self.seed_var))],
            Err(_) => (0..self.seeds).collect(),
        };
        // Seeds are independent: spread them over the cores.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let one = &one;
        let results: Vec<Result<Paths, (u64, String)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|k| {
                    let mine = seeds.iter().copied().skip(k).step_by(threads);
                    scope.spawn(move || self.run_seeds(mine, one))
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("a simulation thread panicked")).collect()
        });
        let mut paths = Paths::default();
        let mut first_failure: Option<(u64, String)> = None;
        for result in results {
            match result {
                Ok(p) => paths.add(p),
                Err(f) => first_failure = first_failure.into_iter().chain([f]).min_by_key(|f| f.0),
            }
        }
        if let Some((seed, e)) = first_failure {
            panic!("seed {seed} failed: {e}\n\nreplay it with: {}={seed} {}=1 {}", self.seed_var, self.trace_var, self.command);
        }
        if std::env::var_os(self.trace_var).is_some() {
            eprintln!("{paths:?}");
        }
        if seeds.len() > 1 {
            let missing = paths.missing(self.required);
            assert!(missing.is_empty(), "the simulation no longer reaches these paths: {missing:?}; it reached {paths:?}");
        }
    }

    /// Runs seeds in order until one fails.
    fn run_seeds(&self, seeds: impl Iterator<Item = u64>, one: &impl Fn(u64) -> Result<Paths, String>) -> Result<Paths, (u64, String)> {
        let mut paths = Paths::default();
        for seed in seeds {
            paths.add(self.run_seed(seed, one).map_err(|e| (seed, e))?);
        }
        Ok(paths)
    }

    /// One seed; a panic is a failure too.
    fn run_seed(&self, seed: u64, one: &impl Fn(u64) -> Result<Paths, String>) -> Result<Paths, String> {
        catch_unwind(AssertUnwindSafe(|| one(seed))).unwrap_or_else(|panic| {
            let msg = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!("{} panicked: {}", self.what, msg.unwrap_or_default()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(required: &'static [&'static str]) -> Simulation {
        Simulation {
            what: "the toy",
            seeds: 20,
            seed_var: "SHOAL_TOY_SEED",
            trace_var: "SHOAL_TOY_TRACE",
            command: "cargo test toy",
            required,
        }
    }

    fn toy(seed: u64) -> Result<Paths, String> {
        let mut paths = Paths::default();
        paths.hit(if seed.is_multiple_of(2) { "even" } else { "odd" }, 1);
        Ok(paths)
    }

    #[test]
    fn every_seed_runs_and_the_paths_add_up() {
        sim(&["even", "odd"]).run(toy);
    }

    #[test]
    #[should_panic(expected = "the simulation no longer reaches these paths: [\"never\"]")]
    fn a_path_never_reached_fails() {
        sim(&["even", "never"]).run(toy);
    }

    #[test]
    #[should_panic(
        expected = "seed 7 failed: the toy panicked: boom 7\n\nreplay it with: SHOAL_TOY_SEED=7 SHOAL_TOY_TRACE=1 cargo test toy"
    )]
    fn the_lowest_failing_seed_is_named_with_its_replay() {
        sim(&[]).run(|seed| if seed >= 7 && seed.is_multiple_of(7) { panic!("boom {seed}") } else { toy(seed) });
    }

    #[test]
    fn a_trace_keeps_the_last_steps() {
        let mut t = Trace::new(2, "SHOAL_TOY_TRACE", |n: &u32| format!("step {n}"));
        (1..=3).for_each(|n| t.note(n));
        assert_eq!(t.dump(), "step 2\nstep 3\n");
    }

    fn checked(x: u32) -> Check {
        sim_ensure!(x < 3, "{x} is too large");
        Ok(())
    }

    #[test]
    fn ensure_returns_its_message() {
        assert_eq!((checked(2), checked(3)), (Ok(()), Err("3 is too large".to_string())));
    }
}
