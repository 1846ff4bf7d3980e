//! Issue 17 items 5, 6 and 9 on the local transport with the real binary:
//! an output that would destroy the input or the synced files is refused
//! before anything runs, the success marker never writes through a link,
//! FIFOs and other special files are refused by name instead of hanging,
//! the driver's state is owner-only, and params never reach a host's
//! shared block cache.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shoal_testkit::{local_cluster, Shoal};

/// A job dir holding `in/` (two input files, one named `_SUCCESS`),
/// `lib/tool.sh` to sync, and `job.toml`.
fn job_dir(job: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("in")).unwrap();
    fs::create_dir_all(dir.path().join("lib")).unwrap();
    fs::write(dir.path().join("in/x.txt"), "x data\n").unwrap();
    fs::write(dir.path().join("in/_SUCCESS"), "keep me\n").unwrap();
    fs::write(dir.path().join("lib/tool.sh"), "echo tool\n").unwrap();
    fs::write(dir.path().join("job.toml"), job).unwrap();
    dir
}

fn cluster_arg(cluster: &Path) -> String {
    cluster.to_str().unwrap().to_string()
}

/// Runs `shoal ARGS` in `dir`, killed if it takes longer than `limit`
/// (the FIFO bugs hung forever).
fn run_within(dir: &Path, args: &[&str], limit: Duration) -> (i32, String, String) {
    let ran = Shoal::new().in_job_dir(dir).args(args).run_within(limit).unwrap_or_else(|why| panic!("{why}"));
    (ran.code, ran.stdout, ran.stderr)
}

fn run_job(dir: &Path) -> (i32, String, String) {
    let (_c, cluster) = local_cluster(1, 2);
    run_within(dir, &["run", "job.toml", "--cluster", &cluster_arg(&cluster)], Duration::from_secs(60))
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

fn no_run_dir_left(dir: &Path) {
    let runs = dir.join(".shoal/runs");
    let left: Vec<PathBuf> =
        fs::read_dir(&runs).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "run dirs left behind: {left:?}");
}

fn read_inputs(dir: &Path) -> (String, String) {
    (fs::read_to_string(dir.join("in/x.txt")).unwrap(), fs::read_to_string(dir.join("in/_SUCCESS")).unwrap())
}

const FILES_JOB: &str = "[input]\npath = \"in\"\nsplit = \"files\"\n[map]\ncommand = \"cat\"\n";

#[test]
fn output_equal_to_the_input_dir_is_refused_and_the_inputs_survive() {
    let dir = job_dir(&format!("{FILES_JOB}[output]\npath = \"in\"\nmerge = \"none\"\n"));
    let (code, _, stderr) = run_job(dir.path());
    assert_eq!(
        stderr.trim(),
        "error: [output] path \"in\" is the same path as the input \"in\" ([input] path); committing the output would destroy it, so nothing was run: change [output] path so that the two do not overlap"
    );
    assert_eq!(code, 2);
    assert_eq!(read_inputs(dir.path()), ("x data\n".into(), "keep me\n".into()));
    no_run_dir_left(dir.path());
}

#[test]
fn outputs_overlapping_inputs_or_synced_files_are_refused() {
    let sync = "[sync]\nfiles = [\"lib\"]\n";
    let cases = [
        ("\"in/sub\"", "\"none\"", "[output] path \"in/sub\" lies inside the input \"in\" ([input] path)"),
        ("\".\"", "\"none\"", "[output] path \".\" contains the input \"in\" ([input] path)"),
        ("\"lib/out.txt\"", "\"concat\"", "[output] path \"lib/out.txt\" lies inside the synced \"lib\" ([sync] files)"),
        ("\"lib/tool.sh\"", "\"concat\"", "[output] path \"lib/tool.sh\" lies inside the synced \"lib\" ([sync] files)"),
        ("\"in-link\"", "\"none\"", "[output] path \"in-link\" is the same path as the input \"in\" ([input] path)"),
    ];
    for (out, merge, want) in cases {
        let dir = job_dir(&format!("{sync}{FILES_JOB}[output]\npath = {out}\nmerge = {merge}\n"));
        std::os::unix::fs::symlink("in", dir.path().join("in-link")).unwrap();
        let (code, _, stderr) = run_job(dir.path());
        let want = format!(
            "error: {want}; committing the output would destroy it, so nothing was run: change [output] path so that the two do not overlap"
        );
        assert_eq!((code, stderr.trim()), (2, want.as_str()), "output {out}");
        assert_eq!(read_inputs(dir.path()), ("x data\n".into(), "keep me\n".into()), "output {out}");
        assert_eq!(fs::read_to_string(dir.path().join("lib/tool.sh")).unwrap(), "echo tool\n", "output {out}");
        no_run_dir_left(dir.path());
    }
}

#[test]
fn an_input_file_named_success_keeps_its_bytes() {
    // Named after its input, a part would be called `_SUCCESS`: the marker
    // truncated it through its hard link.
    let dir = job_dir(&format!("{FILES_JOB}[output]\npath = \"out\"\nmerge = \"none\"\nname = \"{{name}}\"\n"));
    let (code, _, stderr) = run_job(dir.path());
    assert_eq!(
        stderr.trim(),
        "error: [output] name \"{name}\" names the output of partition 0 (input _SUCCESS) \"_SUCCESS\", which is the success marker of a directory output; change [output] name, e.g. to \"{name}.out\""
    );
    assert_eq!(code, 2);
    assert_eq!(read_inputs(dir.path()), ("x data\n".into(), "keep me\n".into()));
    assert!(!dir.path().join("out").exists());
    no_run_dir_left(dir.path());
    // With the default names it runs, and every byte reaches the output.
    fs::write(dir.path().join("job.toml"), format!("{FILES_JOB}[output]\npath = \"out\"\nmerge = \"none\"\n")).unwrap();
    let (code, _, stderr) = run_job(dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fs::read_to_string(dir.path().join("out/part-00000")).unwrap(), "keep me\n");
    assert_eq!(fs::read_to_string(dir.path().join("out/_SUCCESS")).unwrap(), "");
    assert_eq!(read_inputs(dir.path()), ("x data\n".into(), "keep me\n".into()));
}

#[test]
fn a_directory_output_is_replaced_whole() {
    let dir = job_dir(&format!("{FILES_JOB}[output]\npath = \"out\"\nmerge = \"none\"\n"));
    fs::create_dir_all(dir.path().join("out")).unwrap();
    fs::write(dir.path().join("out/stale"), "old").unwrap();
    let (code, _, stderr) = run_job(dir.path());
    assert_eq!(code, 0, "{stderr}");
    let mut names: Vec<String> =
        fs::read_dir(dir.path().join("out")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["_SUCCESS", "part-00000", "part-00001"]);
    let mut left: Vec<String> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, [".shoal", "in", "job.toml", "lib", "out"], "no temporary or old output is left beside it");
}

/// Each FIFO case: the job, where the FIFO goes, the error.
#[test]
fn fifos_are_refused_by_name_before_anything_is_created() {
    let cases = [
        (
            "[input]\npath = \"pipe\"\n[map]\ncommand = \"cat\"\n",
            "pipe",
            "input pipe is a FIFO, not a regular file or directory; shoal reads only files and directories: check [input] path in the job file",
        ),
        (
            FILES_JOB,
            "in/pipe",
            "input in/pipe is a FIFO, not a regular file or directory; shoal reads only files and directories: move it out of the input directory in",
        ),
        (
            "[sync]\nfiles = [\"pipe\"]\n[input]\npath = \"in/x.txt\"\n[map]\ncommand = \"cat\"\n",
            "pipe",
            "[sync] pipe is a FIFO, not a regular file or directory; shoal syncs only files and directories: remove it, or name it in [sync] exclude",
        ),
        (
            "[sync]\nfiles = [\"lib\"]\n[input]\npath = \"in/x.txt\"\n[map]\ncommand = \"cat\"\n",
            "lib/pipe",
            "[sync] lib/pipe is a FIFO, not a regular file or directory; shoal syncs only files and directories: remove it, or name it in [sync] exclude",
        ),
        (
            "[sync]\nlist_file = \"pipe\"\n[input]\npath = \"in/x.txt\"\n[map]\ncommand = \"cat\"\n",
            "pipe",
            "[sync] list_file pipe is a FIFO, not a regular file; point list_file at a regular file",
        ),
    ];
    for (job, fifo, want) in cases {
        let dir = job_dir(job);
        mkfifo(&dir.path().join(fifo));
        let (code, _, stderr) = run_job(dir.path());
        assert_eq!((code, stderr.trim()), (2, format!("error: {want}").as_str()), "FIFO at {fifo}");
        no_run_dir_left(dir.path());
    }
}

#[test]
fn shoal_push_refuses_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("pipe"));
    let (_c, cluster) = local_cluster(1, 1);
    let (code, _, stderr) =
        run_within(dir.path(), &["push", "pipe", "--to", "data/", "--cluster", &cluster_arg(&cluster)], Duration::from_secs(30));
    assert_eq!((code, stderr.trim()), (2, "error: shoal push: pipe is a FIFO, not a regular file; shoal push sends regular files only"));
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), out);
        }
    }
}

const SECRET: &str = "hunter2-zz9-secret";

/// A job with a secret param whose tasks check they can read it (and its
/// file's mode) without printing it.
fn secret_job() -> String {
    format!(
        "[input]\npath = \"in/x.txt\"\n[map]\ncommand = \"grep -q {SECRET} \\\"$SHOAL_PARAMS\\\" && test \\\"$SHOAL_PARAM_TOKEN\\\" = {SECRET} && stat -c %a \\\"$SHOAL_PARAMS\\\"\"\n[output]\npath = \"out/r.txt\"\n[params]\ntoken = \"{SECRET}\"\n"
    )
}

#[test]
fn driver_state_is_owner_only_and_written_whole() {
    let dir = job_dir(&secret_job());
    let (code, _, stderr) = run_job(dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fs::read_to_string(dir.path().join("out/r.txt")).unwrap(), "600\n", "the task reads its params from a 0600 file");
    let state = dir.path().join(".shoal");
    assert_eq!(mode(&state), 0o700);
    let mut all = Vec::new();
    walk(&state, &mut all);
    for p in &all {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains("tmp") && !name.starts_with(".summary") && !name.starts_with(".report"), "left behind: {}", p.display());
        assert_ne!(name, "params.json", "params are not kept on the driver: {}", p.display());
        if p.is_dir() {
            assert_eq!(mode(p), 0o700, "{}", p.display());
        }
    }
    let run = all.iter().find(|p| p.join("journal.jsonl").exists()).expect("a run dir");
    for f in ["journal.jsonl", "summary.json", "report.html"] {
        assert_eq!(mode(&run.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&state.join("runs/.latest")), 0o600);
    let summary: serde_json::Value = serde_json::from_slice(&fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "succeeded");
}

/// Every file under `.shoal/` is the user's alone and every directory
/// is closed to others: logs, routed input partitions, parts, journal.
fn assert_owner_only(state: &Path) {
    let mut all = vec![state.to_path_buf()];
    walk(state, &mut all);
    let open: Vec<String> = all
        .iter()
        .filter(|p| mode(p) & if p.is_dir() { 0o077 } else { 0o066 } != 0)
        .map(|p| format!("{} {:o}", p.strip_prefix(state).unwrap().display(), mode(p)))
        .collect();
    assert!(open.is_empty(), "open to others under .shoal: {open:?}");
}

#[test]
fn everything_under_the_state_dir_is_owner_only_after_a_push_a_hash_split_a_shuffle_and_logs() {
    // Two hosts, so that the driver stages buckets between them; reduce
    // outputs over 4 KiB, so that they are written to part files.
    let job = "[input]\npath = \"data.txt\"\nsplit = \"hash\"\npartitions = 4\nkey = { field = 1 }\n\
               [map]\ncommand = \"echo a log line >&2; cat\"\n\
               [reduce]\ncommand = \"cat; head -c 5000 /dev/zero | tr '\\\\0' x; echo\"\npartitions = 2\n[output]\npath = \"out.txt\"\n";
    let dir = job_dir(job);
    fs::write(dir.path().join("data.txt"), "a\t1\nb\t2\nc\t3\nd\t4\ne\t5\nf\t6\n").unwrap();
    let (_c, cluster) = local_cluster(2, 1);
    let pushed = run_within(
        dir.path(),
        &["push", "data.txt", "--to", "data/", "--split", "--cluster", &cluster_arg(&cluster)],
        Duration::from_secs(60),
    );
    assert_eq!(pushed.0, 0, "{}", pushed.2);
    let (code, _, stderr) = run_within(dir.path(), &["run", "job.toml", "--cluster", &cluster_arg(&cluster)], Duration::from_secs(60));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fs::read_to_string(dir.path().join("out.txt")).unwrap().matches('x').count(), 10_000);
    let state = dir.path().join(".shoal");
    let mut all = Vec::new();
    walk(&state, &mut all);
    let names: Vec<String> = all.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n.starts_with("input-")), "the hash split wrote partition files: {names:?}");
    assert!(names.iter().any(|n| n.ends_with(".log.zst")), "the tasks' logs were kept: {names:?}");
    assert!(names.iter().any(|n| n == "pushed"), "`shoal push --split` kept its record: {names:?}");
    assert_owner_only(&state);
}

#[test]
fn params_never_reach_a_hosts_block_cache() {
    let dir = job_dir(&secret_job());
    let (hosts, cluster) = local_cluster(2, 1);
    let (code, _, stderr) = run_within(dir.path(), &["run", "job.toml", "--cluster", &cluster_arg(&cluster)], Duration::from_secs(60));
    assert_eq!(code, 0, "{stderr}");
    let mut all = Vec::new();
    walk(&hosts.path().join("hosts"), &mut all);
    assert!(all.iter().any(|p| p.ends_with("blocks")), "the hosts have block caches: {all:?}");
    for p in all.iter().filter(|p| p.is_file()) {
        let bytes = fs::read(p).unwrap();
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the param value is in {}", p.display());
    }
}

/// A host file holding `needle`, if any.
fn host_file_with(hosts: &Path, needle: &str) -> Option<PathBuf> {
    let mut all = Vec::new();
    walk(hosts, &mut all);
    all.into_iter().filter(|p| p.is_file()).find(|p| fs::read(p).unwrap().windows(needle.len()).any(|w| w == needle.as_bytes()))
}

#[test]
fn syncing_the_job_dir_never_ships_the_state_dir() {
    // The first run leaves the secret in its journal (a small output is
    // kept in its journal line); the second syncs the whole job dir.
    // Outputs go beside the job dir: one inside a synced dir is refused.
    let root = tempfile::tempdir().unwrap();
    let job = root.path().join("job");
    fs::create_dir_all(job.join("in")).unwrap();
    fs::create_dir_all(job.join("lib")).unwrap();
    fs::write(job.join("in/x.txt"), "x data\n").unwrap();
    fs::write(job.join("lib/tool.sh"), "echo tool\n").unwrap();
    let first = format!("[input]\npath = \"in/x.txt\"\n[map]\ncommand = \"echo {SECRET}\"\n[output]\npath = \"../out/first.txt\"\n");
    fs::write(job.join("job.toml"), first).unwrap();
    let (hosts, cluster) = local_cluster(1, 1);
    let run = || run_within(&job, &["run", "job.toml", "--cluster", &cluster_arg(&cluster)], Duration::from_secs(60));
    let (code, _, stderr) = run();
    assert_eq!(code, 0, "{stderr}");
    assert!(host_file_with(hosts.path(), SECRET).is_none(), "only the second run may ship the journal");
    let second = "[input]\npath = \"in/x.txt\"\n[map]\ncommand = \"find . -type f\"\n[output]\npath = \"../out/second.txt\"\n[sync]\nfiles = [\".\"]\n";
    fs::write(job.join("job.toml"), second).unwrap();
    let (code, _, stderr) = run();
    assert_eq!(code, 0, "{stderr}");
    let listed = fs::read_to_string(root.path().join("out/second.txt")).unwrap();
    assert!(listed.lines().any(|l| l == "./lib/tool.sh"), "the job dir was synced: {listed}");
    // The agent puts the run's params at `.shoal/params.json`; nothing else is there.
    let state: Vec<&str> = listed.lines().filter(|l| l.starts_with("./.shoal/") && *l != "./.shoal/params.json").collect();
    assert!(state.is_empty(), "the task's work dir has the driver's state: {state:?}");
    assert_eq!(host_file_with(hosts.path(), SECRET), None, "an earlier run's journal reached the host");
}
