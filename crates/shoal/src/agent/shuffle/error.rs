//! Why a map task's output could not be cut into sorted buckets, and why
//! its combiner failed. The agent puts the sentence into the task's
//! report (a full disk becomes host trouble, anything else fails the
//! attempt).

use std::io;
use std::process::ExitStatus;

use shoal_core::partitioner::KeyError;

use super::sort::MAX_LINE_TEXT;

/// Why the map side of a shuffle failed.
#[derive(Debug, thiserror::Error)]
pub enum ShuffleError {
    /// Reading the output, spilling or storing a bucket failed.
    #[error("shuffle: {0}")]
    Io(#[from] io::Error),
    /// A record too long to sort in memory.
    #[error(
        "shuffle: record {record} of {what} (at byte {offset}) is longer than {MAX_LINE_TEXT}, the longest record a shuffle sorts; \
         write shorter lines (a record is one line)"
    )]
    TooLong { what: &'static str, record: u64, offset: u64 },
    /// `partitioner = "modulo"` met a key that is not an integer.
    #[error("partitioner = \"modulo\": {key} (record {record} of the map output)")]
    Modulo { key: KeyError, record: u64 },
    /// The combiner failed.
    #[error(transparent)]
    Combiner(#[from] CombinerError),
    /// Sorting what the combiner wrote failed.
    #[error("{0}")]
    Combined(#[source] io::Error),
}

/// Why the combiner over one bucket failed.
#[derive(Debug, thiserror::Error)]
pub enum CombinerError {
    /// Its input or output file could not be opened.
    #[error("combiner: {0}")]
    Open(#[source] io::Error),
    #[error("cannot start the combiner {cmd:?}: {source}")]
    Start { cmd: String, source: io::Error },
    #[error("the combiner {cmd:?}: {source}")]
    Wait { cmd: String, source: io::Error },
    /// It ended with an error; the tail of its stderr.
    #[error("the combiner {cmd:?} failed ({status}); the end of its stderr:\n{stderr}")]
    Failed { cmd: String, status: ExitStatus, stderr: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn combiner_failures_say_which_command_and_why() {
        let failed = CombinerError::Failed { cmd: "uniq -c".into(), status: ExitStatus::from_raw(2 << 8), stderr: "uniq: bad".into() };
        assert_eq!(failed.to_string(), "the combiner \"uniq -c\" failed (exit status: 2); the end of its stderr:\nuniq: bad");
        let e = ShuffleError::from(failed);
        assert!(matches!(e, ShuffleError::Combiner(CombinerError::Failed { .. })));
        assert!(e.to_string().starts_with("the combiner \"uniq -c\" failed"));
        let io = ShuffleError::from(io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(io.to_string(), "shuffle: no storage space");
    }
}
