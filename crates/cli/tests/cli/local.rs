//! Integration tests of the real binary on the local transport: agents are
//! child processes of the driver, one work dir per simulated host.

use shoal_testkit::{local_cluster, Shoal};

#[test]
fn check_reports_one_local_agent() {
    let (dir, cluster) = local_cluster(1, 2);
    let ran = Shoal::new().in_dir(dir.path()).args(["check", "--json", "--cluster", cluster.to_str().unwrap()]).run().success();
    let rows = ran.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "a");
    assert_eq!(rows[0]["ready"], true);
    assert_eq!(rows[0]["slots"], 2);
    assert!(rows[0]["cores"].as_u64().unwrap() >= 1);
}

#[test]
fn check_table_lists_three_local_agents() {
    let (dir, cluster) = local_cluster(3, 1);
    let ran = Shoal::new().in_dir(dir.path()).args(["check", "--cluster", cluster.to_str().unwrap()]).run().success();
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert!(lines[0].starts_with("HOST"), "{}", ran.stdout);
    for (line, name) in lines[1..].iter().zip(["a", "b", "c"]) {
        assert!(line.starts_with(name) && line.contains("ready"), "{}", ran.stdout);
    }
}

#[test]
fn default_cluster_is_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let ran = Shoal::new().in_dir(dir.path()).env("HOME", home.to_str().unwrap()).args(["check", "--json"]).run().success();
    assert_eq!(ran.json()[0]["name"], "local");
    assert!(home.join(".shoal").is_dir(), "the default work dir is ~/.shoal");
}

#[test]
fn exec_groups_identical_output() {
    let (dir, cluster) = local_cluster(3, 1);
    let ran = Shoal::new()
        .in_dir(dir.path())
        .args(["exec", "--cluster", cluster.to_str().unwrap(), "--", "echo hello; case $PWD in */b) echo bee;; esac"])
        .run()
        .success();
    assert_eq!(ran.stdout, "---------------- a,c (exit code 0)\nhello\n---------------- b (exit code 0)\nhello\nbee\n");
}

#[test]
fn exec_failure_names_the_hosts() {
    let (dir, cluster) = local_cluster(2, 1);
    let ran = Shoal::new()
        .in_dir(dir.path())
        .args(["exec", "--cluster", cluster.to_str().unwrap(), "--", "case $PWD in */b) exit 3;; esac"])
        .run()
        .code(1);
    assert!(ran.stdout.contains("---------------- b (exit code 3)"), "{}", ran.stdout);
    assert!(ran.stderr.contains("error: the command failed on 1 of 2 hosts: b"), "{}", ran.stderr);
}

#[test]
fn agent_killed_with_sigkill_is_reported() {
    let (dir, cluster) = local_cluster(2, 1);
    // The exec's shell is a child of the agent: $PPID is the agent itself.
    let ran = Shoal::new()
        .in_dir(dir.path())
        .args(["exec", "--cluster", cluster.to_str().unwrap(), "--", "case $PWD in */b) kill -9 $PPID; sleep 5;; esac; echo alive"])
        .run()
        .code(1);
    assert!(ran.stdout.contains("---------------- a (exit code 0)\nalive\n"), "{}", ran.stdout);
    assert!(ran.stdout.contains("---------------- b (unreachable)\nstderr: host `b` is gone\n"), "{}", ran.stdout);
    assert!(ran.stderr.contains("failed on 1 of 2 hosts: b"), "{}", ran.stderr);
}

#[test]
fn hosts_flag_selects_hosts() {
    let (dir, cluster) = local_cluster(3, 1);
    let ran = Shoal::new()
        .in_dir(dir.path())
        .args(["exec", "--cluster", cluster.to_str().unwrap(), "--hosts", "a,c", "--", "true"])
        .run()
        .success();
    assert_eq!(ran.stdout, "---------------- a,c (exit code 0)\n");
}

#[test]
fn init_writes_templates_that_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    Shoal::new().in_dir(dir.path()).args(["init"]).run().success().stdout_has("wrote ./cluster.toml");
    Shoal::new().in_dir(dir.path()).args(["init"]).run().code(2).stderr_has("already exists; pass --force to overwrite it");
    let home = dir.path().join("home");
    Shoal::new().in_dir(dir.path()).env("HOME", home.to_str().unwrap()).args(["check"]).run().success().stdout_has("ready");
}

#[test]
fn example_ssh_runner_matches_reference_on_two_local_hosts() {
    let (dir, cluster) = local_cluster(2, 2);
    Shoal::example("ssh-runner")
        .args(["--cluster", cluster.to_str().unwrap()])
        .env("CORPUS_BYTES", "1000000")
        .run()
        .success()
        .stdout_has("ssh-runner: output matches the single-machine reference");
    drop(dir);
}

#[test]
fn example_job_splitter_matches_reference() {
    Shoal::example("job-splitter").run().success().stdout_has("job-splitter: 30 results match the one-by-one reference");
}

#[test]
fn example_split_copy_sends_no_input_twice() {
    let (dir, cluster) = local_cluster(3, 1);
    Shoal::example("split-copy")
        .args(["--cluster", cluster.to_str().unwrap()])
        .run()
        .success()
        .stdout_has("split-copy: 3 partitions, no input re-sent, sums match, pulled chunks rebuild the file");
    drop(dir);
}

#[test]
fn example_wordcount_streaming_matches_reference() {
    let (dir, cluster) = local_cluster(2, 2);
    Shoal::example("wordcount-streaming")
        .args(["--cluster", cluster.to_str().unwrap()])
        .env("CORPUS_BYTES", "500000")
        .run()
        .success()
        .stdout_has("words match the reference, with and without combining");
    drop(dir);
}

#[test]
fn example_key_sharded_routes_every_key_to_its_shard() {
    let (dir, cluster) = local_cluster(3, 1);
    Shoal::example("key-sharded")
        .args(["--cluster", cluster.to_str().unwrap()])
        .run()
        .success()
        .stdout_has("key-sharded: 1000 keys, each on shard key mod 5, state matches the reference");
    drop(dir);
}
