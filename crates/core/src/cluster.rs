//! The cluster file: which hosts a run uses and how to reach them.
//!
//! `cluster.toml` (or `.json` with the same keys) has an optional
//! `[defaults]` table applied to every host, one `[hosts.NAME]` table per
//! host and an optional `[python]` table ([`PythonSpec`]: the interpreter
//! per host and what to install in its virtual environment, for the Python
//! package). Validation refuses anything that could be misread: unknown
//! keys (with a suggestion), a host or key given twice, addresses and users
//! that ssh could take for an option or a remote shell could expand
//! (compare OpenSSH CVE-2023-51385), interpreter paths that the host's
//! shell could misread, impossible ports, slots and speeds.
//! With no cluster file at all, the cluster is this machine:
//! [`ClusterSpec::local`].
//!
//! This module only parses and checks the file's text: reading the file
//! (`shoal::driver::specs`), connecting, detecting core counts and checking
//! `command_on` host names against the cluster are the driver's business,
//! in the `shoal` crate; so are finding the requirements and wheels and
//! building the virtual environments (the Python package).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::spec_error::{find_duplicate, parse_duration, suggestion, Duplicate, SpecError, DURATION_HINT};
use crate::tree::{self, Entry, Node, Val};

/// How the driver reaches a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// This machine: the agent is a child process.
    Local,
    /// The system `ssh` client.
    Ssh,
    /// A worker of a standing cluster (`shoal run --on NAME`): a session
    /// through its coordinator, never named in a cluster file.
    Standing,
}

impl TransportKind {
    /// A host that is not this machine's child process: its agent has its
    /// own address and reaches its peers over the network.
    pub fn is_remote(self) -> bool {
        self != TransportKind::Local
    }
}

/// One host of the cluster, with `[defaults]` applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostSpec {
    /// The `NAME` of `[hosts.NAME]`; also a directory name on the driver.
    pub name: String,
    pub transport: TransportKind,
    /// What `ssh` connects to (a host name, IP address or `~/.ssh/config`
    /// alias); `localhost` for local hosts.
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// Where the agent keeps `bin/`, `blocks/` and `runs/`; `~` is the
    /// remote user's home.
    pub workdir: String,
    /// Task slots; `None` means the host's core count, detected at connect.
    pub slots: Option<u32>,
    /// Relative single-core speed, for weighted shares.
    pub speed: f64,
    pub identity: Option<String>,
    /// Passed to `ssh` before shoal's own options, so they win.
    pub ssh_options: Vec<String>,
    /// Extra environment for this host's tasks (`[defaults]` env merged in).
    pub env: BTreeMap<String, String>,
    /// A binary to deploy instead of the driver's own (another platform).
    pub agent_binary: Option<String>,
    pub connect_timeout: Duration,
    /// Silence after which the driver declares the host lost.
    pub heartbeat_timeout: Duration,
}

/// The hosts of one run, in file order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterSpec {
    /// The file it came from; `None` for [`ClusterSpec::local`].
    pub source: Option<PathBuf>,
    pub hosts: Vec<HostSpec>,
    /// The `[python]` table; empty when the file has none.
    pub python: PythonSpec,
    /// How data moves between hosts (`data = "direct" | "relay"`).
    pub data: DataPath,
    /// How a standing cluster's workers reach its coordinator
    /// (`tunnel = "none" | "ssh"`).
    pub tunnel: Tunnel,
}

/// How a standing cluster's workers reach its coordinator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tunnel {
    /// Straight to its port.
    #[default]
    None,
    /// Through an ssh connection from the coordinator's machine to each
    /// host (a port forwarded to the host's loopback): only port 22 needs
    /// to be open; shuffle data then goes through the driver.
    Ssh,
}

/// How shuffle data moves between hosts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPath {
    /// Host to host, over connections authenticated with a per-run key,
    /// where a probe at the start of the run finds that the pair can
    /// reach each other; through the driver for the other pairs.
    #[default]
    Direct,
    /// Always through the driver (hosts reach each other only through ssh).
    Relay,
}

/// The `[python]` table: how Shoal's Python package runs Python on each
/// host. Only read here; the package picks the interpreter and provisions
/// the virtual environment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PythonSpec {
    /// The interpreter on every host; `None` leaves the choice to the driver.
    pub python: Option<String>,
    /// Per-host interpreters, by host name (every key is a host of the
    /// cluster), overriding `python` like a job's `command_on`.
    pub python_on: BTreeMap<String, String>,
    /// As written in the file (relative paths are relative to the cluster file's directory).
    pub requirements: Option<String>,
    /// A local directory of wheels used instead of the package index; as
    /// written in the file, like `requirements`.
    pub wheels: Option<String>,
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

/// Keys that say which machine a host is, so sharing them makes no sense.
const PER_HOST_ONLY: &[&str] = &["address", "transport"];

const TOP_KEYS: &[&str] = &["defaults", "hosts", "python", "data", "tunnel"];

const PYTHON_KEYS: &[&str] = &["python", "python_on", "requirements", "wheels"];

const INJECTION_NOTE: &str = "this is refused to prevent option and command injection (OpenSSH CVE-2023-51385)";

/// Why interpreters are held to plain paths, for hints.
const INTERPRETER_NOTE: &str =
    "the interpreter is spliced into a shell command on the host, so this is refused to prevent option and command injection";

/// Characters a shell would treat specially in an unquoted word (besides
/// whitespace and control characters, refused too).
const SHELL_SPECIAL: &str = "'\"`$;&|<>()\\*?!{}[]";

const PYTHON_ON_HINT: &str = "write python_on = { HOST = \"/path/to/python3\" }, one entry per host";

impl HostSpec {
    /// A host with every default (`ssh`, no address yet).
    pub fn new(name: &str) -> Self {
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
    /// The embedded default: this machine alone, as host `local`.
    pub fn local() -> ClusterSpec {
        let mut h = HostSpec::new("local");
        h.transport = TransportKind::Local;
        h.address = "localhost".into();
        ClusterSpec { source: None, hosts: vec![h], python: PythonSpec::default(), data: DataPath::Direct, tunnel: Tunnel::None }
    }

    /// Parses and validates cluster text; `path` names it in errors and
    /// picks the format (JSON when it ends in `.json`, else TOML).
    pub fn parse(text: &str, path: &Path) -> Result<ClusterSpec, SpecError> {
        let file = path.display().to_string();
        if let Some(d) = find_duplicate(text, file.ends_with(".json")) {
            return Err(duplicate_error(&file, text, &d));
        }
        let root = tree::parse(text, &file)?;
        let cx = Cx { file: &file, text };
        let top = cx.top(&root)?;
        let base = match find(top, "defaults") {
            Some(d) => cx.defaults(d)?,
            None => HostSpec::new(""),
        };
        let hosts = cx.hosts(find(top, "hosts"), &base)?;
        let python = match find(top, "python") {
            Some(p) => cx.python(p, &hosts)?,
            None => PythonSpec::default(),
        };
        let data = match find(top, "data") {
            Some(d) => cx.data(d)?,
            None => DataPath::Direct,
        };
        let tunnel = match find(top, "tunnel") {
            Some(t) => cx.tunnel(t)?,
            None => Tunnel::None,
        };
        Ok(ClusterSpec { source: Some(path.to_path_buf()), hosts, python, data, tunnel })
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Only the named hosts (`--hosts a,b`), in file order.
    pub fn select(&self, names: &[String]) -> Result<ClusterSpec, SpecError> {
        let file = self.source.as_ref().map_or("(this machine)".to_string(), |p| p.display().to_string());
        let known: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        if names.is_empty() {
            return Err(SpecError::new(&file, "--hosts names no hosts")
                .hint(format!("give host names separated by commas; the hosts are: {}", known.join(", "))));
        }
        if let Some(n) = names.iter().find(|n| self.host(n).is_none()) {
            return Err(SpecError::new(
                &file,
                format!("--hosts names `{n}`, which is not a host of this cluster{}", suggestion(n, &known)),
            )
            .hint(format!("the hosts are: {}", known.join(", "))));
        }
        let hosts = self.hosts.iter().filter(|h| names.contains(&h.name)).cloned().collect();
        // `python_on` keeps the entries of hosts left out: they are still
        // hosts of the file, and nothing asks for their interpreter.
        Ok(ClusterSpec { source: self.source.clone(), hosts, python: self.python.clone(), data: self.data, tunnel: self.tunnel })
    }
}

impl PythonSpec {
    /// The interpreter for `host`: its `python_on` entry, else `python`.
    pub fn interpreter(&self, host: &str) -> Option<&str> {
        self.python_on.get(host).or(self.python.as_ref()).map(String::as_str)
    }

    /// `requirements` resolved against the directory of `source` (the
    /// cluster file) when relative; as given when absolute or when there is
    /// no source.
    pub fn requirements_path(&self, source: Option<&Path>) -> Option<PathBuf> {
        self.requirements.as_deref().map(|p| beside(source, p))
    }

    /// `wheels` resolved like [`PythonSpec::requirements_path`].
    pub fn wheels_path(&self, source: Option<&Path>) -> Option<PathBuf> {
        self.wheels.as_deref().map(|p| beside(source, p))
    }
}

/// `path` relative to the directory of the file `source`, as a job file's
/// paths are relative to the job file.
fn beside(source: Option<&Path>, path: &str) -> PathBuf {
    match source.and_then(Path::parent) {
        Some(dir) if Path::new(path).is_relative() => dir.join(path),
        _ => PathBuf::from(path),
    }
}

/// A host or key given twice, worded in cluster terms.
fn duplicate_error(file: &str, text: &str, d: &Duplicate) -> SpecError {
    let at = |msg: String| SpecError::at(file, text, Some(d.offset), msg);
    let rest = |from: usize| d.path[from..].join(".");
    match d.path.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["hosts", name] => at(format!("host `{name}` is defined twice"))
            .hint("each [hosts.NAME] table needs a name of its own: rename one of them, or merge the two"),
        ["hosts", name, _, ..] => at(format!("host `{name}`: `{}` is given twice", rest(2))).hint("keep one of them"),
        ["defaults"] => at("[defaults] is given twice".into()).hint("merge the two [defaults] tables into one"),
        ["defaults", _, ..] => at(format!("[defaults]: `{}` is given twice", rest(1))).hint("keep one of them"),
        ["python"] => at("[python] is given twice".into()).hint("merge the two [python] tables into one"),
        ["python", _, ..] => at(format!("[python]: `{}` is given twice", rest(1))).hint("keep one of them"),
        _ => at(format!("`{}` is given twice", rest(0))).hint("keep one of them"),
    }
}

fn find<'a>(t: &'a [Entry], key: &str) -> Option<&'a Entry> {
    t.iter().find(|e| e.key == key)
}

/// Whose keys are being read; errors start with it.
#[derive(Clone, Copy)]
enum Owner<'a> {
    Defaults,
    Host(&'a str),
    Python,
    Top,
}

impl fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Defaults => f.write_str("[defaults]"),
            Owner::Host(name) => write!(f, "host `{name}`"),
            Owner::Python => f.write_str("[python]"),
            Owner::Top => f.write_str("the cluster file"),
        }
    }
}

/// Validation context: the file name and text, for positions.
struct Cx<'a> {
    file: &'a str,
    text: &'a str,
}

type R<T> = Result<T, SpecError>;

impl Cx<'_> {
    fn err(&self, pos: Option<usize>, msg: impl Into<String>) -> SpecError {
        SpecError::at(self.file, self.text, pos, msg)
    }

    /// An error about the value of `e`.
    fn bad(&self, e: &Entry, owner: Owner<'_>, msg: impl fmt::Display) -> SpecError {
        self.err(e.node.pos.or(e.key_pos), format!("{owner}: {msg}"))
    }

    fn table<'n>(&self, n: &'n Node, what: &str, hint: &str) -> R<&'n [Entry]> {
        match &n.val {
            Val::Table(t) => Ok(t),
            other => Err(self.err(n.pos, format!("{what} must be a table, not {}", other.kind())).hint(hint)),
        }
    }

    fn top<'n>(&self, root: &'n Node) -> R<&'n [Entry]> {
        let top = self.table(root, "the cluster file", "write [hosts.NAME] tables, or an object with a \"hosts\" key in JSON")?;
        if let Some(e) = top.iter().find(|e| !TOP_KEYS.contains(&e.key.as_str())) {
            return Err(self
                .err(e.key_pos, format!("unknown top-level key `{}`{}", e.key, suggestion(&e.key, TOP_KEYS)))
                .hint("a cluster file has an optional [defaults] table, one [hosts.NAME] table per host, an optional [python] table, and an optional `data = \"direct\"` or `data = \"relay\"` line above the tables"));
        }
        Ok(top)
    }

    fn known_keys(&self, t: &[Entry], known: &[&str], owner: Owner<'_>) -> R<()> {
        let Some(e) = t.iter().find(|e| !known.contains(&e.key.as_str())) else {
            return Ok(());
        };
        let who = match owner {
            Owner::Host(_) => "a host".to_string(),
            other => other.to_string(),
        };
        Err(self
            .err(e.key_pos, format!("{owner}: unknown key `{}`{}", e.key, suggestion(&e.key, known)))
            .hint(format!("the keys {who} accepts are: {}", known.join(", "))))
    }

    /// `[defaults]`, validated once, as the host every host starts from.
    fn defaults(&self, d: &Entry) -> R<HostSpec> {
        let keys = self.table(&d.node, "defaults", "write [defaults] followed by the keys every host shares")?;
        if let Some(e) = keys.iter().find(|e| PER_HOST_ONLY.contains(&e.key.as_str())) {
            return Err(self
                .err(e.key_pos, format!("[defaults]: `{}` cannot be a default", e.key))
                .hint(format!("set {} in each [hosts.NAME] table: it says which machine the host is", e.key)));
        }
        let shared: Vec<&str> = HOST_KEYS.iter().copied().filter(|k| !PER_HOST_ONLY.contains(k)).collect();
        self.known_keys(keys, &shared, Owner::Defaults)?;
        let mut base = HostSpec::new("");
        for e in keys {
            self.apply(&mut base, e, Owner::Defaults)?;
        }
        Ok(base)
    }

    fn hosts(&self, entry: Option<&Entry>, base: &HostSpec) -> R<Vec<HostSpec>> {
        let no_hosts = |pos| {
            self.err(pos, "the cluster has no hosts")
                .hint("add a [hosts.NAME] table per host, or delete the file to use this machine alone")
        };
        let Some(e) = entry else {
            return Err(no_hosts(Some(0)));
        };
        let list = self.table(&e.node, "hosts", "write one [hosts.NAME] table per host")?;
        if list.is_empty() {
            return Err(no_hosts(e.key_pos));
        }
        list.iter().map(|h| self.host(h, base)).collect()
    }

    fn host(&self, e: &Entry, base: &HostSpec) -> R<HostSpec> {
        self.check_name(e)?;
        let owner = Owner::Host(&e.key);
        let hint = format!("write [hosts.{}] followed by address = \"...\" and the host's other keys", e.key);
        let keys = self.table(&e.node, &format!("host `{}`", e.key), &hint)?;
        self.known_keys(keys, HOST_KEYS, owner)?;
        let mut h = base.clone();
        h.name = e.key.clone();
        for k in keys {
            self.apply(&mut h, k, owner)?;
        }
        self.finish(h, e)
    }

    /// Host names become directory names on the driver.
    fn check_name(&self, e: &Entry) -> R<()> {
        let simple = !e.key.is_empty()
            && !e.key.starts_with('.')
            && e.key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if simple {
            return Ok(());
        }
        Err(self
            .err(e.key_pos, format!("host name {:?} is not a simple name", e.key))
            .hint("host names become directory names: use letters, digits, `-`, `_` and `.`"))
    }

    fn finish(&self, mut h: HostSpec, e: &Entry) -> R<HostSpec> {
        match h.transport {
            TransportKind::Local => h.address = "localhost".into(),
            TransportKind::Ssh if h.address.is_empty() => {
                return Err(self
                    .err(e.key_pos, format!("host `{}` has no address", h.name))
                    .hint("add address = \"host.example.com\" (anything ssh accepts), or transport = \"local\" for this machine"));
            }
            TransportKind::Ssh | TransportKind::Standing => {}
        }
        Ok(h)
    }

    /// Sets one key; [`Cx::known_keys`] has already refused unknown ones.
    fn apply(&self, h: &mut HostSpec, e: &Entry, owner: Owner<'_>) -> R<()> {
        match e.key.as_str() {
            "address" => h.address = self.ssh_word(e, owner, false)?,
            "user" => h.user = Some(self.ssh_word(e, owner, true)?),
            "port" => h.port = Some(self.port(e, owner)?),
            "slots" => h.slots = Some(self.slots(e, owner)?),
            "speed" => h.speed = self.speed(e, owner)?,
            "workdir" => h.workdir = self.string(e, owner)?,
            "identity" => h.identity = Some(self.string(e, owner)?),
            "agent_binary" => h.agent_binary = Some(self.string(e, owner)?),
            "transport" => h.transport = self.transport(e, owner)?,
            "ssh_options" => h.ssh_options = self.ssh_options(e, owner)?,
            // A host's variables are added to the defaults', not swapped
            // for them: defaults usually carry PATH-like settings for all.
            "env" => h.env.extend(self.env(e, owner)?),
            "connect_timeout" => h.connect_timeout = self.duration(e, owner)?,
            "heartbeat_timeout" => h.heartbeat_timeout = self.duration(e, owner)?,
            _ => {}
        }
        Ok(())
    }

    fn string(&self, e: &Entry, owner: Owner<'_>) -> R<String> {
        match &e.node.val {
            Val::Str(s) if s.is_empty() => {
                Err(self.bad(e, owner, format_args!("{} is empty", e.key)).hint(format!("give {} a value, or leave it out", e.key)))
            }
            Val::Str(s) => Ok(s.clone()),
            v => Err(self
                .bad(e, owner, format_args!("{} must be a string, not {}", e.key, v.kind()))
                .hint(format!("put the value in quotes: {} = \"...\"", e.key))),
        }
    }

    /// `ssh_options`, refusing the flags that would hand the host your
    /// ssh agent or X display (`-A`, `-X`, `-Y`, alone or in a cluster of
    /// flags): a job runs code from its job file on the host, and that code
    /// could use them. `-o` options cannot do it: Shoal's own `-o` come
    /// first, and ssh keeps the first value it sees.
    fn ssh_options(&self, e: &Entry, owner: Owner<'_>) -> R<Vec<String>> {
        let words = self.strings(e, owner)?;
        let Val::Arr(items) = &e.node.val else { return Ok(words) };
        let mut takes_arg = false;
        for (w, item) in words.iter().zip(items) {
            if std::mem::take(&mut takes_arg) || !w.starts_with('-') || w.starts_with("--") {
                continue;
            }
            for (i, c) in w.char_indices().skip(1) {
                if "AXY".contains(c) {
                    return Err(self
                        .err(item.pos.or(e.key_pos), format!("{owner}: ssh_options must not turn on agent or X11 forwarding (`-{c}` in {w:?}): the host runs code from the job file, which could use them"))
                        .hint("remove it; Shoal runs ssh with ForwardAgent=no and ForwardX11=no"));
                }
                if "BbcDEeFIiJLlmOoPpQRSWw".contains(c) {
                    takes_arg = i + c.len_utf8() == w.len();
                    break;
                }
            }
        }
        Ok(words)
    }

    fn strings(&self, e: &Entry, owner: Owner<'_>) -> R<Vec<String>> {
        let err = |n: &Node| {
            self.err(n.pos.or(e.key_pos), format!("{owner}: {} must be an array of strings", e.key))
                .hint("write ssh_options = [\"-o\", \"ProxyJump=bastion\"]")
        };
        let Val::Arr(items) = &e.node.val else {
            return Err(err(&e.node));
        };
        items.iter().map(|i| if let Val::Str(s) = &i.val { Ok(s.clone()) } else { Err(err(i)) }).collect()
    }

    fn port(&self, e: &Entry, owner: Owner<'_>) -> R<u16> {
        match e.node.val {
            Val::Int(p) => u16::try_from(p)
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| self.bad(e, owner, format_args!("port {p} is out of range")).hint("use a port between 1 and 65535")),
            ref v => {
                Err(self.bad(e, owner, format_args!("port must be an integer, not {}", v.kind())).hint("write port = 22 without quotes"))
            }
        }
    }

    fn slots(&self, e: &Entry, owner: Owner<'_>) -> R<u32> {
        match e.node.val {
            Val::Int(s) if s < 1 => Err(self
                .bad(e, owner, format_args!("slots = {s} leaves no room to run anything"))
                .hint("use slots >= 1, or leave it out to use every core")),
            Val::Int(s) => u32::try_from(s).map_err(|_| {
                self.bad(e, owner, format_args!("slots = {s} is more than any host can run"))
                    .hint("slots is how many tasks run at once, usually the core count")
            }),
            ref v => {
                Err(self.bad(e, owner, format_args!("slots must be an integer, not {}", v.kind())).hint("write slots = 8 without quotes"))
            }
        }
    }

    fn speed(&self, e: &Entry, owner: Owner<'_>) -> R<f64> {
        let s = match e.node.val {
            Val::Int(i) => i as f64,
            Val::Float(f) => f,
            ref v => {
                return Err(self
                    .bad(e, owner, format_args!("speed must be a number, not {}", v.kind()))
                    .hint("write speed = 1.5 without quotes"))
            }
        };
        if s.is_finite() && s > 0.0 {
            return Ok(s);
        }
        Err(self
            .bad(e, owner, format_args!("speed must be a positive number, not {s}"))
            .hint("speed is relative single-core speed; 1.0 is the default"))
    }

    fn transport(&self, e: &Entry, owner: Owner<'_>) -> R<TransportKind> {
        match self.string(e, owner)?.as_str() {
            "local" => Ok(TransportKind::Local),
            "ssh" => Ok(TransportKind::Ssh),
            other => Err(self.bad(e, owner, format_args!("unknown transport `{other}`")).hint("use \"ssh\" (the default) or \"local\"")),
        }
    }

    fn env(&self, e: &Entry, owner: Owner<'_>) -> R<BTreeMap<String, String>> {
        let t = match &e.node.val {
            Val::Table(t) => t,
            v => {
                return Err(self
                    .bad(e, owner, format_args!("env must be a table of variables, not {}", v.kind()))
                    .hint("write env = { NAME = \"value\" }"))
            }
        };
        t.iter().map(|v| Ok((self.env_name(v, owner)?, self.env_value(v, owner)?))).collect()
    }

    fn env_name(&self, v: &Entry, owner: Owner<'_>) -> R<String> {
        let valid = v.key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && v.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            return Ok(v.key.clone());
        }
        Err(self
            .err(v.key_pos, format!("{owner}: `{}` is not a valid environment variable name", v.key))
            .hint("use letters, digits and _, not starting with a digit"))
    }

    fn env_value(&self, v: &Entry, owner: Owner<'_>) -> R<String> {
        match &v.node.val {
            Val::Str(s) => Ok(s.clone()),
            Val::Int(i) => Ok(i.to_string()),
            Val::Float(f) => Ok(f.to_string()),
            Val::Bool(b) => Ok(b.to_string()),
            other => Err(self
                .bad(v, owner, format_args!("env `{}` must be a string, not {}", v.key, other.kind()))
                .hint(format!("write {} = \"value\"", v.key))),
        }
    }

    fn duration(&self, e: &Entry, owner: Owner<'_>) -> R<Duration> {
        let key = &e.key;
        let bad = |msg: String| self.bad(e, owner, msg).hint(DURATION_HINT);
        let d = match &e.node.val {
            Val::Int(i) => u64::try_from(*i).ok().map(Duration::from_secs),
            Val::Float(f) => Duration::try_from_secs_f64(*f).ok(),
            Val::Str(s) => Some(parse_duration(s).map_err(|why| bad(format!("{key} = {s:?} is not a duration: {why}")))?),
            v => return Err(bad(format!("{key} must be a duration, not {}", v.kind()))),
        };
        d.filter(|d| !d.is_zero()).ok_or_else(|| bad(format!("{key} must be a duration longer than zero")))
    }

    /// Addresses and users reach ssh's command line and, through `%h` and
    /// `%r` in the user's ssh config, possibly a shell: allow only what
    /// host names, IP literals (with `%zone`) and user names need.
    fn ssh_word(&self, e: &Entry, owner: Owner<'_>, user: bool) -> R<String> {
        let s = self.string(e, owner)?;
        let what = if user { "user" } else { "address" };
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') || (!user && matches!(c, ':' | '%' | '[' | ']'));
        let (why, hint) = if s.starts_with('-') {
            ("begins with `-`, which ssh would read as an option".to_string(), None)
        } else if !user && s.contains('@') {
            ("contains `@`".to_string(), Some("put the user name in user = \"...\" and only the host in address".to_string()))
        } else if let Some(c) = s.chars().find(|c| !allowed(*c)) {
            (format!("contains {c:?}, which a shell or ssh could interpret"), None)
        } else {
            return Ok(s);
        };
        let plain = if user {
            "a plain user name (letters, digits, `.`, `-`, `_`)"
        } else {
            "a plain host name, IP address or ~/.ssh/config alias"
        };
        let hint = hint.unwrap_or_else(|| format!("use {plain}; {INJECTION_NOTE}"));
        Err(self.bad(e, owner, format_args!("{what} {s:?} {why}")).hint(hint))
    }

    /// `[python]`, read after the hosts because `python_on` names them.
    /// The top-level `data` key.
    fn data(&self, e: &Entry) -> R<DataPath> {
        match self.string(e, Owner::Top)?.as_str() {
            "direct" => Ok(DataPath::Direct),
            "relay" => Ok(DataPath::Relay),
            other => Err(self.bad(e, Owner::Top, format_args!("data must be \"direct\" or \"relay\", not \"{other}\"")).hint(
                "\"direct\" (the default) moves shuffle data host to host where hosts reach each other; \"relay\" sends it all through the driver, for hosts that reach each other only through ssh",
            )),
        }
    }

    /// The top-level `tunnel` key.
    fn tunnel(&self, e: &Entry) -> R<Tunnel> {
        match self.string(e, Owner::Top)?.as_str() {
            "none" => Ok(Tunnel::None),
            "ssh" => Ok(Tunnel::Ssh),
            other => Err(self.bad(e, Owner::Top, format_args!("tunnel must be \"none\" or \"ssh\", not \"{other}\"")).hint(
                "\"ssh\" carries a standing cluster's connections through ssh, for hosts that only port 22 reaches; \"none\" (the default) has workers connect to the coordinator's port",
            )),
        }
    }

    fn python(&self, e: &Entry, hosts: &[HostSpec]) -> R<PythonSpec> {
        let hint = "write [python] on a line of its own, followed by its keys (python, python_on, requirements, wheels)";
        let keys = self.table(&e.node, "[python]", hint)?;
        self.known_keys(keys, PYTHON_KEYS, Owner::Python)?;
        let mut p = PythonSpec::default();
        for k in keys {
            match k.key.as_str() {
                "python" => p.python = Some(self.interpreter(k, "python")?),
                "python_on" => p.python_on = self.python_on(k, hosts)?,
                "requirements" => p.requirements = Some(self.string(k, Owner::Python)?),
                "wheels" => p.wheels = Some(self.string(k, Owner::Python)?),
                _ => {}
            }
        }
        Ok(p)
    }

    fn python_on(&self, e: &Entry, hosts: &[HostSpec]) -> R<BTreeMap<String, String>> {
        let Val::Table(t) = &e.node.val else {
            return Err(self
                .bad(e, Owner::Python, format_args!("python_on must be a table of host names and interpreters, not {}", e.node.val.kind()))
                .hint(PYTHON_ON_HINT));
        };
        let known: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let entry = |v: &Entry| {
            if !known.contains(&v.key.as_str()) {
                return Err(self
                    .err(
                        v.key_pos,
                        format!("[python]: python_on names `{}`, which is not a host of this cluster{}", v.key, suggestion(&v.key, &known)),
                    )
                    .hint(format!("the hosts are: {}", known.join(", "))));
            }
            Ok((v.key.clone(), self.interpreter(v, &format!("python_on `{}`", v.key))?))
        };
        t.iter().map(entry).collect()
    }

    /// `python` or a `python_on` value (`what` names it): a plain path,
    /// since the host's shell runs it.
    fn interpreter(&self, e: &Entry, what: &str) -> R<String> {
        let fail = |msg: String, hint: String| Err(self.bad(e, Owner::Python, msg).hint(hint));
        let s = match &e.node.val {
            Val::Str(s) if s.is_empty() => {
                return fail(format!("{what} is empty"), "give the path of a Python interpreter, or leave it out".into())
            }
            Val::Str(s) => s,
            v => return fail(format!("{what} must be a string, not {}", v.kind()), "put the path in quotes: \"/usr/bin/python3\"".into()),
        };
        let why = if s.starts_with('-') {
            "begins with `-`, which would be read as an option".to_string()
        } else if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control() || SHELL_SPECIAL.contains(*c)) {
            format!("contains {c:?}, which a shell could interpret")
        } else {
            return Ok(s.clone());
        };
        fail(format!("{what} {s:?} {why}"), format!("give a plain path such as /usr/bin/python3; {INTERPRETER_NOTE}"))
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
