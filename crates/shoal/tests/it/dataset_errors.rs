//! Bad input to the Dataset API is an error with a sentence (what, where,
//! what to do) returned through the API's `Result`, never a panic of the
//! driver or of a task: a record `parallelize` cannot encode, and a host
//! file that `text_file_on_hosts` does not find. (A malformed range or
//! layout cannot be made from a program; their unit tests are in
//! `dataset/narrow.rs` and `shoal_wire::task_env`.)

use std::path::Path;

use shoal_testkit::local::local_workers;
use shoal_testkit::{Ran, Shoal};

fn run(dir: &Path, program: &str, args: &[&str]) -> Ran {
    Shoal::program(program).in_job_dir(dir).args(args).run()
}

#[test]
fn a_record_parallelize_cannot_encode_is_an_error_at_the_call_on_the_driver() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), "bad_input", &["--quiet", "unencodable", "5"]).code(2);
    let r = r.stderr_has("error: parallelize at crates/shoal/examples/bad_input.rs:");
    let r = r.stderr_has(": record 3 of 5 cannot be encoded (cannot encode a record: ");
    let r = r.stderr_has(
        "); every record must serialize with serde (a derived Serialize does), so fix the type's Serialize or leave the record out\n",
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(!dir.path().join(".shoal/runs").exists(), "no job ran");
    assert_eq!(run(dir.path(), "bad_input", &["--quiet", "unencodable", "3"]).success().value("count"), "3");
}

#[test]
fn a_missing_host_file_fails_the_job_with_a_sentence_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("w0.txt"), "a\nb\n").unwrap();
    let cluster = local_workers(dir.path(), 2).display().to_string();
    let pattern = format!("{}/{{host}}.txt", data.display());
    let r = run(dir.path(), "bad_input", &["--cluster", &cluster, "--quiet", "host-file", &pattern]).code(1);
    let r = r.stderr_has(&format!(
        "shoal: task of job 0 failed: text_file_on_hosts({pattern:?}): host `w1` cannot read {}/w1.txt: No such file or \
         directory (os error 2); put the file there (a relative path starts in the home directory on the host), or leave \
         `w1` out of the cluster file",
        data.display()
    ));
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    std::fs::write(data.join("w1.txt"), "c\n").unwrap();
    let r = run(dir.path(), "bad_input", &["--cluster", &cluster, "--quiet", "host-file", &pattern]).success();
    assert_eq!(r.value("lines"), "3");
}
