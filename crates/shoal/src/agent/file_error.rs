//! Why the agent could not make a file or directory the driver asked for
//! (a run's work dir and its files, a run's params, a pushed file). The
//! reply carries the sentence; the driver adds the host's name.

use std::io;
use std::path::PathBuf;

/// A path from the driver that was refused, or a file that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// An absolute or empty path where a path inside the work dir belongs.
    #[error("path {path:?} must be relative to the work dir")]
    NotRelative { path: String },
    /// A path with `..`, `.` or empty components.
    #[error("path {path:?} leaves the work dir or is not normalised")]
    NotConfined { path: String },
    /// A directory or file could not be cleared, created or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    /// The cached block of a synced file is gone or damaged.
    #[error("cannot place {path}: {source}; run the job again to send it anew")]
    BlockGone { path: String, source: io::Error },
    /// A synced file could not be copied into the work dir.
    #[error("cannot place {path}: {source}")]
    Copy { path: String, source: io::Error },
    /// The cached block of a pushed file is gone or damaged.
    #[error("{0}")]
    Block(#[source] io::Error),
    /// The run's scratch dir could not be made or locked.
    #[error("cannot make the run's scratch dir {}: {source}", path.display())]
    Scratch { path: PathBuf, source: io::Error },
    /// The run's params file could not be written.
    #[error("cannot write the run's params to {}: {source}", path.display())]
    Params { path: PathBuf, source: io::Error },
}

impl FileError {
    /// A closure for `map_err`: `action` (`"create"`, ...) on `path` failed.
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> FileError {
        let path = path.into();
        move |source| FileError::Io { action, path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path_and_what_failed() {
        let gone = || io::Error::from(io::ErrorKind::NotFound);
        let table = [
            (FileError::io("create", "/w/runs/r/work/lib")(gone()), "cannot create /w/runs/r/work/lib: entity not found"),
            (
                FileError::BlockGone { path: "lib/a.py".into(), source: gone() },
                "cannot place lib/a.py: entity not found; run the job again to send it anew",
            ),
            (
                FileError::Scratch { path: "/w/runs/r".into(), source: gone() },
                "cannot make the run's scratch dir /w/runs/r: entity not found",
            ),
            (
                FileError::Params { path: "/w/runs/r/work/.shoal/params.json".into(), source: gone() },
                "cannot write the run's params to /w/runs/r/work/.shoal/params.json: entity not found",
            ),
        ];
        for (e, want) in table {
            assert_eq!(e.to_string(), want, "{e:?}");
        }
    }
}
