//! The Rust Dataset API: a map/reduce program that is its own worker on
//! every host.
//!
//! Every process runs the same `main`. On the machine where the user
//! starts it, [`main`] is the *driver*: each action (`collect`, `count`,
//! ...) becomes one or more jobs that run through the same machinery as a
//! command job (`driver::run`: sync, scheduler, retries, host loss,
//! shuffle, journal, resume). A job's tasks are this very executable,
//! started on the hosts by their agents (which are this executable too,
//! deployed by content hash) with `SHOAL_ROLE=task`: the task runs `main`
//! again, building the same plan, and when it reaches the job it was
//! started for, it computes its one partition and exits. Closures are
//! never serialized; only records cross the wire ([`codec`]).
//!
//! Actions are collective: the driver writes each action's result to a
//! file that later jobs sync to every host, and a task replaying `main`
//! gets earlier results from those files, so control flow that depends on
//! results (k-means) takes the same path everywhere. The driver passes
//! each job's plan description to its tasks, which compare it with their
//! own and fail with both when they differ.
//!
//! Module map: [`context`] (roles, the numbering of jobs, results),
//! [`node`] (the plan graph and its descriptions), [`narrow`] (the
//! dataset type and narrow transformations), [`keyed`] (shuffles),
//! [`actions`], `plan` (what a job is, what the driver sends its tasks
//! and how a task computes a partition: shared by both sides and importing
//! neither), [`jobs`] (the driver: a plan as a command job), [`task`]
//! (replaying up to a job, running one partition), `executor` (running
//! many, resident), `panics` (a panic as one sentence), [`codec`],
//! [`flags`]. The names and formats of the task environment live in
//! [`shoal_wire::task_env`].

pub mod actions;
pub mod codec;
pub mod context;
pub mod executor;
pub mod flags;
pub mod jobs;
pub mod keyed;
pub mod narrow;
pub mod node;
mod panics;
mod plan;
pub mod session;
pub mod task;

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use context::Context;
pub use narrow::Dataset;

/// What a record must be: serializable, cloneable, sendable.
pub trait Data: Serialize + DeserializeOwned + Clone + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + 'static> Data for T {}

/// What a shuffle key must be on top of [`Data`]. Keys are compared by
/// their order-preserving encoding; for `sort_by_key` that order is the
/// type's `Ord` for integers, strings, tuples and derived structs.
pub trait Key: Data + Hash + Eq {}
impl<T: Data + Hash + Eq> Key for T {}

/// Everything a program needs: `use shoal::prelude::*;`.
pub mod prelude {
    pub use super::{Context, Data, Dataset, Key};
    pub use crate::{Error, Result};
}

/// Runs a Dataset program: as the driver when a user started it, as an
/// agent or a task when a driver did. Prints errors once and exits with
/// the documented code (1 job failed, 2 usage, 3 unreachable, 130
/// interrupted); returns only on success.
pub fn main<F>(program: F) -> crate::Result<()>
where
    F: FnOnce(&Context) -> crate::Result<()>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = flags::maybe_agent(&args) {
        std::process::exit(code);
    }
    let cx = match Context::from_env(args) {
        Ok(cx) => cx,
        Err(e) => exit_with(&e),
    };
    let result = program(&cx).and_then(|()| cx.finish());
    match result {
        Ok(()) => Ok(()),
        Err(e) => exit_with(&e),
    }
}

fn exit_with(e: &crate::Error) -> ! {
    eprintln!("error: {e}");
    std::process::exit(e.exit_code())
}
