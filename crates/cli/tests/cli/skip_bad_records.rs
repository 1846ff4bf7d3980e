//! `[job] skip_bad_records`: a mapper that crashes on one record gets the
//! job done without it, and the record is reported (Hadoop's skipping).

use std::fs;

use shoal_testkit::{local_cluster, Shoal};

/// Upper-cases its lines and dies on the line `poison`.
const MAPPER: &str =
    "while IFS= read -r l; do if [ \"$l\" = poison ]; then echo \"cannot parse $l\" >&2; exit 3; fi; echo \"$l\" | tr a-z A-Z; done";

fn job_dir(skip: u32, poison_at: &[usize]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..400).map(|i| if poison_at.contains(&i) { "poison".to_string() } else { format!("rec{i}") }).collect();
    let data = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    fs::write(dir.path().join("data.txt"), &data).unwrap();
    let job = format!(
        "[job]\nskip_bad_records = {skip}\n[input]\npath = \"data.txt\"\npartitions = 4\n[map]\ncommand = '{MAPPER}'\n[output]\npath = \"out.txt\"\n"
    );
    fs::write(dir.path().join("job.toml"), job).unwrap();
    let want = lines.iter().filter(|l| *l != "poison").map(|l| format!("{}\n", l.to_uppercase())).collect();
    (dir, want)
}

#[test]
fn a_record_that_kills_the_mapper_is_skipped_and_reported() {
    let (dir, want) = job_dir(1, &[250]);
    let (_c, cluster) = local_cluster(2, 1);
    let ran = Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--json", "--cluster", cluster.to_str().unwrap()]).run().success();
    assert_eq!(fs::read_to_string(dir.path().join("out.txt")).unwrap(), want);
    let summary = ran.json();
    let skipped = summary["skipped_records"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{summary}");
    let data = fs::read_to_string(dir.path().join("data.txt")).unwrap();
    assert_eq!(skipped[0]["offset"], data.find("poison").unwrap() as u64);
    assert_eq!(skipped[0]["partition"], 2);
    assert_eq!(skipped[0]["head"], "poison");
    assert_eq!(skipped[0]["input"], "data.txt");
    assert!(ran.stderr.contains("skipped a bad record at byte"), "{}", ran.stderr);
}

#[test]
fn more_bad_records_than_allowed_fail_the_job() {
    let (dir, _) = job_dir(1, &[10, 20]);
    let (_c, cluster) = local_cluster(1, 2);
    let ran = Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run().code(1);
    assert!(ran.stderr.contains("shoal: skip mode: this task failed on 2 records, more than [job] skip_bad_records = 1"), "{}", ran.stderr);
    assert!(!dir.path().join("out.txt").exists());
}

#[test]
fn without_skip_bad_records_the_job_fails() {
    let (dir, _) = job_dir(0, &[250]);
    let (_c, cluster) = local_cluster(1, 2);
    let ran = Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run().code(1);
    assert!(ran.stderr.contains("cannot parse poison"), "{}", ran.stderr);
}
