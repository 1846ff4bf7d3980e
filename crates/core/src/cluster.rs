//! The cluster file: which hosts a run uses and how to reach them.
//!
//! `cluster.toml` (or `.json` with the same keys) has an optional
//! `[defaults]` table applied to every host and one `[hosts.NAME]` table
//! per host. Validation refuses anything that could be misread: unknown
//! keys (with a suggestion), addresses and users that ssh could take for
//! an option or a remote shell could expand (compare OpenSSH
//! CVE-2023-51385), impossible ports, slots and speeds. With no cluster
//! file at all, the cluster is this machine: [`ClusterSpec::local`].
//!
//! This module only reads and checks the file; connecting is the `shoal`
//! crate's business.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::spec_error::{did_you_mean, parse_duration, SpecError};
use crate::tree::{self, Entry, Node, Val};

/// How the driver reaches a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// This machine: the agent is a child process.
    Local,
    /// The system `ssh` client.
    Ssh,
}

/// One host of the cluster, defaults applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostSpec {
    pub name: String,
    pub transport: TransportKind,
    /// What `ssh` connects to; `localhost` for local hosts.
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// Where the agent keeps `bin/`, `blocks/` and `runs/`; `~` is the
    /// remote user's home.
    pub workdir: String,
    /// Task slots; `None` means the host's detected core count.
    pub slots: Option<u32>,
    /// Relative single-core speed, for weighted shares.
    pub speed: f64,
    pub identity: Option<String>,
    pub ssh_options: Vec<String>,
    /// Extra environment for this host's tasks.
    pub env: BTreeMap<String, String>,
    /// A binary to deploy instead of the driver's own (another platform).
    pub agent_binary: Option<String>,
    pub connect_timeout: Duration,
    pub heartbeat_timeout: Duration,
}

/// The hosts of one run, in file order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterSpec {
    pub source: Option<PathBuf>,
    pub hosts: Vec<HostSpec>,
}

const HOST_KEYS: &[&str] = &[
    "address",
    "port",
    "user",
    "workdir",
    "slots",
    "speed",
    "identity",
    "ssh_options",
    "env",
    "agent_binary",
    "transport",
    "connect_timeout",
    "heartbeat_timeout",
];
const TOP_KEYS: &[&str] = &["defaults", "hosts"];

impl HostSpec {
    fn new(name: &str) -> Self {
        HostSpec {
            name: name.to_string(),
            transport: TransportKind::Ssh,
            address: String::new(),
            port: None,
            user: None,
            workdir: "~/.shoal".into(),
            slots: None,
            speed: 1.0,
            identity: None,
            ssh_options: vec![],
            env: BTreeMap::new(),
            agent_binary: None,
            connect_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(10),
        }
    }
}

impl ClusterSpec {
    /// The embedded default: this machine alone.
    pub fn local() -> ClusterSpec {
        let mut h = HostSpec::new("local");
        h.transport = TransportKind::Local;
        h.address = "localhost".into();
        ClusterSpec { source: None, hosts: vec![h] }
    }

    /// Reads and validates a cluster file.
    pub fn load(path: &Path) -> Result<ClusterSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SpecError::new(&path.display().to_string(), format!("cannot read the cluster file: {e}"))
                .hint("check the path given to --cluster or SHOAL_CLUSTER, or run `shoal init` to write one")
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates cluster text; `path` names it in errors and
    /// picks the format (`.json` or TOML).
    pub fn parse(text: &str, path: &Path) -> Result<ClusterSpec, SpecError> {
        let file = path.display().to_string();
        let root = tree::parse(text, &file)?;
        let cx = Cx { file: &file, text };
        let top = cx.table(&root, "the cluster file")?;
        cx.known_keys(top, TOP_KEYS, None, "the top level")?;
        let defaults = match find(top, "defaults") {
            Some(e) => Some(cx.table(&e.node, "[defaults]")?),
            None => None,
        };
        let hosts_entry = find(top, "hosts").ok_or_else(|| {
            cx.err(Some(0), "the cluster has no hosts")
                .hint("add a [hosts.NAME] table per host, or delete the file to use this machine alone")
        })?;
        let hosts_tab = cx.table(&hosts_entry.node, "[hosts]")?;
        if hosts_tab.is_empty() {
            return Err(cx.err(hosts_entry.key_pos, "the cluster has no hosts").hint("add a [hosts.NAME] table per host"));
        }
        let hosts = hosts_tab.iter().map(|h| cx.host(h, defaults)).collect::<Result<Vec<_>, _>>()?;
        Ok(ClusterSpec { source: Some(path.to_path_buf()), hosts })
    }

    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Only the named hosts (`--hosts a,b`), in file order.
    pub fn select(&self, names: &[String]) -> Result<ClusterSpec, SpecError> {
        let file = self.source.as_ref().map_or("(this machine)".to_string(), |p| p.display().to_string());
        for n in names {
            if self.host(n).is_none() {
                let known: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
                return Err(SpecError::new(&file, format!("--hosts names `{n}`, which is not a host of this cluster"))
                    .hint(format!("the hosts are: {}", known.join(", "))));
            }
        }
        let hosts = self.hosts.iter().filter(|h| names.contains(&h.name)).cloned().collect();
        Ok(ClusterSpec { source: self.source.clone(), hosts })
    }
}

fn find<'a>(t: &'a [Entry], key: &str) -> Option<&'a Entry> {
    t.iter().find(|e| e.key == key)
}

/// Validation context: the file name and text, for positions.
struct Cx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Cx<'_> {
    fn err(&self, pos: Option<usize>, msg: impl Into<String>) -> SpecError {
        SpecError::at(self.file, self.text, pos, msg)
    }

    fn table<'n>(&self, n: &'n Node, what: &str) -> Result<&'n [Entry], SpecError> {
        match &n.val {
            Val::Table(t) => Ok(t),
            other => Err(self.err(n.pos, format!("{what} must be a table, not {}", other.kind()))),
        }
    }

    fn known_keys(&self, t: &[Entry], known: &[&str], host: Option<&str>, place: &str) -> Result<(), SpecError> {
        for e in t {
            if known.contains(&e.key.as_str()) {
                continue;
            }
            let prefix = host.map_or(String::new(), |h| format!("host `{h}`: "));
            let mut msg = format!("{prefix}unknown key `{}` in {place}", e.key);
            if let Some(s) = did_you_mean(&e.key, known) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            return Err(self.err(e.key_pos, msg).hint(format!("the keys allowed here are: {}", known.join(", "))));
        }
        Ok(())
    }

    fn host(&self, e: &Entry, defaults: Option<&[Entry]>) -> Result<HostSpec, SpecError> {
        check_name(self, e)?;
        let keys = self.table(&e.node, &format!("host `{}`", e.key))?;
        let mut h = HostSpec::new(&e.key);
        if let Some(d) = defaults {
            self.known_keys(d, HOST_KEYS, None, "[defaults]")?;
            for entry in d {
                if matches!(entry.key.as_str(), "address" | "transport") {
                    return Err(self.err(entry.key_pos, format!("`{}` cannot be a default; set it per host", entry.key)));
                }
                self.apply(&mut h, entry)?;
            }
        }
        self.known_keys(keys, HOST_KEYS, Some(&e.key), &format!("[hosts.{}]", e.key))?;
        for entry in keys {
            self.apply(&mut h, entry)?;
        }
        self.finish(h, e)
    }

    fn finish(&self, mut h: HostSpec, e: &Entry) -> Result<HostSpec, SpecError> {
        match h.transport {
            TransportKind::Local => h.address = "localhost".into(),
            TransportKind::Ssh if h.address.is_empty() => {
                return Err(self
                    .err(e.key_pos, format!("host `{}` has no address", h.name))
                    .hint("add address = \"host.example.com\" (anything ssh accepts), or transport = \"local\" for this machine"));
            }
            TransportKind::Ssh => {}
        }
        Ok(h)
    }

    fn apply(&self, h: &mut HostSpec, e: &Entry) -> Result<(), SpecError> {
        let host = h.name.clone();
        let bad = |msg: String, hint: &str| self.err(e.node.pos.or(e.key_pos), format!("host `{host}`: {msg}")).hint(hint.to_string());
        match e.key.as_str() {
            "address" => h.address = self.safe_word(e, &host, "address")?,
            "user" => h.user = Some(self.safe_word(e, &host, "user")?),
            "port" => match e.node.val {
                Val::Int(p) if (1..=65535).contains(&p) => h.port = Some(p as u16),
                Val::Int(p) => return Err(bad(format!("port {p} is out of range"), "use a port between 1 and 65535")),
                ref v => return Err(bad(format!("port must be an integer, not {}", v.kind()), "write port = 22 without quotes")),
            },
            "slots" => match e.node.val {
                Val::Int(s) if s >= 1 && s <= u32::MAX as i64 => h.slots = Some(s as u32),
                Val::Int(s) => {
                    return Err(bad(
                        format!("slots = {s} leaves no room to run anything"),
                        "use slots >= 1, or leave it out to use every core",
                    ))
                }
                ref v => return Err(bad(format!("slots must be an integer, not {}", v.kind()), "write slots = 8")),
            },
            "speed" => {
                let s = match e.node.val {
                    Val::Int(i) => i as f64,
                    Val::Float(f) => f,
                    ref v => return Err(bad(format!("speed must be a number, not {}", v.kind()), "write speed = 1.5")),
                };
                if !(s.is_finite() && s > 0.0) {
                    return Err(bad(
                        format!("speed must be a positive number, not {s}"),
                        "speed is relative single-core speed; 1.0 is the default",
                    ));
                }
                h.speed = s;
            }
            "workdir" => h.workdir = self.string(e, &host)?,
            "identity" => h.identity = Some(self.string(e, &host)?),
            "agent_binary" => h.agent_binary = Some(self.string(e, &host)?),
            "transport" => {
                h.transport = match self.string(e, &host)?.as_str() {
                    "local" => TransportKind::Local,
                    "ssh" => TransportKind::Ssh,
                    other => return Err(bad(format!("unknown transport `{other}`"), "use \"ssh\" (the default) or \"local\"")),
                }
            }
            "ssh_options" => h.ssh_options = self.strings(e, &host)?,
            "env" => h.env = self.env(e, &host)?,
            "connect_timeout" => h.connect_timeout = self.duration(e, &host)?,
            "heartbeat_timeout" => h.heartbeat_timeout = self.duration(e, &host)?,
            _ => {}
        }
        Ok(())
    }

    fn string(&self, e: &Entry, host: &str) -> Result<String, SpecError> {
        match &e.node.val {
            Val::Str(s) => Ok(s.clone()),
            v => Err(self.err(e.node.pos.or(e.key_pos), format!("host `{host}`: `{}` must be a string, not {}", e.key, v.kind()))),
        }
    }

    fn strings(&self, e: &Entry, host: &str) -> Result<Vec<String>, SpecError> {
        let err = |pos| {
            self.err(pos, format!("host `{host}`: `{}` must be an array of strings", e.key))
                .hint("write ssh_options = [\"-o\", \"ProxyJump=bastion\"]")
        };
        let Val::Arr(items) = &e.node.val else {
            return Err(err(e.node.pos));
        };
        items.iter().map(|i| if let Val::Str(s) = &i.val { Ok(s.clone()) } else { Err(err(i.pos)) }).collect()
    }

    fn env(&self, e: &Entry, host: &str) -> Result<BTreeMap<String, String>, SpecError> {
        let t = self.table(&e.node, &format!("host `{host}`: env"))?;
        let mut out = BTreeMap::new();
        for v in t {
            let valid = v.key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && v.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(self
                    .err(v.key_pos, format!("host `{host}`: `{}` is not a valid environment variable name", v.key))
                    .hint("use letters, digits and _, not starting with a digit"));
            }
            let value = match &v.node.val {
                Val::Str(s) => s.clone(),
                Val::Int(i) => i.to_string(),
                Val::Float(f) => f.to_string(),
                Val::Bool(b) => b.to_string(),
                other => return Err(self.err(v.node.pos, format!("host `{host}`: env `{}` must be a string, not {}", v.key, other.kind()))),
            };
            out.insert(v.key.clone(), value);
        }
        Ok(out)
    }

    fn duration(&self, e: &Entry, host: &str) -> Result<Duration, SpecError> {
        let parsed = match &e.node.val {
            Val::Int(i) if *i > 0 => Ok(Duration::from_secs(*i as u64)),
            Val::Float(f) if *f > 0.0 && f.is_finite() => Ok(Duration::from_secs_f64(*f)),
            Val::Str(s) => parse_duration(s).and_then(|d| if d.is_zero() { Err("it must be longer than zero".into()) } else { Ok(d) }),
            v => Err(format!("it is {}", v.kind())),
        };
        parsed.map_err(|why| {
            self.err(e.node.pos, format!("host `{host}`: `{}` is not a positive duration ({why})", e.key))
                .hint("write seconds as a number (10) or a string like \"500ms\", \"10s\", \"2m\"")
        })
    }

    /// Addresses and users are passed to ssh and end up in remote shells:
    /// refuse a leading `-` (an option) and anything a shell would expand.
    fn safe_word(&self, e: &Entry, host: &str, what: &str) -> Result<String, SpecError> {
        let s = self.string(e, host)?;
        let extra: &[char] = if what == "user" { &['.', '-', '_'] } else { &['.', '-', '_', ':', '%', '[', ']'] };
        let ok = !s.is_empty() && !s.starts_with('-') && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c));
        if ok {
            return Ok(s);
        }
        let why = if s.starts_with('-') {
            "begins with `-`, which ssh would read as an option"
        } else {
            "contains characters that a shell or ssh could interpret"
        };
        Err(self
            .err(e.node.pos, format!("host `{host}`: {what} {s:?} {why}"))
            .hint(format!("use a plain host name, IP address or ~/.ssh/config alias{}; this is refused to prevent option and command injection (OpenSSH CVE-2023-51385)", if what == "user" { " user name" } else { "" })))
    }
}

fn check_name(cx: &Cx<'_>, e: &Entry) -> Result<(), SpecError> {
    let ok =
        !e.key.is_empty() && !e.key.starts_with('.') && e.key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        return Ok(());
    }
    Err(cx
        .err(e.key_pos, format!("host name {:?} is not a simple name", e.key))
        .hint("host names become directory names: use letters, digits, `-`, `_` and `.`"))
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
