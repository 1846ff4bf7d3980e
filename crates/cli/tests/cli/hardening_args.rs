//! An argument of an argument job reaches its command as data, whatever
//! quotes the command puts around `{}` (issue 17, item 1: each of these
//! reproductions created the file `pwned` before the fix).

use std::fs;

use shoal_testkit::{local_cluster, Shoal};

/// Arguments that turn into commands when pasted into the command text.
const HOSTILE: [&str; 4] = ["my file; touch pwned", "$(touch pwned)", "x'; touch pwned; echo '", "`touch pwned`"];

fn assert_args_were_data(dir: &std::path::Path, out: &str) {
    assert!(!dir.join("pwned").exists(), "an argument ran as a command in the job dir");
    let hosts = dir.join("hosts");
    let found = walk(&hosts).into_iter().filter(|p| p.ends_with("pwned")).collect::<Vec<_>>();
    assert!(found.is_empty(), "an argument ran as a command on a host: {found:?}");
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    let mut want = HOSTILE.to_vec();
    want.sort_unstable();
    assert_eq!(got, want);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return vec![] };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

#[test]
fn quoted_braces_in_a_job_file_do_not_run_the_argument() {
    for template in ["echo '{}'", "echo \\\"{}\\\"", "echo {}", "printf '%s\\\\n' \\\"$(echo '{}')\\\""] {
        let dir = tempfile::tempdir().unwrap();
        let (_c, cluster) = local_cluster(1, 2);
        let args: Vec<String> = HOSTILE.iter().map(|a| format!("{a:?}")).collect();
        let job = format!("[input]\nargs = [{}]\n[map]\ncommand = \"{template}\"\n[output]\npath = \"out.txt\"\n", args.join(", "));
        fs::write(dir.path().join("job.toml"), &job).unwrap();
        Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run().success();
        let out = fs::read_to_string(dir.path().join("out.txt")).unwrap();
        assert_args_were_data(dir.path(), &out);
        assert!(walk(_c.path()).iter().all(|p| !p.ends_with("pwned")), "{job}");
    }
}

#[test]
fn quoted_braces_in_a_one_liner_do_not_run_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, cluster) = local_cluster(1, 2);
    let mut args = vec!["map", "--cluster", cluster.to_str().unwrap(), "--output", "out.txt", "--args"];
    args.extend(HOSTILE);
    args.extend(["--", "echo '{}'"]);
    Shoal::new().in_dir(dir.path()).args(args).run().success();
    let out = fs::read_to_string(dir.path().join("out.txt")).unwrap();
    assert_args_were_data(dir.path(), &out);
    assert!(walk(_c.path()).iter().all(|p| !p.ends_with("pwned")));
}

#[test]
fn the_argument_is_in_shoal_arg() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, cluster) = local_cluster(1, 1);
    fs::write(
        dir.path().join("job.toml"),
        "[input]\nargs = [\"a b\"]\n[map]\ncommand = 'printf \"%s|%s\\n\" \"$SHOAL_ARG\"'\n[output]\npath = \"out.txt\"\n",
    )
    .unwrap();
    Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run().success();
    // No `{}`: the argument is also the command's last word.
    assert_eq!(fs::read_to_string(dir.path().join("out.txt")).unwrap(), "a b|a b\n");
}

#[test]
fn an_argument_too_long_for_the_environment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(200_000);
    fs::write(dir.path().join("job.toml"), format!("[input]\nargs = [\"ok\", \"{long}\"]\n[map]\ncommand = \"echo {{}}\"\n")).unwrap();
    let ran = Shoal::new().in_dir(dir.path()).args(["run", "job.toml"]).run().code(2);
    assert_eq!(ran.stderr.trim(), "error: [input] args: argument 2 is 200000 bytes; it reaches its task as the variable $SHOAL_ARG, and Linux refuses one over 131061 bytes: put long data in a file and pass its name");
}

#[test]
fn a_nul_in_an_argument_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("job.toml"), "[input]\nargs = [\"ok\", \"a\\u0000b\"]\n[map]\ncommand = \"echo {}\"\n").unwrap();
    let ran = Shoal::new().in_dir(dir.path()).args(["run", "job.toml"]).run().code(2);
    assert_eq!(ran.stderr.trim(), "error: [input] args: argument 2 (\"a\\0b\") contains a NUL byte, which no command can receive");
}
