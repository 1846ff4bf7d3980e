//! The flags every Dataset program understands, and the agent role.
//!
//! A program's own arguments are whatever is left once Shoal's flags are
//! taken out; they reach every task unchanged ([`super::Context::args`]).
//! Shoal's flags are few and spelled long, so they rarely collide with a
//! program's; `--` ends them (everything after it is the program's).

use std::path::PathBuf;

use crate::Error;

/// Shoal's flags of a driver.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DriverFlags {
    /// `--cluster FILE` (else `$SHOAL_CLUSTER`, `./cluster.toml`, this machine).
    pub cluster: Option<PathBuf>,
    /// `--on NAME` (else `$SHOAL_ON`): run on a standing cluster.
    pub on: Option<String>,
    /// `--resume`: reuse the tasks of the latest run of each job.
    pub resume: bool,
    /// `--speculate`: copy stragglers.
    pub speculate: bool,
    /// `--quiet`: no progress bars.
    pub quiet: bool,
    /// `--partitions N`: default partitions of sources and shuffles.
    pub partitions: Option<u32>,
    /// `--sort-buffer BYTES`: memory per map task for sorting a shuffle
    /// before spilling (default 256 MiB, as `[reduce] sort_buffer`).
    pub sort_buffer: Option<u64>,
    /// Everything else, in order.
    pub program_args: Vec<String>,
}

pub const USAGE: &str =
    "shoal flags: --cluster FILE, --on CLUSTER, --resume, --speculate, --quiet, --partitions N, --sort-buffer BYTES (then `--` and the program's own arguments)";

/// Splits Shoal's flags from the program's arguments.
pub fn parse(args: &[String]) -> Result<DriverFlags, Error> {
    let mut f = DriverFlags::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |flag: &str| {
            inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| Error::Usage(format!("{flag} needs a value; {USAGE}")))
        };
        match name {
            "--cluster" => f.cluster = Some(PathBuf::from(value("--cluster")?)),
            "--on" => f.on = Some(value("--on")?),
            "--partitions" => {
                let v = value("--partitions")?;
                let n = v.parse::<u32>().ok().filter(|n| *n > 0);
                f.partitions = Some(n.ok_or_else(|| Error::Usage(format!("--partitions {v:?} is not a positive number")))?);
            }
            "--sort-buffer" => {
                let v = value("--sort-buffer")?;
                let n = v.parse::<u64>().ok().filter(|n| *n >= 1 << 16);
                f.sort_buffer =
                    Some(n.ok_or_else(|| Error::Usage(format!("--sort-buffer {v:?} must be a number of bytes, at least 65536")))?);
            }
            "--resume" => f.resume = true,
            "--speculate" => f.speculate = true,
            "--quiet" => f.quiet = true,
            "--" => {
                f.program_args.extend(it.by_ref().cloned());
                break;
            }
            _ => f.program_args.push(a.clone()),
        }
    }
    Ok(f)
}

/// When a driver started this executable as `agent --workdir DIR ...`
/// (or an agent started it as its guardian), runs the agent (or the
/// guardian) and returns its exit code.
pub fn maybe_agent(args: &[String]) -> Option<i32> {
    use crate::agent::guard;
    if args.first().map(String::as_str) == Some(guard::SUBCOMMAND) && args.get(1).map(String::as_str) == Some("--workdir") {
        return Some(match guard::parse(&args[1..]) {
            Ok(opts) => guard::run(&opts),
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        });
    }
    if args.first().map(String::as_str) != Some(shoal_wire::agent_args::SUBCOMMAND) || args.get(1).map(String::as_str) != Some("--workdir")
    {
        return None;
    }
    Some(match agent_options(&args[1..]) {
        Ok(opts) => run_agent(opts),
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    })
}

fn agent_options(args: &[String]) -> Result<crate::agent::AgentOptions, String> {
    let args = crate::agent::AgentArgs::from_args(args).map_err(|e| e.to_string())?;
    crate::agent::AgentOptions::from_args(args).map_err(|e| e.to_string())
}

fn run_agent(opts: crate::agent::AgentOptions) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the agent's runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(crate::agent::run(opts)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shoal_flags_come_out_program_args_stay() {
        let f = parse(&args(&["--cluster", "c.toml", "in.txt", "--resume", "-k", "3", "--", "--quiet"])).unwrap();
        assert_eq!(f.cluster, Some(PathBuf::from("c.toml")));
        assert!(f.resume && !f.quiet);
        assert_eq!(f.program_args, args(&["in.txt", "-k", "3", "--quiet"]));
        let f = parse(&args(&["--partitions=8", "x"])).unwrap();
        assert_eq!(f.partitions, Some(8));
        let f = parse(&args(&["--on", "lab", "x"])).unwrap();
        assert_eq!((f.on.as_deref(), f.program_args.as_slice()), (Some("lab"), args(&["x"]).as_slice()));
    }

    #[test]
    fn bad_flags_say_what_to_do() {
        assert_eq!(
            parse(&args(&["--cluster"])).unwrap_err().to_string(),
            "--cluster needs a value; shoal flags: --cluster FILE, --on CLUSTER, --resume, --speculate, --quiet, --partitions N, --sort-buffer BYTES (then `--` and the program's own arguments)"
        );
        assert_eq!(parse(&args(&["--partitions", "0"])).unwrap_err().to_string(), "--partitions \"0\" is not a positive number");
    }

    #[test]
    fn only_the_driver_form_is_the_agent() {
        assert_eq!(maybe_agent(&args(&["agent", "x"])), None);
        assert_eq!(maybe_agent(&args(&["agent-guard", "x"])), None);
        assert_eq!(maybe_agent(&args(&["data.txt"])), None);
    }
}
