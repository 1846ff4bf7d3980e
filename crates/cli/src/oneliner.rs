//! `shoal map`: a job from flags alone, for the cases that need no file.
//!
//! The flags become a job file's text, which then goes through the very
//! same parser and validation as `shoal run job.toml` (so a one-liner and
//! its `--save`d file behave the same, and errors read the same).

use std::path::PathBuf;

use clap::Args;
use shoal_core::job::JobText;
use toml_edit::Value;

#[derive(Args, Debug, Clone, Default)]
pub struct MapArgs {
    /// Input file or directory.
    #[arg(long, conflicts_with = "args")]
    pub input: Option<String>,
    /// One task per argument instead of an input; `{}` in the command
    /// stands for it (passed as data in `$SHOAL_ARG`).
    #[arg(long, num_args = 1.., value_name = "ARG")]
    pub args: Vec<String>,
    /// lines, files, hash or range.
    #[arg(long)]
    pub split: Option<String>,
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Partition size instead of a count, e.g. 32MiB.
    #[arg(long)]
    pub chunk: Option<String>,
    /// Key field (1-based) for hash and range splits.
    #[arg(long)]
    pub key_field: Option<u32>,
    #[arg(long)]
    pub key_sep: Option<String>,
    /// Static shares by speed x slots.
    #[arg(long)]
    pub weighted: bool,
    /// A file or directory to ship to every host (repeatable).
    #[arg(long = "sync", value_name = "PATH")]
    pub sync: Vec<String>,
    /// A parameter: name=value (repeatable), as $SHOAL_PARAM_<NAME>.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Combiner command (needs --reduce).
    #[arg(long)]
    pub combine: Option<String>,
    /// Reducer command: turns on the keyed shuffle.
    #[arg(long)]
    pub reduce: Option<String>,
    #[arg(long)]
    pub reduce_partitions: Option<u32>,
    /// hash or modulo.
    #[arg(long)]
    pub partitioner: Option<String>,
    /// bytes or numeric.
    #[arg(long)]
    pub sort: Option<String>,
    /// Output path (default out/<name>).
    #[arg(long)]
    pub output: Option<String>,
    /// concat, none, json-list or csv.
    #[arg(long)]
    pub merge: Option<String>,
    /// Output names for per-file jobs: {name} {stem} {ext} {partition}.
    #[arg(long)]
    pub name: Option<String>,
    /// Job name (default "map").
    #[arg(long)]
    pub job_name: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Per-task time limit, e.g. 10m.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Write the equivalent job file and exit.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

/// The job file text that the flags describe: only what they say, so
/// that the parser fills in every default and checks every value.
pub fn job_text(a: &MapArgs, command: &str) -> String {
    let mut t = JobText::new();
    t.set("job", "name", a.job_name.as_deref().unwrap_or("map"));
    if let Some(s) = a.seed {
        t.set("job", "seed", s as i64);
    }
    if let Some(m) = a.max_attempts {
        t.set("job", "max_attempts", i64::from(m));
    }
    if !a.sync.is_empty() {
        t.set_strings("sync", "files", &a.sync);
    }
    input(&mut t, a);
    t.set("map", "command", command);
    if let Some(timeout) = &a.timeout {
        t.set("map", "timeout", timeout.as_str());
    }
    if let Some(c) = &a.combine {
        t.set("combine", "command", c.as_str());
    }
    if let Some(r) = &a.reduce {
        reduce(&mut t, a, r);
    }
    for p in &a.params {
        let (k, v) = p.split_once('=').unwrap_or((p.as_str(), ""));
        t.set("params", k.trim(), param_value(v));
    }
    output(&mut t, a);
    t.finish()
}

fn input(t: &mut JobText, a: &MapArgs) {
    t.section("input");
    if let Some(p) = &a.input {
        t.set("input", "path", p.as_str());
    }
    if !a.args.is_empty() {
        t.set_strings("input", "args", &a.args);
    }
    if let Some(s) = &a.split {
        t.set("input", "split", s.as_str());
    }
    if let Some(p) = a.partitions {
        t.set("input", "partitions", i64::from(p));
    }
    if let Some(c) = &a.chunk {
        t.set("input", "chunk", c.as_str());
    }
    if a.key_field.is_some() || a.key_sep.is_some() {
        let field = i64::from(a.key_field.unwrap_or(1)).into();
        let sep = a.key_sep.as_deref().unwrap_or("\t").into();
        t.set_inline::<Value>("input", "key", [("field".to_string(), field), ("sep".to_string(), sep)]);
    }
    if a.weighted {
        t.set("input", "weighted", true);
    }
}

fn reduce(t: &mut JobText, a: &MapArgs, command: &str) {
    t.set("reduce", "command", command);
    if let Some(p) = a.reduce_partitions {
        t.set("reduce", "partitions", i64::from(p));
    }
    if let Some(p) = &a.partitioner {
        t.set("reduce", "partitioner", p.as_str());
    }
    if let Some(s) = &a.sort {
        t.set("reduce", "sort", s.as_str());
    }
}

/// The value of `--param name=value`: read as TOML when it parses as a
/// number, boolean or string, else taken as the string itself.
fn param_value(v: &str) -> Value {
    v.parse().ok().filter(|x: &Value| !x.is_array() && !x.is_inline_table()).unwrap_or_else(|| v.into())
}

fn output(t: &mut JobText, a: &MapArgs) {
    t.section("output");
    if let Some(o) = &a.output {
        t.set("output", "path", o.as_str());
    }
    let merge = a.merge.as_deref().or_else(|| (a.name.is_some() || a.split.as_deref() == Some("files")).then_some("none"));
    if let Some(m) = merge {
        t.set("output", "merge", m);
    }
    if let Some(n) = &a.name {
        t.set("output", "name", n.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::job::{JobSpec, Merge};
    use std::path::Path;

    fn parse(a: &MapArgs, cmd: &str) -> JobSpec {
        JobSpec::parse(&job_text(a, cmd), Path::new("(shoal map)")).unwrap()
    }

    #[test]
    fn input_and_partitions() {
        let a = MapArgs { input: Some("data.txt".into()), partitions: Some(64), sync: vec!["score.py".into()], ..Default::default() };
        let j = parse(&a, "python3 score.py");
        assert_eq!(j.input.path.as_deref(), Some("data.txt"));
        assert_eq!(j.input.partitions, Some(64));
        assert_eq!(j.sync.files, ["score.py"]);
        assert_eq!(j.map.command, "python3 score.py");
    }

    #[test]
    fn per_file_jobs_name_outputs_after_inputs() {
        let a = MapArgs {
            input: Some("logs/".into()),
            split: Some("files".into()),
            output: Some("out/".into()),
            name: Some("{stem}.gz".into()),
            ..Default::default()
        };
        let j = parse(&a, "gzip -6");
        assert_eq!(j.output.merge, Merge::None);
        assert_eq!(j.output.name.as_deref(), Some("{stem}.gz"));
    }

    #[test]
    fn args_params_and_reduce() {
        let a = MapArgs {
            args: vec!["1".into(), "2".into()],
            params: vec!["depth=4".into(), "label=a b".into()],
            reduce: Some("python3 reducer.py".into()),
            combine: Some("python3 reducer.py".into()),
            reduce_partitions: Some(8),
            ..Default::default()
        };
        let j = parse(&a, "./simulate.sh {}");
        assert_eq!(j.input.args.as_deref(), Some(&["1".to_string(), "2".to_string()][..]));
        assert_eq!(j.params["depth"].to_env(), "4");
        assert_eq!(j.params["label"].to_env(), "a b");
        assert_eq!(j.reduce.unwrap().partitions, Some(8));
        assert!(j.combine.is_some());
    }
}
