//! The protocol between an agent and a *resident executor*: a Dataset
//! program that stays up and runs many tasks of one run, one at a time,
//! instead of one process per task.
//!
//! The agent starts the executor with `SHOAL_EXECUTOR=1`
//! ([`crate::task_env::EXECUTOR_ENV`]), writes
//! [`ExecTask`] frames to its stdin (several ahead) and reads one
//! [`ExecDone`] frame back from its stdout per task, in order. Frames are
//! the link's own (length prefix, postcard). Everything else the program
//! writes (prints, panic messages) goes to stderr, which the agent points
//! at a log file; each reply says how long that file was after the task,
//! so the agent can tell which bytes each task wrote.
//!
//! The executor side is synchronous (a task is plain blocking code), so
//! the helpers here work on `std::io`; the agent reads replies with
//! [`crate::FrameReader::read_as`].

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::frame;

/// One task for an executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecTask {
    pub attempt: u32,
    pub stage: u32,
    pub partition: u32,
    pub input: ExecInput,
    /// Where an output too large to return inline is written.
    pub output_path: String,
    /// Return the output inline when it is at most this many bytes;
    /// 0: always write it to `output_path`.
    pub inline_max: u64,
}

/// Where a task's input is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExecInput {
    File(String),
    Data(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecDone {
    pub attempt: u32,
    /// The output, or why the task failed (its panics end the executor
    /// instead: they reach the agent as the process's exit).
    pub result: Result<ExecOutput, String>,
    /// CPU time the task used, user and system, in microseconds.
    pub cpu_us: u64,
    /// Size of the executor's stderr file after the task: the task wrote
    /// the bytes from the previous reply's `log_end` to this one.
    pub log_end: u64,
}

/// Where a successful task's output is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExecOutput {
    Data(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Written to the task's `output_path`.
    File,
}

/// Writes one frame holding `msg` (buffered: flush when nothing else is
/// to be said at once).
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let payload = postcard::to_stdvec(msg).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(payload.len() + 4);
    frame::encode(&payload, &mut out).map_err(io::Error::other)?;
    w.write_all(&out)
}

/// Reads one frame; `Ok(None)` on a clean EOF before it.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<Option<T>> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ended in the middle of a frame")),
            n => got += n,
        }
    }
    let len = u32::from_le_bytes(head) as usize;
    if len > frame::MAX_FRAME {
        return Err(io::Error::other(frame::FrameError::TooLarge { len }));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    postcard::from_bytes(&payload).map(Some).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_and_replies_round_trip() {
        let task = ExecTask {
            attempt: 4,
            stage: 1,
            partition: 9,
            input: ExecInput::Data(b"0 10\n".to_vec()),
            output_path: "/tmp/out".into(),
            inline_max: 65536,
        };
        let done = ExecDone { attempt: 4, result: Ok(ExecOutput::Data(b"x\n".to_vec())), cpu_us: 17, log_end: 120 };
        let mut buf = Vec::new();
        write_frame(&mut buf, &task).unwrap();
        write_frame(&mut buf, &done).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame::<ExecTask>(&mut r).unwrap(), Some(task));
        assert_eq!(read_frame::<ExecDone>(&mut r).unwrap(), Some(done));
        assert_eq!(read_frame::<ExecDone>(&mut r).unwrap(), None);
    }

    #[test]
    fn a_torn_frame_is_an_error_not_eof() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &ExecDone { attempt: 1, result: Err("no".into()), cpu_us: 0, log_end: 0 }).unwrap();
        buf.pop();
        let err = read_frame::<ExecDone>(&mut &buf[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let buf = u32::MAX.to_le_bytes();
        let err = read_frame::<ExecDone>(&mut &buf[..]).unwrap_err();
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
    }
}
