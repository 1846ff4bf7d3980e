//! Every validation error of the cluster file, with its exact text.

use super::*;

fn parse(text: &str) -> Result<ClusterSpec, SpecError> {
    ClusterSpec::parse(text, Path::new("cluster.toml"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn full_example_parses_with_defaults_applied() {
    let c = parse(
        r#"
[defaults]
user = "me"
workdir = "/scratch/shoal"
heartbeat_timeout = "5s"

[hosts.alpha]
address = "10.0.0.11"
port = 2222
slots = 8
speed = 1.5
identity = "~/.ssh/id_ed25519"
ssh_options = ["-o", "ProxyJump=bastion"]
env = { PYTHON = "/opt/conda/bin/python" }

[hosts.me]
transport = "local"
"#,
    )
    .unwrap();
    assert_eq!(c.hosts.len(), 2);
    let a = &c.hosts[0];
    assert_eq!((a.name.as_str(), a.address.as_str(), a.port, a.user.as_deref()), ("alpha", "10.0.0.11", Some(2222), Some("me")));
    assert_eq!((a.slots, a.speed, a.workdir.as_str()), (Some(8), 1.5, "/scratch/shoal"));
    assert_eq!(a.heartbeat_timeout, Duration::from_secs(5));
    assert_eq!(a.env["PYTHON"], "/opt/conda/bin/python");
    assert_eq!(a.ssh_options, ["-o", "ProxyJump=bastion"]);
    assert_eq!(c.hosts[1].transport, TransportKind::Local);
    assert_eq!(c.hosts[1].user.as_deref(), Some("me"));
}

#[test]
fn json_with_the_same_keys() {
    let c = ClusterSpec::parse(r#"{"hosts": {"a": {"address": "h1", "slots": 2}}}"#, Path::new("hosts.json")).unwrap();
    assert_eq!(c.hosts[0].address, "h1");
    assert_eq!(c.hosts[0].slots, Some(2));
}

#[test]
fn unknown_key_suggests() {
    assert_eq!(
        err("[hosts.alpha]\nadress = \"x\"\n"),
        "cluster.toml:2:1: host `alpha`: unknown key `adress` in [hosts.alpha]; did you mean `address`?\n  hint: the keys allowed here are: address, port, user, workdir, slots, speed, identity, ssh_options, env, agent_binary, transport, connect_timeout, heartbeat_timeout"
    );
}

#[test]
fn unknown_top_level_key() {
    assert_eq!(
        err("[host.a]\naddress = \"x\"\n"),
        "cluster.toml:1:2: unknown key `host` in the top level; did you mean `hosts`?\n  hint: the keys allowed here are: defaults, hosts"
    );
}

#[test]
fn duplicate_hosts() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\n[hosts.a]\naddress = \"y\"\n"),
        "cluster.toml:3:1: invalid TOML: duplicate key `a` in table `hosts`: each host and key may appear only once"
    );
}

#[test]
fn duplicate_hosts_in_json() {
    let e = ClusterSpec::parse("{\"hosts\": {\"a\": {\"address\": \"x\"},\n \"a\": {}}}", Path::new("c.json")).unwrap_err();
    assert_eq!(e.to_string(), "c.json:2:4: invalid JSON: duplicate key `a`: each host and key may appear only once");
}

#[test]
fn missing_address() {
    assert_eq!(
        err("[hosts.alpha]\nport = 22\n"),
        "cluster.toml:1:8: host `alpha` has no address\n  hint: add address = \"host.example.com\" (anything ssh accepts), or transport = \"local\" for this machine"
    );
}

#[test]
fn port_out_of_range_and_wrong_type() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nport = 70000\n"),
        "cluster.toml:3:8: host `a`: port 70000 is out of range\n  hint: use a port between 1 and 65535"
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nport = 0\n"),
        "cluster.toml:3:8: host `a`: port 0 is out of range\n  hint: use a port between 1 and 65535"
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nport = \"22\"\n"),
        "cluster.toml:3:8: host `a`: port must be an integer, not a string\n  hint: write port = 22 without quotes"
    );
}

#[test]
fn option_injection_in_address_is_refused() {
    assert_eq!(
        err("[hosts.a]\naddress = \"-oProxyCommand=touch /tmp/x\"\n"),
        "cluster.toml:2:11: host `a`: address \"-oProxyCommand=touch /tmp/x\" begins with `-`, which ssh would read as an option\n  hint: use a plain host name, IP address or ~/.ssh/config alias; this is refused to prevent option and command injection (OpenSSH CVE-2023-51385)"
    );
}

#[test]
fn shell_metacharacters_in_user_are_refused() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nuser = \"me$(id)\"\n"),
        "cluster.toml:3:8: host `a`: user \"me$(id)\" contains characters that a shell or ssh could interpret\n  hint: use a plain host name, IP address or ~/.ssh/config alias user name; this is refused to prevent option and command injection (OpenSSH CVE-2023-51385)"
    );
    assert!(err("[hosts.a]\naddress = \"a b\"\n").contains("contains characters that a shell or ssh could interpret"));
    assert!(err("[hosts.a]\naddress = \"h;reboot\"\n").contains("contains characters"));
}

#[test]
fn zero_slots() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nslots = 0\n"),
        "cluster.toml:3:9: host `a`: slots = 0 leaves no room to run anything\n  hint: use slots >= 1, or leave it out to use every core"
    );
}

#[test]
fn negative_speed() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nspeed = -1.0\n"),
        "cluster.toml:3:9: host `a`: speed must be a positive number, not -1\n  hint: speed is relative single-core speed; 1.0 is the default"
    );
}

#[test]
fn empty_cluster() {
    assert_eq!(err("[defaults]\nuser = \"x\"\n"), "cluster.toml:1:1: the cluster has no hosts\n  hint: add a [hosts.NAME] table per host, or delete the file to use this machine alone");
}

#[test]
fn bad_host_name_and_env_name() {
    assert_eq!(
        err("[hosts.\"a/b\"]\naddress = \"x\"\n"),
        "cluster.toml:1:8: host name \"a/b\" is not a simple name\n  hint: host names become directory names: use letters, digits, `-`, `_` and `.`"
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nenv = { \"1X\" = \"y\" }\n"),
        "cluster.toml:3:9: host `a`: `1X` is not a valid environment variable name\n  hint: use letters, digits and _, not starting with a digit"
    );
}

#[test]
fn bad_duration() {
    assert_eq!(
        err("[defaults]\nheartbeat_timeout = \"soon\"\n[hosts.a]\naddress = \"x\"\n"),
        "cluster.toml:2:21: host `a`: `heartbeat_timeout` is not a positive duration (\"soon\" is not a duration)\n  hint: write seconds as a number (10) or a string like \"500ms\", \"10s\", \"2m\""
    );
}

#[test]
fn select_unknown_host() {
    let c = parse("[hosts.a]\naddress = \"x\"\n[hosts.b]\naddress = \"y\"\n").unwrap();
    assert_eq!(c.select(&["b".into()]).unwrap().hosts.len(), 1);
    assert_eq!(
        c.select(&["z".into()]).unwrap_err().to_string(),
        "cluster.toml: --hosts names `z`, which is not a host of this cluster\n  hint: the hosts are: a, b"
    );
}

#[test]
fn missing_file() {
    let e = ClusterSpec::load(Path::new("/nonexistent/cluster.toml")).unwrap_err().to_string();
    assert_eq!(e, "/nonexistent/cluster.toml: cannot read the cluster file: No such file or directory (os error 2)\n  hint: check the path given to --cluster or SHOAL_CLUSTER, or run `shoal init` to write one");
}
