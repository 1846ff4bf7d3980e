//! Every validation error of the cluster file, with its exact text.

use super::*;

fn parse(text: &str) -> Result<ClusterSpec, SpecError> {
    ClusterSpec::parse(text, Path::new("cluster.toml"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn json_err(text: &str) -> String {
    ClusterSpec::parse(text, Path::new("c.json")).unwrap_err().to_string()
}

const INJECTION_HINT: &str = "use a plain host name, IP address or ~/.ssh/config alias; this is refused to prevent option and command injection (OpenSSH CVE-2023-51385)";

#[test]
fn full_example_parses_with_defaults_applied() {
    let c = parse(
        r#"
[defaults]
user = "me"
workdir = "/scratch/shoal"
heartbeat_timeout = "5s"
env = { LANG = "C", PYTHON = "python3" }

[hosts.alpha]
address = "10.0.0.11"
port = 2222
slots = 8
speed = 1.5
identity = "~/.ssh/id_ed25519"
ssh_options = ["-o", "ProxyJump=bastion"]
env = { PYTHON = "/opt/conda/bin/python" }
agent_binary = "/opt/shoal-aarch64"
connect_timeout = 2.5

[hosts.me]
transport = "local"
"#,
    )
    .unwrap();
    assert_eq!(c.source.as_deref(), Some(Path::new("cluster.toml")));
    assert_eq!(c.hosts.len(), 2);
    let a = &c.hosts[0];
    assert_eq!((a.name.as_str(), a.address.as_str(), a.port, a.user.as_deref()), ("alpha", "10.0.0.11", Some(2222), Some("me")));
    assert_eq!((a.slots, a.speed, a.workdir.as_str()), (Some(8), 1.5, "/scratch/shoal"));
    assert_eq!((a.connect_timeout, a.heartbeat_timeout), (Duration::from_millis(2500), Duration::from_secs(5)));
    assert_eq!(a.env["PYTHON"], "/opt/conda/bin/python");
    assert_eq!(a.env["LANG"], "C", "a host's env adds to the defaults'");
    assert_eq!(a.ssh_options, ["-o", "ProxyJump=bastion"]);
    assert_eq!(a.agent_binary.as_deref(), Some("/opt/shoal-aarch64"));
    let me = &c.hosts[1];
    assert_eq!((me.transport, me.address.as_str(), me.user.as_deref()), (TransportKind::Local, "localhost", Some("me")));
    assert_eq!((me.slots, me.speed, me.connect_timeout), (None, 1.0, Duration::from_secs(10)));
    assert_eq!(c.host("me"), Some(me));
    assert_eq!(c.host("nobody"), None);
}

#[test]
fn addresses_that_ssh_accepts_pass() {
    for addr in ["build-01.example.com", "10.0.0.11", "[fe80::1%eth0]", "fe80::1", "my_alias"] {
        let c = parse(&format!("[hosts.a]\naddress = \"{addr}\"\nuser = \"first.last-2\"\n")).unwrap();
        assert_eq!(c.hosts[0].address, addr);
    }
}

#[test]
fn json_with_the_same_keys() {
    let c = ClusterSpec::parse(r#"{"defaults": {"port": 2200}, "hosts": {"a": {"address": "h1", "slots": 2}}}"#, Path::new("hosts.json"))
        .unwrap();
    assert_eq!((c.hosts[0].address.as_str(), c.hosts[0].slots, c.hosts[0].port), ("h1", Some(2), Some(2200)));
}

#[test]
fn local_is_this_machine() {
    let c = ClusterSpec::local();
    assert_eq!(c.source, None);
    assert_eq!((c.hosts.len(), c.hosts[0].name.as_str(), c.hosts[0].transport), (1, "local", TransportKind::Local));
    assert_eq!((c.hosts[0].address.as_str(), c.hosts[0].workdir.as_str()), ("localhost", "~/.shoal"));
}

#[test]
fn unknown_host_key_suggests() {
    assert_eq!(
        err("[hosts.alpha]\nadress = \"x\"\n"),
        "cluster.toml:2:1: host `alpha`: unknown key `adress`; did you mean `address`?\n  hint: the keys a host accepts are: address, port, user, workdir, slots, speed, identity, ssh_options, env, agent_binary, transport, connect_timeout, heartbeat_timeout"
    );
}

#[test]
fn unknown_defaults_key() {
    assert_eq!(
        err("[defaults]\nslot = 2\n[hosts.a]\naddress = \"x\"\n"),
        "cluster.toml:2:1: [defaults]: unknown key `slot`; did you mean `slots`?\n  hint: the keys [defaults] accepts are: port, user, workdir, slots, speed, identity, ssh_options, env, agent_binary, connect_timeout, heartbeat_timeout"
    );
}

#[test]
fn unknown_top_level_key() {
    assert_eq!(
        err("[host.a]\naddress = \"x\"\n"),
        "cluster.toml:1:2: unknown top-level key `host`; did you mean `hosts`?\n  hint: a cluster file has an optional [defaults] table, one [hosts.NAME] table per host, an optional [python] table, and an optional `data = \"direct\"` or `data = \"relay\"` line above the tables"
    );
}

#[test]
fn address_cannot_be_a_default() {
    assert_eq!(
        err("[defaults]\naddress = \"x\"\n[hosts.a]\n"),
        "cluster.toml:2:1: [defaults]: `address` cannot be a default\n  hint: set address in each [hosts.NAME] table: it says which machine the host is"
    );
}

#[test]
fn duplicate_hosts() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\n[hosts.a]\naddress = \"y\"\n"),
        "cluster.toml:3:1: host `a` is defined twice\n  hint: each [hosts.NAME] table needs a name of its own: rename one of them, or merge the two"
    );
}

#[test]
fn duplicate_key_in_a_host() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nport = 22\nport = 23\n"),
        "cluster.toml:4:1: host `a`: `port` is given twice\n  hint: keep one of them"
    );
}

#[test]
fn duplicate_hosts_in_json() {
    assert_eq!(
        json_err("{\"hosts\": {\"a\": {\"address\": \"x\"},\n \"a\": {}}}"),
        "c.json:2:2: host `a` is defined twice\n  hint: each [hosts.NAME] table needs a name of its own: rename one of them, or merge the two"
    );
    assert_eq!(
        json_err("{\"hosts\": {\"a\": {\"address\": \"x\",\n  \"address\": \"y\"}}}"),
        "c.json:2:3: host `a`: `address` is given twice\n  hint: keep one of them"
    );
}

#[test]
fn positions_in_json() {
    assert_eq!(
        json_err("{\n  \"hosts\": {\n    \"a\": {\"address\": \"x\", \"port\": 0}\n  }\n}"),
        "c.json:3:27: host `a`: port 0 is out of range\n  hint: use a port between 1 and 65535"
    );
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
        format!("cluster.toml:2:11: host `a`: address \"-oProxyCommand=touch /tmp/x\" begins with `-`, which ssh would read as an option\n  hint: {INJECTION_HINT}")
    );
}

#[test]
fn shell_metacharacters_and_whitespace_in_address_are_refused() {
    assert_eq!(
        err("[hosts.a]\naddress = \"h;reboot\"\n"),
        format!("cluster.toml:2:11: host `a`: address \"h;reboot\" contains ';', which a shell or ssh could interpret\n  hint: {INJECTION_HINT}")
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"a\\nb\"\n"),
        format!(
            "cluster.toml:2:11: host `a`: address \"a\\nb\" contains '\\n', which a shell or ssh could interpret\n  hint: {INJECTION_HINT}"
        )
    );
}

#[test]
fn user_in_address_is_refused() {
    assert_eq!(
        err("[hosts.a]\naddress = \"me@h\"\n"),
        "cluster.toml:2:11: host `a`: address \"me@h\" contains `@`\n  hint: put the user name in user = \"...\" and only the host in address"
    );
}

#[test]
fn shell_metacharacters_in_user_are_refused() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nuser = \"me$(id)\"\n"),
        "cluster.toml:3:8: host `a`: user \"me$(id)\" contains '$', which a shell or ssh could interpret\n  hint: use a plain user name (letters, digits, `.`, `-`, `_`); this is refused to prevent option and command injection (OpenSSH CVE-2023-51385)"
    );
    assert_eq!(
        err("[defaults]\nuser = \"a@b\"\n[hosts.a]\naddress = \"x\"\n"),
        "cluster.toml:2:8: [defaults]: user \"a@b\" contains '@', which a shell or ssh could interpret\n  hint: use a plain user name (letters, digits, `.`, `-`, `_`); this is refused to prevent option and command injection (OpenSSH CVE-2023-51385)"
    );
}

#[test]
fn empty_address() {
    assert_eq!(
        err("[hosts.a]\naddress = \"\"\n"),
        "cluster.toml:2:11: host `a`: address is empty\n  hint: give address a value, or leave it out"
    );
}

#[test]
fn zero_and_huge_slots() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nslots = 0\n"),
        "cluster.toml:3:9: host `a`: slots = 0 leaves no room to run anything\n  hint: use slots >= 1, or leave it out to use every core"
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nslots = 5000000000\n"),
        "cluster.toml:3:9: host `a`: slots = 5000000000 is more than any host can run\n  hint: slots is how many tasks run at once, usually the core count"
    );
}

#[test]
fn bad_speeds() {
    let hint = "\n  hint: speed is relative single-core speed; 1.0 is the default";
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nspeed = -1.0\n"),
        format!("cluster.toml:3:9: host `a`: speed must be a positive number, not -1{hint}")
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nspeed = 0\n"),
        format!("cluster.toml:3:9: host `a`: speed must be a positive number, not 0{hint}")
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nspeed = nan\n"),
        format!("cluster.toml:3:9: host `a`: speed must be a positive number, not NaN{hint}")
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nspeed = inf\n"),
        format!("cluster.toml:3:9: host `a`: speed must be a positive number, not inf{hint}")
    );
}

#[test]
fn empty_cluster() {
    let hint = "\n  hint: add a [hosts.NAME] table per host, or delete the file to use this machine alone";
    assert_eq!(err("[defaults]\nuser = \"x\"\n"), format!("cluster.toml:1:1: the cluster has no hosts{hint}"));
    assert_eq!(err("[hosts]\n"), format!("cluster.toml:1:2: the cluster has no hosts{hint}"));
}

#[test]
fn bad_host_name() {
    assert_eq!(
        err("[hosts.\"a/b\"]\naddress = \"x\"\n"),
        "cluster.toml:1:8: host name \"a/b\" is not a simple name\n  hint: host names become directory names: use letters, digits, `-`, `_` and `.`"
    );
    assert!(err("[hosts.\"..\"]\naddress = \"x\"\n").contains("host name \"..\" is not a simple name"));
}

#[test]
fn bad_env_name() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nenv = { \"1X\" = \"y\" }\n"),
        "cluster.toml:3:9: host `a`: `1X` is not a valid environment variable name\n  hint: use letters, digits and _, not starting with a digit"
    );
}

#[test]
fn bad_transport() {
    assert_eq!(
        err("[hosts.a]\ntransport = \"tcp\"\n"),
        "cluster.toml:2:13: host `a`: unknown transport `tcp`\n  hint: use \"ssh\" (the default) or \"local\""
    );
}

#[test]
fn bad_durations() {
    assert_eq!(
        err("[defaults]\nheartbeat_timeout = \"soon\"\n[hosts.a]\naddress = \"x\"\n"),
        "cluster.toml:2:21: [defaults]: heartbeat_timeout = \"soon\" is not a duration: it does not start with a number\n  hint: write a number of seconds, or a string with one of the units ms, s, m, h (e.g. \"500ms\", \"10s\", \"2m\")"
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nconnect_timeout = 0\n"),
        "cluster.toml:3:19: host `a`: connect_timeout must be a duration longer than zero\n  hint: write a number of seconds, or a string with one of the units ms, s, m, h (e.g. \"500ms\", \"10s\", \"2m\")"
    );
    assert!(err("[hosts.a]\naddress = \"x\"\nconnect_timeout = 1e300\n").contains("connect_timeout must be a duration longer than zero"));
}

#[test]
fn ssh_options_cannot_forward_the_agent() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nssh_options = [\"-o\", \"ProxyJump=b\", \"-vA\"]\n"),
        "cluster.toml:3:37: host `a`: ssh_options must not turn on agent or X11 forwarding (`-A` in \"-vA\"): the host runs code from the job file, which could use them\n  hint: remove it; Shoal runs ssh with ForwardAgent=no and ForwardX11=no"
    );
    assert!(err("[defaults]\nssh_options = [\"-Y\"]\n[hosts.a]\naddress = \"x\"\n").contains("(`-Y` in \"-Y\")"));
    // An option's argument is not a flag: `-l X` and `-oX` are fine.
    for ok in ["[\"-l\", \"-X\"]", "[\"-oForwardX11=no\"]", "[\"-o\", \"ForwardAgent=yes\"]", "[\"-C\", \"-4\"]"] {
        let text = format!("[hosts.a]\naddress = \"x\"\nssh_options = {ok}\n");
        assert!(parse(&text).is_ok(), "{ok}");
    }
}

#[test]
fn wrong_types() {
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nssh_options = \"-v\"\n"),
        "cluster.toml:3:15: host `a`: ssh_options must be an array of strings\n  hint: write ssh_options = [\"-o\", \"ProxyJump=bastion\"]"
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"x\"\nworkdir = 3\n"),
        "cluster.toml:3:11: host `a`: workdir must be a string, not an integer\n  hint: put the value in quotes: workdir = \"...\""
    );
    assert_eq!(
        err("[hosts]\na = 1\n"),
        "cluster.toml:2:5: host `a` must be a table, not an integer\n  hint: write [hosts.a] followed by address = \"...\" and the host's other keys"
    );
}

#[test]
fn select_hosts() {
    let c = parse("[hosts.a]\naddress = \"x\"\n[hosts.b]\naddress = \"y\"\n").unwrap();
    let b = c.select(&["b".into()]).unwrap();
    assert_eq!((b.hosts.len(), b.hosts[0].name.as_str(), b.source), (1, "b", c.source.clone()));
    assert_eq!(
        c.select(&["z".into()]).unwrap_err().to_string(),
        "cluster.toml: --hosts names `z`, which is not a host of this cluster\n  hint: the hosts are: a, b"
    );
    assert_eq!(
        c.select(&[]).unwrap_err().to_string(),
        "cluster.toml: --hosts names no hosts\n  hint: give host names separated by commas; the hosts are: a, b"
    );
}

#[test]
fn select_suggests_a_close_name() {
    let c = parse("[hosts.alpha]\naddress = \"x\"\n").unwrap();
    assert_eq!(
        c.select(&["alpah".into()]).unwrap_err().to_string(),
        "cluster.toml: --hosts names `alpah`, which is not a host of this cluster; did you mean `alpha`?\n  hint: the hosts are: alpha"
    );
}

#[test]
fn serializes_for_json_output() {
    let v = serde_json::to_value(ClusterSpec::local()).unwrap();
    assert_eq!(v["hosts"][0]["transport"], "local");
}

const TWO_HOSTS: &str = "[hosts.a]\naddress = \"x\"\n[hosts.gpu1]\naddress = \"y\"\n";

const INTERPRETER_HINT: &str = "give a plain path such as /usr/bin/python3; the interpreter is spliced into a shell command on the host, so this is refused to prevent option and command injection";

/// The error for `[python]` keys written after [`TWO_HOSTS`].
fn python_err(keys: &str) -> String {
    err(&format!("{TWO_HOSTS}[python]\n{keys}"))
}

#[test]
fn python_table_parses() {
    let c = parse(&format!(
        "{TWO_HOSTS}[python]\npython = \"/opt/conda/bin/python3\"\npython_on = {{ gpu1 = \"/usr/bin/python3.11\" }}\nrequirements = \"requirements.txt\"\nwheels = \"wheels/\"\n"
    ))
    .unwrap();
    let p = &c.python;
    assert_eq!(
        (p.python.as_deref(), p.requirements.as_deref(), p.wheels.as_deref()),
        (Some("/opt/conda/bin/python3"), Some("requirements.txt"), Some("wheels/"))
    );
    assert_eq!(p.python_on, BTreeMap::from([("gpu1".to_string(), "/usr/bin/python3.11".to_string())]));
    assert_eq!(c.hosts.len(), 2);
}

#[test]
fn python_table_in_json() {
    let c = ClusterSpec::parse(
        r#"{"hosts": {"a": {"address": "x"}}, "python": {"python_on": {"a": "python3.12"}, "wheels": "/srv/wheels"}}"#,
        Path::new("c.json"),
    )
    .unwrap();
    let want = PythonSpec {
        python_on: BTreeMap::from([("a".to_string(), "python3.12".to_string())]),
        wheels: Some("/srv/wheels".into()),
        ..PythonSpec::default()
    };
    assert_eq!(c.python, want);
}

#[test]
fn no_python_table_is_empty() {
    assert_eq!(parse(TWO_HOSTS).unwrap().python, PythonSpec::default());
    assert_eq!(ClusterSpec::local().python, PythonSpec::default());
    assert_eq!(parse(&format!("{TWO_HOSTS}[python]\n")).unwrap().python, PythonSpec::default());
}

#[test]
fn interpreter_is_the_hosts_own_else_the_shared_one() {
    let mut p =
        PythonSpec { python_on: BTreeMap::from([("gpu1".to_string(), "/usr/bin/python3.11".to_string())]), ..PythonSpec::default() };
    assert_eq!((p.interpreter("gpu1"), p.interpreter("a")), (Some("/usr/bin/python3.11"), None));
    p.python = Some("/opt/conda/bin/python3".into());
    assert_eq!((p.interpreter("gpu1"), p.interpreter("a")), (Some("/usr/bin/python3.11"), Some("/opt/conda/bin/python3")));
}

#[test]
fn requirements_and_wheels_resolve_beside_the_cluster_file() {
    let p = PythonSpec { requirements: Some("req/lock.txt".into()), wheels: Some("/srv/wheels".into()), ..PythonSpec::default() };
    let source = Some(Path::new("/home/me/proj/cluster.toml"));
    assert_eq!(p.requirements_path(source), Some(PathBuf::from("/home/me/proj/req/lock.txt")));
    assert_eq!(p.wheels_path(source), Some(PathBuf::from("/srv/wheels")), "absolute paths stay as given");
    assert_eq!(p.requirements_path(None), Some(PathBuf::from("req/lock.txt")), "no cluster file: as given");
    assert_eq!(p.requirements_path(Some(Path::new("cluster.toml"))), Some(PathBuf::from("req/lock.txt")));
    assert_eq!(p.requirements_path(Some(Path::new("conf/c.json"))), Some(PathBuf::from("conf/req/lock.txt")));
    assert_eq!(PythonSpec::default().requirements_path(source), None);
    assert_eq!(PythonSpec::default().wheels_path(source), None);
}

#[test]
fn unknown_python_key_suggests() {
    assert_eq!(
        python_err("requirement = \"r.txt\"\n"),
        "cluster.toml:6:1: [python]: unknown key `requirement`; did you mean `requirements`?\n  hint: the keys [python] accepts are: python, python_on, requirements, wheels"
    );
}

#[test]
fn unknown_top_level_key_lists_python() {
    assert_eq!(
        err("[pyhton]\npython = \"python3\"\n[hosts.a]\naddress = \"x\"\n"),
        "cluster.toml:1:2: unknown top-level key `pyhton`; did you mean `python`?\n  hint: a cluster file has an optional [defaults] table, one [hosts.NAME] table per host, an optional [python] table, and an optional `data = \"direct\"` or `data = \"relay\"` line above the tables"
    );
}

#[test]
fn python_must_be_a_table() {
    assert_eq!(
        err("python = \"/usr/bin/python3\"\n[hosts.a]\naddress = \"x\"\n"),
        "cluster.toml:1:10: [python] must be a table, not a string\n  hint: write [python] on a line of its own, followed by its keys (python, python_on, requirements, wheels)"
    );
    assert!(json_err(r#"{"hosts": {"a": {"address": "x"}}, "python": ["python3"]}"#).contains("[python] must be a table, not an array"));
}

#[test]
fn python_values_must_be_non_empty_strings() {
    assert_eq!(
        python_err("python = \"\"\n"),
        "cluster.toml:6:10: [python]: python is empty\n  hint: give the path of a Python interpreter, or leave it out"
    );
    assert_eq!(
        python_err("python = 3\n"),
        "cluster.toml:6:10: [python]: python must be a string, not an integer\n  hint: put the path in quotes: \"/usr/bin/python3\""
    );
    assert_eq!(
        python_err("requirements = \"\"\n"),
        "cluster.toml:6:16: [python]: requirements is empty\n  hint: give requirements a value, or leave it out"
    );
    assert_eq!(
        python_err("wheels = true\n"),
        "cluster.toml:6:10: [python]: wheels must be a string, not a boolean\n  hint: put the value in quotes: wheels = \"...\""
    );
}

#[test]
fn option_injection_in_interpreter_is_refused() {
    assert_eq!(
        python_err("python = \"-c\"\n"),
        format!("cluster.toml:6:10: [python]: python \"-c\" begins with `-`, which would be read as an option\n  hint: {INTERPRETER_HINT}")
    );
    assert_eq!(
        python_err("python_on = { gpu1 = \"-i\" }\n"),
        format!("cluster.toml:6:22: [python]: python_on `gpu1` \"-i\" begins with `-`, which would be read as an option\n  hint: {INTERPRETER_HINT}")
    );
}

#[test]
fn shell_metacharacters_and_whitespace_in_interpreter_are_refused() {
    assert_eq!(
        python_err("python = \"python3; reboot\"\n"),
        format!("cluster.toml:6:10: [python]: python \"python3; reboot\" contains ';', which a shell could interpret\n  hint: {INTERPRETER_HINT}")
    );
    assert_eq!(
        python_err("python_on = { a = \"/usr/bin/python3 -I\" }\n"),
        format!("cluster.toml:6:19: [python]: python_on `a` \"/usr/bin/python3 -I\" contains ' ', which a shell could interpret\n  hint: {INTERPRETER_HINT}")
    );
    for c in [' ', '\t', '\n', '\r', '\'', '"', '`', '$', ';', '&', '|', '<', '>', '(', ')', '\\', '*', '?', '!', '{', '}', '[', ']', '\0']
    {
        for keys in [format!("python = {:?}\n", format!("/bin/py{c}")), format!("python_on = {{ gpu1 = {:?} }}\n", format!("py{c}3"))] {
            let e = python_err(&keys.replace("\\0", "\\u0000"));
            assert!(e.contains(&format!("contains {c:?}, which a shell could interpret")), "{c:?}: {e}");
        }
    }
    let c = parse(&format!("{TWO_HOSTS}[python]\npython = \"~/venvs/py3.11_x-y+z/bin/python@3,=%:\"\n")).unwrap();
    assert_eq!(c.python.interpreter("a"), Some("~/venvs/py3.11_x-y+z/bin/python@3,=%:"));
}

#[test]
fn python_on_must_be_a_table_of_strings() {
    let hint = "\n  hint: write python_on = { HOST = \"/path/to/python3\" }, one entry per host";
    assert_eq!(
        python_err("python_on = \"/usr/bin/python3\"\n"),
        format!("cluster.toml:6:13: [python]: python_on must be a table of host names and interpreters, not a string{hint}")
    );
    assert_eq!(
        python_err("python_on = { gpu1 = 3 }\n"),
        "cluster.toml:6:22: [python]: python_on `gpu1` must be a string, not an integer\n  hint: put the path in quotes: \"/usr/bin/python3\""
    );
    assert_eq!(
        python_err("python_on = { gpu1 = \"\" }\n"),
        "cluster.toml:6:22: [python]: python_on `gpu1` is empty\n  hint: give the path of a Python interpreter, or leave it out"
    );
}

#[test]
fn python_on_unknown_host_suggests() {
    assert_eq!(
        python_err("python_on = { gpu2 = \"python3\" }\n"),
        "cluster.toml:6:15: [python]: python_on names `gpu2`, which is not a host of this cluster; did you mean `gpu1`?\n  hint: the hosts are: a, gpu1"
    );
    assert_eq!(
        json_err("{\"hosts\": {\"a\": {\"address\": \"x\"}},\n \"python\": {\"python_on\": {\"zeta\": \"python3\"}}}"),
        "c.json:2:27: [python]: python_on names `zeta`, which is not a host of this cluster\n  hint: the hosts are: a"
    );
}

#[test]
fn duplicate_python_tables_and_keys() {
    assert_eq!(
        err(&format!("[python]\npython = \"p\"\n{TWO_HOSTS}[python]\nwheels = \"w\"\n")),
        "cluster.toml:7:1: [python] is given twice\n  hint: merge the two [python] tables into one"
    );
    assert_eq!(
        python_err("wheels = \"w\"\nwheels = \"v\"\n"),
        "cluster.toml:7:1: [python]: `wheels` is given twice\n  hint: keep one of them"
    );
}

#[test]
fn select_keeps_python() {
    let c = parse(&format!("{TWO_HOSTS}[python]\npython = \"python3\"\npython_on = {{ gpu1 = \"/usr/bin/python3.11\" }}\n")).unwrap();
    let a = c.select(&["a".into()]).unwrap();
    assert_eq!(a.python, c.python);
}

#[test]
fn data_path_is_direct_unless_relay_is_asked_for() {
    let hosts = "[hosts.a]\naddress = \"10.0.0.1\"\n";
    assert_eq!(parse(hosts).unwrap().data, DataPath::Direct);
    assert_eq!(parse(&format!("data = \"relay\"\n{hosts}")).unwrap().data, DataPath::Relay);
    assert_eq!(parse(&format!("data = \"direct\"\n{hosts}")).unwrap().data, DataPath::Direct);
    assert_eq!(ClusterSpec::local().data, DataPath::Direct);
    let selected = parse(&format!("data = \"relay\"\n{hosts}")).unwrap().select(&["a".into()]).unwrap();
    assert_eq!(selected.data, DataPath::Relay);
}

#[test]
fn data_path_errors() {
    let hosts = "[hosts.a]\naddress = \"10.0.0.1\"\n";
    assert_eq!(
        err(&format!("data = \"fast\"\n{hosts}")),
        "cluster.toml:1:8: the cluster file: data must be \"direct\" or \"relay\", not \"fast\"\n  hint: \"direct\" (the default) moves shuffle data host to host where hosts reach each other; \"relay\" sends it all through the driver, for hosts that reach each other only through ssh"
    );
    assert!(
        err(&format!("data = 1\n{hosts}")).contains("the cluster file: data must be a string, not an integer"),
        "{}",
        err(&format!("data = 1\n{hosts}"))
    );
}
