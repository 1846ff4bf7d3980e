//! Issue 17, items 2, 6 and 7 on the local transport: a task cannot
//! change the agent's cached blocks, the agent's files are private, and
//! the agent refuses a work dir that others could tamper with.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use shoal_testkit::docker::busybox_image;
use shoal_testkit::{local_cluster, Shoal};

/// A job whose one task appends to a synced file and to `$SHOAL_INPUT`
/// (a single block: the input is larger than what travels inline), and
/// prints what it saw first.
const POISON: &str = r#"[sync]
files = ["tool.txt"]
[input]
path = "data.txt"
partitions = 1
[map]
command = "cat tool.txt; wc -c < \"$SHOAL_INPUT\"; head -c 5 \"$SHOAL_INPUT\"; echo; echo poison >> tool.txt; echo poison >> \"$SHOAL_INPUT\""
[output]
path = "out/OUT.txt"
"#;

fn poison_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    fs::write(dir.path().join("data.txt"), data).unwrap();
    fs::write(dir.path().join("tool.txt"), "from the driver\n").unwrap();
    dir
}

fn run_poison(dir: &Path, cluster: &Path, out: &str) -> String {
    fs::write(dir.join("job.toml"), POISON.replace("OUT", out)).unwrap();
    Shoal::new().in_dir(dir).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run().success();
    fs::read_to_string(dir.join(format!("out/{out}.txt"))).unwrap()
}

/// Every file in the cache is named by the hash of what it holds.
fn assert_blocks_hash_to_their_names(blocks: &Path) {
    let mut seen = 0;
    for entry in fs::read_dir(blocks).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let hash = blake3::hash(&fs::read(&path).unwrap()).to_hex().to_string();
        assert_eq!(hash, name, "cached block {} no longer holds what its name says", path.display());
        seen += 1;
    }
    // The input is not among them: a host of this machine reads it in
    // place, through a pipe.
    assert!(seen >= 1, "the synced file is cached");
}

#[test]
fn a_task_that_appends_to_synced_files_and_its_input_cannot_poison_the_cache() {
    let (cdir, cluster) = local_cluster(1, 1);
    let dir = poison_dir();
    let size = fs::metadata(dir.path().join("data.txt")).unwrap().len();
    let want = format!("from the driver\n{size}\nline \n");
    assert_eq!(run_poison(dir.path(), &cluster, "first"), want);
    assert_eq!(run_poison(dir.path(), &cluster, "second"), want, "the second run on the same host saw what the first task wrote");
    assert_eq!(fs::metadata(dir.path().join("data.txt")).unwrap().len(), size, "a task wrote through $SHOAL_INPUT into the user's input");
    assert_blocks_hash_to_their_names(&cdir.path().join("hosts/a/blocks"));
}

#[test]
fn editing_an_output_never_reaches_the_agents_cache_whose_blocks_a_run_takes_by_link() {
    use std::os::unix::fs::MetadataExt;
    let (cdir, cluster) = local_cluster(1, 2);
    let dir = tempfile::tempdir().unwrap();
    let data: String = (0..40_000).map(|i| format!("record {i}\n")).collect();
    fs::write(dir.path().join("data.txt"), &data).unwrap();
    fs::write(
        dir.path().join("job.toml"),
        "[input]\npath = \"data.txt\"\npartitions = 2\n[map]\ncommand = \"cat\"\n[output]\npath = \"parts\"\nmerge = \"none\"\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("concat.toml"),
        "[input]\npath = \"data.txt\"\npartitions = 2\n[map]\ncommand = \"cat\"\n[output]\npath = \"all.txt\"\n",
    )
    .unwrap();
    let c = cluster.to_str().unwrap();
    Shoal::new().in_dir(dir.path()).args(["run", "concat.toml", "--cluster", c]).run().success();
    assert_eq!(fs::read_to_string(dir.path().join("all.txt")).unwrap(), data);
    Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--cluster", c]).run().success();
    let blocks = cdir.path().join("hosts/a/blocks");
    let cached: Vec<u64> = fs::read_dir(&blocks).unwrap().map(|e| e.unwrap().metadata().unwrap().ino()).collect();
    for part in ["part-00000", "part-00001"] {
        let path = dir.path().join("parts").join(part);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.nlink(), 1, "{part} has other names");
        assert!(!cached.contains(&meta.ino()), "{part} is a cached block");
        fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"edited\n").unwrap();
    }
    assert_blocks_hash_to_their_names(&blocks);
    // The run's own parts are the blocks themselves (taken by a link,
    // not copied), and still hold the task's output.
    let runs = dir.path().join(".shoal/runs");
    let linked = fs::read_dir(&runs)
        .unwrap()
        .flat_map(|r| fs::read_dir(r.unwrap().path().join("parts")).into_iter().flatten())
        .filter(|p| p.as_ref().is_ok_and(|p| cached.contains(&p.metadata().unwrap().ino())))
        .count();
    assert!(linked >= 2, "no part of the runs shares its bytes with a cached block");
}

#[test]
fn the_agent_keeps_its_work_dir_private() {
    let (cdir, cluster) = local_cluster(1, 1);
    let work = cdir.path().join("hosts/a");
    fs::create_dir_all(&work).unwrap();
    fs::set_permissions(&work, fs::Permissions::from_mode(0o755)).unwrap();
    let dir = poison_dir();
    run_poison(dir.path(), &cluster, "out");
    let mode = |p: &Path| format!("{:o}", fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777);
    for d in ["", "blocks", "runs", "bin"] {
        assert_eq!(mode(&work.join(d)), "700", "{} is open to other users", work.join(d).display());
    }
    for entry in fs::read_dir(work.join("blocks")).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), "400", "cached block {} is not read-only and private", path.display());
    }
}

#[test]
fn a_work_dir_that_others_can_write_is_refused() {
    let (cdir, cluster) = local_cluster(1, 1);
    let work = cdir.path().join("hosts/a");
    fs::create_dir_all(&work).unwrap();
    fs::set_permissions(&work, fs::Permissions::from_mode(0o777)).unwrap();
    let dir = poison_dir();
    fs::write(dir.path().join("job.toml"), POISON.replace("OUT", "out")).unwrap();
    let ran = Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run().code(3);
    let want = format!(
        "the work dir {w} is writable by other users (mode 777); they could replace the agent or its cached blocks: run `chmod 700 {w}` on that host, or use another work dir",
        w = work.display()
    );
    assert!(ran.stderr.contains(&want), "stderr lacks the reason:\n{}", ran.stderr);
    assert!(!work.join("blocks").exists(), "nothing was written into the refused work dir");
}

#[test]
fn a_container_cannot_poison_the_cache_and_gets_its_params_from_a_file() {
    let Some(_g) = busybox_image("shoal-test-busybox:cache") else { return };
    let (cdir, cluster) = local_cluster(1, 1);
    let dir = poison_dir();
    let job = POISON
        .replace("[map]\n", "[map]\nimage = \"shoal-test-busybox:cache\"\n")
        .replace("cat tool.txt;", "cat tool.txt; echo \\\"$SHOAL_PARAM_TOKEN\\\";")
        .replace("; echo poison >> \\\"$SHOAL_INPUT\\\"", "")
        + "[params]\ntoken = \"s3cret\"\n";
    let size = fs::metadata(dir.path().join("data.txt")).unwrap().len();
    let want = format!("from the driver\ns3cret\n{size}\nline \n");
    for out in ["first", "second"] {
        fs::write(dir.path().join("job.toml"), job.replace("OUT", out)).unwrap();
        Shoal::new().in_dir(dir.path()).args(["run", "job.toml", "--cluster", cluster.to_str().unwrap()]).run().success();
        assert_eq!(fs::read_to_string(dir.path().join(format!("out/{out}.txt"))).unwrap(), want, "run {out}");
    }
    assert_blocks_hash_to_their_names(&cdir.path().join("hosts/a/blocks"));
    let left: Vec<_> = fs::read_dir(cdir.path().join("hosts/a/runs")).unwrap().collect();
    assert!(left.is_empty(), "the run's scratch (and its environment file) is removed: {left:?}");
}
