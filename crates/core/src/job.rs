//! The job file: what to compute.
//!
//! `job.toml` has `[job]`, `[sync]`, `[input]`, `[map]`, optional
//! `[combine]` and `[reduce]`, `[params]`, `[output]` and `[images]`.
//! This module parses and validates the whole file, including sections
//! whose features the driver may not support yet (the driver refuses
//! those with its own message). Paths stay as written, relative to the
//! job file's directory ([`JobSpec::base_dir`]); reading them is I/O and
//! happens in the driver.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::spec_error::{did_you_mean, parse_duration, parse_size, SpecError};
use crate::tree::{self, Entry, Node, Val};

mod render;

/// A validated job.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobSpec {
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
    pub images: BTreeMap<String, ImageSpec>,
}

/// `[job]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobMeta {
    pub name: String,
    pub seed: u64,
    pub max_attempts: u32,
    pub exclude_after: u32,
    pub speculate: bool,
    pub skip_bad_records: u32,
}

/// `[sync]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyncSpec {
    pub files: Vec<String>,
    pub list_file: Option<String>,
    pub max_size: u64,
    pub force: Vec<String>,
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

/// Which field of a line is its key (1-based) and what separates fields.
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
    pub path: Option<String>,
    pub args: Option<Vec<String>>,
    /// `None`: lines for a file, files for a directory.
    pub split: Option<Split>,
    pub partitions: Option<u32>,
    pub chunk: Option<u64>,
    pub key: Option<KeySpec>,
    pub partitioner: Partitioner,
    pub weighted: bool,
}

/// A step: `[map]`, `[combine]`, or the command part of `[reduce]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StepSpec {
    pub command: String,
    pub command_on: BTreeMap<String, String>,
    pub image: Option<String>,
    pub timeout: Option<Duration>,
    pub memory: Option<u64>,
    pub network: bool,
    pub cpus: Option<f64>,
}

/// Key order of a reduce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    #[default]
    Bytes,
    Numeric,
}

/// The key of a shuffle: Hadoop's `stream.num.map.output.key.fields`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShuffleKey {
    pub sep: String,
    pub fields: usize,
}

/// `[reduce]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReduceSpec {
    pub step: StepSpec,
    pub partitions: Option<u32>,
    pub partitioner: Partitioner,
    pub key: ShuffleKey,
    pub sort: SortOrder,
    pub sort_buffer: u64,
}

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
    /// The value as an environment variable.
    pub fn to_env(&self) -> String {
        match self {
            ParamValue::Str(s) => s.clone(),
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Float(f) => f.to_string(),
            ParamValue::Bool(b) => b.to_string(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
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
    pub path: String,
    pub merge: Merge,
    pub name: Option<String>,
}

/// An entry of `[images]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageSpec {
    pub file: String,
}

const SECTIONS: &[&str] = &["job", "sync", "input", "map", "combine", "reduce", "params", "output", "images"];
const JOB_KEYS: &[&str] = &["name", "seed", "max_attempts", "exclude_after", "speculate", "skip_bad_records"];
const SYNC_KEYS: &[&str] = &["files", "list_file", "max_size", "force", "exclude"];
const INPUT_KEYS: &[&str] = &["path", "args", "split", "partitions", "chunk", "key", "partitioner", "weighted"];
const STEP_KEYS: &[&str] = &["command", "command_on", "image", "timeout", "memory", "network", "cpus"];
const REDUCE_EXTRA: &[&str] = &["partitions", "partitioner", "key", "sort", "sort_buffer"];
const OUTPUT_KEYS: &[&str] = &["path", "merge", "name"];

/// Keys accepted by a section (for `--set` and error hints).
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
    /// Reads and validates a job file.
    pub fn load(path: &Path) -> Result<JobSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SpecError::new(&path.display().to_string(), format!("cannot read the job file: {e}"))
                .hint("check the path, or run `shoal init` to write a template")
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates job text; `path` names it and sets `base_dir`.
    pub fn parse(text: &str, path: &Path) -> Result<JobSpec, SpecError> {
        let file = path.display().to_string();
        let root = tree::parse(text, &file)?;
        let cx = Cx { file: &file, text };
        let top = cx.table(&root, "the job file")?;
        cx.known(
            top,
            SECTIONS,
            "the top level",
            "a job file has the sections: job, sync, input, map, combine, reduce, params, output, images",
        )?;
        let stem = path.file_stem().map_or("job".to_string(), |s| s.to_string_lossy().into_owned());
        let job = cx.meta(cx.section(top, "job")?, &stem)?;
        let input = cx.input(cx.section(top, "input")?, find(top, "input"))?;
        let map_entry = find(top, "map").ok_or_else(|| {
            cx.err(Some(0), "the job has no [map] section").hint("add [map] with command = \"...\": the command each task runs")
        })?;
        let map = cx.step(cx.table(&map_entry.node, "[map]")?, "map", Some(map_entry))?;
        let combine =
            find(top, "combine").map(|e| cx.table(&e.node, "[combine]").and_then(|t| cx.step(t, "combine", Some(e)))).transpose()?;
        let reduce = find(top, "reduce").map(|e| cx.table(&e.node, "[reduce]").and_then(|t| cx.reduce(t, e))).transpose()?;
        Ok(JobSpec {
            path: Some(path.to_path_buf()),
            base_dir: path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            sync: cx.sync(cx.section(top, "sync")?)?,
            output: cx.output(cx.section(top, "output")?, &job.name)?,
            params: cx.params(cx.section(top, "params")?)?,
            images: cx.images(cx.section(top, "images")?)?,
            job,
            input,
            map,
            combine,
            reduce,
        })
    }

    /// Like [`JobSpec::parse`], after applying `--set section.key=value`
    /// overrides. A value is read as TOML when it parses, else as a string.
    pub fn parse_with_overrides(text: &str, path: &Path, sets: &[String]) -> Result<JobSpec, SpecError> {
        if sets.is_empty() {
            return Self::parse(text, path);
        }
        let file = path.display().to_string();
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            SpecError::at(&file, text, e.span().map(|s| s.start), format!("invalid TOML: {}", e.message().trim()))
        })?;
        for set in sets {
            apply_set(&mut doc, set, &file)?;
        }
        Self::parse(&doc.to_string(), path)
    }

    /// A path from the job file, relative to the job file's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        if self.base_dir == Path::new(".") {
            PathBuf::from(p)
        } else {
            self.base_dir.join(p)
        }
    }

    /// The command a host runs for `step`: its override, or the command.
    pub fn command_for<'a>(&self, step: &'a StepSpec, host: &str) -> &'a str {
        step.command_on.get(host).map_or(step.command.as_str(), String::as_str)
    }

    /// A job file that parses back to an equal spec (`shoal map --save`).
    pub fn to_toml(&self) -> String {
        render::to_toml(self)
    }
}

fn apply_set(doc: &mut toml_edit::DocumentMut, set: &str, file: &str) -> Result<(), SpecError> {
    let bad = |msg: String| SpecError::new(file, format!("--set {set:?}: {msg}"));
    let (key, value) = set.split_once('=').ok_or_else(|| bad("expected section.key=value".into()))?;
    let (section, name) = key.trim().split_once('.').ok_or_else(|| bad("expected section.key=value, e.g. map.command=cat".into()))?;
    if section != "params" {
        let keys = section_keys(section)
            .ok_or_else(|| bad(format!("unknown section `{section}`")).hint(format!("sections: {}", SECTIONS.join(", "))))?;
        if !keys.contains(&name) {
            let mut msg = format!("unknown key `{name}` in [{section}]");
            if let Some(s) = did_you_mean(name, &keys) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            return Err(bad(msg).hint(format!("the keys of [{section}] are: {}", keys.join(", "))));
        }
    }
    let parsed: toml_edit::Value = value.trim().parse().unwrap_or_else(|_| toml_edit::Value::from(value));
    if !doc.contains_key(section) {
        doc[section] = toml_edit::table();
    }
    doc[section][name] = toml_edit::Item::Value(parsed);
    Ok(())
}

fn find<'a>(t: &'a [Entry], key: &str) -> Option<&'a Entry> {
    t.iter().find(|e| e.key == key)
}

/// Validation context.
struct Cx<'a> {
    file: &'a str,
    text: &'a str,
}

type R<T> = Result<T, SpecError>;

impl Cx<'_> {
    fn err(&self, pos: Option<usize>, msg: impl Into<String>) -> SpecError {
        SpecError::at(self.file, self.text, pos, msg)
    }

    fn table<'n>(&self, n: &'n Node, what: &str) -> R<&'n [Entry]> {
        match &n.val {
            Val::Table(t) => Ok(t),
            v => Err(self.err(n.pos, format!("{what} must be a table, not {}", v.kind()))),
        }
    }

    fn section<'n>(&self, top: &'n [Entry], name: &str) -> R<&'n [Entry]> {
        match find(top, name) {
            Some(e) => self.table(&e.node, &format!("[{name}]")),
            None => Ok(&[]),
        }
    }

    fn known(&self, t: &[Entry], keys: &[&str], place: &str, hint: &str) -> R<()> {
        let Some(e) = t.iter().find(|e| !keys.contains(&e.key.as_str())) else {
            return Ok(());
        };
        let mut msg = format!("unknown key `{}` in {place}", e.key);
        if let Some(s) = did_you_mean(&e.key, keys) {
            msg.push_str(&format!("; did you mean `{s}`?"));
        }
        Err(self.err(e.key_pos, msg).hint(hint.to_string()))
    }

    fn known_in(&self, t: &[Entry], section: &str, keys: &[&str]) -> R<()> {
        self.known(t, keys, &format!("[{section}]"), &format!("the keys of [{section}] are: {}", keys.join(", ")))
    }

    fn string(&self, e: &Entry, section: &str) -> R<String> {
        match &e.node.val {
            Val::Str(s) => Ok(s.clone()),
            v => Err(self.err(e.node.pos, format!("[{section}] {} must be a string, not {}", e.key, v.kind()))),
        }
    }

    fn strings(&self, e: &Entry, section: &str) -> R<Vec<String>> {
        let err = |pos| self.err(pos, format!("[{section}] {} must be an array of strings", e.key));
        let Val::Arr(items) = &e.node.val else {
            return Err(err(e.node.pos));
        };
        items.iter().map(|i| if let Val::Str(s) = &i.val { Ok(s.clone()) } else { Err(err(i.pos)) }).collect()
    }

    fn int(&self, e: &Entry, section: &str, min: i64) -> R<i64> {
        match e.node.val {
            Val::Int(i) if i >= min => Ok(i),
            Val::Int(i) => Err(self.err(e.node.pos, format!("[{section}] {} = {i} is too small; it must be at least {min}", e.key))),
            ref v => Err(self.err(e.node.pos, format!("[{section}] {} must be an integer, not {}", e.key, v.kind()))),
        }
    }

    fn boolean(&self, e: &Entry, section: &str) -> R<bool> {
        match e.node.val {
            Val::Bool(b) => Ok(b),
            ref v => Err(self.err(e.node.pos, format!("[{section}] {} must be true or false, not {}", e.key, v.kind()))),
        }
    }

    fn size(&self, e: &Entry, section: &str) -> R<u64> {
        match &e.node.val {
            Val::Int(i) if *i >= 0 => Ok(*i as u64),
            Val::Str(s) => parse_size(s).map_err(|why| self.err(e.node.pos, format!("[{section}] {}: {why}", e.key))),
            v => Err(self.err(e.node.pos, format!("[{section}] {} must be a size like \"64MiB\", not {}", e.key, v.kind()))),
        }
    }

    fn duration(&self, e: &Entry, section: &str) -> R<Duration> {
        match &e.node.val {
            Val::Int(i) if *i > 0 => Ok(Duration::from_secs(*i as u64)),
            Val::Float(f) if *f > 0.0 && f.is_finite() => Ok(Duration::from_secs_f64(*f)),
            Val::Str(s) => parse_duration(s).map_err(|why| self.err(e.node.pos, format!("[{section}] {}: {why}", e.key))),
            v => Err(self.err(e.node.pos, format!("[{section}] {} must be a duration like \"10m\", not {}", e.key, v.kind()))),
        }
    }

    fn choice<T: Copy>(&self, e: &Entry, section: &str, options: &[(&str, T)]) -> R<T> {
        let s = self.string(e, section)?;
        options.iter().find(|(n, _)| *n == s).map(|(_, v)| *v).ok_or_else(|| {
            let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            self.err(e.node.pos, format!("[{section}] {} = {s:?} is not one of {}", e.key, names.join(", ")))
        })
    }

    fn meta(&self, t: &[Entry], stem: &str) -> R<JobMeta> {
        self.known_in(t, "job", JOB_KEYS)?;
        let mut m = JobMeta { name: stem.to_string(), seed: 0, max_attempts: 4, exclude_after: 3, speculate: false, skip_bad_records: 0 };
        for e in t {
            match e.key.as_str() {
                "name" => m.name = self.string(e, "job")?,
                "seed" => m.seed = self.int(e, "job", 0)? as u64,
                "max_attempts" => m.max_attempts = self.int(e, "job", 1)? as u32,
                "exclude_after" => m.exclude_after = self.int(e, "job", 1)? as u32,
                "speculate" => m.speculate = self.boolean(e, "job")?,
                "skip_bad_records" => m.skip_bad_records = self.int(e, "job", 0)? as u32,
                _ => {}
            }
        }
        Ok(m)
    }

    fn sync(&self, t: &[Entry]) -> R<SyncSpec> {
        self.known_in(t, "sync", SYNC_KEYS)?;
        let mut s = SyncSpec { files: vec![], list_file: None, max_size: 64 << 20, force: vec![], exclude: vec![] };
        for e in t {
            match e.key.as_str() {
                "files" => s.files = self.strings(e, "sync")?,
                "list_file" => s.list_file = Some(self.string(e, "sync")?),
                "max_size" => s.max_size = self.size(e, "sync")?,
                "force" => s.force = self.strings(e, "sync")?,
                "exclude" => s.exclude = self.strings(e, "sync")?,
                _ => {}
            }
        }
        Ok(s)
    }

    fn input(&self, t: &[Entry], section: Option<&Entry>) -> R<InputSpec> {
        self.known_in(t, "input", INPUT_KEYS)?;
        let mut i = InputSpec::default();
        for e in t {
            match e.key.as_str() {
                "path" => i.path = Some(self.string(e, "input")?),
                "args" => i.args = Some(self.strings(e, "input")?),
                "split" => {
                    i.split = Some(self.choice(
                        e,
                        "input",
                        &[("lines", Split::Lines), ("files", Split::Files), ("hash", Split::Hash), ("range", Split::Range)],
                    )?)
                }
                "partitions" => i.partitions = Some(self.int(e, "input", 1)? as u32),
                "chunk" => i.chunk = Some(self.size(e, "input")?.max(1)),
                "key" => i.key = Some(self.key(e)?),
                "partitioner" => {
                    i.partitioner = self.choice(e, "input", &[("hash", Partitioner::Hash), ("modulo", Partitioner::Modulo)])?
                }
                "weighted" => i.weighted = self.boolean(e, "input")?,
                _ => {}
            }
        }
        self.check_input(&i, t, section)?;
        Ok(i)
    }

    fn check_input(&self, i: &InputSpec, t: &[Entry], section: Option<&Entry>) -> R<()> {
        let pos = |k: &str| find(t, k).and_then(|e| e.key_pos).or(section.and_then(|s| s.key_pos)).or(Some(0));
        match (&i.path, &i.args) {
            (None, None) => {
                return Err(self
                    .err(pos("input"), "the job has no input: [input] needs path (a file or directory) or args (one task per argument)"))
            }
            (Some(_), Some(_)) => return Err(self.err(pos("args"), "[input] has both path and args; give one of them")),
            _ => {}
        }
        if i.partitions.is_some() && i.chunk.is_some() {
            return Err(self.err(pos("chunk"), "[input] has both partitions and chunk; give one of them"));
        }
        if matches!(i.split, Some(Split::Hash | Split::Range)) && i.key.is_none() {
            return Err(self
                .err(pos("split"), "[input] split = \"hash\" and \"range\" need a key")
                .hint("add key = { field = 1, sep = \"\\t\" }"));
        }
        Ok(())
    }

    fn key(&self, e: &Entry) -> R<KeySpec> {
        let t = self.table(&e.node, "[input] key")?;
        self.known(t, &["field", "sep"], "[input] key", "key = { field = 1, sep = \"\\t\" }")?;
        let mut k = KeySpec::default();
        for f in t {
            match f.key.as_str() {
                "field" => {
                    k.field = self
                        .int(f, "input", 1)
                        .map_err(|_| self.err(f.node.pos, "[input] key.field must be 1 or more: fields are counted from 1"))?
                        as usize
                }
                "sep" => k.sep = self.nonempty(f, "input")?,
                _ => {}
            }
        }
        Ok(k)
    }

    fn nonempty(&self, e: &Entry, section: &str) -> R<String> {
        let s = self.string(e, section)?;
        if s.is_empty() {
            return Err(self.err(e.node.pos, format!("[{section}] {} must not be empty", e.key)));
        }
        Ok(s)
    }

    fn step(&self, t: &[Entry], section: &str, at: Option<&Entry>) -> R<StepSpec> {
        let keys = section_keys(section).unwrap_or_default();
        self.known_in(t, section, &keys)?;
        let mut s = StepSpec::default();
        for e in t {
            match e.key.as_str() {
                "command" => s.command = self.string(e, section)?,
                "command_on" => s.command_on = self.string_map(e, section)?,
                "image" => s.image = Some(self.nonempty(e, section)?),
                "timeout" => s.timeout = Some(self.duration(e, section)?),
                "memory" => s.memory = Some(self.size(e, section)?),
                "network" => s.network = self.boolean(e, section)?,
                "cpus" => s.cpus = Some(self.positive(e, section)?),
                _ => {}
            }
        }
        if s.command.trim().is_empty() {
            let pos = find(t, "command").and_then(|e| e.node.pos).or(at.and_then(|e| e.key_pos));
            return Err(self
                .err(pos, format!("[{section}] needs a command"))
                .hint(format!("add command = \"...\" to [{section}]: a shell command that reads stdin and writes stdout")));
        }
        Ok(s)
    }

    fn positive(&self, e: &Entry, section: &str) -> R<f64> {
        match e.node.val {
            Val::Int(i) if i > 0 => Ok(i as f64),
            Val::Float(f) if f > 0.0 && f.is_finite() => Ok(f),
            _ => Err(self.err(e.node.pos, format!("[{section}] {} must be a positive number", e.key))),
        }
    }

    fn string_map(&self, e: &Entry, section: &str) -> R<BTreeMap<String, String>> {
        let t = self.table(&e.node, &format!("[{section}] {}", e.key))?;
        t.iter().map(|x| Ok((x.key.clone(), self.string(x, section)?))).collect()
    }

    fn reduce(&self, t: &[Entry], at: &Entry) -> R<ReduceSpec> {
        let step_part: Vec<Entry> = t.iter().filter(|e| !REDUCE_EXTRA.contains(&e.key.as_str())).cloned().collect();
        let step = self.step(&step_part, "reduce", Some(at))?;
        let mut r = ReduceSpec {
            step,
            partitions: None,
            partitioner: Partitioner::Hash,
            key: ShuffleKey { sep: "\t".into(), fields: 1 },
            sort: SortOrder::Bytes,
            sort_buffer: 256 << 20,
        };
        for e in t {
            match e.key.as_str() {
                "partitions" => r.partitions = Some(self.int(e, "reduce", 1)? as u32),
                "partitioner" => {
                    r.partitioner = self.choice(e, "reduce", &[("hash", Partitioner::Hash), ("modulo", Partitioner::Modulo)])?
                }
                "key" => r.key = self.shuffle_key(e)?,
                "sort" => r.sort = self.choice(e, "reduce", &[("bytes", SortOrder::Bytes), ("numeric", SortOrder::Numeric)])?,
                "sort_buffer" => r.sort_buffer = self.size(e, "reduce")?.max(1 << 16),
                _ => {}
            }
        }
        Ok(r)
    }

    fn shuffle_key(&self, e: &Entry) -> R<ShuffleKey> {
        let t = self.table(&e.node, "[reduce] key")?;
        self.known(t, &["sep", "fields"], "[reduce] key", "key = { sep = \"\\t\", fields = 1 }")?;
        let mut k = ShuffleKey { sep: "\t".into(), fields: 1 };
        for f in t {
            match f.key.as_str() {
                "sep" => k.sep = self.nonempty(f, "reduce")?,
                "fields" => k.fields = self.int(f, "reduce", 1)? as usize,
                _ => {}
            }
        }
        Ok(k)
    }

    fn params(&self, t: &[Entry]) -> R<BTreeMap<String, ParamValue>> {
        let mut out = BTreeMap::new();
        for e in t {
            let v = match &e.node.val {
                Val::Str(s) => ParamValue::Str(s.clone()),
                Val::Int(i) => ParamValue::Int(*i),
                Val::Float(f) => ParamValue::Float(*f),
                Val::Bool(b) => ParamValue::Bool(*b),
                v => {
                    return Err(self
                        .err(e.node.pos, format!("[params] {} is {}, but params must be strings, numbers or booleans", e.key, v.kind()))
                        .hint("params become environment variables; encode lists in a string, or ship a file with [sync]"))
                }
            };
            if !e.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self
                    .err(e.key_pos, format!("[params] {} is not a valid name: it becomes SHOAL_PARAM_<NAME>", e.key))
                    .hint("use letters, digits and _"));
            }
            out.insert(e.key.clone(), v);
        }
        Ok(out)
    }

    fn output(&self, t: &[Entry], job: &str) -> R<OutputSpec> {
        self.known_in(t, "output", OUTPUT_KEYS)?;
        let mut o = OutputSpec { path: format!("out/{job}"), merge: Merge::Concat, name: None };
        for e in t {
            match e.key.as_str() {
                "path" => o.path = self.nonempty(e, "output")?,
                "merge" => o.merge = self.merge(e)?,
                "name" => o.name = Some(self.nonempty(e, "output")?),
                _ => {}
            }
        }
        Ok(o)
    }

    fn merge(&self, e: &Entry) -> R<Merge> {
        if let Val::Table(t) = &e.node.val {
            self.known(t, &["command"], "[output] merge", "merge = { command = \"python3 merge.py\" }")?;
            let c = find(t, "command").ok_or_else(|| self.err(e.node.pos, "[output] merge table needs a command"))?;
            return Ok(Merge::Command(self.nonempty(c, "output")?));
        }
        let s = self.string(e, "output")?;
        Ok(match s.as_str() {
            "concat" => Merge::Concat,
            "none" => Merge::None,
            "json-list" => Merge::JsonList,
            "csv" => Merge::Csv,
            other => {
                return Err(self
                    .err(e.node.pos, format!("[output] merge = {other:?} is not a known merge"))
                    .hint("use \"concat\", \"none\", \"json-list\", \"csv\", or { command = \"...\" }"))
            }
        })
    }

    fn images(&self, t: &[Entry]) -> R<BTreeMap<String, ImageSpec>> {
        let mut out = BTreeMap::new();
        for e in t {
            let spec = self.table(&e.node, &format!("[images] {:?}", e.key))?;
            self.known(spec, &["file"], "an [images] entry", "\"name:tag\" = { file = \"image.tar\" }")?;
            let file =
                find(spec, "file").ok_or_else(|| self.err(e.key_pos, format!("[images] {:?} needs file = \"archive.tar\"", e.key)))?;
            out.insert(e.key.clone(), ImageSpec { file: self.nonempty(file, "images")? });
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
