//! `shoal run` on the local transport: results, bad input with the exact
//! error text, failure that leaves the previous output alone, dry runs,
//! logs, runs and resume.

use std::fs;
use std::path::{Path, PathBuf};

use shoal_testkit::{local_cluster, Ran, Shoal};

/// A job dir with `data.txt` (`lines` numbers) and a job file.
fn job_dir(lines: usize, job: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data: String = (1..=lines).map(|i| format!("{i}\tv{}\n", i % 7)).collect();
    fs::write(dir.path().join("data.txt"), data).unwrap();
    fs::write(dir.path().join("job.toml"), job).unwrap();
    dir
}

fn run(dir: &Path, extra: &[&str]) -> Ran {
    shoal_testkit::local::run_job(dir, extra)
}

const CAT: &str = "[input]\npath = \"data.txt\"\npartitions = 5\n[map]\ncommand = \"cat\"\n[output]\npath = \"out/all.txt\"\n";

#[test]
fn identity_job_reproduces_its_input() {
    let dir = job_dir(10_000, CAT);
    let ran = run(dir.path(), &["--json"]).success();
    assert_eq!(fs::read(dir.path().join("out/all.txt")).unwrap(), fs::read(dir.path().join("data.txt")).unwrap());
    let summary = ran.json();
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["tasks"], 5);
    assert_eq!(summary["attempts"].as_array().unwrap().len(), 5);
}

#[test]
fn missing_input_is_a_clear_error() {
    let dir = job_dir(1, &CAT.replace("data.txt", "nope.txt"));
    let ran = run(dir.path(), &[]).code(2);
    assert_eq!(
        ran.stderr.trim(),
        "error: input nope.txt cannot be read: No such file or directory (os error 2); check [input] path in the job file"
    );
    assert!(
        !dir.path().join(".shoal/runs").read_dir().map(|mut d| d.any(|e| e.unwrap().path().is_dir())).unwrap_or(false),
        "no run dir is left behind"
    );
}

#[test]
fn empty_input_is_a_clear_error() {
    let dir = job_dir(0, CAT);
    let ran = run(dir.path(), &[]).code(2);
    assert_eq!(ran.stderr.trim(), "error: input data.txt is empty: there is nothing to run");
}

#[test]
fn missing_key_field_names_the_line() {
    let job = "[input]\npath = \"data.txt\"\nsplit = \"hash\"\npartitions = 3\nkey = { field = 3 }\n[map]\ncommand = \"cat\"\n";
    let dir = job_dir(2, job);
    let ran = run(dir.path(), &[]).code(2);
    assert_eq!(ran.stderr.trim(), "error: data.txt:1: line has no key field 3 (separator \"\\t\"): \"1\\tv1\"");
}

#[test]
fn sync_file_over_max_size_is_refused() {
    let job = format!("[sync]\nfiles = [\"data.txt\"]\nmax_size = \"10B\"\n{CAT}");
    let dir = job_dir(10, &job);
    let ran = run(dir.path(), &[]).code(2);
    assert_eq!(ran.stderr.trim(), "error: [sync] data.txt is 51 bytes, over max_size (10 bytes); add it to [sync] force = [\"data.txt\"] if it really must be shipped, or raise max_size");
}

#[test]
fn unknown_job_key_is_refused_with_position() {
    let dir = job_dir(1, &CAT.replace("command", "comand"));
    let ran = run(dir.path(), &[]).code(2);
    assert_eq!(
        ran.stderr.trim(),
        "error: job.toml:5:1: unknown key `comand` in [map]; did you mean `command`?\n  hint: the keys of [map] are: command, command_on, image, timeout, memory, network, cpus"
    );
}

#[test]
fn failing_task_names_itself_and_keeps_previous_output() {
    let dir = job_dir(100, CAT);
    run(dir.path(), &[]).success();
    let before = fs::read(dir.path().join("out/all.txt")).unwrap();
    let ran = run(dir.path(), &["--set", "map.command=echo broken >&2; exit 3", "--set", "job.max_attempts=2"]).code(1);
    assert!(ran.stderr.contains("failed: task "), "{}", ran.stderr);
    assert!(ran.stderr.contains("failed 2 times, on: "), "{}", ran.stderr);
    assert!(ran.stderr.contains("(exit code 3)"), "{}", ran.stderr);
    assert!(ran.stderr.contains("last lines of its stderr:\n  | broken"), "{}", ran.stderr);
    assert!(ran.stderr.contains("the previous output, if any, is untouched"), "{}", ran.stderr);
    assert_eq!(fs::read(dir.path().join("out/all.txt")).unwrap(), before);
}

#[test]
fn command_not_found_gets_a_hint() {
    let dir = job_dir(10, &CAT.replace("\"cat\"", "\"no-such-tool-xyz\""));
    let ran = run(dir.path(), &["--set", "job.max_attempts=1"]).code(1);
    assert!(ran.stderr.contains("(exit code 127)"), "{}", ran.stderr);
    assert!(ran.stderr.contains("hint: exit code 127 means the command was not found on that host"), "{}", ran.stderr);
    assert!(ran.stderr.contains("no-such-tool-xyz: not found"), "{}", ran.stderr);
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let job = CAT.replace("partitions = 5", "partitions = 4\nweighted = true");
    let dir = job_dir(1000, &job);
    let ran = run(dir.path(), &["--dry-run"]).success();
    assert!(ran.stdout.starts_with("PARTITION  INPUT     BYTES  HOST\n"), "{}", ran.stdout);
    assert_eq!(ran.stdout.lines().filter(|l| l.ends_with(" a") || l.ends_with(" b")).count(), 4, "{}", ran.stdout);
    assert!(ran.stdout.contains("4 tasks over 2 hosts"), "{}", ran.stdout);
    assert!(!dir.path().join("out").exists());
}

#[test]
fn logs_are_kept_and_merged_by_time() {
    let job = CAT.replace("command = \"cat\"", "command = \"echo working on $SHOAL_PARTITION >&2; cat\"");
    let dir = job_dir(100, &job);
    run(dir.path(), &[]).success();
    let ran = Shoal::new().in_dir(dir.path()).args(["logs", "--merged"]).run().success();
    for p in 0..5 {
        assert!(ran.stdout.contains(&format!(" task {p}] working on {p}\n")), "{}", ran.stdout);
    }
    let one = Shoal::new().in_dir(dir.path()).args(["logs", "latest", "--task", "2"]).run().success();
    assert_eq!(one.stdout, "working on 2\n");
    let runs = Shoal::new().in_dir(dir.path()).args(["runs"]).run().success();
    assert!(runs.stdout.contains("succeeded"), "{}", runs.stdout);
}

#[test]
fn resume_reuses_committed_tasks_and_reruns_changed_ones() {
    let dir = job_dir(1000, CAT);
    run(dir.path(), &[]).success();
    let again = run(dir.path(), &["--resume", "--json"]).success().json();
    assert_eq!(again["reused"], 5);
    assert_eq!(again["attempts"].as_array().unwrap().len(), 0);
    assert_eq!(fs::read(dir.path().join("out/all.txt")).unwrap(), fs::read(dir.path().join("data.txt")).unwrap());
    let changed = run(dir.path(), &["--resume", "--json", "--set", "map.command=tac"]).success().json();
    assert_eq!(changed["reused"], 0, "an edited command reruns its tasks");
}

#[test]
fn outputs_of_every_size_commit_and_resume_the_same_way() {
    // 10 lines ride in the journal line, 2000 in a part file the driver
    // writes from the task's report, 30000 as a block the driver fetches.
    let job = "[input]\nargs = [\"10\", \"2000\", \"30000\"]\n[map]\ncommand = \"seq {}\"\n[output]\npath = \"out/all.txt\"\n";
    let dir = job_dir(1, job);
    let want: String = [10, 2000, 30000].iter().flat_map(|&n| (1..=n).map(|i| format!("{i}\n"))).collect();
    let first = run(dir.path(), &["--json"]).success().json();
    assert_eq!(fs::read_to_string(dir.path().join("out/all.txt")).unwrap(), want);
    let run_dir = dir.path().join(".shoal/runs").join(first["run"].as_str().unwrap());
    let journal = fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
    assert_eq!(journal.matches("\"data\":").count(), 1, "only the small output is kept in its line:\n{journal}");
    let parts: Vec<String> = fs::read_dir(run_dir.join("parts")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(parts.len(), 2, "the two larger outputs have part files: {parts:?}");
    fs::remove_file(dir.path().join("out/all.txt")).unwrap();
    let again = run(dir.path(), &["--resume", "--json"]).success().json();
    assert_eq!(again["reused"], 3, "{again}");
    assert_eq!(again["attempts"].as_array().unwrap().len(), 0);
    assert_eq!(fs::read_to_string(dir.path().join("out/all.txt")).unwrap(), want);
}

#[test]
fn params_reach_tasks_as_env_and_json() {
    let job = CAT
        .replace("command = \"cat\"", "command = \"head -c0; echo $SHOAL_PARAM_DEPTH; cat $SHOAL_PARAMS\"")
        .replace("partitions = 5", "partitions = 1")
        + "[params]\ndepth = 4\n";
    let dir = job_dir(10, &job);
    run(dir.path(), &[]).success();
    let out = fs::read_to_string(dir.path().join("out/all.txt")).unwrap();
    assert!(out.starts_with("4\n{\n  \"depth\": 4\n}"), "{out}");
}

#[test]
fn short_commands_sent_ahead_never_run_more_at_once_than_the_slots() {
    // Tasks this short make the driver send an attempt ahead per slot; the
    // agent must hold it until the slot frees. Each task claims `busy` with
    // an atomic mkdir and notes any overlap.
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().display();
    let args: Vec<String> = (0..60).map(|i| format!("\"{i}\"")).collect();
    let job = format!(
        "[input]\nargs = [{}]\n[map]\ncommand = \"mkdir {mark}/busy 2>/dev/null || echo {{}} >> {mark}/overlaps; echo {{}}; sleep 0.005; rmdir {mark}/busy\"\n[output]\npath = \"out/all.txt\"\n",
        args.join(", ")
    );
    fs::write(dir.path().join("job.toml"), job).unwrap();
    let (_c, cluster) = local_cluster(1, 1);
    let ran = Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--json", "--cluster", cluster.to_str().unwrap()]).run().success();
    assert_eq!(ran.json()["tasks"], 60);
    let mut out: Vec<u32> = fs::read_to_string(dir.path().join("out/all.txt")).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    out.sort_unstable();
    assert_eq!(out, (0..60).collect::<Vec<_>>());
    let overlaps = fs::read_to_string(dir.path().join("overlaps")).unwrap_or_default();
    assert!(overlaps.is_empty(), "tasks ran while another held the host's one slot: {overlaps}");
}

#[test]
fn shuffle_larger_than_the_sort_buffer_is_exact_and_counts_reach_the_summary() {
    // 3 MiB of records through one reducer with a 64 KiB sort buffer: the
    // map side spills dozens of sorted runs and merges them.
    let dir = tempfile::tempdir().unwrap();
    let mut data = String::new();
    for i in 0..200_000u32 {
        data.push_str(&format!("{}\t{}\n", (i * 7919) % 5003, i % 10));
    }
    fs::write(dir.path().join("data.txt"), &data).unwrap();
    let job = "[input]\npath = \"data.txt\"\npartitions = 3\n[map]\ncommand = \"cat\"\n[reduce]\npartitions = 1\nsort_buffer = \"64KiB\"\nsort = \"numeric\"\n\
command = \"awk -F'\\\\t' '{ s[$1] += $2 } END { for (k in s) print k \\\"\\\\t\\\" s[k]; print \\\"reporter:counter:demo,keys,\\\" length(s) > \\\"/dev/stderr\\\" }' | sort -n\"\n[output]\npath = \"out/sums.tsv\"\n";
    fs::write(dir.path().join("job.toml"), job).unwrap();
    let summary = run(dir.path(), &["--json"]).success().json();
    let mut want = std::collections::BTreeMap::<u32, u64>::new();
    for line in data.lines() {
        let (k, v) = line.split_once('\t').unwrap();
        *want.entry(k.parse().unwrap()).or_default() += v.parse::<u64>().unwrap();
    }
    let got: std::collections::BTreeMap<u32, u64> = fs::read_to_string(dir.path().join("out/sums.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (k.parse().unwrap(), v.parse().unwrap())
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(summary["counters"]["demo,keys"], 5003);
    assert_eq!(summary["shuffle"]["partitions"][0]["records"], 200_000);
}

#[test]
fn map_one_liner_per_file_job_names_outputs_after_inputs() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("logs")).unwrap();
    for (name, text) in [("a.txt", "alpha\n"), ("b.log", "beta\n")] {
        fs::write(dir.path().join("logs").join(name), text).unwrap();
    }
    let (_c, cluster) = local_cluster(2, 1);
    Shoal::new()
        .in_dir(dir.path())
        .args([
            "map",
            "--cluster",
            cluster.to_str().unwrap(),
            "--input",
            "logs/",
            "--split",
            "files",
            "--output",
            "out",
            "--name",
            "{stem}.gz",
            "--",
            "gzip",
            "-6",
        ])
        .run()
        .success();
    let mut names: Vec<String> =
        fs::read_dir(dir.path().join("out")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["_SUCCESS", "a.gz", "b.gz"]);
    let unzipped = std::process::Command::new("gzip").arg("-dc").arg(dir.path().join("out/b.gz")).output().unwrap();
    assert_eq!(unzipped.stdout, b"beta\n");
}

#[test]
fn map_one_liner_args_are_quoted_and_save_writes_an_equivalent_job() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, cluster) = local_cluster(1, 2);
    let args = [
        "map",
        "--cluster",
        cluster.to_str().unwrap(),
        "--args",
        "plain",
        "it's; touch pwned",
        "--param",
        "depth=4",
        "--output",
        "out/r.txt",
        "--",
        "echo",
        "{}",
        "$SHOAL_PARAM_DEPTH",
    ];
    Shoal::new().in_dir(dir.path()).args(args).run().success();
    assert_eq!(fs::read_to_string(dir.path().join("out/r.txt")).unwrap(), "plain 4\nit's; touch pwned 4\n");
    assert!(!dir.path().join("pwned").exists() && !dir.path().join("home").join("pwned").exists());
    let mut save = args.to_vec();
    save.splice(save.len() - 4..save.len() - 4, ["--save", "job.toml"]);
    Shoal::new().in_dir(dir.path()).args(save).run().success().stdout_has("wrote job.toml");
    fs::remove_file(dir.path().join("out/r.txt")).unwrap();
    Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run().success();
    assert_eq!(fs::read_to_string(dir.path().join("out/r.txt")).unwrap(), "plain 4\nit's; touch pwned 4\n");
}

#[test]
fn completions_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    Shoal::new().in_dir(dir.path()).args(["completions", "bash"]).run().success().stdout_has("shoal");
}

/// The run report of a real run with failures and retries, loaded in
/// headless Chromium: every attempt is on the timeline and the page asks
/// for nothing over the network.
#[test]
fn report_shows_every_attempt_in_a_real_browser() {
    let Some(chromium) = ["chromium", "chromium-browser"]
        .iter()
        .find(|c| std::process::Command::new("sh").arg("-c").arg(format!("command -v {c}")).output().is_ok_and(|o| o.status.success()))
    else {
        assert!(std::env::var("CI").is_err(), "chromium must be installed in CI (scripts/install-deps)");
        eprintln!("skipping: no chromium");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks");
    fs::create_dir_all(&marks).unwrap();
    let data: String = (0..2000).map(|i| format!("{i}\n")).collect();
    fs::write(dir.path().join("data.txt"), &data).unwrap();
    let cmd = format!("m={}/$SHOAL_PARTITION; if [ ! -e $m ]; then touch $m; echo oops >&2; exit 3; fi; cat", marks.display());
    fs::write(
        dir.path().join("job.toml"),
        format!("[input]\npath = \"data.txt\"\npartitions = 5\n[map]\ncommand = '''{cmd}'''\n[output]\npath = \"out/r.txt\"\n"),
    )
    .unwrap();
    let summary = run(dir.path(), &["--json"]).success().json();
    let attempts = summary["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 10, "each task failed once and was retried");
    let report = PathBuf::from(summary["report"].as_str().unwrap());
    let html = fs::read_to_string(dir.path().join(&report)).unwrap();
    for bad in ["http:", "https:", "src=", "<script", "<link", "url("] {
        assert!(!html.contains(bad), "the report must be self-contained, found {bad:?}");
    }
    let netlog = dir.path().join("netlog.json");
    // unshare -n: Chromium's own background traffic cannot leave this machine.
    let out = std::process::Command::new("unshare")
        .args(["-n", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", dir.path().join(&report).display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    for a in attempts {
        let id = a["attempt"].as_u64().unwrap();
        assert!(dom.contains(&format!("data-attempt=\"{id}\"")), "attempt {id} is not on the rendered timeline");
    }
    assert!(dom.contains("Failures (5)"), "failures are listed");
    let log = fs::read_to_string(&netlog).unwrap_or_default();
    let page_requests: Vec<&str> = log
        .split("\"url\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|url| !(url.contains("google.com/") || url.contains("googleapis.com/") || url.contains("gvt1.com/")))
        .collect();
    assert!(page_requests.is_empty(), "the page made network requests: {page_requests:?}");
}

#[test]
fn identical_partitions_upload_safely_at_the_same_time() {
    // Regression: two partitions with the same content are the same block;
    // uploading it twice at once once corrupted the agent's temp file.
    let dir = tempfile::tempdir().unwrap();
    let chunk: String = (0..20_000).map(|i| format!("row {i}\n")).collect();
    fs::write(dir.path().join("data.txt"), chunk.repeat(8)).unwrap();
    fs::write(
        dir.path().join("job.toml"),
        "[input]\npath = \"data.txt\"\npartitions = 8\n[map]\ncommand = \"cat\"\n[output]\npath = \"out/all.txt\"\n",
    )
    .unwrap();
    run(dir.path(), &[]).success();
    assert_eq!(fs::read(dir.path().join("out/all.txt")).unwrap(), fs::read(dir.path().join("data.txt")).unwrap());
}
