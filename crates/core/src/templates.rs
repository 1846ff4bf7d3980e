//! The commented templates that `shoal init` writes. Both parse as they
//! are (tested): the cluster is this machine, and the job counts the lines
//! of `data.txt`, so `shoal init && shoal check` works right away.

/// `cluster.toml` as written by `shoal init`.
pub const CLUSTER_TEMPLATE: &str = r#"# Shoal cluster file: the machines a run may use.
# Every host needs only sshd and a POSIX shell; shoal copies itself there.
# Check it with `shoal check`.

# [defaults] apply to every host (any host key but address and transport).
[defaults]
# user = "me"                  # ssh user (default: your ssh config's)
# workdir = "~/.shoal"         # agent binary, block cache and run scratch
# connect_timeout = 10         # seconds to wait for ssh to connect
# heartbeat_timeout = 10       # seconds of silence before a host counts as lost

# This machine, reached without ssh: the agent runs as a child process.
[hosts.local]
transport = "local"
# slots = 4                    # tasks at once (default: every core)

# A remote host. `address` is anything ssh accepts, including an alias
# from ~/.ssh/config (so ProxyJump, ports and keys there keep working).
# [hosts.alpha]
# address = "10.0.0.11"
# port = 22
# user = "me"
# slots = 8                    # default: the host's core count
# speed = 1.0                  # relative single-core speed, for weighted shares
# identity = "~/.ssh/id_ed25519"
# ssh_options = ["-o", "ProxyJump=bastion"]
# env = { PYTHON = "/opt/conda/bin/python" }   # extra environment for tasks
# agent_binary = "/path/to/shoal-aarch64"      # for a host of another platform
"#;

/// `job.toml` as written by `shoal init`.
pub const JOB_TEMPLATE: &str = r#"# Shoal job file: what to run. Run it with `shoal run job.toml`;
# `shoal run job.toml --dry-run` shows the plan without running anything.

[job]
name = "example"
seed = 0                       # deterministic task order and distribution
# max_attempts = 4             # tries per task before the job fails
# exclude_after = 3            # task failures in a row that exclude a host
# speculate = false            # copy straggling tasks to other hosts

[sync]
files = []                     # files and directories shipped to every host, e.g. ["score.py", "lib/"]
# list_file = "files_to_sync.txt"   # or one path per line in a file
# max_size = "64MiB"           # bigger files are refused unless listed in force
# force = ["model.bin"]

[input]
path = "data.txt"              # a file, or a directory of pre-split files
split = "lines"                # "lines", "files", "hash" (by key) or "range" (numeric key)
# partitions = 64              # or chunk = "32MiB"; default: 4 per slot
# key = { field = 1, sep = "\t" }   # for hash and range
# weighted = false             # true: static shares by speed x slots

[map]
command = "wc -l"              # reads its partition on stdin, writes its result to stdout
# command_on = { alpha = "/opt/conda/bin/python score.py" }   # per-host override
# timeout = "10m"

# [params]                     # become SHOAL_PARAM_<NAME> and $SHOAL_PARAMS (JSON)
# threshold = 0.7

[output]
path = "out/example.txt"
merge = "concat"               # "concat", "none" (a directory of parts), "json-list", "csv",
                               # or { command = "python3 merge.py" }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn cluster_template_is_this_machine() {
        let c = crate::cluster::ClusterSpec::parse(CLUSTER_TEMPLATE, Path::new("cluster.toml")).unwrap();
        assert_eq!(c.hosts.len(), 1);
        assert_eq!(c.hosts[0].transport, crate::cluster::TransportKind::Local);
    }

    #[test]
    fn job_template_parses() {
        let j = crate::job::JobSpec::parse(JOB_TEMPLATE, Path::new("job.toml")).unwrap();
        assert_eq!(j.map.command, "wc -l");
    }
}
