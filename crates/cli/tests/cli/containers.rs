//! Steps run inside Docker images, on the local transport. The images are
//! built here `FROM scratch` with a static busybox (no registry needed).

use std::fs;
use std::path::Path;
use std::process::Command;

use shoal_testkit::docker::{busybox_image, shoal_containers};
use shoal_testkit::reference::sorted_lines;
use shoal_testkit::{local_cluster, Ran, Shoal};

fn job_dir(job: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..3000).map(|i| format!("w{} w{} sea fish\n", i % 37, i % 11)).collect();
    fs::write(dir.path().join("corpus.txt"), text).unwrap();
    fs::write(dir.path().join("job.toml"), job).unwrap();
    dir
}

fn run(dir: &Path, extra: &[&str]) -> Ran {
    shoal_testkit::local::run_job(dir, extra)
}

const WORDCOUNT: &str = r#"[input]
path = "corpus.txt"
partitions = 4
[map]
image = "IMAGE"
command = "tr -s ' ' '\n' | awk 'NF { print $1 \"\t1\" }'"
[reduce]
partitions = 2
image = "IMAGE"
command = "awk -F'\t' '{ c[$1] += $2 } END { for (w in c) print w \"\t\" c[w] }' | sort"
[output]
path = "out/counts.tsv"
"#;

fn reference(dir: &Path) -> Vec<String> {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for w in fs::read_to_string(dir.join("corpus.txt")).unwrap().split_whitespace() {
        *counts.entry(w.to_string()).or_default() += 1;
    }
    counts.into_iter().map(|(w, n)| format!("{w}\t{n}")).collect()
}

#[test]
fn map_and_reduce_in_an_image_match_the_reference_and_leave_no_container() {
    let Some(_g) = busybox_image("shoal-test-busybox:wc") else { return };
    let dir = job_dir(&WORDCOUNT.replace("IMAGE", "shoal-test-busybox:wc"));
    run(dir.path(), &[]).success();
    assert_eq!(sorted_lines(&dir.path().join("out/counts.tsv")), reference(dir.path()));
    assert_eq!(shoal_containers(), 0);
}

#[test]
fn an_image_is_shipped_from_its_archive_once() {
    let Some(_g) = busybox_image("shoal-test-busybox:ship") else { return };
    let dir = job_dir(&format!(
        "{}[images]\n\"shoal-test-busybox:ship\" = {{ file = \"img.tar\" }}\n",
        WORDCOUNT.replace("IMAGE", "shoal-test-busybox:ship")
    ));
    assert!(Command::new("docker")
        .args(["save", "-o"])
        .arg(dir.path().join("img.tar"))
        .arg("shoal-test-busybox:ship")
        .status()
        .unwrap()
        .success());
    assert!(Command::new("docker").args(["rmi", "-f", "shoal-test-busybox:ship"]).output().unwrap().status.success());
    let first = run(dir.path(), &[]).success();
    assert!(first.stderr.contains("loaded image `shoal-test-busybox:ship` from img.tar"), "{}", first.stderr);
    assert_eq!(sorted_lines(&dir.path().join("out/counts.tsv")), reference(dir.path()));
    let second = run(dir.path(), &[]).success();
    assert!(!second.stderr.contains("loaded image"), "the second run finds the image: {}", second.stderr);
}

#[test]
fn a_missing_image_without_archive_is_a_clear_error() {
    let Some(_g) = busybox_image("shoal-test-busybox:any") else { return };
    let _ = Command::new("docker").args(["rmi", "-f", "shoal-test-nope:1"]).output();
    let dir = job_dir(&WORDCOUNT.replace("IMAGE", "shoal-test-nope:1"));
    let ran = run(dir.path(), &[]).code(1);
    assert_eq!(
        ran.stderr.trim(),
        "error: image `shoal-test-nope:1` is missing on hosts a, b and the job gives no archive for it; load it there (docker save shoal-test-nope:1 | ssh HOST docker load), or add to the job file:\n  [images]\n  \"shoal-test-nope:1\" = { file = \"shoal-test-nope-1.tar\" }   # made with: docker save -o shoal-test-nope-1.tar shoal-test-nope:1"
    );
}

#[test]
fn outputs_belong_to_the_invoking_user() {
    let Some(_g) = busybox_image("shoal-test-busybox:uid") else { return };
    let job = "[input]\npath = \"corpus.txt\"\npartitions = 1\n[map]\nimage = \"shoal-test-busybox:uid\"\ncommand = \"id -u; stat -c %u /shoal/output\"\n[output]\npath = \"out/uid.txt\"\n";
    let dir = job_dir(job);
    run(dir.path(), &[]).success();
    // SAFETY: plain getter.
    let uid = unsafe { libc_getuid() };
    assert_eq!(fs::read_to_string(dir.path().join("out/uid.txt")).unwrap(), format!("{uid}\n{uid}\n"));
}

extern "C" {
    #[link_name = "getuid"]
    fn libc_getuid() -> u32;
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn a_task_over_its_memory_limit_is_reported_as_such() {
    let Some(_g) = busybox_image("shoal-test-busybox:oom") else { return };
    let job = "[job]\nmax_attempts = 1\n[input]\npath = \"corpus.txt\"\npartitions = 1\n[map]\nimage = \"shoal-test-busybox:oom\"\nmemory = \"16MiB\"\ncommand = \"awk 'BEGIN { s = \\\"x\\\"; while (1) s = s s }'\"\n[output]\npath = \"out/x.txt\"\n";
    let dir = job_dir(job);
    let ran = run(dir.path(), &[]).code(1);
    assert!(ran.stderr.contains("shoal: the container was killed for exceeding its memory limit"), "{}", ran.stderr);
    assert_eq!(shoal_containers(), 0);
}

#[test]
fn cancel_removes_every_container() {
    let Some(_g) = busybox_image("shoal-test-busybox:cancel") else { return };
    let job = "[input]\npath = \"corpus.txt\"\npartitions = 4\n[map]\nimage = \"shoal-test-busybox:cancel\"\ncommand = \"sleep 60\"\n[output]\npath = \"out/x.txt\"\n";
    let dir = job_dir(job);
    let (_c, cluster) = local_cluster(2, 2);
    let child = Shoal::new()
        .command()
        .args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while shoal_containers() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(shoal_containers(), 4, "four containers run");
    unsafe { libc_kill(child.id() as i32, 2) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while shoal_containers() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(shoal_containers(), 0, "no container is left behind");
}

#[test]
fn example_container_tool_matches_reference() {
    let Some(_g) = busybox_image("shoal-test-busybox:example") else { return };
    let (dir, cluster) = local_cluster(2, 1);
    Shoal::example("container-tool")
        .args(["--cluster", cluster.to_str().unwrap()])
        .run()
        .success()
        .stdout_has("container-tool: totals match");
    drop(dir);
}
