//! Smaller hardening of issue 17: task text shown on a terminal cannot
//! drive it (item 11), counters cannot wrap (item 12), a host cannot
//! report for attempts it was not sent (item 10).

use std::fs;

use shoal_testkit::{local_cluster, Shoal};

fn job(dir: &std::path::Path, text: &str) {
    fs::write(dir.join("job.toml"), text).unwrap();
}

#[test]
fn escape_sequences_in_task_stderr_do_not_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, cluster) = local_cluster(1, 1);
    // Retitles the terminal, then clears the screen.
    job(dir.path(), "[job]\nmax_attempts = 1\n[input]\nargs = [\"x\"]\n[map]\ncommand = \"printf '\\\\033]0;pwned\\\\007\\\\033[2Jboom' >&2; exit 3\"\n");
    let ran = Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run().code(1);
    assert!(!ran.stderr.contains('\x1b') && !ran.stderr.contains('\x07'), "raw control characters reached the terminal: {:?}", ran.stderr);
    assert!(ran.stderr.contains("\\x1b]0;pwned\\x07\\x1b[2Jboom"), "{}", ran.stderr);
}

#[test]
fn counters_saturate_instead_of_wrapping() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, cluster) = local_cluster(1, 2);
    job(dir.path(), "[input]\nargs = [\"1\", \"2\", \"3\"]\n[map]\ncommand = \"echo reporter:counter:g,big,9223372036854775807 >&2; echo reporter:counter:g,small,{} >&2\"\n");
    let ran = Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--json", "--cluster", cluster.to_str().unwrap()]).run().success();
    let summary = ran.json();
    assert_eq!(summary["counters"]["g,big"], i64::MAX, "{summary}");
    assert_eq!(summary["counters"]["g,small"], 6, "{summary}");
}

#[test]
fn reports_for_attempts_a_host_never_ran_are_ignored() {
    // Debug builds' agents forge a successful report, with the output
    // "forged", for every attempt sent to another agent, and a second one
    // for their own, after each real report (SHOAL_FAILPOINT, compiled out
    // of release builds).
    let dir = tempfile::tempdir().unwrap();
    let (_c, cluster) = local_cluster(2, 2);
    let args: Vec<String> = (0..40).map(|i| format!("\"{i}\"")).collect();
    job(
        dir.path(),
        &format!("[input]\nargs = [{}]\n[map]\ncommand = \"sleep 0.05; echo {{}}\"\n[output]\npath = \"out.txt\"\n", args.join(", ")),
    );
    Shoal::new()
        .in_dir(dir.path())
        .env("SHOAL_FAILPOINT", format!("forge-reports:{}", _c.path().display()))
        .args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()])
        .run()
        .success();
    let want: String = (0..40).map(|i| format!("{i}\n")).collect();
    assert_eq!(fs::read_to_string(dir.path().join("out.txt")).unwrap(), want);
}
