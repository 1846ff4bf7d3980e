//! The one integration-test harness of Shoal's own tests, a dev-dependency
//! of `shoal-cli` and `shoal` (never published).
//!
//! It owns what every integration test needs and no test's assertions:
//!
//! - [`bin`]: where the built `shoal` command and example programs are
//!   (built on demand when cargo did not build them for this test);
//! - [`Shoal`]: a builder that runs one of them in a directory with
//!   arguments, environment and stdin, and its [`Ran`] with
//!   `#[track_caller]` assertions that print the command, its exit code,
//!   stdout and stderr on failure (in the spirit of casey/just's tests);
//! - [`local`]: cluster files of local-transport hosts;
//! - [`netns`]: the shared 3-host ssh cluster of `scripts/testcluster`,
//!   brought up once per test binary and taken by one test at a time;
//! - [`docker`]: the `FROM scratch` busybox images of the container tests;
//! - [`standing`]: a standing cluster (`shoal cluster up`) with its own
//!   `HOME`, brought down when dropped;
//! - [`python`]: a venv with the `shoal` Python package installed from
//!   `python/`, current with the sources;
//! - [`process`]: pids written by tasks, liveness, waiting;
//! - [`runs`]: the summaries a driver left in a job dir;
//! - [`data`] and [`reference`]: deterministic test data and the answers
//!   computed the plain single-threaded way.
//!
//! Tests live in two binaries, `crates/cli/tests/cli/` and
//! `crates/shoal/tests/it/`, one module per former test file.

pub mod bin;
pub mod data;
pub mod docker;
pub mod local;
pub mod netns;
pub mod process;
pub mod python;
mod ran;
pub mod reference;
pub mod runs;
mod shoal;
pub mod standing;

pub use local::local_cluster;
pub use process::pid_in;
pub use ran::Ran;
pub use shoal::Shoal;
