//! Command-line flags. Each subcommand's help ends with a worked example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "shoal",
    version,
    about = "Turn the machines you can ssh into a compute cluster for one job.",
    after_help = "Examples:\n  shoal init\n  shoal check --cluster cluster.toml\n  shoal exec -- uname -a\n  shoal run job.toml"
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); SHOAL_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct ClusterArg {
    /// Cluster file (TOML or JSON). Default: ./cluster.toml if present,
    /// else this machine alone.
    #[arg(long, env = "SHOAL_CLUSTER")]
    pub cluster: Option<PathBuf>,
    /// Run on a standing cluster (`shoal cluster up --name NAME`): its
    /// name, or the path of its client.access file.
    #[arg(long, value_name = "NAME", env = "SHOAL_ON", conflicts_with = "cluster")]
    pub on: Option<String>,
    /// Only these hosts (comma-separated names from the cluster file).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write commented cluster.toml and job.toml templates.
    #[command(after_help = "Example:\n  shoal init && shoal check")]
    Init {
        /// Directory to write into.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Connect to every host, deploy the agent, print a table of facts.
    #[command(after_help = "Example:\n  shoal check --cluster cluster.toml --json")]
    Check {
        #[command(flatten)]
        cluster: ClusterArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a shell command on every host; identical outputs are grouped.
    #[command(after_help = "Example:\n  shoal exec --cluster cluster.toml -- uname -a")]
    Exec {
        #[command(flatten)]
        cluster: ClusterArg,
        /// Print JSON instead of grouped text.
        #[arg(long)]
        json: bool,
        /// The command (joined with spaces and run by /bin/sh on each host).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Run a job file on the cluster.
    #[command(
        after_help = "Examples:\n  shoal run job.toml\n  shoal run job.toml --cluster cluster.toml --dry-run\n  shoal run job.toml --resume          # reuse the last run's finished tasks\n  shoal run job.toml --set map.command='python3 other.py' --set input.partitions=16"
    )]
    Run {
        /// The job file (TOML).
        job: PathBuf,
        #[command(flatten)]
        cluster: ClusterArg,
        /// Print the plan (partitions, hosts, bytes) and run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Reuse the committed tasks of an earlier run: its id, or nothing
        /// for the latest run of this job.
        #[arg(long, num_args = 0..=1, default_missing_value = "latest")]
        resume: Option<String>,
        /// Start copies of straggling tasks on other hosts.
        #[arg(long)]
        speculate: bool,
        /// Override a key of the job file: section.key=value.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Print the final summary as JSON on stdout (no progress output).
        #[arg(long)]
        json: bool,
    },
    /// Run a command over an input (or a list of arguments) without a job file.
    #[command(
        after_help = "Examples:\n  shoal map --input data.txt --partitions 64 --sync score.py -- python3 score.py\n  shoal map --input logs/ --split files --output out/ --name '{stem}.gz' -- gzip -6\n  shoal map --input corpus.txt --combine 'python3 reducer.py' --reduce 'python3 reducer.py' --reduce-partitions 8 -- python3 mapper.py\n  shoal map --args 1 2 3 --param depth=4 -- ./simulate.sh '{}'\n  shoal map --input data.txt --save job.toml -- wc -l      # write the equivalent job file"
    )]
    Map {
        #[command(flatten)]
        job: crate::oneliner::MapArgs,
        #[command(flatten)]
        cluster: ClusterArg,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        speculate: bool,
        #[arg(long)]
        json: bool,
        /// The command each task runs (joined with spaces, run by /bin/sh).
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
    /// Print shell completions.
    #[command(after_help = "Example:\n  shoal completions bash > /etc/bash_completion.d/shoal")]
    Completions { shell: clap_complete::Shell },
    /// List past runs: id, job, start, duration, status.
    #[command(after_help = "Example:\n  shoal runs --json")]
    Runs {
        #[arg(long)]
        json: bool,
    },
    /// Write (again) a run's HTML report and print its path.
    #[command(after_help = "Example:\n  shoal report latest --open")]
    Report {
        #[arg(default_value = "latest")]
        run: String,
        /// Open it in a browser (xdg-open).
        #[arg(long)]
        open: bool,
    },
    /// Show the task logs of a run.
    #[command(after_help = "Examples:\n  shoal logs latest --merged\n  shoal logs 20261122-101500-score-1a2b --host alpha --task 3")]
    Logs {
        /// Run id, or `latest`.
        #[arg(default_value = "latest")]
        run: String,
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        task: Option<u32>,
        /// Interleave all tasks by time, each line tagged with host and task.
        #[arg(long)]
        merged: bool,
        /// Keep printing new lines while the run goes on.
        #[arg(long)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
    /// Copy a file to every host (relative DIR: under each host's work dir).
    #[command(
        after_help = "Examples:\n  shoal push model.bin --to data/\n  shoal push records.txt --to data/ --split   # one chunk per host, weighted by speed x slots"
    )]
    Push {
        file: PathBuf,
        #[arg(long)]
        to: String,
        /// Cut the file at line boundaries into one chunk per host.
        #[arg(long)]
        split: bool,
        #[command(flatten)]
        cluster: ClusterArg,
        #[arg(long)]
        json: bool,
    },
    /// Fetch a file from every host into DIR/<host>/.
    #[command(after_help = "Example:\n  shoal pull data/result.txt --to results/ --combine all.txt")]
    Pull {
        /// The file to fetch from every host (not with --output).
        #[arg(required_unless_present = "output", conflicts_with = "output")]
        path: Option<String>,
        #[arg(long)]
        to: PathBuf,
        /// Bring back the parts an `[output] on_hosts` run left on the hosts
        /// (RUN: `latest` or a run id), each checked against its hash.
        #[arg(long, value_name = "RUN")]
        output: Option<String>,
        /// Also concatenate the fetched files, in cluster order, into FILE.
        #[arg(long, value_name = "FILE")]
        combine: Option<PathBuf>,
        #[command(flatten)]
        cluster: ClusterArg,
        #[arg(long)]
        json: bool,
    },
    /// A standing cluster: a coordinator here, a worker on every host.
    #[command(
        subcommand,
        after_help = "Examples:\n  shoal cluster up --cluster cluster.toml --name lab\n  shoal cluster status --name lab\n  shoal run job.toml --on lab\n  shoal cluster down --name lab"
    )]
    Cluster(ClusterCommand),
    /// Run a worker of a standing cluster that joins its coordinator with
    /// a worker access file (Slurm, Docker, Kubernetes, or by hand).
    #[command(after_help = "Example:\n  shoal worker --join ~/.shoal/clusters/lab/worker.access --slots 8")]
    Worker(WorkerArgs),
    /// The coordinator of a standing cluster (started by `shoal cluster up`).
    #[command(hide = true)]
    Coordinator {
        #[arg(long)]
        name: String,
    },
    /// Run the agent (started by a driver over ssh or as a child process).
    #[command(hide = true)]
    Agent {
        /// `--workdir DIR --lease-ms N --cache-bytes N`, read by
        /// `shoal_wire::agent_args` (one parser for every kind of agent).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Clean up after an agent that dies (started by the agent itself).
    #[command(hide = true)]
    AgentGuard {
        #[arg(long)]
        workdir: PathBuf,
        #[arg(long)]
        agent: u32,
        #[arg(long, allow_negative_numbers = true)]
        group: i32,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Start the coordinator here and a worker on every host of the
    /// cluster file (over ssh); starts only what is missing.
    Up {
        /// The cluster's name: its keys live in ~/.shoal/clusters/NAME/.
        #[arg(long, default_value = "default")]
        name: String,
        /// Cluster file (TOML or JSON). Default: ./cluster.toml if present,
        /// else this machine alone.
        #[arg(long, env = "SHOAL_CLUSTER")]
        cluster: Option<PathBuf>,
        /// Only these hosts (comma-separated names from the cluster file).
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
        /// Start only the coordinator (workers come from `shoal cluster
        /// slurm` or `shoal worker --join`).
        #[arg(long, conflicts_with_all = ["cluster", "hosts"])]
        coordinator_only: bool,
        /// The address workers reach the coordinator at (default: this
        /// machine's address toward the first host).
        #[arg(long)]
        advertise: Option<String>,
        /// The coordinator's port (default: one picked at the first `up`, then kept).
        #[arg(long)]
        port: Option<u16>,
        /// Applications that may run at once; more wait in the queue (0: no limit).
        #[arg(long)]
        max_applications: Option<u32>,
        /// Silence after which a worker is lost (e.g. 5s).
        #[arg(long, value_parser = parse_duration)]
        heartbeat_timeout: Option<std::time::Duration>,
        #[arg(long)]
        json: bool,
    },
    /// Workers (alive, last heartbeat, slots busy/total, memory),
    /// applications and the queue.
    Status {
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Submit a Slurm allocation whose nodes each run a worker that joins
    /// the cluster (sbatch + srun; `down` cancels it).
    #[command(after_help = "Example:\n  shoal cluster slurm --name lab --nodes 4 --time 2:00:00 -- --partition=compute")]
    Slurm {
        #[arg(long, default_value = "default")]
        name: String,
        /// Nodes to allocate: one worker each.
        #[arg(long)]
        nodes: u32,
        /// The allocation's time limit, in Slurm's syntax (`1:00:00`, `60`).
        #[arg(long)]
        time: Option<String>,
        /// Each node's work dir (`%n`: the node's name).
        #[arg(long, default_value = "~/.shoal/slurm/%n")]
        workdir: String,
        /// Seconds to wait for the workers to join (0: return at once).
        #[arg(long, default_value_t = 120)]
        wait: u64,
        /// Submit on this login host over ssh (a host of --cluster, or any
        /// address ssh accepts): Shoal's binary and the worker access file
        /// are put in its work dir, and sbatch, squeue and scancel run there.
        #[arg(long, value_name = "HOST")]
        login: Option<String>,
        /// The cluster file that names the login host.
        #[arg(long, requires = "login")]
        cluster: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// More `sbatch` arguments (`--partition`, `--account`, ...).
        #[arg(last = true)]
        sbatch: Vec<String>,
    },
    /// Stop the coordinator and every worker; safe to run twice.
    Down {
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(long)]
        json: bool,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    shoal_core::spec_error::parse_duration(s).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The cluster's worker.access file (`-`: read it from stdin).
    #[arg(long, value_name = "ACCESS")]
    pub join: PathBuf,
    /// The worker's name in the cluster (default: this host's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Task slots (default: the number of cores).
    #[arg(long)]
    pub slots: Option<u32>,
    /// Where agents keep bin/, blocks/ and runs/; `%n` is the worker's
    /// name (one dir per node on a shared file system).
    #[arg(long, default_value = "~/.shoal")]
    pub workdir: String,
    /// The coordinator's HOST:PORT, instead of the access file's.
    #[arg(long)]
    pub coordinator: Option<String>,
    /// The coordinator's port on the machine this ssh session came from.
    #[arg(long, hide = true)]
    pub coordinator_port: Option<u16>,
    /// Run in the background (log and pid file under WORKDIR/clusters/NAME/).
    #[arg(long)]
    pub detach: bool,
    /// What started it (shown by `status`): `slurm:JOBID`, `docker`, ...
    #[arg(long, default_value = "")]
    pub started_by: String,
    /// Print the agent's start marker first (for `shoal cluster up`).
    #[arg(long, hide = true)]
    pub marker: bool,
    /// Only write the access file into WORKDIR/clusters/NAME/ and say
    /// where it and this binary are (for `shoal cluster slurm --login`).
    #[arg(long, hide = true)]
    pub stage: bool,
}
