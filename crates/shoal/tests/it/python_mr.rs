//! The Python package's job forms beyond the Dataset chain, on local
//! workers: functions imported from the program's own modules
//! (`examples/python/lengths.py` with `helpers.py`), `shoal.MapReduceJob`
//! (`examples/python/mr_wordcount.py`, both reducer forms) and
//! `Dataset.pipe` (a plain command, a failing one, and one in a FROM-scratch
//! busybox image), each against plain Python.

use std::path::Path;
use std::process::Command;

use shoal_testkit::data::corpus;
use shoal_testkit::docker::busybox_image;
use shoal_testkit::local::local_workers;
use shoal_testkit::reference::sorted_lines;
use shoal_testkit::{bin, Shoal};

fn python(dir: &Path, script: &Path) -> Shoal {
    Shoal::python().arg(script).in_job_dir(dir)
}

fn example(dir: &Path, name: &str) -> Shoal {
    python(dir, &bin::repo().join(format!("examples/python/{name}.py")))
}

fn script(dir: &Path, name: &str, text: &str) -> Shoal {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    python(dir, &path)
}

fn on_workers(dir: &Path, n: usize) -> Vec<String> {
    vec!["--quiet".into(), "--cluster".into(), local_workers(dir, n).display().to_string()]
}

#[test]
fn functions_imported_from_the_programs_own_module_reach_2_workers() {
    let dir = tempfile::tempdir().unwrap();
    corpus(&dir.path().join("corpus.txt"), 2000, 11);
    let plain = example(dir.path(), "lengths").args(["corpus.txt", "--plain"]).run().success();
    let got = example(dir.path(), "lengths").args(on_workers(dir.path(), 2)).arg("corpus.txt").run().success();
    assert_eq!(got.stdout, plain.stdout, "word lengths by helpers.py's functions on 2 workers");
    assert!(plain.stdout.lines().count() > 3, "a real answer: {}", plain.stdout);
}

#[test]
fn mapreduce_job_word_count_matches_plain_python_on_1_and_2_workers() {
    let dir = tempfile::tempdir().unwrap();
    corpus(&dir.path().join("corpus.txt"), 3000, 5);
    example(dir.path(), "mr_wordcount").args(["--plain", "-i", "corpus.txt", "-o", "plain.tsv"]).run().success();
    let want = sorted_lines(&dir.path().join("plain.tsv"));
    assert!(want.len() > 5, "the corpus has several words: {}", want.len());
    for n in 1..=2 {
        for (form, class) in [(None, "WordCount"), (Some("--stateful"), "ShardWordCount")] {
            let out = format!("out-{n}-{class}.tsv");
            let r = example(dir.path(), "mr_wordcount")
                .args(on_workers(dir.path(), n))
                .args(form)
                .args(["--partitions", "3", "-i", "corpus.txt", "--output", &out])
                .run()
                .success();
            assert_eq!(r.stdout, format!("{class}: {} records from corpus.txt written to {out}\n", want.len()));
            assert_eq!(sorted_lines(&dir.path().join(&out)), want, "{class} on {n} workers");
        }
    }
}

const NO_MAPPER: &str = r#"
import shoal
class NoMapper(shoal.MapReduceJob):
    def reducer(self, key, values):
        yield key, sum(values)
NoMapper().run()
"#;

#[test]
fn a_mapreduce_job_without_a_mapper_is_refused_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "a b\n").unwrap();
    script(dir.path(), "nomapper.py", NO_MAPPER).args(["-i", "in.txt", "-o", "out.tsv"]).run().fails_with(
        2,
        "error: the job NoMapper has no mapper; define `def mapper(self, key, line)` in the class, \
         yielding (key, value) pairs for each input line\n",
    );
    assert!(!dir.path().join(".shoal/runs").exists(), "no job ran");
    example(dir.path(), "mr_wordcount")
        .args(["-i", "missing.txt", "-o", "out.tsv"])
        .run()
        .fails_with(2, "the input missing.txt does not exist; give an existing file or directory to -i/--input\n");
}

const PIPE: &str = r#"
import shoal
words = [f"word{i}" for i in range(20000)]
with shoal.Context() as sc:
    got = sc.parallelize(words, 4).pipe("tr a-z A-Z").collect()
    print("ok tr" if got == [w.upper() for w in words] else f"DIFFERS tr: {got[:3]}")
    got = sorted(sc.parallelize(range(100000), 2).pipe("head -2").collect())
    print("ok head" if got == ["0", "1", "50000", "50001"] else f"DIFFERS head: {got}")
    got = sc.parallelize([(1, "a"), "b"], 1).pipe("cat").map(len).collect()
    print("ok str" if got == [8, 1] else f"DIFFERS str: {got}")
"#;

#[test]
fn pipe_sends_each_partition_through_a_command_on_2_workers() {
    let dir = tempfile::tempdir().unwrap();
    let r = script(dir.path(), "pipe.py", PIPE).args(on_workers(dir.path(), 2)).run().success();
    assert_eq!(r.stdout, "ok tr\nok head\nok str\n", "stderr:\n{}", r.stderr);
}

const PIPE_FAILS: &str = r#"
import shoal
with shoal.Context() as sc:
    print(sc.range(10, n=2).pipe("cat >/dev/null; echo first >&2; echo broken here >&2; exit 3").collect())
"#;

#[test]
fn a_failing_pipe_command_fails_the_task_with_its_exit_code_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let r = script(dir.path(), "pipefails.py", PIPE_FAILS).args(on_workers(dir.path(), 1)).run();
    r.fails_with(
        1,
        "  | shoal: task of job 0 failed: RuntimeError: pipe('cat >/dev/null; echo first >&2; echo broken here >&2; exit 3') \
         exited with code 3; the end of its stderr:\n  | first\n  | broken here\n  | \
         fix the command (run it by hand on a few records) or the records it reads\n  | \
         a Python function raised RuntimeError in map partition ",
    );
}

const PIPE_IMAGE: &str = r#"
import os, shoal
with shoal.Context() as sc:
    got = sc.parallelize(["alpha beta", "gamma"] * 500, 2).pipe("tr a-z A-Z", image="shoal-test-busybox:pipe").collect()
    print("ok image" if got == ["ALPHA BETA", "GAMMA"] * 500 else f"DIFFERS image: {got[:3]}")
    got = sc.range(4, n=2).pipe("id -u", image="shoal-test-busybox:pipe").collect()
    print("ok user" if got == [str(os.getuid())] * 2 else f"DIFFERS user: {got}")
"#;

#[test]
fn pipe_runs_the_command_in_a_docker_image() {
    let Some(_g) = busybox_image("shoal-test-busybox:pipe") else { return };
    let dir = tempfile::tempdir().unwrap();
    let r = script(dir.path(), "pipeimage.py", PIPE_IMAGE).args(on_workers(dir.path(), 2)).run().success();
    assert_eq!(r.stdout, "ok image\nok user\n", "stderr:\n{}", r.stderr);
    let left = Command::new("docker").args(["ps", "-aq", "--filter", "ancestor=shoal-test-busybox:pipe"]).output().unwrap();
    assert!(left.stdout.is_empty(), "--rm removed every container: {}", String::from_utf8_lossy(&left.stdout));
}
