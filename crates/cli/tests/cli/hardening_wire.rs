//! Issue 17, item 3: nothing a user can do may produce a message over the
//! link's frame limit (4 MiB). Before, each of these ended the link and
//! the host was reported lost with a wrong reason; now each works, or is
//! refused up front with a sentence that names what to change.

use std::fs;
use std::path::Path;

use shoal_testkit::{local_cluster, Ran, Shoal};

fn run(dir: &Path, hosts: usize) -> Ran {
    let (_c, cluster) = local_cluster(hosts, 2);
    Shoal::new().in_job_dir(dir).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run()
}

fn job_dir(job: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data: String = (1..=100).map(|i| format!("k{}\t{i}\n", i % 7)).collect();
    fs::write(dir.path().join("data.txt"), data).unwrap();
    fs::write(dir.path().join("job.toml"), job).unwrap();
    dir
}

fn assert_no_lost_host(ran: &Ran) {
    let all = format!("{}{}", ran.stdout, ran.stderr);
    assert!(!all.contains("lost") && !all.contains("is gone") && !all.contains("unreachable"), "a host was reported lost:\n{all}");
}

#[test]
fn exec_printing_5_mb_keeps_the_link_and_shows_the_tail() {
    let (dir, cluster) = local_cluster(1, 1);
    let command = "head -c 4999999 /dev/zero | tr '\\0' x; echo; echo the-end";
    let ran = Shoal::new().in_dir(dir.path()).args(["exec", "--cluster", cluster.to_str().unwrap(), "--", command]).run();
    assert_no_lost_host(&ran);
    let ran = ran.success();
    assert!(ran.stdout.starts_with("---------------- a (exit code 0)\n"), "{}", &ran.stdout[..ran.stdout.len().min(200)]);
    assert!(ran.stdout.contains("xxx\nthe-end\n"), "the end of the output is kept");
    assert!(
        ran.stdout.ends_with(
            "shoal: only the last 1048576 of 5000008 bytes of stdout are shown; to keep it all, redirect it to a file on the host and fetch that with `shoal pull`\n"
        ),
        "{}",
        &ran.stdout[ran.stdout.len().saturating_sub(400)..]
    );
    assert!(ran.stdout.len() < 1_100_000, "stdout is cut to a bounded tail: {} bytes", ran.stdout.len());
}

#[test]
fn failing_combiner_with_3_mb_of_stderr_fails_the_task_not_the_host() {
    let job = "[job]\nmax_attempts = 1\n[input]\npath = \"data.txt\"\npartitions = 2\n[map]\ncommand = \"cat\"\n\
               [combine]\ncommand = \"head -c 3000000 /dev/zero | tr '\\\\0' e >&2; echo >&2; echo combiner-broke >&2; exit 4\"\n\
               [reduce]\ncommand = \"cat\"\npartitions = 1\n[output]\npath = \"out/all.txt\"\n";
    let dir = job_dir(job);
    let ran = run(dir.path(), 1);
    assert_no_lost_host(&ran);
    let ran = ran.code(1);
    assert!(ran.stderr.contains("the combiner \"head -c 3000000"), "{}", &ran.stderr[..ran.stderr.len().min(2000)]);
    assert!(ran.stderr.contains("  | combiner-broke"), "the end of its stderr is shown: {}", &ran.stderr[..ran.stderr.len().min(2000)]);
    assert!(ran.stderr.len() < 200_000, "the message is bounded: {} bytes", ran.stderr.len());
}

#[test]
fn reduce_partitions_over_the_limit_are_refused_up_front() {
    let job = "[input]\npath = \"data.txt\"\n[map]\ncommand = \"cat\"\n[reduce]\ncommand = \"cat\"\npartitions = 130000\n";
    let dir = job_dir(job);
    let ran = run(dir.path(), 1);
    assert_no_lost_host(&ran);
    let ran = ran.code(2);
    assert!(
        ran.stderr.contains(
            "[reduce] partitions is 130000, over the limit of 65536: every map task reports one bucket per reduce partition in one message"
        ),
        "{}",
        ran.stderr
    );
}

#[test]
fn sync_of_a_file_list_larger_than_a_frame_works() {
    let job = "[sync]\nfiles = [\"tree\"]\n[input]\npath = \"data.txt\"\npartitions = 1\n\
               [map]\ncommand = \"find tree -type f | wc -l\"\n[output]\npath = \"out/count.txt\"\n";
    let dir = job_dir(job);
    // 20,000 names of about 200 bytes: a list of files of 4.5 MB, more
    // than one frame (the reproduction: 50,000 shorter names).
    // Hard links of one file, which the disk makes fastest.
    let deep = dir.path().join(format!("tree/{}", "a-rather-deeply-nested-directory/".repeat(4)));
    let one = dir.path().join("one.txt");
    fs::write(&one, "same\n").unwrap();
    for d in 0..20 {
        let sub = deep.join(format!("group-{d:03}"));
        fs::create_dir_all(&sub).unwrap();
        for f in 0..1000 {
            fs::hard_link(&one, sub.join(format!("a-file-with-a-rather-long-name-number-{f:05}.txt"))).unwrap();
        }
    }
    let ran = run(dir.path(), 1);
    assert_no_lost_host(&ran);
    ran.success();
    assert_eq!(fs::read_to_string(dir.path().join("out/count.txt")).unwrap().trim(), "20000");
}

#[test]
fn a_5_mb_param_is_refused_up_front() {
    let dir = job_dir("[input]\npath = \"data.txt\"\n[map]\ncommand = \"cat\"\n");
    let big = "p".repeat(5_000_000);
    fs::write(dir.path().join("job.toml"), format!("[input]\npath = \"data.txt\"\n[map]\ncommand = \"cat\"\n[params]\nbig = \"{big}\"\n"))
        .unwrap();
    let ran = run(dir.path(), 1);
    assert_no_lost_host(&ran);
    let ran = ran.code(2);
    assert!(
        ran.stderr.contains(
            "[params] big is 5000000 bytes; each param reaches every task as one environment variable, and Linux refuses a variable over 128 KiB"
        ),
        "{}",
        &ran.stderr[..ran.stderr.len().min(2000)]
    );
}

#[test]
fn a_reduce_over_more_map_tasks_than_a_request_can_name_is_refused_up_front() {
    let args: Vec<String> = (0..100_001).map(|i| format!("\"{i}\"")).collect();
    let job = format!("[input]\nargs = [{}]\n[map]\ncommand = \"echo\"\n[reduce]\ncommand = \"cat\"\n", args.join(", "));
    let dir = job_dir(&job);
    let ran = run(dir.path(), 1).code(2);
    assert_eq!(
        ran.stderr.trim(),
        "error: the input makes 100001 map tasks, and a [reduce] can merge the output of at most 100000: each reduce task names a bucket of every map task; give it fewer map tasks (fewer [input] partitions, a larger chunk, or fewer files or args)"
    );
}

#[test]
fn an_unsendable_request_fails_the_run_with_its_reason_not_a_lost_host() {
    // The cluster file's host env is not the job file's to limit: the
    // variables every task gets then make a message too large to send.
    let dir = job_dir("[input]\npath = \"data.txt\"\n[map]\ncommand = \"cat\"\n");
    let (_c, cluster) = local_cluster(1, 1);
    let text = fs::read_to_string(&cluster).unwrap();
    fs::write(&cluster, format!("{text}env = {{ BIG = \"{}\" }}\n", "b".repeat(5_000_000))).unwrap();
    let ran = Shoal::new()
        .in_dir(dir.path())
        .env("HOME", dir.path().join("home").to_str().unwrap())
        .args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()])
        .run();
    assert_no_lost_host(&ran);
    let ran = ran.code(1);
    assert!(
        ran.stderr.contains(
            "failed: the run's task variables (the host's env and [params]) are too large: cannot send to host `a`: the RunEnv message is 5000"
        ),
        "{}",
        ran.stderr
    );
}
