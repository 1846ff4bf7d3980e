//! Shoal's wire protocol, in three layers (as in mini-redis):
//!
//! - [`frame`]: bytes to length-prefixed frames and back; tells an
//!   *incomplete* frame (wait for more bytes) from an *invalid* one (close).
//! - [`connection`]: buffered frame I/O over any async byte stream, a clean
//!   EOF between frames is `Ok(None)`; and a writer task that sends control
//!   messages ahead of bulk data.
//! - [`message`]: the typed meaning, encoded with postcard, plus the
//!   [`hello`] handshake that both sides send first.
//!
//! - [`bounded`]: tails of process output cut to a size, so that what a
//!   user's command prints always fits in a message.
//!
//! - [`executor`]: the frames between an agent and a resident executor
//!   (a Dataset program that runs many tasks of one run).
//! - [`task_env`]: the environment a Dataset program's task starts with
//!   (role, executor, the typed replay params).
//!
//! This crate knows nothing of ssh, processes or tasks: it moves messages.

pub mod agent_args;
pub mod bounded;
pub mod connection;
pub mod error;
pub mod executor;
pub mod frame;
pub mod hello;
pub mod message;
pub mod task_env;

pub use connection::{spawn_writer, FrameReader, Outbox};
pub use error::WireError;
pub use hello::{Hello, PROTOCOL_VERSION};
pub use message::*;
