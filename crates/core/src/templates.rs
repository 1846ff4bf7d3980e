//! The commented templates that `shoal init` writes.
//!
//! Every key of both files appears, the optional ones commented out with
//! what they do and their default, so the templates double as reference.
//! Both parse as they are (tested): the cluster is this machine, and the
//! job counts the lines of `data.txt`, so `shoal init && shoal check`
//! works right away. Writing the files is the CLI's job.

/// `cluster.toml` as written by `shoal init`.
pub const CLUSTER_TEMPLATE: &str = r#"# Shoal cluster file: the machines a run may use.
# A host needs only sshd and a POSIX shell; shoal copies itself there.
# Check the file and reach every host with `shoal check`.

# [defaults] apply to every host; a host's own keys win.
# Any host key may appear here except address and transport.
[defaults]
# user = "me"                  # ssh user (default: what your ssh config says)
# workdir = "~/.shoal"         # agent binary, block cache and run scratch on the host
# connect_timeout = 10         # seconds (or "500ms", "10s", "2m") to wait for ssh
# heartbeat_timeout = 10       # seconds of silence before a host counts as lost

# This machine, reached without ssh: the agent runs as a child process.
[hosts.local]
transport = "local"            # "ssh" (the default) or "local"
# slots = 4                    # tasks at once (default: every core)

# A remote host. The name in [hosts.NAME] is yours to choose; it becomes a
# directory name, so use letters, digits, "-", "_" and ".".
# [hosts.alpha]
# address = "10.0.0.11"        # anything ssh accepts, including a Host alias
#                              # from ~/.ssh/config (ProxyJump, keys... keep working)
# port = 22
# user = "me"
# slots = 8                    # default: the host's core count, found at connect time
# speed = 1.0                  # relative single-core speed, for weighted shares
# identity = "~/.ssh/id_ed25519"
# ssh_options = ["-o", "ProxyJump=bastion"]    # passed to ssh before shoal's own
# env = { PYTHON = "/opt/conda/bin/python" }   # extra environment for tasks here
# agent_binary = "/path/to/shoal-aarch64"      # deploy this for another platform
# workdir = "/scratch/shoal"
# connect_timeout = "30s"
# heartbeat_timeout = 10

# How Shoal's Python package runs Python on the hosts: the interpreter, and
# what it installs in a virtual environment on each host. Paths are
# relative to this file's directory.
# [python]
# python = "/opt/conda/bin/python3"     # the interpreter on every host (default: the driver decides)
# python_on = { alpha = "/usr/bin/python3.11" }   # per-host override
# requirements = "requirements.txt"     # a pip requirements (or lock) file
# wheels = "wheels/"                    # a local directory of wheels used instead of the package index
"#;

/// `job.toml` as written by `shoal init`.
pub const JOB_TEMPLATE: &str = r#"# Shoal job file: what to run. Run it with `shoal run job.toml`;
# `shoal run job.toml --dry-run` shows the plan without running anything.
# Paths are relative to this file's directory.

[job]
name = "example"               # default: this file's name without .toml
seed = 0                       # fixes task order and distribution
# max_attempts = 4             # tries per task before the job fails
# exclude_after = 3            # task failures in a row that exclude a host
# speculate = false            # copy straggling tasks to idle hosts
# skip_bad_records = 0         # bad input lines the job may leave out (skip mode after 2 failures)

[sync]
files = []                     # files and directories shipped to every host, e.g. ["score.py", "lib/"]
# list_file = "files_to_sync.txt"   # more paths, one per line ('#' comments allowed)
# max_size = "64MiB"           # bigger files are refused unless listed in force
# force = ["model.bin"]
# exclude = ["*.pyc"]          # patterns never shipped

[input]
path = "data.txt"              # a file, or a directory of files
# args = ["1", "2", "3"]       # instead of path: one task per argument
split = "lines"                # "lines", "files", "hash" (by key) or "range" (by numeric key)
# partitions = 64              # how many pieces (default: a few per slot)...
# chunk = "32MiB"              # ...or how big each piece is; not both
# key = { field = 1, sep = "\t" }   # the key of a line, for "hash" and "range"; fields count from 1
# partitioner = "hash"         # "hash" or "modulo" (numeric keys), for split = "hash"
# weighted = false             # true: shares by speed x slots instead of on demand

[map]
command = "wc -l"              # reads its partition on stdin, writes its result to stdout
# command_on = { alpha = "/opt/conda/bin/python score.py" }   # per-host override
# image = "aligner:1.4"        # run the command in this Docker image
# timeout = "10m"              # per task
# memory = "2GiB"              # containers only
# network = false              # containers only
# cpus = 1.0                   # containers only

# An optional combiner runs on each map output before the shuffle.
# [combine]
# command = "python3 reducer.py"

# An optional reduce: map lines are "key<TAB>value"; each reducer reads its
# keys' lines sorted by key. It takes the keys of [map] and these:
# [reduce]
# command = "python3 reducer.py"
# partitions = 8               # reduce tasks
# partitioner = "hash"         # "hash" or "modulo"
# key = { sep = "\t", fields = 1 }   # the key is the first `fields` fields
# sort = "bytes"               # "bytes" or "numeric"
# sort_buffer = "256MiB"       # memory to sort in before spilling to disk

# Parameters: strings, numbers or booleans. Tasks see SHOAL_PARAM_<NAME>
# and all of them as JSON in $SHOAL_PARAMS.
# [params]
# threshold = 0.7

[output]
path = "out/example.txt"       # default: out/<job name>
merge = "concat"               # "concat", "none" (a directory of parts), "json-list", "csv",
                               # or { command = "python3 merge.py" }
# name = "{stem}.gz"           # per-file output names: {name} {stem} {ext} {partition}

# Image archives for hosts that lack an image (from `docker save`).
# [images]
# "aligner:1.4" = { file = "images/aligner-1.4.tar" }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ClusterSpec, PythonSpec, TransportKind};
    use crate::job::{JobSpec, Merge, Split};
    use std::path::Path;

    #[test]
    fn cluster_template_is_this_machine() {
        let c = ClusterSpec::parse(CLUSTER_TEMPLATE, Path::new("cluster.toml")).unwrap();
        assert_eq!(c.hosts.len(), 1);
        assert_eq!((c.hosts[0].name.as_str(), c.hosts[0].transport), ("local", TransportKind::Local));
        assert_eq!(c.python, PythonSpec::default(), "the [python] example stays commented out");
    }

    #[test]
    fn job_template_is_a_runnable_line_count() {
        let j = JobSpec::parse(JOB_TEMPLATE, Path::new("job.toml")).unwrap();
        assert_eq!((j.input.path.as_deref(), j.input.split), (Some("data.txt"), Some(Split::Lines)));
        assert_eq!((j.map.command.as_str(), &j.output.merge), ("wc -l", &Merge::Concat));
        assert_eq!((j.combine, j.reduce), (None, None));
    }

    /// The commented-out examples must be valid too: uncommenting them is
    /// how people use the templates.
    #[test]
    fn uncommented_examples_parse() {
        let cluster = uncomment(CLUSTER_TEMPLATE);
        let c = ClusterSpec::parse(&cluster, Path::new("cluster.toml")).unwrap_or_else(|e| panic!("{e}\n{cluster}"));
        assert_eq!(c.hosts.len(), 2);
        assert_eq!(
            (c.python.interpreter("alpha"), c.python.interpreter("local")),
            (Some("/usr/bin/python3.11"), Some("/opt/conda/bin/python3"))
        );
        assert_eq!((c.python.requirements.as_deref(), c.python.wheels.as_deref()), (Some("requirements.txt"), Some("wheels/")));
        // args and chunk are alternatives to keys the template already sets.
        let job = uncomment(&JOB_TEMPLATE.replace("# args = [", "#- args = [").replace("# chunk = ", "#- chunk = "));
        let j = JobSpec::parse(&job, Path::new("job.toml")).unwrap_or_else(|e| panic!("{e}\n{job}"));
        assert!(j.reduce.is_some() && j.combine.is_some() && !j.images.is_empty());
    }

    /// Turns `# key = value` lines back into `key = value` (and `# [table]`
    /// into `[table]`), leaving prose comments alone.
    fn uncomment(text: &str) -> String {
        text.lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.starts_with('[') && rest.trim_end().ends_with(']') => rest,
                Some(rest) if rest.split_whitespace().nth(1) == Some("=") => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
