//! The data plane on the 3-host netns cluster: reducers' hosts fetch
//! shuffle buckets straight from the map hosts (nothing through the
//! driver), `data = "relay"` sends them all through the driver, a pair
//! of hosts that cannot reach each other falls back to the relay for that
//! pair only, and a stranger's connection to a host's peer listener is
//! refused and reported. Each run's output is checked against the
//! single-machine answer.

use std::path::{Path, PathBuf};
use std::process::Command;

use shoal_testkit::netns::{self, heal_all, script, Cluster};
use shoal_testkit::process::wait_for;
use shoal_testkit::Shoal;

const KEYS: usize = 101;
const LINES: usize = 6000;

/// A job dir with a keyed sum over `LINES` lines and, beside it, a
/// cluster file: the test cluster's, with `top` put above its tables.
/// The keys are new on every call: buckets are blocks named by their
/// content, and a host that already holds one (from an earlier test)
/// is sent nothing.
fn shuffle_job(c: &Cluster, name: &str, top: &str, reduce_prefix: &str) -> (PathBuf, String) {
    let dir = c.dir.join("jobs").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::fs::write(dir.join("nonce"), nonce.to_string()).unwrap();
    let data: String = (0..LINES).map(|i| format!("k{nonce}-{}\t1\n", i % KEYS)).collect();
    std::fs::write(dir.join("data.txt"), data).unwrap();
    let job = format!(
        "[input]\npath = \"data.txt\"\npartitions = 6\n[map]\ncommand = \"cat\"\n[reduce]\npartitions = 6\ncommand = \"{reduce_prefix}awk -F'\\\\t' '{{ s[$1] += $2 }} END {{ for (k in s) print k \\\"\\\\t\\\" s[k] }}'\"\n[output]\npath = \"out/result.txt\"\n"
    );
    std::fs::write(dir.join("job.toml"), job).unwrap();
    let cluster = dir.join("cluster.toml");
    std::fs::write(&cluster, format!("{top}\n{}", std::fs::read_to_string(&c.file).unwrap())).unwrap();
    (dir, cluster.display().to_string())
}

#[track_caller]
fn sums_are_exact(dir: &Path) {
    let mut got: Vec<String> = std::fs::read_to_string(dir.join("out/result.txt")).unwrap().lines().map(String::from).collect();
    got.sort();
    let nonce = std::fs::read_to_string(dir.join("nonce")).unwrap();
    let mut want: Vec<String> = (0..KEYS).map(|k| format!("k{nonce}-{k}\t{}", LINES / KEYS + usize::from(k < LINES % KEYS))).collect();
    want.sort();
    assert_eq!(got, want, "the reduce's output differs from the single-machine answer");
}

fn run(dir: &Path, cluster: &str) -> shoal_testkit::Ran {
    Shoal::new().args(["run", "job.toml", "--json", "--cluster", cluster]).in_dir(dir).run()
}

#[test]
fn reducers_fetch_every_bucket_straight_from_the_map_hosts() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let (dir, cluster) = shuffle_job(c, "direct", "", "");
    let ran = run(&dir, &cluster).success();
    sums_are_exact(&dir);
    let shuffle = &ran.json()["shuffle"];
    assert_eq!(shuffle["via_driver_bytes"], 0, "a bucket went through the driver: {shuffle}");
    assert!(shuffle["direct_bytes"].as_u64().unwrap() > 0, "no bucket moved host to host: {shuffle}");
    assert_eq!(shuffle["direct_pairs"], 6, "{shuffle}");
    assert_eq!(shuffle["refused_connections"], 0, "{shuffle}");
    assert!(!ran.stderr.contains("cannot fetch directly"), "{}", ran.stderr);
    let check = Shoal::new().args(["check", "--json", "--cluster", &cluster]).run().success().json();
    for r in check.as_array().unwrap() {
        assert_eq!((&r["direct_from"], &r["peers"]), (&2.into(), &2.into()), "{r}");
        assert_eq!(r["unreachable_from"], serde_json::json!([]), "{r}");
    }
    // The listeners went with the run and the check: nothing but sshd
    // listens on any host.
    for h in netns::HOSTS {
        assert_eq!(listening_ports(h), vec![22], "{h} still listens after the run");
    }
}

#[test]
fn data_relay_sends_every_bucket_through_the_driver() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let (dir, cluster) = shuffle_job(c, "relay", "data = \"relay\"", "");
    let ran = run(&dir, &cluster).success();
    sums_are_exact(&dir);
    let shuffle = &ran.json()["shuffle"];
    assert!(shuffle["via_driver_bytes"].as_u64().unwrap() > 0, "{shuffle}");
    assert_eq!(shuffle["direct_bytes"], 0, "{shuffle}");
    assert_eq!(shuffle["direct_pairs"], 0, "{shuffle}");
}

#[test]
fn a_pair_that_cannot_reach_each_other_uses_the_relay_and_only_that_pair() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    assert!(script(&["sever", "h1", "h2"]).status.success(), "testcluster sever failed");
    let (dir, cluster) = shuffle_job(c, "severed", "", "");
    let check = Shoal::new().args(["check", "--cluster", &cluster]).run();
    let ran = run(&dir, &cluster);
    heal_all();
    let check = check.success();
    let peers: Vec<&str> = check.stdout.lines().skip(1).take(3).map(|l| l.split_whitespace().rev().nth(1).unwrap_or("")).collect();
    assert_eq!(peers, ["1/2", "1/2", "2/2"], "the PEERS column:\n{}", check.stdout);
    let check = check
        .stdout_has("h1: h2 cannot reach it directly (cannot reach the peer at 10.177.0.11:")
        .stdout_has("h2: h1 cannot reach it directly (");
    assert!(!check.stdout.contains("h3: "), "{}", check.stdout);
    let ran = ran.success();
    sums_are_exact(&dir);
    let ran = ran
        .stderr_has("h1 cannot fetch directly from h2 (cannot reach the peer at 10.177.0.12:")
        .stderr_has("h2 cannot fetch directly from h1 (")
        .stderr_has("that shuffle data goes through the driver");
    assert!(!ran.stderr.contains("h3 cannot fetch"), "{}", ran.stderr);
    let shuffle = &ran.json()["shuffle"];
    assert_eq!(shuffle["direct_pairs"], 4, "{shuffle}");
    assert!(shuffle["direct_bytes"].as_u64().unwrap() > 0, "{shuffle}");
}

#[test]
fn a_stranger_at_a_hosts_peer_port_is_refused_and_reported() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let (dir, cluster) = shuffle_job(c, "stranger", "", "sleep 3; ");
    let child = Shoal::new()
        .command()
        .args(["run", "job.toml", "--json", "--cluster", &cluster])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = None;
    assert!(
        wait_for(30, || {
            port = listening_ports("h1").into_iter().find(|p| *p != 22);
            port.is_some()
        }),
        "h1 never listened for its peers"
    );
    let addr = format!("10.177.0.11:{}", port.unwrap());
    // Garbage from this machine (not a peer: it holds no key).
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(
        &mut s,
        &[0, 48].iter().copied().chain(*b"GET / HTTP/1.1\r\nHost: h1\r\n\r\n0123456789abcdefghijk").collect::<Vec<u8>>(),
    )
    .unwrap();
    let mut back = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut back);
    assert!(back.is_empty(), "h1's listener answered a stranger: {back:?}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    sums_are_exact(&dir);
    assert!(stderr.contains("h1 refused a connection from 10.177.0.1:"), "{stderr}");
    assert!(stderr.contains("not a peer of this run"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["shuffle"]["refused_connections"], 1, "{summary}");
}

/// The TCP ports that listen in host `h`'s namespace.
fn listening_ports(h: &str) -> Vec<u16> {
    let ns = format!("shoal-{h}");
    let out = Command::new("ip").args(["netns", "exec", &ns, "ss", "-Hltn"]).output().expect("run ss");
    let mut ports: Vec<u16> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3)?.rsplit(':').next()?.parse().ok())
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// A job over `shared:DIR/in.txt`, a file every netns host sees (they
/// share this machine's files), in a job dir of its own.
fn shared_job(c: &Cluster, name: &str) -> (PathBuf, PathBuf, String) {
    let dir = c.dir.join("jobs").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shared = c.dir.join("shared").join(name);
    let _ = std::fs::remove_dir_all(&shared);
    std::fs::create_dir_all(&shared).unwrap();
    let data: String = (0..30_000).map(|i| format!("record {i} {}\n", i * 31 % 977)).collect();
    std::fs::write(shared.join("in.txt"), &data).unwrap();
    let job = format!(
        "[input]\npath = \"shared:{}\"\npartitions = 9\n[map]\ncommand = \"cat\"\n[output]\npath = \"out/result.txt\"\n",
        shared.join("in.txt").display()
    );
    std::fs::write(dir.join("job.toml"), job).unwrap();
    (dir, shared, data)
}

#[test]
fn a_shared_input_is_read_by_each_host_and_never_sent() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let (dir, _shared, data) = shared_job(c, "shared-in");
    let summary = run(&dir, &c.arg()).success().json();
    assert_eq!(std::fs::read_to_string(dir.join("out/result.txt")).unwrap(), data);
    assert_eq!(summary["input_bytes_sent"], 0, "an input byte went through the driver: {summary}");
    // A directory of files, each a partition.
    let (dir, shared, _) = shared_job(c, "shared-dir");
    for i in 0..4 {
        std::fs::write(shared.join(format!("more-{i}.txt")), format!("file {i}\n")).unwrap();
    }
    std::fs::remove_file(shared.join("in.txt")).unwrap();
    let job = format!("[input]\npath = \"shared:{}\"\n[map]\ncommand = \"cat\"\n[output]\npath = \"out/result.txt\"\n", shared.display());
    std::fs::write(dir.join("job.toml"), job).unwrap();
    let dir_summary = run(&dir, &c.arg()).success().json();
    assert_eq!(std::fs::read_to_string(dir.join("out/result.txt")).unwrap(), "file 0\nfile 1\nfile 2\nfile 3\n");
    assert_eq!(dir_summary["input_bytes_sent"], 0, "{dir_summary}");
    let hosts: std::collections::BTreeSet<&str> =
        summary["attempts"].as_array().unwrap().iter().map(|a| a["host"].as_str().unwrap()).collect();
    assert_eq!(hosts.len(), 3, "every host read some of it: {summary}");
}

#[test]
fn a_host_that_lacks_the_shared_path_is_named_and_the_others_do_its_part() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let (dir, shared, data) = shared_job(c, "shared-hidden");
    assert!(script(&["hide", "h2", shared.to_str().unwrap()]).status.success(), "testcluster hide failed");
    let ran = run(&dir, &c.arg());
    heal_all();
    let ran = ran.success().stderr_has("host `h2`: cannot read the input").stderr_has("host `h2` is excluded for the rest of the run");
    let summary = ran.json();
    assert_eq!(std::fs::read_to_string(dir.join("out/result.txt")).unwrap(), data);
    let failed: Vec<&serde_json::Value> = summary["attempts"].as_array().unwrap().iter().filter(|a| a["outcome"] == "failed").collect();
    assert!(!failed.is_empty(), "h2 ran none of the tasks: {summary}");
    let want = format!("cannot read the input {} on this host (No such file or directory (os error 2)): a shared: input must be at the same path on every host", shared.join("in.txt").display());
    for a in &failed {
        assert_eq!(a["host"], "h2", "{a}");
        assert!(a["status"].as_str().unwrap_or("").contains(&want), "{a}");
    }
}

#[test]
fn files_on_each_host_are_read_there_and_outputs_stay_there_until_pulled() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let dir = c.dir.join("jobs").join("on-hosts");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Each host's own file (the test hosts share this machine's files,
    // so each gets a name of its own: {host} in the path).
    let mut all = Vec::new();
    for h in netns::HOSTS {
        let text: String = (0..4000).map(|i| format!("{h} {i} {}\n", "y".repeat(i % 90))).collect();
        std::fs::write(dir.join(format!("logs-{h}.txt")), &text).unwrap();
        all.extend(text.lines().map(|l| l.to_uppercase()));
    }
    let check = r#"awk -v h="$SHOAL_HOST" '$1 != h { print "WRONG HOST " h ": " $0; next } { print toupper($0) }'"#;
    let job = format!(
        "[input]\npath = \"{d}/logs-{{host}}.txt\"\npartitions = 9\n[map]\ncommand = '''{check}'''\n[output]\npath = \"{d}/kept/{{host}}\"\nmerge = \"none\"\non_hosts = true\n",
        d = dir.display()
    );
    std::fs::write(dir.join("job.toml"), job).unwrap();
    let summary = run(&dir, &c.arg()).success().json();
    assert_eq!(summary["input_bytes_sent"], 0, "{summary}");
    let parts = summary["parts_on_hosts"].as_array().unwrap();
    assert_eq!(parts.len(), 9, "{summary}");
    for p in parts {
        // Committed once, on the host that read the data, in its own dir.
        let host = p["host"].as_str().unwrap();
        assert!(p["path"].as_str().unwrap().starts_with(&format!("{}/kept/{host}/part-", dir.display())), "{p}");
        let text = std::fs::read_to_string(p["path"].as_str().unwrap()).unwrap();
        assert!(text.lines().all(|l| l.starts_with(&host.to_uppercase())), "part {p} holds another host's lines");
    }
    assert!(!dir.join("out").exists());
    let pulled = Shoal::new().in_dir(&dir).args(["pull", "--output", "latest", "--to", "pulled", "--cluster", &c.arg()]).run().success();
    assert_eq!(pulled.stdout.lines().filter(|l| l.ends_with(" ok")).count(), 9, "{}", pulled.stdout);
    let mut got: Vec<String> = Vec::new();
    for i in 0..9 {
        got.extend(std::fs::read_to_string(dir.join(format!("pulled/part-{i:05}"))).unwrap().lines().map(String::from));
    }
    assert_eq!(got, all, "every line once, in host then partition order");
}
