//! Errors of the Shoal library, one variant per failure domain.
//!
//! Each message is a sentence that says where (host, task, partition), what
//! happened, and, where we know, what to do. The binary prints the chain
//! once and picks the exit code from [`Error::exit_code`].

use shoal_core::spec_error::SpecError;

use crate::driver::input::InputError;
use crate::driver::manifest::SyncError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A cluster or job file is wrong.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Bad flags or input data, found before anything ran.
    #[error("{0}")]
    Usage(String),
    /// The input cannot be read or split, found before anything ran.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A file listed in `[sync]` cannot be synced, found before anything ran.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A host could not be reached or its agent not started.
    #[error("host `{host}`: {reason}")]
    Connect { host: String, reason: String },
    /// The standing cluster (`--on`) could not be had: no such cluster, its
    /// coordinator down or refusing this access file.
    #[error("{0}")]
    Standing(String),
    /// Every host of the cluster failed to connect.
    #[error("no host of the cluster could be reached:\n{0}")]
    Unreachable(String),
    /// The job ran and failed.
    #[error("{0}")]
    JobFailed(String),
    /// The job could not get input partitions that only hosts held (a
    /// program's cached parts, by hash): the program can make them again.
    #[error("{why}")]
    InputsLost { hashes: Vec<[u8; 32]>, why: String },
    /// Stopped by Ctrl-C or SIGTERM.
    #[error("{0}")]
    Interrupted(String),
    /// A bug in shoal itself, not in the user's files or flags.
    #[error("internal error: {0}; this is a bug in shoal, please report it")]
    Internal(String),
    /// A local file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// The process exit code documented in the README.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::JobFailed(_) | Error::InputsLost { .. } => 1,
            Error::Spec(_) | Error::Usage(_) | Error::Input(_) | Error::Sync(_) => 2,
            Error::Connect { .. } | Error::Unreachable(_) | Error::Standing(_) => 3,
            Error::Interrupted(_) => 130,
            Error::Io { .. } => 1,
            Error::Internal(_) => EX_SOFTWARE,
        }
    }
}

/// The exit code of an internal bug (`EX_SOFTWARE` of BSD's sysexits.h).
pub const EX_SOFTWARE: i32 = 70;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_domain_has_its_documented_exit_code() {
        let io = || std::io::Error::other("disk on fire");
        let table: Vec<(Error, i32)> = vec![
            (Error::JobFailed("task 3 failed".into()), 1),
            (Error::io("cannot write x", io()), 1),
            (Error::Usage("bad flag".into()), 2),
            (Error::Input(InputError::Empty { path: "in.txt".into() }), 2),
            (Error::Sync(SyncError::Absolute { listed: "/etc".into() }), 2),
            (Error::Connect { host: "h".into(), reason: "refused".into() }, 3),
            (Error::Unreachable("  h: refused".into()), 3),
            (Error::Interrupted("interrupted".into()), 130),
            (Error::Internal("a plan without tasks".into()), 70),
        ];
        for (e, code) in table {
            assert_eq!(e.exit_code(), code, "{e:?}");
        }
    }

    #[test]
    fn an_internal_error_says_it_is_a_bug() {
        let e = Error::Internal("the job made for text_file at main.rs:3 is invalid: no input".into());
        assert_eq!(
            e.to_string(),
            "internal error: the job made for text_file at main.rs:3 is invalid: no input; this is a bug in shoal, please report it"
        );
    }
}
