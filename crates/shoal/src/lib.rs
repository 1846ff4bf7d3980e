//! Shoal: turn the machines you can `ssh` into a compute cluster for the
//! length of one job.
//!
//! This crate is everything with I/O: the [`transport`]s that start agents
//! (a local child process or the system `ssh` client), the [`agent`] that
//! runs on each host, and the [`driver`] that connects, syncs, schedules
//! (through the pure scheduler in `shoal-core`) and collects. The `shoal`
//! binary in `crates/cli` is a thin layer of flags over this crate.

pub mod agent;
pub mod argument;
pub mod binary;
pub mod dataset;
pub mod driver;
pub mod error;
pub mod format;
pub mod peer;
pub mod printable;
pub mod quote;
pub mod standing;
pub mod transport;

pub use dataset::{main, prelude, Context, Dataset};
pub use error::{Error, Result};
pub use shoal_core as core;
pub use shoal_wire as wire;
