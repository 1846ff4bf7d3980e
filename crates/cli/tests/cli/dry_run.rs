//! `shoal run --dry-run` shows the hosts the run itself uses: the dry run
//! and the run take their placement from the same code.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use shoal_testkit::Shoal;

/// Three local hosts of different speeds, so that weighted shares differ.
fn cluster(dir: &Path) -> String {
    let mut text = String::from("[defaults]\nheartbeat_timeout = 15\nslots = 1\n");
    for (name, speed) in [("a", 1.0), ("b", 3.0), ("c", 2.0)] {
        let work = dir.join("hosts").join(name);
        text.push_str(&format!("\n[hosts.{name}]\ntransport = \"local\"\nspeed = {speed}\nworkdir = \"{}\"\n", work.display()));
    }
    let path = dir.join("cluster.toml");
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A weighted map over 12 partitions and a reduce of 2: the dry run once
/// dealt the shares over map and reduce tasks together, in another order
/// than the run, and printed other hosts than the run used.
#[test]
fn dry_run_of_a_weighted_job_with_a_reduce_shows_the_hosts_the_run_uses() {
    let dir = tempfile::tempdir().unwrap();
    let data: String = (1..=1200).map(|i| format!("{i}\tv{}\n", i % 7)).collect();
    fs::write(dir.path().join("data.txt"), data).unwrap();
    let job = "[input]\npath = \"data.txt\"\npartitions = 12\nweighted = true\n[map]\ncommand = \"cat\"\n\
               [reduce]\ncommand = \"cat\"\npartitions = 2\n[output]\npath = \"out.txt\"\n";
    fs::write(dir.path().join("job.toml"), job).unwrap();
    let cluster = cluster(dir.path());
    let home = dir.path().join("home").display().to_string();
    let dry =
        Shoal::new().in_dir(dir.path()).env("HOME", &home).args(["run", "job.toml", "--cluster", &cluster, "--dry-run"]).run().success();
    let rows: Vec<Vec<&str>> = dry.stdout.lines().skip(1).take(14).map(|l| l.split_whitespace().collect()).collect();
    let planned: BTreeMap<u64, String> = rows[..12].iter().map(|r| (r[0].parse().unwrap(), r[3].to_string())).collect();
    let ran = Shoal::new().in_dir(dir.path()).env("HOME", &home).args(["run", "job.toml", "--cluster", &cluster, "--json"]).run().success();
    let summary = ran.json();
    let used: BTreeMap<u64, String> = summary["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["stage"] == 0)
        .map(|a| (a["partition"].as_u64().unwrap(), a["host"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(planned, used, "the dry run printed other hosts than the run used\n{}", dry.stdout);
    for reduce in &rows[12..] {
        assert_eq!(reduce[3..].join(" "), "(dynamic: first free slot)", "a reduce is placed when it starts\n{}", dry.stdout);
    }
}
