//! The state dir through the `shoal` binary: `--resume` finds the latest
//! run of the same job only (a regression: a job whose name was part of
//! another's, `count` in `word-count`, resumed the other job's run), and
//! `shoal logs`, `shoal report` and `shoal runs` find runs by their ids.

use std::path::Path;

use shoal_testkit::Shoal;

/// A job dir with a cluster of one local host and a `cat` job per name.
fn job_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("data.txt"), "a\nb\nc\n").unwrap();
    let cluster = format!("[hosts.a]\ntransport = \"local\"\nslots = 1\nworkdir = \"{}\"\n", p.join("host").display());
    std::fs::write(p.join("cluster.toml"), cluster).unwrap();
    for name in names {
        let job = format!(
            "[job]\nname = \"{name}\"\n[input]\npath = \"data.txt\"\n[map]\ncommand = \"cat\"\n[output]\npath = \"out/{name}.txt\"\n"
        );
        std::fs::write(p.join(format!("{name}.toml")), job).unwrap();
    }
    dir
}

fn shoal(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let r = Shoal::new().in_job_dir(dir).args(args).run();
    (r.code, r.stdout, r.stderr)
}

#[test]
fn resume_takes_no_run_of_a_job_whose_name_contains_this_one() {
    let dir = job_dir(&["word-count", "count"]);
    let (code, _, stderr) = shoal(dir.path(), &["run", "word-count.toml", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = shoal(dir.path(), &["run", "count.toml", "--resume"]);
    assert_eq!((code, stderr.as_str()), (2, "error: nothing to resume: no earlier run of job \"count\" in .shoal/runs\n"));
    let (code, stdout, stderr) = shoal(dir.path(), &["run", "word-count.toml", "--resume", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (&summary["reused"], &summary["attempts"]),
        (&summary["tasks"], &serde_json::json!([])),
        "the run of the same job is resumed: {summary}"
    );
}

#[test]
fn runs_are_found_by_id_and_as_latest() {
    let dir = job_dir(&["wc"]);
    let (code, stdout, stderr) = shoal(dir.path(), &["run", "wc.toml", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let id = summary["run"].as_str().unwrap();
    assert_eq!(id.parse::<shoal::driver::run::id::RunId>().map(|r| r.job().to_string()), Ok("wc".into()));

    let (code, stdout, _) = shoal(dir.path(), &["report", "latest"]);
    assert_eq!((code, stdout), (0, format!(".shoal/runs/{id}/report.html\n")));
    let (code, stdout, _) = shoal(dir.path(), &["runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((code, &runs[0]["run"], &runs[0]["status"]), (0, &serde_json::json!(id), &serde_json::json!("succeeded")));

    let (code, _, stderr) = shoal(dir.path(), &["logs", "20261201-231055-wc"]);
    assert_eq!((code, stderr.as_str()), (2, "error: no run \"20261201-231055-wc\" in .shoal/runs; `shoal runs` lists them\n"));
}
