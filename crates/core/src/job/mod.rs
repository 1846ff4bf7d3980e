//! The job file: what to compute.
//!
//! `job.toml` has `[job]`, `[sync]`, `[input]`, `[map]`, optional
//! `[combine]` and `[reduce]`, `[params]`, `[output]` and `[images]`.
//! This module owns the types and the public entry points; `parse` and
//! `values` validate the file section by section, `render` writes job
//! files: a spec back as TOML (`shoal map --save`), and key by key the
//! text of jobs made in code ([`JobText`]: `shoal map`'s flags).
//!
//! The whole file is validated, including sections whose features the
//! driver may not support yet (it refuses those with its own message), and
//! names that only the cluster can check (`command_on` hosts) are left to
//! the driver. Paths stay as written, relative to the job file's directory
//! ([`JobSpec::base_dir`]); reading them, and the job file itself
//! (`shoal::driver::specs`), is I/O and happens in the driver.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::spec_error::{find_duplicate, suggestion, Duplicate, SpecError};
use crate::tree;

mod parse;
mod render;
mod values;

pub use render::JobText;

/// A validated job.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobSpec {
    /// The job file, as given.
    pub path: Option<PathBuf>,
    /// Directory that relative paths in the file are relative to.
    pub base_dir: PathBuf,
    pub job: JobMeta,
    pub sync: SyncSpec,
    pub input: InputSpec,
    pub map: StepSpec,
    pub combine: Option<StepSpec>,
    pub reduce: Option<ReduceSpec>,
    pub params: BTreeMap<String, ParamValue>,
    pub output: OutputSpec,
    /// Image archives by image name, loaded on hosts that lack the image.
    pub images: BTreeMap<String, ImageSpec>,
}

/// `[job]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobMeta {
    /// Defaults to the job file's stem.
    pub name: String,
    /// Fixes task order and distribution.
    pub seed: u64,
    /// Tries per task before the job fails.
    pub max_attempts: u32,
    /// Task failures in a row after which a host is excluded.
    pub exclude_after: u32,
    pub speculate: bool,
    pub skip_bad_records: u32,
}

/// `[sync]`: what is shipped to every host.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyncSpec {
    pub files: Vec<String>,
    /// A file listing more paths, one per line; read by the driver.
    pub list_file: Option<String>,
    /// Bytes; bigger files are refused unless listed in `force`.
    pub max_size: u64,
    pub force: Vec<String>,
    /// Glob-ish patterns, kept as written.
    pub exclude: Vec<String>,
}

/// How the input is cut into partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Lines,
    Files,
    Hash,
    Range,
}

/// How keys are routed to partitions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Partitioner {
    #[default]
    Hash,
    Modulo,
}

/// Which field of an input line is its key (1-based) and what separates
/// fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeySpec {
    pub field: usize,
    pub sep: String,
}

impl Default for KeySpec {
    fn default() -> Self {
        KeySpec { field: 1, sep: "\t".into() }
    }
}

/// `[input]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InputSpec {
    /// A file or a directory; exactly one of `path` and `args` is set.
    pub path: Option<String>,
    /// One task per argument.
    pub args: Option<Vec<String>>,
    /// `None`: the planner picks (lines for a file, files for a directory).
    pub split: Option<Split>,
    pub partitions: Option<u32>,
    /// Bytes per partition; never set together with `partitions`.
    pub chunk: Option<u64>,
    /// Set whenever `split` is hash or range.
    pub key: Option<KeySpec>,
    pub partitioner: Partitioner,
    pub weighted: bool,
    /// Partitions given by a program instead of a file (the Rust Dataset
    /// API): each is a byte range of a local file. Never read from a job
    /// file; when set, `path` and `args` are ignored.
    #[serde(skip)]
    pub parts: Option<Vec<InputPart>>,
}

/// What stands for the host's name in an `[input] path` of files that
/// live on each host (`/data/{host}/events.log`).
pub const HOST_PATTERN: &str = "{host}";

/// What marks an `[input] path` that every host sees the same way (NFS, a
/// parallel file system): the hosts read their byte ranges themselves.
pub const SHARED_PREFIX: &str = "shared:";

impl InputSpec {
    /// True when the hosts read the input themselves: a `shared:` path, or
    /// partitions that say so (`InputPart::file_size`).
    pub fn in_place(&self) -> bool {
        match &self.parts {
            Some(parts) => parts.iter().any(|p| p.file_size.is_some()),
            None => self.is_shared(),
        }
    }

    /// True when the input is a `shared:` path, read in place by each host.
    pub fn is_shared(&self) -> bool {
        self.path.as_deref().is_some_and(|p| Self::shared_path(p).is_some())
    }

    /// True when the path names a file (or directory) on each host, by a
    /// `{host}` pattern.
    pub fn is_per_host(&self) -> bool {
        self.parts.is_none() && self.path.as_deref().is_some_and(|p| p.contains(HOST_PATTERN))
    }

    /// The path after `shared:`, when `p` has the prefix.
    pub fn shared_path(p: &str) -> Option<&str> {
        p.strip_prefix(SHARED_PREFIX)
    }
}

/// One partition handed over by a program: `len` bytes of `path` from
/// `offset`, or the bytes themselves when they are few.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputPart {
    /// The partition's bytes, held in memory (then `path` is unused).
    pub data: Option<std::sync::Arc<[u8]>>,
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
    /// Shown in logs and used for `{name}` in output names.
    pub name: String,
    /// BLAKE3 of the range, when the program knows it already.
    pub hash: Option<[u8; 32]>,
    /// The host (by cluster name) the partition must run on: its data
    /// lives there.
    pub host: Option<String>,
    /// Set when the partition is read in place by the host that runs it
    /// (a file on that host, or on a file system every host shares): the
    /// whole file's size, which the host checks. Such a range is aligned
    /// to lines by the host.
    pub file_size: Option<u64>,
    /// The host (by cluster name) whose block store holds this partition
    /// (by `hash`, which is then set): a part an earlier job of a program
    /// left where it was made. The driver has no copy: a task elsewhere
    /// gets it from that host (directly where the two reach each other).
    pub held_on: Option<String>,
}

/// A step: `[map]`, `[combine]`, or the command part of `[reduce]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StepSpec {
    /// A shell command; never empty.
    pub command: String,
    /// Per-host overrides of `command`, by host name.
    pub command_on: BTreeMap<String, String>,
    /// A Docker image to run the command in.
    pub image: Option<String>,
    pub timeout: Option<Duration>,
    /// Bytes (containers).
    pub memory: Option<u64>,
    /// Whether a container may use the network.
    pub network: bool,
    pub cpus: Option<f64>,
    /// The command is a Rust Dataset program's own executable, which can
    /// stay up as a resident executor and run task after task of the run.
    /// Set by the Dataset API, never by a job file.
    #[serde(skip)]
    pub resident: bool,
}

/// Key order of a reduce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    #[default]
    Bytes,
    Numeric,
}

/// The key of a shuffle: the first `fields` fields of a line, as Hadoop
/// Streaming's `stream.num.map.output.key.fields`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShuffleKey {
    pub sep: String,
    pub fields: usize,
}

impl Default for ShuffleKey {
    fn default() -> Self {
        ShuffleKey { sep: "\t".into(), fields: 1 }
    }
}

/// `[reduce]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReduceSpec {
    pub step: StepSpec,
    pub partitions: Option<u32>,
    pub partitioner: Partitioner,
    pub key: ShuffleKey,
    pub sort: SortOrder,
    /// Bytes of map output sorted in memory before spilling; at least 64 KiB.
    pub sort_buffer: u64,
}

/// Most reduce partitions: every map task reports one bucket per reduce
/// partition, all in one message of at most 4 MiB (`shoal_wire::MAX_BUCKETS`).
pub const MAX_REDUCE_PARTITIONS: u32 = 64 << 10;

/// The most `[job] skip_bad_records`: a task reports its skipped records
/// in one message (`shoal_wire::MAX_SKIPPED`).
pub const MAX_SKIP_BAD_RECORDS: u32 = 1000;

/// Longest string Linux passes as one argument or one environment
/// variable (`MAX_ARG_STRLEN`, with its closing NUL): a longer command or
/// param fails every task with "Argument list too long".
pub const ARG_MAX_BYTES: usize = 128 << 10;

/// Most bytes of `[params]` in all (names and values): they reach every
/// task in its environment, and every task request on every host.
pub const PARAMS_MAX_BYTES: usize = 1 << 20;

/// A scalar from `[params]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl ParamValue {
    /// The value as an environment variable (`SHOAL_PARAM_<NAME>`).
    pub fn to_env(&self) -> String {
        match self {
            ParamValue::Str(s) => s.clone(),
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Float(f) => f.to_string(),
            ParamValue::Bool(b) => b.to_string(),
        }
    }

    /// The value in `$SHOAL_PARAMS`. JSON has no NaN or infinity; those
    /// become `null`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::Str(s) => s.clone().into(),
            ParamValue::Int(i) => (*i).into(),
            ParamValue::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            ParamValue::Bool(b) => (*b).into(),
        }
    }
}

/// How task outputs become the job's output.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub enum Merge {
    #[default]
    Concat,
    None,
    JsonList,
    Csv,
    Command(String),
}

/// `[output]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputSpec {
    /// Defaults to `out/<job name>`.
    pub path: String,
    pub merge: Merge,
    /// Naming pattern for per-file outputs: `{name}`, `{stem}`, `{ext}`,
    /// `{partition}`.
    pub name: Option<String>,
    /// Each part stays on the host that made it, under `path` there
    /// (`{host}` in it is that host's name; relative to the home directory).
    pub on_hosts: bool,
    /// Each part stays in the block store of the host that made it, and
    /// nowhere else (a program's cached dataset); never in a job file.
    #[serde(skip)]
    pub held: bool,
}

/// An entry of `[images]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageSpec {
    /// An image archive (`docker save`), relative to the job file.
    pub file: String,
}

const SECTIONS: &[&str] = &["job", "sync", "input", "map", "combine", "reduce", "params", "output", "images"];
const JOB_KEYS: &[&str] = &["name", "seed", "max_attempts", "exclude_after", "speculate", "skip_bad_records"];
const SYNC_KEYS: &[&str] = &["files", "list_file", "max_size", "force", "exclude"];
const INPUT_KEYS: &[&str] = &["path", "args", "split", "partitions", "chunk", "key", "partitioner", "weighted"];
const STEP_KEYS: &[&str] = &["command", "command_on", "image", "timeout", "memory", "network", "cpus"];
const REDUCE_EXTRA: &[&str] = &["partitions", "partitioner", "key", "sort", "sort_buffer"];
const OUTPUT_KEYS: &[&str] = &["path", "merge", "name", "on_hosts"];

/// Keys accepted by a section (for `--set` and error hints); `None` for
/// sections whose keys are free (`params`, `images`) or unknown names.
pub fn section_keys(section: &str) -> Option<Vec<&'static str>> {
    Some(match section {
        "job" => JOB_KEYS.to_vec(),
        "sync" => SYNC_KEYS.to_vec(),
        "input" => INPUT_KEYS.to_vec(),
        "map" | "combine" => STEP_KEYS.to_vec(),
        "reduce" => [STEP_KEYS, REDUCE_EXTRA].concat(),
        "output" => OUTPUT_KEYS.to_vec(),
        _ => return None,
    })
}

impl JobSpec {
    /// Parses and validates job text; `path` names it in errors, gives the
    /// default job name (its stem) and sets `base_dir`.
    pub fn parse(text: &str, path: &Path) -> Result<JobSpec, SpecError> {
        let file = path.display().to_string();
        if let Some(d) = find_duplicate(text, file.ends_with(".json")) {
            return Err(duplicate_error(&file, text, &d));
        }
        let root = tree::parse(text, &file)?;
        let cx = values::Cx { file: &file, text };
        let stem = path.file_stem().map_or("job".to_string(), |s| s.to_string_lossy().into_owned());
        let mut spec = cx.job_file(&root, &stem)?;
        spec.path = Some(path.to_path_buf());
        spec.base_dir = path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Ok(spec)
    }

    /// Like [`JobSpec::parse`], after applying `--set section.key=value`
    /// overrides in order. A value is read as TOML when it parses (`16`,
    /// `true`, `"x"`), else as a plain string (`python3 other.py`).
    ///
    /// Errors in the result point at the edited text: overrides of keys
    /// already in the file keep their lines, new keys go at the end of
    /// their section.
    pub fn parse_with_overrides(text: &str, path: &Path, sets: &[String]) -> Result<JobSpec, SpecError> {
        if sets.is_empty() {
            return Self::parse(text, path);
        }
        let file = path.display().to_string();
        if let Some(d) = find_duplicate(text, false) {
            return Err(duplicate_error(&file, text, &d));
        }
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            SpecError::at(&file, text, e.span().map(|s| s.start), format!("invalid TOML: {}", e.message().trim().replace('\n', "; ")))
        })?;
        for set in sets {
            apply_set(&mut doc, set, &file)?;
        }
        Self::parse(&doc.to_string(), path)
    }

    /// A path from the job file, relative to the job file's directory.
    /// The file or directory `[input] path` names, resolved: a `shared:`
    /// path as written after the prefix (it is absolute), any other
    /// relative to the job file.
    pub fn input_path(&self) -> Option<PathBuf> {
        let p = self.input.path.as_deref()?;
        Some(match InputSpec::shared_path(p) {
            Some(shared) => PathBuf::from(shared),
            None => self.resolve(p),
        })
    }

    pub fn resolve(&self, p: &str) -> PathBuf {
        if self.base_dir == Path::new(".") {
            PathBuf::from(p)
        } else {
            self.base_dir.join(p)
        }
    }

    /// The command `host` runs for `step`: its override, or the command.
    pub fn command_for<'a>(&self, step: &'a StepSpec, host: &str) -> &'a str {
        step.command_on.get(host).map_or(step.command.as_str(), String::as_str)
    }

    /// A job file that parses back to an equal spec (`shoal map --save`).
    pub fn to_toml(&self) -> String {
        render::to_toml(self)
    }
}

/// A section or key given twice, worded in job terms.
fn duplicate_error(file: &str, text: &str, d: &Duplicate) -> SpecError {
    let (message, hint) = match &d.path[..] {
        [section] => (format!("[{section}] is given twice"), format!("merge the two [{section}] sections into one")),
        [section, rest @ ..] => (format!("[{section}] {} is given twice", rest.join(".")), "keep one of them".to_string()),
        [] => ("a key is given twice".to_string(), "keep one of them".to_string()),
    };
    SpecError::at(file, text, Some(d.offset), message).hint(hint)
}

/// Applies one `--set section.key=value` to the document.
fn apply_set(doc: &mut toml_edit::DocumentMut, set: &str, file: &str) -> Result<(), SpecError> {
    let bad = |msg: String| SpecError::new(file, format!("--set {set:?}: {msg}"));
    let form = "write --set section.key=value, e.g. --set map.command=cat";
    let (key, value) = set.split_once('=').ok_or_else(|| bad("there is no `=`".into()).hint(form))?;
    let (section, name) = key.trim().split_once('.').ok_or_else(|| bad(format!("`{}` names no section", key.trim())).hint(form))?;
    check_set_key(section, name).map_err(|(msg, hint)| bad(msg).hint(hint))?;
    let parsed: toml_edit::Value = value.trim().parse().unwrap_or_else(|_| toml_edit::Value::from(value));
    if !doc.contains_key(section) {
        doc[section] = toml_edit::table();
    }
    let table = doc.get_mut(section).and_then(toml_edit::Item::as_table_like_mut).ok_or_else(|| {
        bad(format!("[{section}] in the job file is not a table")).hint(format!("write [{section}] as a table in the job file"))
    })?;
    table.insert(name, toml_edit::Item::Value(parsed));
    Ok(())
}

/// Refuses `--set` keys the job file would refuse, in `--set` terms.
fn check_set_key(section: &str, name: &str) -> Result<(), (String, String)> {
    if section == "params" {
        return Ok(());
    }
    let Some(keys) = section_keys(section) else {
        let settable: Vec<&str> = SECTIONS.iter().copied().filter(|s| *s != "images").collect();
        return Err((
            format!("unknown section `{section}`{}", suggestion(section, &settable)),
            format!("the sections --set can change are: {}", settable.join(", ")),
        ));
    };
    if keys.contains(&name) {
        return Ok(());
    }
    Err((
        format!("unknown key `{name}` in [{section}]{}", suggestion(name, &keys)),
        format!("the keys of [{section}] are: {}", keys.join(", ")),
    ))
}

#[cfg(test)]
mod tests;
