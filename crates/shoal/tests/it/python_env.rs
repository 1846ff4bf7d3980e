//! Each host's Python, checked and provisioned from the driver
//! (`shoal/_environment.py` on the driver, `shoal/_hostenv.py` on the
//! hosts): a requirements file becomes a virtual environment on every
//! host, built offline from wheels the driver ships, once, then reused;
//! hosts whose interpreter is another Python version are refused with a
//! table; hosts whose interpreter is missing or whose environment fails
//! to build are named and left out.
//!
//! The test hosts share this machine's file system, so "a host with
//! nothing installed" is arranged: an interpreter with only the standard
//! library (`python::stdlib_only`), and packages that exist only as wheel
//! files the test writes (`shoal_probe_pkg`, which needs
//! `shoal_probe_dep`).

use std::path::{Path, PathBuf};
use std::process::Command;

use shoal_testkit::local::local_workers;
use shoal_testkit::{bin, netns, python, Ran, Shoal};

/// `probe.py`: which value of `shoal_probe_pkg` the tasks see, from which
/// environment, and on which hosts.
const PROBE: &str = r#"
import os, sys

import shoal

with shoal.Context() as sc:
    def probe(x):
        import shoal_probe_pkg
        return (shoal_probe_pkg.VALUE, "/python-envs/" in sys.prefix, os.environ["SHOAL_HOST"])

    rows = sc.range(0, 24, 12).map(probe).collect()
    print("values", sorted({r[:2] for r in rows}))
    print("hosts", sorted({r[2] for r in rows}))
    try:
        import shoal_probe_pkg
        print("driver has it")
    except ImportError:
        print("driver lacks it")
"#;

/// The wheels the probe needs, in `dir/wheels`, and `dir/requirements.txt`.
fn probe_packages(dir: &Path) {
    let wheels = dir.join("wheels");
    python::wheel(&wheels, "shoal_probe_dep", "0.4", "", &[], "BASE = 21\n");
    python::wheel(
        &wheels,
        "shoal_probe_pkg",
        "1.2.3",
        "",
        &["shoal_probe_dep==0.4"],
        "from shoal_probe_dep import BASE\nVALUE = BASE * 2\n",
    );
    std::fs::write(dir.join("requirements.txt"), "shoal_probe_pkg==1.2.3\n").unwrap();
    std::fs::write(dir.join("probe.py"), PROBE).unwrap();
}

/// Runs `probe.py` in `dir` with `args`; the driver's wheel cache is
/// `dir/cache`, so every test gets the wheels itself.
fn probe(dir: &Path, args: &[&str]) -> Ran {
    Shoal::python().arg(dir.join("probe.py")).in_job_dir(dir).env("XDG_CACHE_HOME", dir.join("cache")).args(args).run()
}

/// `base` (a cluster file) with `[python]` added.
fn with_python(base: &Path, dir: &Path, table: &str) -> PathBuf {
    let text = std::fs::read_to_string(base).unwrap();
    let path = dir.join("cluster.toml");
    std::fs::write(&path, format!("{text}\n[python]\n{table}")).unwrap();
    path
}

fn stderr_line<'a>(ran: &'a Ran, start: &str) -> &'a str {
    ran.stderr.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line starting {start:?} in:\n{}", ran.stderr))
}

#[test]
fn the_pure_parts_of_the_check_follow_their_rules() {
    let script = bin::repo().join("python/tests/test_environment.py");
    let out = Command::new(python::venv()).arg(&script).env_remove("PYTHONPATH").output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{} failed:\n{}{}", script.display(), text(&out.stdout), text(&out.stderr));
}

#[test]
fn requirements_on_this_machine_give_the_tasks_a_package_the_driver_lacks_built_once() {
    let dir = tempfile::tempdir().unwrap();
    probe_packages(dir.path());
    let base = local_workers(dir.path(), 2);
    let cluster = with_python(&base, dir.path(), "requirements = \"requirements.txt\"\nwheels = \"wheels\"\n");
    let cluster = cluster.to_str().unwrap();
    let first = probe(dir.path(), &["--cluster", cluster]).success();
    assert_eq!(first.stdout, "values [(42, True)]\nhosts ['w0', 'w1']\ndriver lacks it\n");
    assert!(stderr_line(&first, "python: the environment for requirements.txt").contains("built on w0, w1"), "{}", first.stderr);
    let envs = std::fs::read_dir(dir.path().join("hosts/w0/python-envs")).unwrap().flatten();
    assert_eq!(envs.filter(|e| e.path().join(".shoal-complete").exists()).count(), 1, "one environment on w0");

    let second = probe(dir.path(), &["--cluster", cluster]).success();
    assert_eq!(second.stdout, first.stdout);
    assert!(stderr_line(&second, "python: the environment for requirements.txt").contains("reused on w0, w1"), "{}", second.stderr);
}

#[test]
fn unreadable_requirements_and_wheels_that_are_not_there_are_refused_before_any_job() {
    let dir = tempfile::tempdir().unwrap();
    probe_packages(dir.path());
    let base = local_workers(dir.path(), 1);
    let missing = with_python(&base, dir.path(), "requirements = \"nope.txt\"\n");
    let ran = probe(dir.path(), &["--cluster", missing.to_str().unwrap()]);
    let nope = dir.path().join("nope.txt");
    ran.fails_with(2, &format!("error: [python] requirements = {}: cannot read it (No such file or directory)", nope.display()));

    std::fs::write(dir.path().join("requirements.txt"), "shoal_probe_pkg==1.2.3\nshoal_missing_pkg\n").unwrap();
    let cluster = with_python(&base, dir.path(), "requirements = \"requirements.txt\"\nwheels = \"wheels\"\n");
    let ran = probe(dir.path(), &["--cluster", cluster.to_str().unwrap()]);
    let wheels = dir.path().join("wheels");
    let ran = ran.fails_with(2, &format!("pip could not get their wheels (only from {})", wheels.display()));
    ran.stderr_has("No matching distribution found for shoal_missing_pkg")
        .stderr_has("hint: the hosts need no internet, but this machine must reach the package index, or give a directory of wheels");
    assert!(!dir.path().join("hosts/w0/python-envs").exists(), "nothing was built");
}

#[test]
fn hosts_with_only_the_standard_library_get_the_requirements_from_the_driver() {
    let Some((_g, c)) = netns::up() else { return };
    let dir = tempfile::tempdir().unwrap();
    probe_packages(dir.path());
    let bare = python::stdlib_only(&dir.path().join("bare"));
    let out = Command::new(&bare).args(["-c", "import shoal_probe_pkg"]).output().unwrap();
    assert!(!out.status.success(), "the bare interpreter must lack the package before the run");
    let table = format!("python = \"{}\"\nrequirements = \"requirements.txt\"\nwheels = \"wheels\"\n", bare.display());
    let cluster = with_python(&c.file, dir.path(), &table);
    let cluster = cluster.to_str().unwrap();

    let first = probe(dir.path(), &["--cluster", cluster]).success();
    assert_eq!(first.stdout, "values [(42, True)]\nhosts ['h1', 'h2', 'h3']\ndriver lacks it\n");
    assert!(stderr_line(&first, "python: the environment for").contains("built on h1, h2, h3"), "{}", first.stderr);
    let second = probe(dir.path(), &["--cluster", cluster]).success();
    assert_eq!(second.stdout, first.stdout);
    assert!(stderr_line(&second, "python: the environment for").contains("reused on h1, h2, h3"), "{}", second.stderr);
    let out = Command::new(&bare).args(["-c", "import shoal_probe_pkg"]).output().unwrap();
    assert!(!out.status.success(), "the environment is the run's own: the interpreter itself is untouched");
}

#[test]
fn a_host_with_another_python_version_is_refused_with_a_table_before_any_job() {
    let Some((_g, c)) = netns::up() else { return };
    let other = python::other_minor().expect("the fingerprint test needs a Python 3.9+ of another minor version (pyenv or /usr/bin)");
    let dir = tempfile::tempdir().unwrap();
    probe_packages(dir.path());
    let cluster = with_python(&c.file, dir.path(), &format!("python_on = {{ h2 = \"{}\" }}\n", other.display()));
    let ran = probe(dir.path(), &["--cluster", cluster.to_str().unwrap()]);
    let ran = ran.fails_with(2, "error: the hosts' Python differs from this driver's (* marks what differs):");
    let row = |host: &str| ran.stderr.lines().find(|l| l.trim_start().starts_with(host)).unwrap_or_default().to_string();
    assert!(row("(this driver)").contains("3.11") || row("(this driver)").contains("3."), "{}", ran.stderr);
    assert!(row("h2").contains(" *"), "h2's python is marked: {}", ran.stderr);
    assert!(!row("h1").contains('*') && !row("h3").contains('*'), "{}", ran.stderr);
    ran.stderr_has("give h2 an interpreter of that version");
    let jobs = shoal_testkit::runs::summaries(dir.path());
    assert!(jobs.iter().all(|s| s["job"].as_str().is_some_and(|j| j.ends_with("-setup"))), "only the check ran: {jobs:?}");
}

#[test]
fn hosts_whose_python_is_missing_or_whose_environment_fails_are_named_and_left_out() {
    let Some((_g, c)) = netns::up() else { return };
    let older = python::other_patch()
        .expect("this test needs a Python of the driver's major.minor but another patch release (Debian's beside pyenv's)");
    let dir = tempfile::tempdir().unwrap();
    probe_packages(dir.path());
    // The dependency admits only the driver's exact Python: h3's, another
    // patch release, passes the check but its pip refuses the wheel.
    let wheels = dir.path().join("wheels");
    std::fs::remove_file(wheels.join("shoal_probe_dep-0.4-py3-none-any.whl")).unwrap();
    python::wheel(&wheels, "shoal_probe_dep", "0.4", &format!("=={}", python::version()), &[], "BASE = 21\n");
    let table = format!(
        "python_on = {{ h2 = \"/nonexistent/bin/python3\", h3 = \"{}\" }}\nrequirements = \"requirements.txt\"\nwheels = \"wheels\"\n",
        older.display()
    );
    let cluster = with_python(&c.file, dir.path(), &table);
    let ran = probe(dir.path(), &["--cluster", cluster.to_str().unwrap()]).success();
    assert_eq!(ran.stdout, "values [(42, True)]\nhosts ['h1']\ndriver lacks it\n");
    let h2 = stderr_line(&ran, "warning: host h2 is left out");
    assert!(h2.contains("its Python cannot run tasks: there is no Python interpreter '/nonexistent/bin/python3' on it"), "{h2}");
    let h3 = stderr_line(&ran, "warning: host h3 is left out");
    assert!(h3.contains("its Python environment could not be built: pip install (offline, from the shipped wheels) failed"), "{h3}");
    assert!(h3.contains("requires a different Python"), "pip's own words are in it: {h3}");
    assert!(stderr_line(&ran, "python: the environment for").contains("built on h1"), "{}", ran.stderr);
}
