//! The command line of `shoal agent`: the one contract between whoever
//! starts an agent (the `local` and `ssh` transports) and the agent that
//! reads it (the `shoal` binary, or a Dataset program started as its own
//! agent).
//!
//! [`AgentArgs::to_args`] writes the flags, [`AgentArgs::from_args`] reads
//! them back, and the defaults live here once. The flags follow the
//! subcommand ([`SUBCOMMAND`]) and `--workdir` always comes first: a
//! Dataset program recognises `agent --workdir` as "run as the agent"
//! before it parses anything else. Turning the work dir into an absolute,
//! existing directory is the agent's business, not this module's.

use std::path::PathBuf;
use std::time::Duration;

/// The subcommand that runs the agent: `<binary> agent <flags>`.
pub const SUBCOMMAND: &str = "agent";

/// The flags of `shoal agent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentArgs {
    /// The agent's work dir (`--workdir`): `bin/`, `blocks/`, `runs/`.
    pub workdir: PathBuf,
    /// Silence from the driver longer than this ends the agent
    /// (`--lease-ms`, milliseconds on the command line).
    pub lease: Duration,
    /// Upper bound of the block cache in bytes (`--cache-bytes`).
    pub cache_bytes: u64,
}

/// Why a command line is not one an agent can run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentArgsError {
    #[error("agent: {flag} needs a value; only a shoal driver starts the agent, with `agent --workdir DIR --lease-ms N --cache-bytes N`")]
    MissingValue { flag: String },
    #[error("agent: {flag} {value:?} is not a whole number; give it in digits, e.g. {flag} 10000")]
    NotANumber { flag: String, value: String },
    #[error("agent: unknown flag {flag}; the agent takes --workdir, --lease-ms and --cache-bytes (is the agent binary from another shoal version?)")]
    UnknownFlag { flag: String },
    #[error("agent: --workdir is missing; only a shoal driver starts the agent, with `agent --workdir DIR`")]
    NoWorkdir,
}

impl AgentArgs {
    /// The lease when none is given.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
    /// The block cache bound when none is given: 20 GiB.
    pub const DEFAULT_CACHE_BYTES: u64 = 20 << 30;

    /// Arguments for an agent in `workdir`, with the default lease and cache.
    pub fn new(workdir: impl Into<PathBuf>) -> AgentArgs {
        AgentArgs { workdir: workdir.into(), lease: Self::DEFAULT_LEASE, cache_bytes: Self::DEFAULT_CACHE_BYTES }
    }

    /// The same arguments with another lease.
    pub fn with_lease(self, lease: Duration) -> AgentArgs {
        AgentArgs { lease, ..self }
    }

    /// The flags, `--workdir` first, to follow [`SUBCOMMAND`].
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--workdir".into(),
            self.workdir.to_string_lossy().into_owned(),
            "--lease-ms".into(),
            self.lease.as_millis().to_string(),
            "--cache-bytes".into(),
            self.cache_bytes.to_string(),
        ]
    }

    /// Reads the flags after [`SUBCOMMAND`]; a flag not given keeps its
    /// default, and a later one wins over an earlier one.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<AgentArgs, AgentArgsError> {
        let mut workdir = None;
        let mut out = AgentArgs::new(PathBuf::new());
        let mut it = args.iter().map(AsRef::as_ref);
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| AgentArgsError::MissingValue { flag: flag.into() })?;
            match flag {
                "--workdir" => workdir = Some(PathBuf::from(value)),
                "--lease-ms" => out.lease = Duration::from_millis(number(flag, value)?),
                "--cache-bytes" => out.cache_bytes = number(flag, value)?,
                other => return Err(AgentArgsError::UnknownFlag { flag: other.into() }),
            }
        }
        out.workdir = workdir.ok_or(AgentArgsError::NoWorkdir)?;
        Ok(out)
    }
}

fn number(flag: &str, value: &str) -> Result<u64, AgentArgsError> {
    value.parse().map_err(|_| AgentArgsError::NotANumber { flag: flag.into(), value: value.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_survives_the_round_trip() {
        let args = AgentArgs { workdir: "/w d/x".into(), lease: Duration::from_millis(1234), cache_bytes: 77 };
        let line = args.to_args();
        assert_eq!(line, ["--workdir", "/w d/x", "--lease-ms", "1234", "--cache-bytes", "77"]);
        assert_eq!(AgentArgs::from_args(&line), Ok(args));
    }

    #[test]
    fn flags_not_given_keep_their_defaults() {
        let args = AgentArgs::from_args(&["--workdir", "/w"]).unwrap();
        assert_eq!(args, AgentArgs::new("/w"));
        assert_eq!((args.lease, args.cache_bytes), (Duration::from_secs(10), 20 << 30));
        assert_eq!(AgentArgs::new("/w").with_lease(Duration::from_secs(3)).lease, Duration::from_secs(3));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let err = |a: &[&str]| AgentArgs::from_args(a).unwrap_err().to_string();
        assert_eq!(
            err(&["--workdir", "/w", "--lease-ms", "ten"]),
            "agent: --lease-ms \"ten\" is not a whole number; give it in digits, e.g. --lease-ms 10000"
        );
        assert_eq!(
            err(&["--workdir"]),
            "agent: --workdir needs a value; only a shoal driver starts the agent, with `agent --workdir DIR --lease-ms N --cache-bytes N`"
        );
        assert_eq!(
            err(&["--workdir", "/w", "--slots", "4"]),
            "agent: unknown flag --slots; the agent takes --workdir, --lease-ms and --cache-bytes (is the agent binary from another shoal version?)"
        );
        assert_eq!(
            err(&["--lease-ms", "5"]),
            "agent: --workdir is missing; only a shoal driver starts the agent, with `agent --workdir DIR`"
        );
    }
}
