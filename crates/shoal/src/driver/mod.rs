//! The driver: connects to every host of a cluster and carries out one
//! command (`check`, `exec`, `run`, ...).
//!
//! [`connect`] starts all agents in parallel and keeps the hosts that came
//! up; [`host`] routes each agent's messages; `check` and `exec` are small
//! request/response commands; [`run`] is a job run, which feeds the pure
//! scheduler in `shoal-core` with events and carries out its actions.

pub mod blocks;
pub mod check;
pub mod connect;
pub mod exec;
pub mod host;
pub mod input;
pub mod manifest;
pub mod mesh;
pub mod run;
pub mod specs;
pub mod state;
pub mod transfer;

pub use connect::{connect, Cluster};
pub use host::{Host, HostEvent};
