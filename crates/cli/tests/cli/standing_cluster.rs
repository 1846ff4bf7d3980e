//! A standing cluster on the 3-host netns cluster: `shoal cluster up`
//! starts a worker on every host over ssh and only what is missing when
//! run again; jobs run `--on` it with the same output as ephemeral runs;
//! applications share the slots and wait in the queue; a killed worker,
//! coordinator or driver; and `down` leaves nothing running anywhere.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use shoal_testkit::netns::{self, heal_all, Cluster};
use shoal_testkit::process::wait_for;
use shoal_testkit::standing::Standing;

const KEYS: usize = 37;
const LINES: usize = 3000;

/// A job dir with a keyed sum (map `sleep; cat`, 6 reduces) over
/// `partitions` partitions; `name` is the job's.
fn job(c: &Cluster, name: &str, partitions: u32, sleep: &str) -> PathBuf {
    let dir = c.dir.join("standing").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::fs::write(dir.join("nonce"), nonce.to_string()).unwrap();
    let data: String = (0..LINES).map(|i| format!("k{nonce}-{}\t1\n", i % KEYS)).collect();
    std::fs::write(dir.join("data.txt"), data).unwrap();
    let text = format!(
        "[job]\nname = \"{name}\"\n[input]\npath = \"data.txt\"\npartitions = {partitions}\n[map]\ncommand = \"sleep {sleep}; cat\"\n[reduce]\npartitions = 3\ncommand = \"awk -F'\\\\t' '{{ s[$1] += $2 }} END {{ for (k in s) print k \\\"\\\\t\\\" s[k] }}'\"\n[output]\npath = \"out.txt\"\n"
    );
    std::fs::write(dir.join("job.toml"), text).unwrap();
    dir
}

#[track_caller]
fn sums_are_exact(dir: &Path) {
    let mut got: Vec<String> = std::fs::read_to_string(dir.join("out.txt")).unwrap().lines().map(String::from).collect();
    got.sort();
    let nonce = std::fs::read_to_string(dir.join("nonce")).unwrap();
    let mut want: Vec<String> = (0..KEYS).map(|k| format!("k{nonce}-{k}\t{}", LINES / KEYS + usize::from(k < LINES % KEYS))).collect();
    want.sort();
    assert_eq!(got, want, "the output differs from the single-machine answer");
}

/// `shoal run job.toml --on NAME --json` started in the background.
fn start(lab: &Standing, dir: &Path, extra: &[&str]) -> Child {
    lab.shoal()
        .args(["run", "job.toml", "--json", "--on", &lab.name])
        .args(extra)
        .in_dir(dir)
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shoal run")
}

fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn worker_pid(c: &Cluster, h: &str, name: &str) -> Option<u32> {
    std::fs::read_to_string(c.dir.join(h).join("work/clusters").join(name).join("worker.pid")).ok()?.trim().parse().ok()
}

/// Every host holds nothing but its sshd (and Slurm's daemon, where the
/// Slurm test started one), within `secs`.
#[track_caller]
fn nothing_left(c: &Cluster, secs: u64) {
    let clean = |h: &str| c.strays(h).into_iter().filter(|s| !s.contains("slurmd")).collect::<Vec<_>>();
    let ok = wait_for(secs, || netns::HOSTS.iter().all(|h| clean(h).is_empty()));
    let left: Vec<(String, Vec<String>)> = netns::HOSTS.iter().map(|h| (h.to_string(), clean(h))).collect();
    assert!(ok, "processes left on the hosts: {left:#?}");
}

fn kill_9(pid: u32) {
    let killed = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(killed.success(), "kill -9 {pid} failed");
}

fn alive(status: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["alive"] == true)
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn up_status_and_down_on_three_ssh_hosts_start_only_what_is_missing_and_leave_nothing_running() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let lab = Standing::new("lab");
    let first = lab.up(&["--cluster", &c.arg()]);
    assert_eq!(first["coordinator_started"], true, "{first}");
    let states: Vec<&str> = first["hosts"].as_array().unwrap().iter().map(|h| h["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["started"; 3], "{first}");
    let status = lab.status();
    assert_eq!(alive(&status), ["h1", "h2", "h3"], "{status}");
    for w in status["workers"].as_array().unwrap() {
        assert!(w["slots"].as_u64().unwrap() >= 1 && w["busy"] == 0, "{w}");
        assert!(w["last_heartbeat_ms"].as_u64().unwrap() < 3000, "{w}");
    }
    // Again: nothing new is started, the same workers keep running.
    let again = lab.up(&["--cluster", &c.arg()]);
    assert_eq!(again["coordinator_started"], false, "{again}");
    for (h, before) in again["hosts"].as_array().unwrap().iter().zip(first["hosts"].as_array().unwrap()) {
        assert_eq!((&h["state"], &h["pid"]), (&"running".into(), &before["pid"]), "{again}");
    }
    // A job --on the cluster gives the ephemeral run's answer.
    let dir = job(c, "standing-sum", 6, "0");
    lab.shoal().args(["run", "job.toml", "--on", "lab"]).in_dir(&dir).run().success();
    sums_are_exact(&dir);
    let standing = std::fs::read_to_string(dir.join("out.txt")).unwrap();
    lab.shoal().args(["run", "job.toml", "--cluster", &c.arg()]).in_dir(&dir).run().success();
    let mut a: Vec<&str> = standing.lines().collect();
    let ephemeral = std::fs::read_to_string(dir.join("out.txt")).unwrap();
    let mut b: Vec<&str> = ephemeral.lines().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the standing cluster's output differs from the ephemeral run's");
    // The application ended with its driver: no slot is held.
    let after = lab.status();
    assert_eq!(after["applications"], serde_json::json!([]), "{after}");
    let down = lab.down().success().json();
    assert_eq!(down["coordinator_stopped"], true, "{down}");
    assert_eq!(down["workers_stopped"], serde_json::json!(["h1", "h2", "h3"]), "{down}");
    nothing_left(c, 10);
    let twice = lab.down().success().json();
    assert_eq!(twice["coordinator_stopped"], false, "{twice}");
    assert_eq!(twice["notes"], serde_json::json!([]), "{twice}");
}

#[test]
fn two_applications_share_the_slots_and_a_third_waits_in_the_queue_until_one_ends() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let lab = Standing::new("share");
    lab.up(&["--cluster", &c.arg(), "--max-applications", "2"]);
    let total: u64 = lab.status()["workers"].as_array().unwrap().iter().map(|w| w["slots"].as_u64().unwrap()).sum();
    let dirs: Vec<PathBuf> = ["app-a", "app-b", "app-c"].iter().map(|n| job(c, n, 12, "1")).collect();
    let a = start(&lab, &dirs[0], &[]);
    assert!(wait_for(20, || lab.status()["applications"].as_array().unwrap().len() == 1), "application a never ran");
    let alone = lab.status();
    assert_eq!(alone["applications"][0]["slots"].as_u64().unwrap(), total, "one application gets every slot: {alone}");
    let b = start(&lab, &dirs[1], &[]);
    assert!(wait_for(20, || lab.status()["applications"].as_array().unwrap().len() == 2), "application b never ran");
    let both = lab.status();
    let shares: Vec<u64> = both["applications"].as_array().unwrap().iter().map(|a| a["slots"].as_u64().unwrap()).collect();
    assert_eq!(shares.iter().sum::<u64>(), total, "{both}");
    assert!(shares[0].abs_diff(shares[1]) <= 1, "the slots are not shared fairly: {both}");
    // A third waits: at most two run at once.
    let third = start(&lab, &dirs[2], &[]);
    assert!(wait_for(20, || lab.status()["queue"].as_array().unwrap().len() == 1), "application c was not queued: {}", lab.status());
    let (code, _, stderr) = finish(a);
    assert_eq!(code, 0, "{stderr}");
    assert!(wait_for(20, || lab.status()["queue"].as_array().unwrap().is_empty()), "application c never left the queue");
    let (code, _, stderr) = finish(b);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = finish(third);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("waiting in the queue"), "application c did not say it waited: {stderr}");
    for d in &dirs {
        sums_are_exact(d);
    }
}

#[test]
fn a_worker_killed_mid_application_loses_its_tasks_which_rerun_elsewhere_and_up_brings_it_back() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let lab = Standing::new("kill-worker");
    lab.up(&["--cluster", &c.arg(), "--heartbeat-timeout", "3s"]);
    let dir = job(c, "lose-worker", 12, "1");
    let run = start(&lab, &dir, &[]);
    assert!(wait_for(30, || !c.procs_on("h2", "sleep 1").is_empty()), "no task ever ran on h2");
    let pid = worker_pid(c, "h2", "kill-worker").expect("h2's worker pid");
    kill_9(pid);
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, 0, "{stderr}");
    sums_are_exact(&dir);
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let lost = summary["lost"].as_array().unwrap();
    assert!(lost.iter().any(|l| l[0] == "h2"), "h2 was not lost: {}", summary["lost"]);
    assert!(summary["attempts"].as_array().unwrap().len() > summary["tasks"].as_u64().unwrap() as usize, "no task ran again");
    let status = lab.status();
    assert_eq!(alive(&status), ["h1", "h3"], "{status}");
    // Up again starts only h2's worker, which rejoins.
    let again = lab.up(&["--cluster", &c.arg()]);
    let states: Vec<(&str, &str)> =
        again["hosts"].as_array().unwrap().iter().map(|h| (h["host"].as_str().unwrap(), h["state"].as_str().unwrap())).collect();
    assert_eq!(states, [("h1", "running"), ("h2", "started"), ("h3", "running")], "{again}");
    assert_eq!(alive(&lab.status()), ["h1", "h2", "h3"]);
    lab.down().success();
    nothing_left(c, 10);
}

#[test]
fn a_killed_coordinator_fails_its_drivers_with_a_sentence_and_after_up_they_resume() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let lab = Standing::new("kill-coord");
    lab.up(&["--cluster", &c.arg()]);
    // Map only: every task's output is journaled as it commits.
    let dir = job(c, "lose-coordinator", 12, "1");
    let text = std::fs::read_to_string(dir.join("job.toml")).unwrap();
    let map_only: String = text.split("[reduce]").next().unwrap().to_string() + "[output]\npath = \"out.txt\"\n";
    std::fs::write(dir.join("job.toml"), map_only).unwrap();
    let run = start(&lab, &dir, &[]);
    let committed = || {
        let runs = std::fs::read_dir(dir.join(".shoal/runs")).into_iter().flatten().flatten();
        runs.map(|r| std::fs::read_to_string(r.path().join("journal.jsonl")).unwrap_or_default().lines().count()).sum::<usize>()
    };
    assert!(wait_for(30, || committed() >= 3), "no task committed");
    let pid: u32 = lab.read("coordinator.pid").trim().parse().unwrap();
    kill_9(pid);
    let (code, _, stderr) = finish(run);
    assert_ne!(code, 0, "the run went on without its coordinator: {stderr}");
    assert!(
        stderr.contains("lost") && stderr.contains("the connection to the coordinator ended"),
        "the failure does not say what happened: {stderr}"
    );
    // Up restarts the coordinator; the workers reconnect by themselves.
    let again = lab.up(&["--cluster", &c.arg()]);
    assert_eq!(again["coordinator_started"], true, "{again}");
    assert!(wait_for(10, || alive(&lab.status()).len() == 3), "the workers did not rejoin: {}", lab.status());
    let resumed = lab.shoal().args(["run", "job.toml", "--json", "--resume", "--on", "kill-coord"]).in_dir(&dir).run().success().json();
    let mut got: Vec<String> = std::fs::read_to_string(dir.join("out.txt")).unwrap().lines().map(String::from).collect();
    let mut want: Vec<String> = std::fs::read_to_string(dir.join("data.txt")).unwrap().lines().map(String::from).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the resumed run's output is not the input");
    assert!(resumed["reused"].as_u64().unwrap() > 0, "the resumed run reused nothing: {resumed}");
    lab.down().success();
    nothing_left(c, 10);
}

#[test]
fn a_killed_driver_frees_its_slots_at_once_and_its_agents_end() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let lab = Standing::new("kill-driver");
    lab.up(&["--cluster", &c.arg()]);
    let dir = job(c, "lose-driver", 12, "3");
    let mut run = start(&lab, &dir, &[]);
    assert!(wait_for(30, || netns::HOSTS.iter().all(|h| !c.procs_on(h, "sleep 3").is_empty())), "tasks never ran on every host");
    run.kill().unwrap();
    let _ = run.wait();
    assert!(wait_for(2, || lab.status()["applications"].as_array().unwrap().is_empty()), "the slots were not freed: {}", lab.status());
    // The agents and their tasks end with their sessions; the workers stay.
    let only_workers = |h: &str| c.strays(h).iter().all(|s| s.contains(" worker ") || s.contains("slurmd"));
    assert!(wait_for(15, || netns::HOSTS.iter().all(|h| only_workers(h))), "{:#?}", netns::HOSTS.map(|h| c.strays(h)));
    assert_eq!(alive(&lab.status()), ["h1", "h2", "h3"]);
}

/// Brings Slurm down when dropped (even when the test failed).
struct SlurmUp;

impl Drop for SlurmUp {
    fn drop(&mut self) {
        let _ = netns::slurm(&["down"]);
    }
}

#[test]
fn slurm_started_workers_run_a_job_like_ssh_hosts_and_down_leaves_no_slurm_job() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    let up = netns::slurm(&["up"]);
    assert!(up.status.success(), "testslurm up failed:\n{}{}", String::from_utf8_lossy(&up.stdout), String::from_utf8_lossy(&up.stderr));
    let _slurm = SlurmUp;
    let env = std::fs::read_to_string(String::from_utf8_lossy(&up.stdout).trim()).unwrap();
    let conf =
        env.lines().find_map(|l| l.strip_prefix("export SLURM_CONF=")).expect("SLURM_CONF in the env file").trim_matches('"').to_string();
    let lab = Standing::new("slurm");
    lab.up(&["--coordinator-only", "--advertise", "10.177.0.1"]);
    let sub =
        lab.shoal().env("SLURM_CONF", &conf).args(["cluster", "slurm", "--name", "slurm", "--nodes", "3", "--json"]).run().success().json();
    let mut joined: Vec<String> = sub["joined"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    joined.sort();
    assert_eq!(joined, ["h1", "h2", "h3"], "{sub}");
    let job_id = sub["job"].as_str().unwrap().to_string();
    let status = lab.shoal().env("SLURM_CONF", &conf).args(["cluster", "status", "--name", "slurm", "--json"]).run().success().json();
    assert_eq!(status["allocations"][0]["job"], job_id.as_str(), "{status}");
    assert_eq!(status["allocations"][0]["state"], "RUNNING", "{status}");
    for w in status["workers"].as_array().unwrap() {
        assert_eq!(w["started_by"], format!("slurm:{job_id}").as_str(), "{w}");
    }
    // The same job as on ssh hosts, the same answer.
    let dir = job(c, "on-slurm", 6, "0");
    lab.shoal().args(["run", "job.toml", "--on", "slurm"]).in_dir(&dir).run().success();
    sums_are_exact(&dir);
    let down = lab.shoal().env("SLURM_CONF", &conf).args(["cluster", "down", "--name", "slurm", "--json"]).run().success().json();
    let cancelled = format!("Slurm job {job_id}: cancelled");
    assert!(down["notes"].as_array().unwrap().iter().any(|n| n.as_str() == Some(cancelled.as_str())), "{down}");
    let queue = || {
        let q = std::process::Command::new("squeue").env("SLURM_CONF", &conf).args(["-h", "-o", "%i"]).output().unwrap();
        String::from_utf8_lossy(&q.stdout).trim().to_string()
    };
    assert!(wait_for(15, || queue().is_empty()), "a Slurm job is left: {}", queue());
    nothing_left(c, 15);

    // The same from a login host (h1) over ssh: the binary and the worker
    // access are staged in its work dir, sbatch/squeue/scancel run there.
    lab.up(&["--coordinator-only", "--advertise", "10.177.0.1"]);
    let sub = lab
        .shoal()
        .env("SLURM_CONF", &conf)
        .args(["cluster", "slurm", "--name", "slurm", "--nodes", "3", "--login", "h1", "--cluster", &c.arg(), "--json"])
        .run()
        .success()
        .json();
    assert_eq!(sub["joined"].as_array().unwrap().len(), 3, "{sub}");
    let job_id = sub["job"].as_str().unwrap().to_string();
    let staged = c.dir.join("h1/work/clusters/slurm/worker.access");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&staged).unwrap().permissions().mode() & 0o777, 0o600, "the staged access file is not private");
    let status = lab.shoal().env("SLURM_CONF", &conf).args(["cluster", "status", "--name", "slurm", "--json"]).run().success().json();
    assert_eq!(
        (&status["allocations"][0]["job"], &status["allocations"][0]["state"]),
        (&job_id.as_str().into(), &"RUNNING".into()),
        "{status}"
    );
    let dir = job(c, "on-slurm-login", 6, "0");
    lab.shoal().args(["run", "job.toml", "--on", "slurm"]).in_dir(&dir).run().success();
    sums_are_exact(&dir);
    let down = lab.shoal().env("SLURM_CONF", &conf).args(["cluster", "down", "--name", "slurm", "--json"]).run().success().json();
    let cancelled = format!("Slurm job {job_id}: cancelled");
    assert!(down["notes"].as_array().unwrap().iter().any(|n| n.as_str() == Some(cancelled.as_str())), "{down}");
    assert!(wait_for(15, || queue().is_empty()), "a Slurm job is left: {}", queue());
    nothing_left(c, 15);
}

#[test]
fn with_tunnel_ssh_workers_behind_a_firewall_join_through_ssh_and_jobs_run() {
    let Some((_g, c)) = netns::up() else { return };
    heal_all();
    // Every host can be reached on port 22 only: no connection out.
    for h in netns::HOSTS {
        assert!(netns::script(&["wall", h]).status.success(), "testcluster wall {h} failed");
    }
    struct Heal;
    impl Drop for Heal {
        fn drop(&mut self) {
            heal_all();
        }
    }
    let _heal = Heal;
    let walled = Standing::new("walled");
    let plain = walled.shoal().args(["cluster", "up", "--name", "walled", "--cluster", &c.arg(), "--json"]).run().code(3).json();
    for h in plain["hosts"].as_array().unwrap() {
        assert_eq!(h["state"], "failed", "{plain}");
        assert!(h["error"].as_str().unwrap().contains("did not join the coordinator"), "{h}");
    }
    walled.down().success();
    let file = c.dir.join("standing").join("tunnel.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, format!("tunnel = \"ssh\"\n{}", std::fs::read_to_string(&c.file).unwrap())).unwrap();
    let lab = Standing::new("tunnel");
    let up = lab.up(&["--cluster", &file.display().to_string()]);
    assert_eq!(alive(&lab.status()), ["h1", "h2", "h3"], "{up}");
    let dir = job(c, "through-tunnels", 6, "0");
    let ran = lab.shoal().args(["run", "job.toml", "--json", "--on", "tunnel"]).in_dir(&dir).run().success().json();
    sums_are_exact(&dir);
    // The hosts cannot reach each other either: the shuffle went through the driver.
    assert_eq!(ran["shuffle"]["direct_bytes"], 0, "{}", ran["shuffle"]);
    lab.down().success();
    let tunnels = || {
        let out = std::process::Command::new("pgrep").args(["-f", "ssh -N -R 127.0.0.1:"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert!(wait_for(5, || tunnels().is_empty()), "ssh tunnels left running: {}", tunnels());
    nothing_left(c, 10);
}
