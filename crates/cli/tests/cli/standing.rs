//! The standing cluster (`shoal cluster up|status|down`, `run --on`):
//! on this machine, its coordinator refuses what is not a holder of the
//! right key for the right role (garbage, another cluster's key, a worker
//! key used to submit, a replayed handshake) before decoding a byte of
//! it; on the 3-host netns cluster, workers over ssh, shared slots, the
//! queue, and faults (see `standing_cluster.rs`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_testkit::standing::Standing;

/// A job dir with a one-partition `cat` job over three lines.
fn small_job(dir: &Path) {
    std::fs::write(dir.join("in.txt"), "a\nb\nc\n").unwrap();
    std::fs::write(
        dir.join("job.toml"),
        "[job]\nname = \"small\"\n[input]\npath = \"in.txt\"\npartitions = 1\n[map]\ncommand = \"cat\"\n[output]\npath = \"out.txt\"\n",
    )
    .unwrap();
}

fn port_of(access: &str) -> u16 {
    let line = access.lines().find(|l| l.starts_with("coordinator =")).expect("a coordinator line");
    line.trim_end_matches('"').rsplit(':').next().unwrap().parse().expect("a port")
}

/// A TCP proxy to `port` that records what the first client sent.
fn recording_proxy(port: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = listener.local_addr().unwrap().port();
    let first: Arc<Mutex<Vec<u8>>> = Arc::default();
    let record = first.clone();
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else { continue };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let record = (n == 0).then(|| record.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(k) = c_in.read(&mut buf) {
                    if k == 0 || s_out.write_all(&buf[..k]).is_err() {
                        break;
                    }
                    if let Some(r) = &record {
                        r.lock().unwrap().extend_from_slice(&buf[..k]);
                    }
                }
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (proxy, first)
}

/// Sends `bytes` to the coordinator, then waits until it hangs up; returns
/// what it answered.
fn send_raw(port: u16, bytes: &[u8], close_write: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(bytes).unwrap();
    if close_write {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn garbage_another_clusters_key_a_worker_key_and_a_replayed_handshake_are_refused_before_any_decoding() {
    let sec = Standing::new("sec");
    let other = sec.sibling("other");
    let job = tempfile::tempdir().unwrap();
    small_job(job.path());
    sec.up(&[]);
    // Another cluster's keys, in the same HOME as `sec`'s.
    assert_eq!(other.up(&[])["cluster"], "other");
    let other_dir = other.dir();
    let client = sec.read("client.access");
    let port = port_of(&client);

    // A real application through a proxy that records its bytes.
    let (proxy, recorded) = recording_proxy(port);
    let via = job.path().join("via-proxy.access");
    Standing::write_access(&via, &client.replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{proxy}")));
    sec.shoal().args(["run", "job.toml", "--on"]).arg(&via).in_dir(job.path()).run().success();
    assert_eq!(std::fs::read_to_string(job.path().join("out.txt")).unwrap(), "a\nb\nc\n");
    let replay = recorded.lock().unwrap().clone();
    assert!(replay.len() > 100, "the proxy recorded {} bytes", replay.len());

    let before = sec.status();
    // 1. Garbage in a well-formed frame, and an HTTP request.
    let mut framed = vec![0u8, 96];
    framed.extend((0..96u8).map(|i| i.wrapping_mul(37)));
    assert_eq!(send_raw(port, &framed, false), b"", "the coordinator answered garbage");
    assert_eq!(send_raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true), b"", "the coordinator answered HTTP");
    // 2. Another cluster's client key, pointed at this coordinator.
    let stranger = job.path().join("stranger.access");
    let other_client = std::fs::read_to_string(other_dir.join("client.access")).unwrap();
    Standing::write_access(&stranger, &other_client.replace(&format!(":{}", port_of(&other_client)), &format!(":{port}")));
    sec.shoal().args(["run", "job.toml", "--on"]).arg(&stranger).in_dir(job.path()).run().fails_with(3, "refused the handshake");
    // 3. The worker key, claiming to be a client (to submit work).
    let worker_key = job.path().join("worker-as-client.access");
    Standing::write_access(&worker_key, &sec.read("worker.access").replace("role = \"worker\"", "role = \"client\""));
    sec.shoal().args(["run", "job.toml", "--on"]).arg(&worker_key).in_dir(job.path()).run().fails_with(3, "refused the handshake");
    // ... and the worker access file as it is: refused before connecting.
    sec.shoal()
        .args(["run", "job.toml", "--on"])
        .arg(sec.dir().join("worker.access"))
        .in_dir(job.path())
        .run()
        .fails_with(3, "is a worker's access file: it can join the cluster, not run jobs on it");
    // 4. The recorded application, replayed byte for byte.
    let answer = send_raw(port, &replay, false);
    assert!(answer.len() < 200, "the replay got more than a handshake answer: {} bytes", answer.len());

    let after = sec.status();
    let refusals: Vec<String> = after["refusals"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    assert_eq!(after["refused"].as_u64().unwrap() - before["refused"].as_u64().unwrap(), 5, "{refusals:#?}");
    let tail = &refusals[refusals.len() - 5..];
    assert!(tail[0].contains("the handshake did not authenticate"), "{tail:#?}");
    assert!(tail[1].contains("the connection closed during the handshake"), "{tail:#?}");
    assert!(tail[2].contains("the handshake did not authenticate"), "{tail:#?}");
    assert!(tail[3].contains("a client connection with a key that is not this cluster's client key"), "{tail:#?}");
    assert!(tail[4].contains("a message failed authentication"), "{tail:#?}");
    // Nothing any of them sent reached the decoder: the only client
    // message decoded in between is the second status request itself.
    assert_eq!(after["decoded_client"].as_u64().unwrap() - before["decoded_client"].as_u64().unwrap(), 1, "{after}");
    let log = sec.read("coordinator.log");
    assert_eq!(log.matches("refused a connection from 127.0.0.1").count(), 5, "{log}");
    // The coordinator still serves its own clients.
    sec.shoal().args(["run", "job.toml", "--on", "sec"]).in_dir(job.path()).run().success();
    drop(other);
}

#[test]
fn access_files_others_can_read_and_unknown_clusters_are_named_with_the_fix() {
    let c = Standing::new("perm");
    let job = tempfile::tempdir().unwrap();
    small_job(job.path());
    c.shoal()
        .args(["run", "job.toml", "--on", "perm"])
        .in_dir(job.path())
        .run()
        .fails_with(3, "no standing cluster \"perm\" here")
        .stderr_has("start it with `shoal cluster up --name perm`");
    c.shoal().args(["cluster", "status", "--name", "perm"]).run().code(1).stderr_has("no standing cluster \"perm\" here");
    c.up(&[]);
    let client = c.dir().join("client.access");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o644)).unwrap();
    c.shoal()
        .args(["run", "job.toml", "--on", "perm"])
        .in_dir(job.path())
        .run()
        .fails_with(3, "can be read by other users (mode 644), and it holds a key: run chmod 600");
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o600)).unwrap();
    c.shoal().args(["run", "job.toml", "--on", "perm"]).in_dir(job.path()).run().success();
    // Down twice: the second finds nothing to stop.
    let first = c.down().success().json();
    assert_eq!(first["coordinator_stopped"], true, "{first}");
    let second = c.down().success().json();
    assert_eq!(second["coordinator_stopped"], false, "{second}");
    c.shoal().args(["cluster", "status", "--name", "perm"]).run().code(1).stderr_has("does not answer");
}

#[test]
fn a_worker_in_a_docker_container_joins_with_the_worker_access_and_runs_tasks() {
    let Some(_docker) = shoal_testkit::docker::shoal_worker_image("shoal-worker-test") else { return };
    let name = "shoal-standing-worker";
    let _ = std::process::Command::new("docker").args(["rm", "-f", name]).output();
    let c = Standing::new("dock");
    c.up(&["--coordinator-only"]);
    let access = c.dir().join("worker.access");
    let run = std::process::Command::new("docker")
        .args(["run", "-d", "--name", name, "--network", "host", "-e", "HOME=/tmp", "-v"])
        .arg(format!("{}:/access:ro", access.display()))
        .args([
            "shoal-worker-test",
            "/shoal",
            "worker",
            "--join",
            "/access",
            "--name",
            "box1",
            "--workdir",
            "/tmp/w",
            "--slots",
            "2",
            "--started-by",
            "docker",
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "docker run: {}", String::from_utf8_lossy(&run.stderr));
    let joined = shoal_testkit::process::wait_for(20, || {
        c.status()["workers"].as_array().unwrap().iter().any(|w| w["name"] == "box1" && w["alive"] == true)
    });
    let logs = || String::from_utf8_lossy(&std::process::Command::new("docker").args(["logs", name]).output().unwrap().stderr).into_owned();
    assert!(joined, "the container's worker never joined: {}", logs());
    let status = c.status();
    assert_eq!(status["workers"][0]["started_by"], "docker", "{status}");
    // The job runs in the container (its binary is sent over the session).
    let job = tempfile::tempdir().unwrap();
    small_job(job.path());
    std::fs::write(job.path().join("job.toml"), "[job]\nname = \"where\"\n[input]\npath = \"in.txt\"\npartitions = 1\n[map]\ncommand = \"cat; test -f /access && echo in-the-container\"\n[output]\npath = \"out.txt\"\n").unwrap();
    c.shoal().args(["run", "job.toml", "--on", "dock"]).in_dir(job.path()).run().success();
    assert_eq!(std::fs::read_to_string(job.path().join("out.txt")).unwrap(), "a\nb\nc\nin-the-container\n");
    // Down stops the worker: the container exits, cleanly.
    c.down().success();
    let exited = shoal_testkit::process::wait_for(15, || {
        let s =
            std::process::Command::new("docker").args(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name]).output().unwrap();
        String::from_utf8_lossy(&s.stdout).trim() == "exited 0"
    });
    assert!(exited, "the container's worker did not stop with the cluster: {}", logs());
    let _ = std::process::Command::new("docker").args(["rm", "-f", name]).output();
}
