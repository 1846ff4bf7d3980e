//! The Dataset API over real ssh: three hosts made by
//! `scripts/testcluster` (network namespaces, each with its own sshd).
//! The program deploys itself to every host; results must be exact even
//! when a closure panics on one host or a host dies in the middle of a job.
//! Needs root; in CI (`CI=true`) a missing prerequisite is a failure.

use std::path::Path;

use shoal_testkit::data::{corpus, join_data, records};
use shoal_testkit::netns::{self, script};
use shoal_testkit::reference::{kmeans, parse_counts, parse_points, pi_hits, sorted_lines, wordcount};
use shoal_testkit::runs::latest_summary;
use shoal_testkit::Shoal;

fn on_cluster<'a>(c: &'a Path, rest: &[&'a str]) -> Vec<String> {
    let mut v = vec!["--quiet".to_string(), "--cluster".into(), c.display().to_string()];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn examples_are_exact_on_three_ssh_hosts() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    corpus(&dir.path().join("corpus.txt"), 4000, 21);
    let r =
        Shoal::program("wordcount").in_job_dir(dir.path()).args(strs(&on_cluster(&c.file, &["corpus.txt", "counts.tsv"]))).run().success();
    let want: Vec<(String, u64)> = wordcount(&dir.path().join("corpus.txt")).into_iter().collect();
    assert_eq!(parse_counts(&std::fs::read_to_string(dir.path().join("counts.tsv")).unwrap()), want);
    assert!(r.stdout.starts_with(&format!("{} distinct words", want.len())));

    let r = Shoal::program("kmeans").in_job_dir(dir.path()).args(strs(&on_cluster(&c.file, &["30000", "4", "10"]))).run().success();
    assert_eq!(parse_points(&r.stdout), kmeans(30_000, 4, 10));

    records(&dir.path().join("records.txt"), 8000, 4);
    Shoal::program("sort").in_job_dir(dir.path()).args(strs(&on_cluster(&c.file, &["records.txt", "sorted.txt"]))).run().success();
    let got: Vec<String> = std::fs::read_to_string(dir.path().join("sorted.txt")).unwrap().lines().map(String::from).collect();
    assert!(got == sorted_lines(&dir.path().join("records.txt")), "sorted and complete on 3 hosts");

    let r = Shoal::program("sum").in_job_dir(dir.path()).args(strs(&on_cluster(&c.file, &["20000", "9"]))).run().success();
    assert_eq!(r.value("sum"), (20_000i64 * 20_001).to_string());
    assert_eq!(r.value("count"), "20000");
    let r = Shoal::program("pi").in_job_dir(dir.path()).args(strs(&on_cluster(&c.file, &["300000", "9"]))).run().success();
    assert_eq!(r.value("inside"), format!("{} of 300000", pi_hits(300_000)));

    let totals = join_data(dir.path(), 30, 1500);
    let r = Shoal::program("join").in_job_dir(dir.path()).args(strs(&on_cluster(&c.file, &["users.tsv", "orders.tsv"]))).run().success();
    assert_eq!(parse_counts(&r.stdout), totals);
}

#[test]
fn a_closure_that_panics_on_one_host_is_retried_on_another() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    let r = Shoal::program("faults").in_job_dir(dir.path()).args(strs(&on_cluster(&c.file, &["panic-on", "h2", "1200"]))).run().success();
    assert_eq!(r.value("sum"), (2 * (0..1200i64).sum::<i64>()).to_string());
    let summary = latest_summary(dir.path());
    let attempts = summary["attempts"].as_array().unwrap();
    let failed_on_h2 = attempts.iter().filter(|a| a["host"] == "h2" && a["outcome"] == "failed").count();
    assert!(failed_on_h2 > 0, "some attempt failed on h2: {summary}");
    assert!(attempts.iter().all(|a| a["outcome"] != "failed" || a["host"] == "h2"), "failures only on h2: {summary}");
    let tail = attempts.iter().find(|a| a["outcome"] == "failed").unwrap()["stderr_tail"].as_str().unwrap().to_string();
    assert!(tail.contains("the program panicked at crates/shoal/examples/faults.rs:") && tail.contains("boom on h2"), "{tail}");
}

#[test]
fn a_host_killed_in_the_middle_of_a_job_changes_nothing_but_the_time() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    let args = on_cluster(&c.file, &["slow", "240", "50"]);
    let child = Shoal::program("faults")
        .command()
        .args(&args)
        .current_dir(dir.path())
        .env_remove("SHOAL_CLUSTER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Each map task sleeps 20 x 50 ms; kill h2 once one runs there.
    c.kill_once_running("h2", " slow 240 50", 60);
    let out = child.wait_with_output().unwrap();
    let _ = script(&["restart", "h2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let want: Vec<(i64, u64)> = (0..7).map(|k| (k, (0..240).filter(|i| i % 7 == k).count() as u64)).collect();
    assert!(stdout.contains(&format!("groups {want:?}")), "{stdout}");
    let summary = latest_summary(dir.path());
    assert!(summary["lost"].as_array().is_some_and(|l| l.iter().any(|h| h[0] == "h2")), "h2 was lost: {summary}");
}

#[test]
fn host_files_are_read_on_their_own_ssh_host() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut lines = 0;
    for (i, h) in ["h1", "h2", "h3"].iter().enumerate() {
        let text: String = (0..=i * 10).map(|j| format!("{h} word{j}\n")).collect();
        lines += i * 10 + 1;
        std::fs::write(dir.path().join(format!("{h}.txt")), text).unwrap();
    }
    let pattern = format!("{}/{{host}}.txt", dir.path().display());
    let r = Shoal::program("host_files").in_job_dir(dir.path()).args(strs(&on_cluster(&c.file, &[&pattern]))).run().success();
    assert_eq!(r.value("lines"), lines.to_string());
    assert_eq!(r.value("words"), (2 * lines).to_string());
    assert!(r.stdout.contains("21\th3\n"), "each host read its own file: {}", r.stdout);
    let summary = latest_summary(dir.path());
    for a in summary["attempts"].as_array().unwrap().iter().filter(|a| a["stage"] == 0) {
        let want = format!("h{}", a["partition"].as_u64().unwrap() + 1);
        assert_eq!(a["host"], want.as_str(), "partition ran on its own host: {summary}");
    }
}

#[test]
fn a_shared_text_file_is_cut_here_and_read_by_each_ssh_host() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    corpus(&dir.path().join("corpus.txt"), 6000, 33);
    let want: Vec<(String, u64)> = wordcount(&dir.path().join("corpus.txt")).into_iter().collect();
    let input_sent = |dir: &Path| -> u64 {
        let runs = std::fs::read_dir(dir.join(".shoal/runs")).unwrap().filter_map(|e| e.ok());
        runs.filter_map(|r| std::fs::read_to_string(r.path().join("summary.json")).ok())
            .map(|s| serde_json::from_str::<serde_json::Value>(&s).unwrap()["input_bytes_sent"].as_u64().unwrap_or(0))
            .sum()
    };
    // The same program, shipped from here and read in place.
    Shoal::program("wordcount").in_job_dir(dir.path()).args(strs(&on_cluster(&c.file, &["corpus.txt", "shipped.tsv"]))).run().success();
    assert!(input_sent(dir.path()) > 0, "text_file ships its partitions from the driver");
    let shared_dir = tempfile::tempdir().unwrap();
    let shared = format!("shared:{}", dir.path().join("corpus.txt").display());
    Shoal::program("wordcount")
        .in_job_dir(shared_dir.path())
        .args(strs(&on_cluster(&c.file, &[&shared, &dir.path().join("counts.tsv").display().to_string()])))
        .run()
        .success();
    assert_eq!(parse_counts(&std::fs::read_to_string(dir.path().join("counts.tsv")).unwrap()), want);
    assert_eq!(input_sent(shared_dir.path()), 0, "a shared: input is never sent");
    let summary = latest_summary(shared_dir.path());
    let hosts: std::collections::BTreeSet<&str> =
        summary["attempts"].as_array().unwrap().iter().map(|a| a["host"].as_str().unwrap()).collect();
    assert!(hosts.len() >= 2, "{summary}");
}

#[test]
fn a_rust_dataset_program_runs_on_a_standing_cluster_with_the_exact_answer() {
    let Some((_g, c)) = netns::up() else { return };
    netns::heal_all();
    let lab = shoal_testkit::standing::Standing::new("rust");
    lab.up(&["--cluster", &c.file.display().to_string()]);
    let dir = tempfile::tempdir().unwrap();
    corpus(&dir.path().join("corpus.txt"), 4000, 23);
    let access = lab.dir().join("client.access").display().to_string();
    let r = Shoal::program("wordcount").in_job_dir(dir.path()).args(["--on", &access, "corpus.txt", "counts.tsv"]).run().success();
    let want: Vec<(String, u64)> = wordcount(&dir.path().join("corpus.txt")).into_iter().collect();
    assert_eq!(parse_counts(&std::fs::read_to_string(dir.path().join("counts.tsv")).unwrap()), want);
    assert!(r.stdout.starts_with(&format!("{} distinct words", want.len())));
    // Its runs went to the workers of the standing cluster.
    let summary = latest_summary(dir.path());
    let hosts: Vec<&str> = summary["hosts"].as_array().unwrap().iter().map(|h| h["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["h1", "h2", "h3"], "{summary}");
}
