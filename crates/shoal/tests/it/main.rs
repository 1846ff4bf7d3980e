//! The `shoal` library's integration tests: one test binary (each binary
//! links all of shoal, and twenty of them filled a CI machine's disk).
//!
//! - `dataset`: the Dataset API's example programs on local hosts,
//!   against plain single-threaded answers, and the failures a program
//!   can meet;
//! - `dataset_cluster`: the same over real ssh on the netns test cluster;
//! - `python_package`: the Python package `pip install ./python` makes
//!   (in a venv at `target/python-venv`, see `shoal_testkit::python`);
//! - `chaos`: the seeded chaos soak on that cluster, and the `kill -9` of
//!   an agent it found.
//!
//! The cluster tests (`dataset_cluster`, `chaos`) share one 3-host
//! cluster and take turns through `shoal_testkit::netns::up`: in CI
//! (`CI=true`) a cluster that cannot come up fails them, elsewhere they
//! skip. Replay a chaos soak with
//! `CI=true SHOAL_CHAOS_SEED=... cargo test -p shoal --test it chaos::`.
//!
//! To add tests: put them in a new file `crates/shoal/tests/it/<area>.rs`
//! starting with a `//!` line saying what it covers, add `mod <area>;`
//! below, and use `shoal_testkit` for binaries, clusters, data and
//! assertions (not a helper of your own).

mod chaos;
mod dataset;
mod dataset_cached;
mod dataset_cluster;
mod dataset_errors;
mod python;
mod python_env;
mod python_faults;
mod python_fusion;
mod python_keys;
mod python_mr;
mod python_package;
