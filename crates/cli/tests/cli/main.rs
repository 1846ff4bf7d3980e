//! The `shoal` command's integration tests: one test binary (each binary
//! links all of shoal, and twenty of them filled a CI machine's disk), one
//! module per area, every one driving the real `shoal` through the
//! builder of `shoal-testkit` (`Shoal::new().arg(..).in_dir(..).run()`).
//!
//! To add tests: put them in a new file `crates/cli/tests/cli/<area>.rs`
//! starting with a `//!` line saying what it covers, add `mod <area>;`
//! below, and use `shoal_testkit` for binaries, clusters, data and
//! assertions (not a helper of your own). Run one module with
//! `cargo test -p shoal-cli --test cli <area>::`.
//!
//! The local-transport tests run in parallel threads of this one process:
//! whatever a test counts machine-wide (containers, processes) must be
//! its own. The netns cluster tests (`cluster`) share one cluster and take
//! turns through `shoal_testkit::netns::up`; the container tests take
//! turns through `shoal_testkit::docker::busybox_image`.

mod agent_args;
mod cluster;
mod containers;
mod data_plane;
mod dry_run;
mod hardening_args;
mod hardening_cache;
mod hardening_misc;
mod hardening_orphans;
mod hardening_output;
mod hardening_procs;
mod hardening_wire;
mod in_place;
mod local;
mod run;
mod skip_bad_records;
mod standing;
mod standing_cluster;
mod state;
