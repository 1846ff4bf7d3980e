//! Inputs read where they live, on the local transport: a host on this
//! machine reads its partitions' byte ranges from the input file itself
//! (nothing goes through the block store), `$SHOAL_INPUT` still names
//! something a command can read, and `shared:` paths are checked before
//! anything runs.

use std::path::Path;

use shoal_testkit::{local_cluster, Shoal};

fn lines(dir: &Path, n: usize) -> String {
    let data: String = (0..n).map(|i| format!("line {i} of the input, {}\n", i * 7919 % 1000)).collect();
    std::fs::write(dir.join("data.txt"), &data).unwrap();
    data
}

fn job(dir: &Path, path: &str, command: &str, extra: &str) {
    let text =
        format!("[input]\npath = \"{path}\"\npartitions = 5\n{extra}[map]\ncommand = '''{command}'''\n[output]\npath = \"out.txt\"\n");
    std::fs::write(dir.join("job.toml"), text).unwrap();
}

fn run(dir: &Path, cluster: &Path) -> shoal_testkit::Ran {
    Shoal::new().in_dir(dir).args(["run", "job.toml", "--json", "--cluster", cluster.to_str().unwrap()]).run()
}

#[test]
fn local_hosts_read_their_partitions_in_place_and_nothing_is_uploaded() {
    let (dir, cluster) = local_cluster(2, 2);
    let data = lines(dir.path(), 20_000);
    job(dir.path(), "data.txt", "cat", "");
    let summary = run(dir.path(), &cluster).success().json();
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), data);
    assert_eq!(summary["input_bytes_sent"], 0, "{summary}");
    assert_eq!(summary["input_bytes_skipped"], 0, "{summary}");
    // The hosts' block stores hold no input partition.
    for host in ["a", "b"] {
        let blocks = std::fs::read_dir(dir.path().join(host).join("blocks")).map(|d| d.count()).unwrap_or(0);
        assert!(blocks <= 5, "host {host} stored {blocks} blocks: only the 5 outputs belong there");
    }
}

#[test]
fn shoal_input_is_the_tasks_stdin_and_the_users_file_is_never_written() {
    let (dir, cluster) = local_cluster(2, 1);
    lines(dir.path(), 10_000);
    // A command that names $SHOAL_INPUT gets a file of its own: read twice,
    // written to, and the user's file untouched.
    let data = std::fs::read_to_string(dir.path().join("data.txt")).unwrap();
    job(dir.path(), "data.txt", "wc -l < \"$SHOAL_INPUT\"; wc -l < \"$SHOAL_INPUT\"; echo poison >> \"$SHOAL_INPUT\"", "");
    run(dir.path(), &cluster).success();
    let counts: Vec<u64> =
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap().lines().map(|l| l.trim().parse::<u64>().unwrap()).collect();
    assert_eq!(counts.iter().step_by(2).sum::<u64>(), 10_000);
    assert_eq!(counts.iter().skip(1).step_by(2).sum::<u64>(), 10_000);
    assert_eq!(std::fs::read_to_string(dir.path().join("data.txt")).unwrap(), data, "a task wrote into the input");
    // One that does not read it from stdin, where it is streamed; a script
    // that reads the variable finds the same stream there.
    std::fs::write(dir.path().join("count.sh"), "wc -l < \"$SHOAL_INPUT\"\n").unwrap();
    job(dir.path(), "data.txt", "sh count.sh", "[sync]\nfiles = [\"count.sh\"]\n");
    run(dir.path(), &cluster).success();
    let counts: u64 = std::fs::read_to_string(dir.path().join("out.txt")).unwrap().lines().map(|l| l.trim().parse::<u64>().unwrap()).sum();
    assert_eq!(counts, 10_000);
    // Pre-split files: each partition a whole file, never handed to a task
    // by name.
    std::fs::create_dir(dir.path().join("parts")).unwrap();
    for i in 0..3 {
        std::fs::write(dir.path().join(format!("parts/p{i}.txt")), format!("part {i}\n")).unwrap();
    }
    std::fs::write(
        dir.path().join("job.toml"),
        "[input]\npath = \"parts\"\n[map]\ncommand = 'cat; echo poison >> /dev/stdin'\n[output]\npath = \"out.txt\"\n",
    )
    .unwrap();
    run(dir.path(), &cluster).success();
    let out = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
    let want: String = (0..3).map(|i| format!("part {i}\n")).collect();
    assert_eq!(out, want);
    for i in 0..3 {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(format!("parts/p{i}.txt"))).unwrap(),
            format!("part {i}\n"),
            "a task wrote into the input"
        );
    }
}

#[test]
fn a_shared_input_runs_like_any_other_on_local_hosts() {
    let (dir, cluster) = local_cluster(2, 1);
    let data = lines(dir.path(), 5_000);
    let abs = std::fs::canonicalize(dir.path().join("data.txt")).unwrap();
    job(dir.path(), &format!("shared:{}", abs.display()), "cat", "");
    let summary = run(dir.path(), &cluster).success().json();
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), data);
    assert_eq!(summary["input_bytes_sent"], 0, "{summary}");
    assert_eq!(summary["tasks"], 5, "{summary}");
}

#[test]
fn bad_shared_inputs_are_refused_before_anything_runs() {
    let (dir, cluster) = local_cluster(1, 1);
    lines(dir.path(), 10);
    job(dir.path(), "shared:data.txt", "cat", "");
    let ran = run(dir.path(), &cluster).code(2);
    assert!(ran.stderr.contains("[input] path = \"shared:data.txt\" is not absolute"), "{}", ran.stderr);
    assert!(ran.stderr.contains("write it from the root, shared:/data/logs"), "{}", ran.stderr);
    job(dir.path(), "shared:/nonexistent/shoal-shared/logs.txt", "cat", "");
    let ran = run(dir.path(), &cluster).code(2);
    assert!(ran.stderr.contains("/nonexistent/shoal-shared/logs.txt"), "{}", ran.stderr);
    let abs = std::fs::canonicalize(dir.path().join("data.txt")).unwrap();
    job(dir.path(), &format!("shared:{}", abs.display()), "cat", "split = \"hash\"\nkey = { field = 1, sep = \" \" }\n");
    let ran = run(dir.path(), &cluster).code(2);
    assert!(ran.stderr.contains("[input] split = \"hash\" and \"range\" cannot read a shared: input in place"), "{}", ran.stderr);
    assert!(!dir.path().join("out.txt").exists());
}

/// Lines of many lengths, tagged with the host whose file they are in.
fn host_lines(host: &str, n: usize) -> String {
    (0..n).map(|i| format!("{host} {i} {}\n", "x".repeat(i * 37 % 200))).collect()
}

#[test]
fn files_named_per_host_are_cut_on_their_hosts_into_whole_lines() {
    let (dir, cluster) = local_cluster(2, 2);
    let files = dir.path().join("per-host");
    std::fs::create_dir(&files).unwrap();
    let (a, b) = (host_lines("a", 3000), host_lines("b", 1000));
    std::fs::write(files.join("a.txt"), &a).unwrap();
    std::fs::write(files.join("b.txt"), &b).unwrap();
    // Each task checks that it runs on the host whose file it reads.
    let check = r#"awk -v h="$SHOAL_HOST" '$1 != h { print "WRONG HOST " h ": " $0; next } { print }'"#;
    job(dir.path(), &format!("{}/{{host}}.txt", files.display()), check, "");
    let summary = run(dir.path(), &cluster).success().json();
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), format!("{a}{b}"), "every line once, whole, in order");
    assert_eq!(summary["input_bytes_sent"], 0, "{summary}");
    // partitions = 5 across the cluster, by each host's share of the bytes.
    let on = |h: &str| summary["attempts"].as_array().unwrap().iter().filter(|x| x["host"] == h).count();
    assert!(on("a") >= 3 && on("b") >= 1, "{summary}");
    // The same ranges copied into a file of the task's own (the command
    // names $SHOAL_INPUT): aligned to whole lines as well.
    job(dir.path(), &format!("{}/{{host}}.txt", files.display()), "cat \"$SHOAL_INPUT\"", "");
    run(dir.path(), &cluster).success();
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), format!("{a}{b}"), "every line once, whole, from a copy");
}

#[test]
fn a_host_without_its_file_is_named_before_anything_runs() {
    let (dir, cluster) = local_cluster(2, 1);
    let files = dir.path().join("per-host");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("a.txt"), "only a\n").unwrap();
    job(dir.path(), &format!("{}/{{host}}.txt", files.display()), "cat", "");
    let ran = run(dir.path(), &cluster).code(2);
    let want = format!("host `b` has no input file {}/b.txt ([input] path with {{host}})", files.display());
    assert!(ran.stderr.contains(&want), "{}", ran.stderr);
    assert!(ran.stderr.contains("every host needs its own"), "{}", ran.stderr);
    assert!(!dir.path().join("out.txt").exists());
}

#[test]
fn outputs_left_on_their_hosts_are_pulled_back_and_read_in_place_by_a_later_job() {
    let (dir, cluster) = local_cluster(2, 1);
    let data = lines(dir.path(), 8_000);
    let kept = dir.path().join("kept");
    let out = format!("{}/{{host}}/upper", kept.display());
    std::fs::write(
        dir.path().join("job.toml"),
        format!("[input]\npath = \"data.txt\"\npartitions = 6\n[map]\ncommand = \"tr a-z A-Z\"\n[output]\npath = \"{out}\"\nmerge = \"none\"\non_hosts = true\n"),
    )
    .unwrap();
    let summary = run(dir.path(), &cluster).success().json();
    let parts = summary["parts_on_hosts"].as_array().unwrap();
    assert_eq!(parts.len(), 6, "{summary}");
    let mut hosts = std::collections::BTreeSet::new();
    for (i, p) in parts.iter().enumerate() {
        let host = p["host"].as_str().unwrap();
        hosts.insert(host.to_string());
        let path = format!("{}/{host}/upper/part-{i:05}", kept.display());
        assert_eq!(p["path"], path.as_str(), "{p}");
        // On the host that made it, and nowhere else.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), p["bytes"].as_u64().unwrap());
    }
    assert_eq!(hosts.len(), 2, "both hosts made parts: {summary}");
    assert!(!dir.path().join("out").exists(), "nothing was brought back to this machine");
    // Brought back on demand, in partition order, each checked.
    Shoal::new()
        .in_dir(dir.path())
        .args(["pull", "--output", "latest", "--to", "pulled", "--cluster", cluster.to_str().unwrap()])
        .run()
        .success();
    let pulled: String = (0..6).map(|i| std::fs::read_to_string(dir.path().join(format!("pulled/part-{i:05}"))).unwrap()).collect();
    assert_eq!(pulled, data.to_uppercase());
    assert!(dir.path().join("pulled/_SUCCESS").exists());
    // A later job reads them where they are: each host its own parts.
    std::fs::write(
        dir.path().join("job.toml"),
        format!("[input]\npath = \"{out}\"\nsplit = \"files\"\n[map]\ncommand = \"tr A-Z a-z\"\n[output]\npath = \"back.txt\"\n"),
    )
    .unwrap();
    let again = run(dir.path(), &cluster).success().json();
    assert_eq!(again["input_bytes_sent"], 0, "{again}");
    let mut got: Vec<String> = std::fs::read_to_string(dir.path().join("back.txt")).unwrap().lines().map(String::from).collect();
    let mut want: Vec<String> = data.lines().map(String::from).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // A part changed on its host is refused, not brought back.
    std::fs::write(parts[0]["path"].as_str().unwrap(), "tampered\n").unwrap();
    let ran = Shoal::new()
        .in_dir(dir.path())
        .args(["pull", "--output", summary["run"].as_str().unwrap(), "--to", "pulled2", "--cluster", cluster.to_str().unwrap()])
        .run();
    assert_ne!(ran.code, 0);
    assert!(ran.stdout.contains("is no longer what the run wrote there"), "{}", ran.stdout);
    assert!(!dir.path().join("pulled2/_SUCCESS").exists());
}

#[test]
fn outputs_on_hosts_need_merge_none() {
    let (dir, cluster) = local_cluster(1, 1);
    lines(dir.path(), 10);
    std::fs::write(
        dir.path().join("job.toml"),
        "[input]\npath = \"data.txt\"\n[map]\ncommand = \"cat\"\n[output]\npath = \"o\"\non_hosts = true\n",
    )
    .unwrap();
    let ran = run(dir.path(), &cluster).code(2);
    assert!(
        ran.stderr.contains("[output] on_hosts = true leaves each part on the host that made it, so it cannot be merged"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("add merge = \"none\" to [output]"), "{}", ran.stderr);
}
