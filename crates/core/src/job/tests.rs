//! Every validation error of the job file, with its exact text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<JobSpec, SpecError> {
    JobSpec::parse(text, Path::new("jobs/job.toml"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

const MIN: &str = "[input]\npath = \"d.txt\"\n[map]\ncommand = \"cat\"\n";

const FULL: &str = r#"
[job]
name = "score"
seed = 42
max_attempts = 3
exclude_after = 5
speculate = true
skip_bad_records = 10
[sync]
files = ["score.py", "lib/"]
list_file = "files.txt"
max_size = "1MiB"
force = ["model.bin"]
exclude = ["*.pyc"]
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
image = "aligner:1.4"
timeout = "10m"
memory = "2GiB"
network = true
cpus = 1.5
[combine]
command = "python3 reducer.py"
[reduce]
partitions = 8
partitioner = "modulo"
command = "python3 reducer.py"
key = { sep = "\t", fields = 2 }
sort = "numeric"
sort_buffer = "4MiB"
[params]
threshold = 0.7
label = "x"
depth = 3
verbose = true
[output]
path = "out/score.csv"
merge = { command = "python3 merge.py" }
name = "{stem}-{partition}.gz"
[images]
"aligner:1.4" = { file = "images/a.tar" }
"#;

#[test]
fn minimal_job_gets_defaults() {
    let j = parse(MIN).unwrap();
    assert_eq!(j.job, JobMeta { name: "job".into(), seed: 0, max_attempts: 4, exclude_after: 3, speculate: false, skip_bad_records: 0 });
    assert_eq!((j.path.as_deref(), j.base_dir.as_path()), (Some(Path::new("jobs/job.toml")), Path::new("jobs")));
    assert_eq!(j.sync.max_size, 64 << 20);
    assert_eq!((j.input.split, j.input.partitioner, j.input.key.as_ref()), (None, Partitioner::Hash, None));
    assert_eq!((j.output.path.as_str(), &j.output.merge), ("out/job", &Merge::Concat));
    assert_eq!((j.combine.as_ref(), j.reduce.as_ref()), (None, None));
    assert_eq!(j.resolve("d.txt"), PathBuf::from("jobs/d.txt"));
    let here = JobSpec::parse(MIN, Path::new("job.toml")).unwrap();
    assert_eq!((here.base_dir.as_path(), here.resolve("d.txt")), (Path::new("."), PathBuf::from("d.txt")));
}

#[test]
fn skip_bad_records_needs_a_third_attempt_and_lines() {
    assert_eq!(
        err(&format!("[job]\nskip_bad_records = 1001\n{MIN}")),
        "jobs/job.toml:2:1: [job] skip_bad_records is 1001, over the limit of 1000\n  hint: a job with that many bad lines needs its input cleaned first; skipping is for the odd record"
    );
    assert_eq!(
        err(&format!("[job]\nmax_attempts = 2\nskip_bad_records = 1\n{MIN}")),
        "jobs/job.toml:3:1: [job] skip_bad_records needs max_attempts of at least 3, not 2\n  hint: a task skips bad records from its third attempt on, after failing twice; raise max_attempts or remove skip_bad_records"
    );
    assert_eq!(
        err("[job]\nskip_bad_records = 1\n[input]\nargs = [\"a\"]\n[map]\ncommand = \"cat\"\n"),
        "jobs/job.toml:2:1: [job] skip_bad_records skips lines of an input file, and an [input] args job has none\n  hint: remove skip_bad_records, or read the arguments from a file: [input] path = \"args.txt\""
    );
}

#[test]
fn full_job_parses() {
    let j = parse(FULL).unwrap();
    assert_eq!((j.job.name.as_str(), j.job.seed, j.job.max_attempts, j.job.skip_bad_records), ("score", 42, 3, 10));
    assert_eq!(j.sync.list_file.as_deref(), Some("files.txt"));
    assert_eq!(j.input.key, Some(KeySpec { field: 2, sep: ",".into() }));
    assert_eq!((j.input.split, j.input.partitioner, j.input.weighted), (Some(Split::Hash), Partitioner::Modulo, true));
    assert_eq!(j.command_for(&j.map, "beta"), "/opt/py score.py");
    assert_eq!(j.command_for(&j.map, "alpha"), "python3 score.py");
    assert_eq!((j.map.timeout, j.map.memory, j.map.cpus, j.map.network), (Some(Duration::from_secs(600)), Some(2 << 30), Some(1.5), true));
    let r = j.reduce.as_ref().unwrap();
    assert_eq!(
        (r.partitions, r.partitioner, r.key.fields, r.sort, r.sort_buffer),
        (Some(8), Partitioner::Modulo, 2, SortOrder::Numeric, 4 << 20)
    );
    assert_eq!(j.params["threshold"].to_env(), "0.7");
    assert_eq!(j.params["verbose"].to_json(), serde_json::json!(true));
    assert_eq!(j.params["depth"].to_json(), serde_json::json!(3));
    assert_eq!(j.output.merge, Merge::Command("python3 merge.py".into()));
    assert_eq!(j.images["aligner:1.4"].file, "images/a.tar");
}

#[test]
fn to_toml_round_trips() {
    for text in [
        FULL,
        MIN,
        "[input]\nargs = [\"1\", \"2\"]\nchunk = 7\n[map]\ncommand = \"c\"\ntimeout = \"1.25s\"\n[output]\nmerge = \"json-list\"\n",
    ] {
        let j = parse(text).unwrap();
        let back = JobSpec::parse(&j.to_toml(), Path::new("jobs/job.toml")).unwrap();
        assert_eq!(back, j, "to_toml round trip\n{}", j.to_toml());
    }
}

#[test]
fn durations_with_nanoseconds_round_trip() {
    let j = parse(&format!("{MIN}timeout = \"0.000000001s\"\n")).unwrap();
    assert_eq!(j.map.timeout, Some(Duration::from_nanos(1)));
    assert_eq!(JobSpec::parse(&j.to_toml(), Path::new("jobs/job.toml")).unwrap(), j);
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
        "jobs/job.toml:1:2: unknown section `[mapp]`; did you mean `[map]`?\n  hint: a job file has the sections: [job], [sync], [input], [map], [combine], [reduce], [params], [output], [images]"
    );
}

#[test]
fn section_that_is_not_a_table() {
    assert_eq!(
        err("map = \"cat\"\n[input]\npath = \"d\"\n"),
        "jobs/job.toml:1:7: [map] must be a table, not a string\n  hint: write [map] on a line of its own, followed by its keys"
    );
}

#[test]
fn duplicates_name_the_section_and_key() {
    assert_eq!(err(&format!("{MIN}[map]\n")), "jobs/job.toml:5:1: [map] is given twice\n  hint: merge the two [map] sections into one");
    assert_eq!(err(&format!("{MIN}command = \"wc\"\n")), "jobs/job.toml:5:1: [map] command is given twice\n  hint: keep one of them");
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
    assert_eq!(
        err("[input]\npath = \"d\"\n[map]\ntimeout = 5\n"),
        "jobs/job.toml:3:2: [map] needs a command\n  hint: add command = \"...\" to [map]: a shell command that reads stdin and writes stdout"
    );
}

#[test]
fn input_path_or_args() {
    assert_eq!(
        err("[map]\ncommand = \"cat\"\n"),
        "jobs/job.toml:1:1: the job has no input: [input] needs path or args\n  hint: add path = \"data.txt\" (a file or directory) or args = [\"a\", \"b\"] (one task per argument) to [input]"
    );
    assert_eq!(
        err("[input]\npath = \"d\"\nargs = [\"1\"]\n[map]\ncommand = \"cat\"\n"),
        "jobs/job.toml:3:1: [input] has both path and args; give one of them\n  hint: path splits a file or directory into tasks; args makes one task per argument"
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
        "jobs/job.toml:4:1: [input] has both partitions and chunk; give one of them\n  hint: partitions sets how many pieces the input is cut into, chunk how big each piece is"
    );
    assert_eq!(
        err("[input]\npath = \"d\"\npartitions = 5000000000\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:3:14: [input] partitions = 5000000000 is too large; it must be at most 4294967295"
    );
}

#[test]
fn hash_split_needs_key() {
    assert_eq!(
        err("[input]\npath = \"d\"\nsplit = \"hash\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:3:1: [input] split = \"hash\" and \"range\" need a key\n  hint: add key = { field = 1, sep = \"\\t\" }"
    );
    assert_eq!(
        err("[input]\npath = \"d\"\nsplit = \"range\"\nkey = { field = 0 }\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:4:17: [input] key.field = 0 is too small; it must be at least 1\n  hint: fields are counted from 1: the first is field = 1"
    );
    assert_eq!(
        err("[input]\npath = \"d\"\nkey = { feild = 1 }\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:3:9: unknown key `feild` in [input] key; did you mean `field`?\n  hint: write key = { field = 1, sep = \"\\t\" }"
    );
}

#[test]
fn bad_sizes() {
    let hint =
        "\n  hint: write a number of bytes, or a string with one of the units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB (e.g. \"64MiB\")";
    assert_eq!(
        err(&format!("[sync]\nmax_size = \"64XB\"\n{MIN}")),
        format!("jobs/job.toml:2:12: [sync] max_size = \"64XB\" is not a size: the unit `XB` is unknown{hint}")
    );
    assert_eq!(
        err(&format!("[sync]\nmax_size = -1\n{MIN}")),
        format!("jobs/job.toml:2:12: [sync] max_size = -1 is not a size: it is negative{hint}")
    );
    assert_eq!(
        err(&format!("[sync]\nmax_size = true\n{MIN}")),
        format!("jobs/job.toml:2:12: [sync] max_size must be a size, not a boolean{hint}")
    );
    assert_eq!(
        err(&format!("{MIN}[reduce]\ncommand = \"c\"\nsort_buffer = \"1KiB\"\n")),
        "jobs/job.toml:7:15: [reduce] sort_buffer = \"1KiB\" is too small; it must be at least 64KiB"
    );
}

#[test]
fn bad_durations() {
    let hint = "\n  hint: write a number of seconds, or a string with one of the units ms, s, m, h (e.g. \"500ms\", \"10s\", \"2m\")";
    assert_eq!(
        err(&format!("{MIN}timeout = \"soon\"\n")),
        format!("jobs/job.toml:5:11: [map] timeout = \"soon\" is not a duration: it does not start with a number{hint}")
    );
    assert_eq!(
        err(&format!("{MIN}timeout = \"10 weeks\"\n")),
        format!("jobs/job.toml:5:11: [map] timeout = \"10 weeks\" is not a duration: the unit `weeks` is unknown{hint}")
    );
    assert_eq!(err(&format!("{MIN}timeout = 0\n")), format!("jobs/job.toml:5:11: [map] timeout must be a duration longer than zero{hint}"));
    assert_eq!(
        err(&format!("{MIN}timeout = -1.5\n")),
        format!("jobs/job.toml:5:11: [map] timeout must be a duration longer than zero{hint}")
    );
}

#[test]
fn bad_counts_and_types() {
    assert_eq!(
        err("[job]\nmax_attempts = 0\n[input]\npath = \"d\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:2:16: [job] max_attempts = 0 is too small; it must be at least 1"
    );
    assert_eq!(
        err("[job]\nseed = \"42\"\n[input]\npath = \"d\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:2:8: [job] seed must be an integer, not a string\n  hint: write a whole number without quotes"
    );
    assert_eq!(
        err("[job]\nspeculate = \"yes\"\n[input]\npath = \"d\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:2:13: [job] speculate must be true or false, not a string\n  hint: write speculate = true or speculate = false, without quotes"
    );
    assert_eq!(
        err("[sync]\nfiles = \"a.py\"\n[input]\npath = \"d\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:2:9: [sync] files must be an array of strings\n  hint: write files = [\"a\", \"b\"]"
    );
    assert_eq!(err(&format!("{MIN}cpus = 0\n")), "jobs/job.toml:5:8: [map] cpus = 0 is not a positive number\n  hint: write cpus = 1.5");
    assert_eq!(
        err(&format!("{MIN}command_on = {{ beta = \"\" }}\n")),
        "jobs/job.toml:5:23: [map] command_on.beta must be a non-empty string\n  hint: write command_on = { NAME = \"...\" }"
    );
}

#[test]
fn unknown_choices_list_the_accepted_ones() {
    assert_eq!(
        err("[input]\npath = \"d\"\nsplit = \"words\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:3:9: [input] split = \"words\" is not one of \"lines\", \"files\", \"hash\", \"range\""
    );
    assert_eq!(
        err("[input]\npath = \"d\"\npartitioner = \"modula\"\n[map]\ncommand = \"c\"\n"),
        "jobs/job.toml:3:15: [input] partitioner = \"modula\" is not one of \"hash\", \"modulo\"; did you mean \"modulo\"?"
    );
    assert_eq!(
        err(&format!("{MIN}[reduce]\ncommand = \"c\"\nsort = \"alpha\"\n")),
        "jobs/job.toml:7:8: [reduce] sort = \"alpha\" is not one of \"bytes\", \"numeric\""
    );
}

#[test]
fn unknown_merge() {
    assert_eq!(
        err(&format!("{MIN}[output]\nmerge = \"zip\"\n")),
        "jobs/job.toml:6:9: [output] merge = \"zip\" is not a known merge\n  hint: use \"concat\", \"none\", \"json-list\", \"csv\", or { command = \"...\" }"
    );
    assert_eq!(
        err(&format!("{MIN}[output]\nmerge = {{ comand = \"x\" }}\n")),
        "jobs/job.toml:6:11: unknown key `comand` in [output] merge; did you mean `command`?\n  hint: write merge = { command = \"python3 merge.py\" }"
    );
}

#[test]
fn unknown_name_placeholder() {
    assert_eq!(
        err(&format!("{MIN}[output]\nname = \"{{stme}}.gz\"\n")),
        "jobs/job.toml:6:8: [output] name \"{stme}.gz\" uses `{stme}`, which is not a placeholder; did you mean `stem`?\n  hint: the placeholders are {name}, {stem}, {ext} and {partition}"
    );
}

#[test]
fn params_must_be_scalars_with_simple_names() {
    assert_eq!(
        err(&format!("{MIN}[params]\nlist = [1, 2]\n")),
        "jobs/job.toml:6:8: [params] list is an array, but params must be strings, numbers or booleans\n  hint: params become environment variables; encode lists in a string, or ship a file with [sync]"
    );
    assert_eq!(
        err(&format!("{MIN}[params]\nt = {{ a = 1 }}\n")),
        "jobs/job.toml:6:5: [params] t is a table, but params must be strings, numbers or booleans\n  hint: params become environment variables; encode lists in a string, or ship a file with [sync]"
    );
    assert_eq!(
        err(&format!("{MIN}[params]\n\"a-b\" = 1\n")),
        "jobs/job.toml:6:1: [params] \"a-b\" is not a valid name: it becomes SHOAL_PARAM_<NAME>\n  hint: use letters, digits and _"
    );
}

#[test]
fn images_need_a_file() {
    assert_eq!(
        err(&format!("{MIN}[images]\n\"a:1\" = {{ path = \"a.tar\" }}\n")),
        "jobs/job.toml:6:11: unknown key `path` in [images] \"a:1\"\n  hint: write \"name:tag\" = { file = \"image.tar\" }"
    );
}

#[test]
fn overrides() {
    let sets =
        ["map.command=python3 other.py".to_string(), "input.partitions=16".into(), "params.depth=4".into(), "reduce.command=cat".into()];
    let j = JobSpec::parse_with_overrides(MIN, Path::new("job.toml"), &sets).unwrap();
    assert_eq!(j.map.command, "python3 other.py");
    assert_eq!(j.input.partitions, Some(16));
    assert_eq!(j.params["depth"], ParamValue::Int(4));
    assert_eq!(j.reduce.map(|r| r.step.command).as_deref(), Some("cat"));
}

#[test]
fn bad_overrides_name_the_argument() {
    let set = |s: &str| JobSpec::parse_with_overrides(MIN, Path::new("job.toml"), &[s.to_string()]).unwrap_err().to_string();
    assert_eq!(
        set("map.comand=x"),
        "job.toml: --set \"map.comand=x\": unknown key `comand` in [map]; did you mean `command`?\n  hint: the keys of [map] are: command, command_on, image, timeout, memory, network, cpus"
    );
    assert_eq!(
        set("mapp.command=x"),
        "job.toml: --set \"mapp.command=x\": unknown section `mapp`; did you mean `map`?\n  hint: the sections --set can change are: job, sync, input, map, combine, reduce, params, output"
    );
    assert_eq!(set("partitions=3"), "job.toml: --set \"partitions=3\": `partitions` names no section\n  hint: write --set section.key=value, e.g. --set map.command=cat");
    assert_eq!(
        set("map.command"),
        "job.toml: --set \"map.command\": there is no `=`\n  hint: write --set section.key=value, e.g. --set map.command=cat"
    );
    assert_eq!(set("input.partitions=0"), "job.toml:3:14: [input] partitions = 0 is too small; it must be at least 1");
}

#[test]
fn override_of_a_section_that_is_not_a_table() {
    let e = JobSpec::parse_with_overrides("map = 1\n", Path::new("job.toml"), &["map.command=cat".into()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "job.toml: --set \"map.command=cat\": [map] in the job file is not a table\n  hint: write [map] as a table in the job file"
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A damaged job or cluster file is an error, never a panic.
        #[test]
        fn on_damaged_files(at in 0usize..2000, cut in 0usize..40, insert in "[\\PC\n]{0,8}", json in any::<bool>()) {
            let cluster = "[defaults]\nuser = \"me\"\n[hosts.a]\naddress = \"x\"\nport = 22\nslots = 2\nspeed = 1.5\nenv = { A = \"1\" }\nconnect_timeout = \"2s\"\n";
            for (base, name) in [(FULL, "job"), (cluster, "cluster")] {
                let mut text = base.to_string();
                let start = (at % text.len()..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
                let end = (start + cut..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
                text.replace_range(start..end, &insert);
                let path = format!("{name}.{}", if json { "json" } else { "toml" });
                if name == "job" {
                    let _ = JobSpec::parse(&text, Path::new(&path));
                    let _ = JobSpec::parse_with_overrides(&text, Path::new(&path), &["map.command=cat".into()]);
                } else {
                    let _ = crate::cluster::ClusterSpec::parse(&text, Path::new(&path));
                }
            }
        }
    }
}

#[test]
fn params_that_cannot_reach_a_task_are_refused() {
    let big = "p".repeat(200_000);
    assert_eq!(
        err(&format!("{MIN}[params]\nbig = \"{big}\"\n")),
        "jobs/job.toml:6:7: [params] big is 200000 bytes; each param reaches every task as one environment variable, and Linux refuses a variable over 128 KiB\n  hint: put big data in a file listed in [sync] and pass its name as the param"
    );
    let many: String = (0..10).map(|i| format!("p{i} = \"{}\"\n", "v".repeat(120_000))).collect();
    assert_eq!(
        err(&format!("{MIN}[params]\n{many}")),
        "jobs/job.toml:14:1: [params] p8 brings the params to 1080144 bytes; they reach every task in its environment, keep them under 1 MiB in all\n  hint: put big data in a file listed in [sync] and pass its name as the param"
    );
    let fits = format!("{MIN}[params]\nbig = \"{}\"\n", "p".repeat(ARG_MAX_BYTES - "SHOAL_PARAM_big=".len() - 1));
    assert!(parse(&fits).is_ok());
}

#[test]
fn reduce_partitions_over_the_limit_are_refused() {
    assert_eq!(
        err(&format!("{MIN}[reduce]\ncommand = \"cat\"\npartitions = 130000\n")),
        "jobs/job.toml:7:14: [reduce] partitions is 130000, over the limit of 65536: every map task reports one bucket per reduce partition in one message\n  hint: use fewer reduce partitions: each is a task, and a few per slot of the cluster is plenty"
    );
    assert!(parse(&format!("{MIN}[reduce]\ncommand = \"cat\"\npartitions = 65536\n")).is_ok());
}

#[test]
fn a_command_longer_than_an_argument_is_refused() {
    let long = "x".repeat(ARG_MAX_BYTES);
    assert_eq!(
        err(&format!("[input]\npath = \"d.txt\"\n[map]\ncommand = \"{long}\"\n")),
        "jobs/job.toml:4:11: [map] command is 131072 bytes; a command reaches the shell as one argument, and Linux refuses an argument over 128 KiB\n  hint: put the script in a file listed in [sync] and run that file"
    );
    assert!(err(&format!("{MIN}[reduce]\ncommand = \"cat\"\ncommand_on = {{ a = \"{long}\" }}\n"))
        .contains("[reduce] command_on is 131072 bytes"));
}
