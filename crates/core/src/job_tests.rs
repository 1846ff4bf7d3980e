//! Every validation error of the job file, with its exact text.

use super::*;

fn parse(text: &str) -> Result<JobSpec, SpecError> {
    JobSpec::parse(text, Path::new("jobs/job.toml"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

const MIN: &str = "[input]\npath = \"d.txt\"\n[map]\ncommand = \"cat\"\n";

#[test]
fn minimal_job_gets_defaults() {
    let j = parse(MIN).unwrap();
    assert_eq!(j.job.name, "job");
    assert_eq!((j.job.seed, j.job.max_attempts, j.job.exclude_after), (0, 4, 3));
    assert_eq!(j.base_dir, PathBuf::from("jobs"));
    assert_eq!(j.sync.max_size, 64 << 20);
    assert_eq!(j.output.path, "out/job");
    assert_eq!(j.output.merge, Merge::Concat);
}

#[test]
fn full_job_parses() {
    let j = parse(
        r#"
[job]
name = "score"
seed = 42
speculate = true
[sync]
files = ["score.py", "lib/"]
list_file = "files.txt"
max_size = "1MiB"
force = ["model.bin"]
[input]
path = "data/records.txt"
split = "hash"
partitions = 64
key = { field = 2, sep = "," }
partitioner = "modulo"
weighted = true
[map]
command = "python3 score.py"
command_on = { beta = "/opt/py score.py" }
timeout = "10m"
[combine]
command = "python3 reducer.py"
[reduce]
partitions = 8
command = "python3 reducer.py"
key = { sep = "\t", fields = 2 }
sort = "numeric"
sort_buffer = "4MiB"
[params]
threshold = 0.7
label = "x"
[output]
path = "out/score.csv"
merge = { command = "python3 merge.py" }
[images]
"aligner:1.4" = { file = "images/a.tar" }
"#,
    )
    .unwrap();
    assert_eq!(j.job.seed, 42);
    assert_eq!(j.input.key, Some(KeySpec { field: 2, sep: ",".into() }));
    assert_eq!(j.input.partitioner, Partitioner::Modulo);
    assert_eq!(j.command_for(&j.map, "beta"), "/opt/py score.py");
    assert_eq!(j.command_for(&j.map, "alpha"), "python3 score.py");
    assert_eq!(j.map.timeout, Some(Duration::from_secs(600)));
    let r = j.reduce.as_ref().unwrap();
    assert_eq!((r.partitions, r.key.fields, r.sort, r.sort_buffer), (Some(8), 2, SortOrder::Numeric, 4 << 20));
    assert_eq!(j.params["threshold"].to_env(), "0.7");
    assert_eq!(j.output.merge, Merge::Command("python3 merge.py".into()));
    assert_eq!(j.images["aligner:1.4"].file, "images/a.tar");
    let back = JobSpec::parse(&j.to_toml(), Path::new("jobs/job.toml")).unwrap();
    assert_eq!(back, j, "to_toml round trip\n{}", j.to_toml());
}

#[test]
fn unknown_key_suggests() {
    assert_eq!(
        err("[input]\npath = \"d\"\npartitons = 4\n[map]\ncommand = \"cat\"\n"),
        "jobs/job.toml:3:1: unknown key `partitons` in [input]; did you mean `partitions`?\n  hint: the keys of [input] are: path, args, split, partitions, chunk, key, partitioner, weighted"
    );
}

#[test]
fn unknown_section() {
    assert_eq!(
        err("[mapp]\ncommand = \"cat\"\n"),
        "jobs/job.toml:1:2: unknown key `mapp` in the top level; did you mean `map`?\n  hint: a job file has the sections: job, sync, input, map, combine, reduce, params, output, images"
    );
}

#[test]
fn missing_map_or_command() {
    assert_eq!(
        err("[input]\npath = \"d\"\n"),
        "jobs/job.toml:1:1: the job has no [map] section\n  hint: add [map] with command = \"...\": the command each task runs"
    );
    assert_eq!(
        err("[input]\npath = \"d\"\n[map]\ncommand = \"  \"\n"),
        "jobs/job.toml:4:11: [map] needs a command\n  hint: add command = \"...\" to [map]: a shell command that reads stdin and writes stdout"
    );
}

#[test]
fn input_path_or_args() {
    assert_eq!(
        err("[map]\ncommand = \"cat\"\n"),
        "jobs/job.toml:1:1: the job has no input: [input] needs path (a file or directory) or args (one task per argument)"
    );
    assert_eq!(
        err("[input]\npath = \"d\"\nargs = [\"1\"]\n[map]\ncommand = \"cat\"\n"),
        "jobs/job.toml:3:1: [input] has both path and args; give one of them"
    );
}

#[test]
fn partitions_errors() {
    assert_eq!(
        err("[input]\npath = \"d\"\npartitions = 0\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:3:14: [input] partitions = 0 is too small; it must be at least 1"
    );
    assert_eq!(
        err("[input]\npath = \"d\"\npartitions = 2\nchunk = \"1MiB\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:4:1: [input] has both partitions and chunk; give one of them"
    );
}

#[test]
fn hash_split_needs_key() {
    assert_eq!(
        err("[input]\npath = \"d\"\nsplit = \"hash\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:3:1: [input] split = \"hash\" and \"range\" need a key\n  hint: add key = { field = 1, sep = \"\\t\" }"
    );
    assert_eq!(
        err("[input]\npath = \"d\"\nsplit = \"hash\"\nkey = { field = 0 }\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:4:17: [input] key.field must be 1 or more: fields are counted from 1"
    );
}

#[test]
fn bad_values() {
    assert_eq!(
        err("[sync]\nmax_size = \"64XB\"\n[input]\npath = \"d\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:2:12: [sync] max_size: unknown size unit \"XB\" in \"64XB\"; use B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)"
    );
    assert_eq!(
        err("[input]\npath = \"d\"\n[map]\ncommand = \"c\"\ntimeout = \"soon\"\n"),
        "jobs/job.toml:5:11: [map] timeout: \"soon\" is not a duration"
    );
    assert_eq!(
        err("[job]\nmax_attempts = 0\n[input]\npath = \"d\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:2:16: [job] max_attempts = 0 is too small; it must be at least 1"
    );
    assert_eq!(
        err("[input]\npath = \"d\"\nsplit = \"words\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:3:9: [input] split = \"words\" is not one of \"lines\", \"files\", \"hash\", \"range\""
    );
}

#[test]
fn unknown_merge() {
    assert_eq!(
        err(&format!("{MIN}[output]\nmerge = \"zip\"\n")),
        "jobs/job.toml:6:9: [output] merge = \"zip\" is not a known merge\n  hint: use \"concat\", \"none\", \"json-list\", \"csv\", or { command = \"...\" }"
    );
}

#[test]
fn params_must_be_scalars() {
    assert_eq!(
        err(&format!("{MIN}[params]\nlist = [1, 2]\n")),
        "jobs/job.toml:6:8: [params] list is an array, but params must be strings, numbers or booleans\n  hint: params become environment variables; encode lists in a string, or ship a file with [sync]"
    );
}

#[test]
fn overrides() {
    let j =
        JobSpec::parse_with_overrides(MIN, Path::new("job.toml"), &["map.command=python3 other.py".into(), "input.partitions=16".into()])
            .unwrap();
    assert_eq!(j.map.command, "python3 other.py");
    assert_eq!(j.input.partitions, Some(16));
    let e = JobSpec::parse_with_overrides(MIN, Path::new("job.toml"), &["map.comand=x".into()]).unwrap_err();
    assert_eq!(e.to_string(), "job.toml: --set \"map.comand=x\": unknown key `comand` in [map]; did you mean `command`?\n  hint: the keys of [map] are: command, command_on, image, timeout, memory, network, cpus");
}
