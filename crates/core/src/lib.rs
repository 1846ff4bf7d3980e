//! The pure core of Shoal.
//!
//! Everything here is deterministic and free of I/O, threads and clocks:
//! the cluster and job specifications with their validation, the planning
//! helpers (weighted shares, seeded order, the stable key partitioner) and
//! the scheduler state machine. The driver in the `shoal` crate feeds this
//! code events and carries out the actions it returns. The one exception
//! is `sim`, test scaffolding compiled only for tests (here, and in
//! other crates with the `sim` feature).

pub mod canon;
pub mod cluster;
pub mod job;
pub mod partitioner;
pub mod plan;
pub mod scheduler;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod spec_error;
pub mod templates;
pub mod tree;
