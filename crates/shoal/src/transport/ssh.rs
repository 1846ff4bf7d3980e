//! The `ssh` transport: the system OpenSSH client, and self-deploy.
//!
//! One connection normally suffices: a bootstrap script starts
//! `<workdir>/bin/shoal-<hash> agent` if that file exists, or else prints
//! `SHOAL-NEED <uname -sm>`. Only then do we compare architectures, upload
//! the binary (temp file created exclusively, fsync, chmod 700, atomic
//! rename: two drivers at once never run half a binary) and try once more.
//!
//! The bootstrap runs nothing that another user could have put there: the
//! work dir, its `bin/` and the binary must belong to the login user and
//! be closed to writes by others, and neither `bin/` nor the binary may be
//! a symlink; otherwise it prints `SHOAL-UNSAFE <why>` and the connection
//! fails with that sentence. The agent then checks its work dir again
//! (and closes it to 0700) before it touches anything in it.
//!
//! Every remote command line is built by [`crate::quote`]. Host keys are
//! checked as the user's ssh config says; we never pass
//! `StrictHostKeyChecking=no`. ssh's exit code 255 means ssh itself failed,
//! and its stderr says why; [`explain`] turns that into a hint.

use std::process::Stdio;
use std::time::Duration;

use shoal_core::cluster::HostSpec;
use shoal_wire::agent_args::{self, AgentArgs};
use tokio::process::Command;

use super::local::expand_home;
use super::{greet, handshake, Greeting, Link, Refused, StderrTail, TransportError};
use crate::binary::{self, Binary};
use crate::quote;

/// The base `ssh` command for a host, without the remote command.
pub fn ssh_command(host: &HostSpec) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args(ssh_args(host));
    cmd
}

/// Options that keep a host from reaching back into this machine (your ssh
/// agent, X display, forwarded ports, a local command): a job runs code
/// from its job file there. They come before the user's `ssh_options`
/// because ssh keeps the first value it sees for each option, so neither
/// the cluster file nor `~/.ssh/config` can turn them back on (the flags
/// `-A`, `-X` and `-Y`, which would, are refused by the cluster parser).
const LOCKED: [&str; 5] = ["ForwardAgent=no", "ForwardX11=no", "ClearAllForwardings=yes", "PermitLocalCommand=no", "BatchMode=yes"];

/// Arguments before the remote command: the locked options, then the
/// user's `ssh_options` (which can override the defaults after them), then
/// those defaults.
pub fn ssh_args(host: &HostSpec) -> Vec<String> {
    let mut a: Vec<String> = LOCKED.iter().flat_map(|o| ["-o".to_string(), o.to_string()]).collect();
    a.extend(host.ssh_options.iter().cloned());
    let interval = (host.heartbeat_timeout.as_secs() / 3).max(1);
    for opt in [
        format!("ConnectTimeout={}", host.connect_timeout.as_secs().max(1)),
        format!("ServerAliveInterval={interval}"),
        "ServerAliveCountMax=3".to_string(),
        "LogLevel=ERROR".to_string(),
    ] {
        a.push("-o".into());
        a.push(opt);
    }
    a.push("-T".into());
    if let Some(port) = host.port {
        a.extend(["-p".into(), port.to_string()]);
    }
    if let Some(user) = &host.user {
        a.extend(["-l".into(), user.clone()]);
    }
    if let Some(id) = &host.identity {
        a.extend(["-i".into(), expand_home(id).display().to_string()]);
    }
    a.push("--".into());
    a.push(host.address.clone());
    a
}

/// The `ssh` command that keeps a standing cluster's tunnel to `host`:
/// `port` on the host's loopback forwarded to `port` on this machine's
/// (`-R`), nothing run there (`-N`). The same locked options as every
/// other connection, except the one that clears forwardings (this one
/// forwarding is Shoal's own, to the coordinator, which authenticates
/// every connection).
pub fn tunnel_command(host: &HostSpec, port: u16) -> std::process::Command {
    let mut cmd = std::process::Command::new("ssh");
    let forward = format!("127.0.0.1:{port}:127.0.0.1:{port}");
    cmd.args(["-N", "-R", &forward, "-o", "ExitOnForwardFailure=yes"]);
    let args = ssh_args(host);
    let mut skip = false;
    for (i, a) in args.iter().enumerate() {
        if skip {
            skip = false;
            continue;
        }
        if a == "-o" && args.get(i + 1).is_some_and(|v| v == "ClearAllForwardings=yes") {
            skip = true;
            continue;
        }
        cmd.arg(a);
    }
    cmd
}

/// Forwardings that the user's ssh configuration would add to the
/// tunnel to `host` (`ssh -G`: the configuration as ssh evaluates it),
/// other than the tunnel's own.
pub fn config_forwards(host: &HostSpec, port: u16) -> std::io::Result<Vec<String>> {
    let cmd = tunnel_command(host, port);
    let args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_os_string()).collect();
    let mut probe = std::process::Command::new("ssh");
    probe.arg("-G").args(args).stdin(std::process::Stdio::null());
    let out = probe.output()?;
    let own = format!("remoteforward [127.0.0.1]:{port} [127.0.0.1]:{port}");
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("localforward ") || l.starts_with("remoteforward ") || l.starts_with("dynamicforward "))
        .filter(|l| *l != own)
        .map(String::from)
        .collect())
}

pub async fn start(host: &HostSpec, lease: Duration) -> Result<Link, TransportError> {
    let bin = agent_binary(host)?;
    let mut uploaded = 0;
    for _ in 0..2 {
        let (mut child, stderr) = spawn(host, &bootstrap(host, &bin, lease)?)?;
        let mut stdout = child.stdout.take().ok_or(TransportError::NotPiped("ssh stdout"))?;
        let greeting = tokio::time::timeout(handshake_limit(host), greet(&mut stdout)).await;
        match greeting {
            Err(_) => return Err(timed_out(host, &stderr)),
            Ok(Ok(Greeting::Agent(rest))) => {
                let mut link = handshake(child, stdout, rest, stderr).await?;
                link.stats.uploaded_bytes = uploaded;
                return Ok(link);
            }
            Ok(Ok(Greeting::NeedBinary(uname))) => {
                let _ = child.wait().await;
                check_arch(&uname, host)?;
                upload(host, &bin).await?;
                uploaded = bin.size;
            }
            Ok(Ok(Greeting::Eof(out))) => return Err(ssh_failed(host, child, &stderr, &out).await),
            Ok(Err(e)) => return Err(e),
        }
    }
    Err(TransportError::StillMissing)
}

fn handshake_limit(host: &HostSpec) -> Duration {
    host.connect_timeout * 2 + Duration::from_secs(10)
}

fn agent_binary(host: &HostSpec) -> Result<Binary, TransportError> {
    let bin = match &host.agent_binary {
        Some(p) => binary::hash_file(expand_home(p)),
        None => binary::current().cloned(),
    };
    bin.map_err(TransportError::AgentBinary)
}

/// Marks the line of a bootstrap that refused to run the agent.
const UNSAFE: &str = "SHOAL-UNSAFE ";

/// POSIX sh functions of both scripts: `owned PATH` refuses what PATH
/// leads to unless this user owns it and others cannot write it, and
/// leaves its size in `$size`; `plain PATH` also refuses a symlink.
/// `ls -ldn` is the portable way to read an owner, a mode and a size
/// (`stat` differs between GNU, BSD and busybox).
const CHECKS: &str = r#"set -f; me=$(id -u)
unsafe() { printf 'SHOAL-UNSAFE %s\n' "$1"; exit 1; }
owned() {
  set -- "$1" $(ls -ldn "$1")
  size=$6
  [ "$4" = "$me" ] || unsafe "$1 belongs to uid $4, not to this user (uid $me), so another user could replace the agent: use a work dir of your own (the host's workdir in the cluster file)"
  case "$2" in ?????w*|????????w*) unsafe "$1 is writable by other users ($2), so they could replace the agent: run chmod 700 $1 on that host (or remove it, and shoal uploads the agent again)";; esac
}
plain() {
  if [ -L "$1" ]; then unsafe "$1 is a symlink, which could lead anywhere: remove it on that host, and shoal uploads the agent again"; fi
  owned "$1"
}
"#;

/// The script that starts the agent or asks for its binary.
fn bootstrap(host: &HostSpec, bin: &Binary, lease: Duration) -> Result<String, TransportError> {
    Ok(quote::sh_script(&bootstrap_script(host, bin, lease)?)?)
}

fn bootstrap_script(host: &HostSpec, bin: &Binary, lease: Duration) -> Result<String, TransportError> {
    command_script(host, bin, &agent_words(lease)?)
}

/// The bootstrap with any subcommand of the deployed binary: `words` are
/// shell words already quoted, where `"$w"` is the checked work dir.
fn command_script(host: &HostSpec, bin: &Binary, words: &str) -> Result<String, TransportError> {
    // A binary of another size is one whose upload was cut short by an
    // older installer: it is asked for again (and replaced), never run.
    let body = r#"w=@DIR@; b="$w/bin/shoal-@HASH@"
if [ -e "$b" ] || [ -L "$b" ]; then
  owned "$w/."; plain "$w/bin"; plain "$b"
  if [ -x "$b" ] && [ "$size" = @SIZE@ ]; then exec "$b" @AGENT@; fi
fi
printf 'SHOAL-NEED %s\n' "$(uname -sm)""#;
    let script = body
        .replace("@DIR@", &quote::path(&host.workdir)?)
        .replace("@HASH@", &quote::word(&bin.hash)?)
        .replace("@SIZE@", &bin.size.to_string())
        .replace("@AGENT@", words);
    Ok(format!("{CHECKS}{script}"))
}

/// The work dir in the words of [`run_deployed`]: the remote shell's
/// checked `$w`.
pub const WORKDIR_WORD: &str = "$w";

/// Runs `<deployed binary> ARGS` on `host` (deploying the binary first
/// if the host lacks it), with `stdin` as its standard input; returns
/// what it printed after the agent's start marker, which it must print
/// first. `ARGS` may hold [`WORKDIR_WORD`] for the host's work dir.
pub async fn run_deployed(host: &HostSpec, args: &[String], stdin: &[u8]) -> Result<Vec<u8>, TransportError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bin = agent_binary(host)?;
    let quoted = args.iter().map(|a| if a == WORKDIR_WORD { Ok(format!("\"{WORKDIR_WORD}\"")) } else { quote::word(a) });
    let words = quoted.collect::<Result<Vec<_>, _>>()?.join(" ");
    for _ in 0..2 {
        let (mut child, stderr) = spawn(host, &quote::sh_script(&command_script(host, &bin, &words)?)?)?;
        let mut input = child.stdin.take().ok_or(TransportError::NotPiped("ssh stdin"))?;
        let _ = input.write_all(stdin).await;
        drop(input);
        let mut stdout = child.stdout.take().ok_or(TransportError::NotPiped("ssh stdout"))?;
        let greeting = tokio::time::timeout(handshake_limit(host), greet(&mut stdout)).await;
        match greeting {
            Err(_) => return Err(timed_out(host, &stderr)),
            Ok(Ok(Greeting::Agent(mut rest))) => {
                let _ = tokio::time::timeout(handshake_limit(host), stdout.read_to_end(&mut rest)).await;
                let _ = child.wait().await;
                return Ok(rest);
            }
            Ok(Ok(Greeting::NeedBinary(uname))) => {
                let _ = child.wait().await;
                check_arch(&uname, host)?;
                upload(host, &bin).await?;
            }
            Ok(Ok(Greeting::Eof(out))) => return Err(ssh_failed(host, child, &stderr, &out).await),
            Ok(Err(e)) => return Err(e),
        }
    }
    Err(TransportError::StillMissing)
}

/// The agent's subcommand and flags as shell words. The work dir is the
/// script's `$w`, a path the remote shell has already expanded (`~`) and
/// checked; every other word is quoted.
fn agent_words(lease: Duration) -> Result<String, TransportError> {
    const WORKDIR: &str = "$w";
    let args = AgentArgs::new(WORKDIR).with_lease(lease).to_args();
    let words = std::iter::once(agent_args::SUBCOMMAND.to_string()).chain(args);
    let quoted = words.map(|a| if a == WORKDIR { Ok(format!("\"{WORKDIR}\"")) } else { quote::word(&a) });
    Ok(quoted.collect::<Result<Vec<_>, _>>()?.join(" "))
}

/// The script that installs the binary from stdin, atomically: the temp
/// file is created exclusively (`set -C`: the shells open it with
/// `O_EXCL`, so nothing planted at that name is written through), in a
/// directory the checks found private, and renamed into place only when
/// it holds every byte: a driver killed mid-upload closes ssh's stdin,
/// which `cat` takes for the end of the binary.
fn installer(host: &HostSpec, bin: &Binary) -> Result<String, TransportError> {
    Ok(quote::sh_script(&installer_script(host, bin)?)?)
}

fn installer_script(host: &HostSpec, bin: &Binary) -> Result<String, TransportError> {
    let body = r#"set -e; umask 077; w=@DIR@; d="$w/bin"; mkdir -p "$d"
owned "$w/."; plain "$d"
t="$d/.shoal-@HASH@.$$"; trap 'rm -f "$t"' EXIT
set -C; cat > "$t"; set +C; owned "$t"
if [ "$size" != @SIZE@ ]; then echo "SHOAL-SHORT got $size of @SIZE@ bytes" >&2; exit 1; fi
sync "$t" 2>/dev/null || sync; chmod 700 "$t"; mv -f "$t" "$d/shoal-@HASH@"; trap - EXIT"#;
    let script = body
        .replace("@DIR@", &quote::path(&host.workdir)?)
        .replace("@HASH@", &quote::word(&bin.hash)?)
        .replace("@SIZE@", &bin.size.to_string());
    Ok(format!("{CHECKS}{script}"))
}

fn spawn(host: &HostSpec, remote: &str) -> Result<(tokio::process::Child, StderrTail), TransportError> {
    let mut child = ssh_command(host)
        .arg(remote)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(TransportError::SpawnSsh)?;
    let stderr = StderrTail::spawn(child.stderr.take());
    Ok((child, stderr))
}

async fn upload(host: &HostSpec, bin: &Binary) -> Result<(), TransportError> {
    let (mut child, stderr) = spawn(host, &installer(host, bin)?)?;
    let mut stdin = child.stdin.take().ok_or(TransportError::NotPiped("ssh stdin"))?;
    let mut file =
        tokio::fs::File::open(&bin.path).await.map_err(|source| TransportError::ReadBinary { path: bin.path.clone(), source })?;
    let copy = tokio::io::copy(&mut file, &mut stdin).await;
    drop(stdin);
    let status = child.wait().await.map_err(TransportError::Wait)?;
    if let Some(reason) = refusal(&child_stdout(&mut child).await) {
        return Err(TransportError::Unsafe { refused: Refused::Upload, reason });
    }
    if copy.is_err() || !status.success() {
        return Err(TransportError::Upload { workdir: host.workdir.clone(), status, stderr: stderr.text() });
    }
    Ok(())
}

/// `uname -sm` of this machine, as the remote prints it.
pub fn local_uname() -> String {
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        other => other,
    };
    format!("{os} {}", std::env::consts::ARCH)
}

fn check_arch(remote: &str, host: &HostSpec) -> Result<(), TransportError> {
    let normal = |s: &str| s.replace("amd64", "x86_64").replace("arm64", "aarch64");
    if host.agent_binary.is_some() || normal(remote) == normal(&local_uname()) {
        return Ok(());
    }
    Err(TransportError::Arch { remote: remote.to_string(), local: local_uname() })
}

fn timed_out(host: &HostSpec, stderr: &StderrTail) -> TransportError {
    TransportError::Timeout { secs: handshake_limit(host).as_secs(), stderr: stderr.text() }
}

async fn ssh_failed(host: &HostSpec, mut child: tokio::process::Child, stderr: &StderrTail, out: &[u8]) -> TransportError {
    let status = child.wait().await.ok().and_then(|s| s.code());
    if let Some(reason) = refusal(out) {
        return TransportError::Unsafe { refused: Refused::Start, reason };
    }
    // Let the stderr task catch up with the last bytes ssh wrote.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let text = stderr.text();
    if status == Some(255) {
        return TransportError::Ssh { address: host.address.clone(), message: last_line(&text).to_string(), hint: explain(&text) };
    }
    let stdout = String::from_utf8_lossy(out).trim().to_string();
    TransportError::Bootstrap { status, stdout, stderr: stderr.text() }
}

/// What is left on a finished child's stdout.
async fn child_stdout(child: &mut tokio::process::Child) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut out).await;
    }
    out
}

/// The sentence of a bootstrap or installer that refused the work dir.
fn refusal(out: &[u8]) -> Option<String> {
    let out = String::from_utf8_lossy(out);
    let line = out.lines().find_map(|l| l.strip_prefix(UNSAFE))?;
    Some(line.trim().to_string())
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("ssh exited with status 255 and no message")
}

/// A hint for the common ways ssh fails.
pub fn explain(stderr: &str) -> &'static str {
    let table: &[(&str, &str)] = &[
        ("Host key verification failed", "; the host key is unknown or has changed: check it and add it with `ssh-keyscan HOST >> ~/.ssh/known_hosts` (after verifying), or fix the entry in known_hosts"),
        ("REMOTE HOST IDENTIFICATION HAS CHANGED", "; the host key has changed: if that is expected, remove the old key with `ssh-keygen -R HOST`"),
        ("Permission denied", "; check `user` and `identity` for this host, and that your public key is in the host's authorized_keys"),
        ("Connection refused", "; is sshd running on that host and port?"),
        ("timed out", "; the host did not answer: is it up and reachable from here?"),
        ("Could not resolve hostname", "; check the address, or add a Host entry to ~/.ssh/config"),
        ("No route to host", "; the network cannot reach that address"),
    ];
    table.iter().find(|(pat, _)| stderr.contains(pat)).map_or("", |(_, hint)| hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn host(workdir: &Path) -> HostSpec {
        let text = format!("[hosts.h]\naddress = \"h\"\nworkdir = \"{}\"\n", workdir.display());
        shoal_core::cluster::ClusterSpec::parse(&text, Path::new("cluster.toml")).unwrap().hosts.remove(0)
    }

    /// A work dir whose "agent" is a script that says it ran.
    fn deployed() -> (tempfile::TempDir, PathBuf, Binary) {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("w");
        std::fs::create_dir_all(work.join("bin")).unwrap();
        let agent = "#!/bin/sh\necho AGENT-RAN \"$@\"\n";
        let bin = Binary { path: PathBuf::new(), hash: "abc".into(), size: agent.len() as u64 };
        let exe = work.join("bin/shoal-abc");
        std::fs::write(&exe, agent).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o700)).unwrap();
        (dir, work, bin)
    }

    /// Runs a script as the remote shell would (`/bin/sh -c`).
    fn sh(script: &str, stdin: &[u8]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin);
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    }

    fn boot(work: &Path, bin: &Binary) -> String {
        sh(&bootstrap_script(&host(work), bin, Duration::from_secs(9)).unwrap(), b"")
    }

    #[test]
    fn the_bootstrap_runs_a_private_agent_and_asks_for_a_missing_one() {
        let (_d, work, bin) = deployed();
        assert_eq!(
            boot(&work, &bin),
            format!("AGENT-RAN agent --workdir {} --lease-ms 9000 --cache-bytes {}\n", work.display(), AgentArgs::DEFAULT_CACHE_BYTES)
        );
        std::fs::remove_file(work.join("bin/shoal-abc")).unwrap();
        assert_eq!(boot(&work, &bin), format!("SHOAL-NEED {}\n", sh("uname -sm", b"").trim()));
    }

    #[test]
    fn the_bootstrap_asks_again_for_a_binary_cut_short() {
        let (_d, work, bin) = deployed();
        let exe = work.join("bin/shoal-abc");
        let whole = std::fs::read(&exe).unwrap();
        std::fs::write(&exe, &whole[..whole.len() - 3]).unwrap();
        assert_eq!(boot(&work, &bin), format!("SHOAL-NEED {}\n", sh("uname -sm", b"").trim()));
    }

    #[test]
    fn the_bootstrap_refuses_an_agent_others_can_write() {
        let (_d, work, bin) = deployed();
        let exe = work.join("bin/shoal-abc");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = exe.display();
        assert_eq!(
            boot(&work, &bin),
            format!("SHOAL-UNSAFE {e} is writable by other users (-rwxrwxrwx), so they could replace the agent: run chmod 700 {e} on that host (or remove it, and shoal uploads the agent again)\n")
        );
    }

    #[test]
    fn the_bootstrap_refuses_an_agent_of_another_user() {
        // SAFETY: a plain getter.
        if unsafe { libc::geteuid() } != 0 {
            return; // only root can give a file away
        }
        let (_d, work, bin) = deployed();
        let exe = work.join("bin/shoal-abc");
        std::os::unix::fs::chown(&exe, Some(65534), None).unwrap();
        assert_eq!(
            boot(&work, &bin),
            format!("SHOAL-UNSAFE {} belongs to uid 65534, not to this user (uid 0), so another user could replace the agent: use a work dir of your own (the host's workdir in the cluster file)\n", exe.display())
        );
        std::os::unix::fs::chown(&exe, Some(0), None).unwrap();
        std::os::unix::fs::chown(work.join("bin"), Some(65534), None).unwrap();
        assert!(boot(&work, &bin).starts_with(&format!("SHOAL-UNSAFE {} belongs to uid 65534", work.join("bin").display())));
    }

    #[test]
    fn the_bootstrap_refuses_a_symlinked_agent_and_an_open_work_dir() {
        let (d, work, bin) = deployed();
        let exe = work.join("bin/shoal-abc");
        std::fs::rename(&exe, d.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), &exe).unwrap();
        assert_eq!(
            boot(&work, &bin),
            format!(
                "SHOAL-UNSAFE {} is a symlink, which could lead anywhere: remove it on that host, and shoal uploads the agent again\n",
                exe.display()
            )
        );
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(boot(&work, &bin).starts_with(&format!("SHOAL-UNSAFE {}/. is writable by other users (drwxrwxrwt)", work.display())));
    }

    #[test]
    fn the_installer_writes_a_private_binary_and_refuses_an_open_bin_dir() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("w");
        let bin = Binary { path: PathBuf::new(), hash: "abc".into(), size: 10 };
        let script = installer_script(&host(&work), &bin).unwrap();
        assert_eq!(sh(&script, b"#!/bin/sh\n"), "");
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&work.join("bin/shoal-abc")), 0o700);
        assert_eq!(mode(&work.join("bin")), 0o700);
        std::fs::set_permissions(work.join("bin"), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(sh(&script, b"#!/bin/sh\n").starts_with("SHOAL-UNSAFE "), "an open bin dir is refused");
        assert_eq!(refusal(b"motd\nSHOAL-UNSAFE why it is\n").as_deref(), Some("why it is"));
    }

    #[test]
    fn the_installer_keeps_nothing_of_an_upload_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("w");
        let bin = Binary { path: PathBuf::new(), hash: "abc".into(), size: 4096 };
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(installer_script(&host(&work), &bin).unwrap())
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The first 100 bytes, then the end of input, as when the driver dies.
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &[7; 100]).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "SHOAL-SHORT got 100 of 4096 bytes\n");
        let left: Vec<_> = std::fs::read_dir(work.join("bin")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "nothing installed, no temp file left: {left:?}");
    }

    #[test]
    fn hints_for_common_failures() {
        assert!(explain("root@10.0.0.1: Permission denied (publickey).").contains("authorized_keys"));
        assert!(explain("Host key verification failed.").contains("known_hosts"));
        assert_eq!(explain("something else"), "");
    }

    /// What the real ssh client would use (`ssh -G` prints its effective
    /// configuration without connecting).
    fn effective(options: &[&str]) -> String {
        let mut host = shoal_core::cluster::ClusterSpec::local().hosts.remove(0);
        host.address = "example.invalid".into();
        host.ssh_options = options.iter().map(|s| s.to_string()).collect();
        let out = std::process::Command::new("ssh").arg("-G").args(ssh_args(&host)).output().expect("run ssh -G");
        assert!(out.status.success(), "ssh -G failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn cluster_file_options_cannot_turn_forwarding_back_on() {
        let cfg = effective(&[
            "-o",
            "ForwardAgent=yes",
            "-oForwardX11=yes",
            "-o",
            "PermitLocalCommand=yes",
            "-L",
            "8080:localhost:80",
            "-o",
            "ProxyJump=bastion",
        ]);
        for want in
            ["forwardagent no", "forwardx11 no", "clearallforwardings yes", "permitlocalcommand no", "batchmode yes", "proxyjump bastion"]
        {
            assert!(cfg.lines().any(|l| l == want), "ssh -G lacks {want:?}:\n{cfg}");
        }
        assert!(!cfg.lines().any(|l| l.starts_with("localforward")), "a forward survived:\n{cfg}");
    }
}
