//! `shoal agent` reads its command line with `shoal_wire::agent_args`:
//! a bad one is a usage error (exit 2) with a sentence, before anything
//! is created.

use shoal_testkit::Shoal;

fn agent(args: &[&str]) -> (i32, String) {
    let r = Shoal::new().arg("agent").args(args).run();
    (r.code, r.stderr)
}

#[test]
fn a_bad_agent_command_line_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("w");
    let (code, stderr) = agent(&["--workdir", work.to_str().unwrap(), "--lease-ms", "soon"]);
    assert_eq!(
        (code, stderr.as_str()),
        (2, "error: agent: --lease-ms \"soon\" is not a whole number; give it in digits, e.g. --lease-ms 10000\n")
    );
    assert!(!work.exists(), "nothing is created for a bad command line");
}

#[test]
fn an_agent_whose_work_dir_cannot_be_made_says_which() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let bad = dir.path().join("file/w");
    let (code, stderr) = agent(&["--workdir", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        format!("error: cannot create the work dir {}: Not a directory (os error 20); give the host a `workdir` in the cluster file that this user may create\n", bad.display())
    );
}
