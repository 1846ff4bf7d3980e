//! Reads each section of a job file into the types of the parent module.
//! Single values are read by `values`; the rules that tie keys together
//! (path or args, partitions or chunk, a keyed split needs a key) are here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::values::{Cx, R};
use super::*;
use crate::spec_error::{did_you_mean, suggestion};
use crate::tree::{Entry, Node, Val};

fn find<'a>(t: &'a [Entry], key: &str) -> Option<&'a Entry> {
    t.iter().find(|e| e.key == key)
}

/// `e` under a dotted name, so that messages say `key.field`.
fn nested(parent: &str, e: &Entry) -> Entry {
    Entry { key: format!("{parent}.{}", e.key), ..e.clone() }
}

const PLACEHOLDERS: &[&str] = &["name", "stem", "ext", "partition"];

const PARAMS_HINT: &str = "put big data in a file listed in [sync] and pass its name as the param";

impl Cx<'_> {
    /// The whole file; `path` and `base_dir` are the caller's to fill in.
    pub fn job_file(&self, root: &Node, stem: &str) -> R<JobSpec> {
        let top = self.table(root, "the job file", "write sections such as [input] and [map], each followed by its keys")?;
        self.sections_known(top)?;
        let job = self.meta(self.section(top, "job")?, stem)?;
        let sync = self.sync(self.section(top, "sync")?)?;
        let input = self.input(self.section(top, "input")?, find(top, "input"))?;
        if job.skip_bad_records > 0 && input.args.is_some() {
            let e = find(self.section(top, "job")?, "skip_bad_records");
            return Err(self
                .err(e.and_then(|e| e.key_pos), "[job] skip_bad_records skips lines of an input file, and an [input] args job has none")
                .hint("remove skip_bad_records, or read the arguments from a file: [input] path = \"args.txt\""));
        }
        let map = self.map(top)?;
        let combine = match find(top, "combine") {
            Some(e) => Some(self.step(self.section(top, "combine")?, "combine", e)?),
            None => None,
        };
        let reduce = match find(top, "reduce") {
            Some(e) => Some(self.reduce(self.section(top, "reduce")?, e)?),
            None => None,
        };
        let params = self.params(self.section(top, "params")?)?;
        let output = self.output(self.section(top, "output")?, &job.name)?;
        let images = self.images(self.section(top, "images")?)?;
        Ok(JobSpec { path: None, base_dir: PathBuf::from("."), job, sync, input, map, combine, reduce, params, output, images })
    }

    fn sections_known(&self, top: &[Entry]) -> R<()> {
        let Some(e) = top.iter().find(|e| !SECTIONS.contains(&e.key.as_str())) else {
            return Ok(());
        };
        let close = did_you_mean(&e.key, SECTIONS).map_or(String::new(), |s| format!("; did you mean `[{s}]`?"));
        let all: Vec<String> = SECTIONS.iter().map(|s| format!("[{s}]")).collect();
        Err(self
            .err(e.key_pos, format!("unknown section `[{}]`{close}", e.key))
            .hint(format!("a job file has the sections: {}", all.join(", "))))
    }

    /// The keys of `[name]`, or none when the section is absent.
    fn section<'n>(&self, top: &'n [Entry], name: &str) -> R<&'n [Entry]> {
        match find(top, name) {
            Some(e) => self.table(&e.node, &format!("[{name}]"), &format!("write [{name}] on a line of its own, followed by its keys")),
            None => Ok(&[]),
        }
    }

    fn meta(&self, t: &[Entry], stem: &str) -> R<JobMeta> {
        self.known_in(t, "job", JOB_KEYS)?;
        let mut m = JobMeta { name: stem.to_string(), seed: 0, max_attempts: 4, exclude_after: 3, speculate: false, skip_bad_records: 0 };
        for e in t {
            match e.key.as_str() {
                "name" => m.name = self.nonempty(e, "job")?,
                // TOML integers are i64; a negative seed is refused rather
                // than reinterpreted.
                "seed" => m.seed = self.int(e, "job", 0, i64::MAX)? as u64,
                "max_attempts" => m.max_attempts = self.count(e, "job", 1)?,
                "exclude_after" => m.exclude_after = self.count(e, "job", 1)?,
                "speculate" => m.speculate = self.boolean(e, "job")?,
                "skip_bad_records" => m.skip_bad_records = self.count(e, "job", 0)?,
                _ => {}
            }
        }
        if m.skip_bad_records > MAX_SKIP_BAD_RECORDS {
            return Err(self
                .err(
                    find(t, "skip_bad_records").and_then(|e| e.key_pos),
                    format!("[job] skip_bad_records is {}, over the limit of {MAX_SKIP_BAD_RECORDS}", m.skip_bad_records),
                )
                .hint("a job with that many bad lines needs its input cleaned first; skipping is for the odd record"));
        }
        if m.skip_bad_records > 0 && m.max_attempts < 3 {
            // Skip mode starts with a task's third attempt, after two failures.
            return Err(self
                .err(find(t, "skip_bad_records").and_then(|e| e.key_pos), format!("[job] skip_bad_records needs max_attempts of at least 3, not {}", m.max_attempts))
                .hint("a task skips bad records from its third attempt on, after failing twice; raise max_attempts or remove skip_bad_records"));
        }
        Ok(m)
    }

    fn sync(&self, t: &[Entry]) -> R<SyncSpec> {
        self.known_in(t, "sync", SYNC_KEYS)?;
        let mut s = SyncSpec { files: vec![], list_file: None, max_size: 64 << 20, force: vec![], exclude: vec![] };
        for e in t {
            match e.key.as_str() {
                "files" => s.files = self.strings(e, "sync")?,
                "list_file" => s.list_file = Some(self.nonempty(e, "sync")?),
                "max_size" => s.max_size = self.size(e, "sync", 0, "0 bytes")?,
                "force" => s.force = self.strings(e, "sync")?,
                "exclude" => s.exclude = self.strings(e, "sync")?,
                _ => {}
            }
        }
        Ok(s)
    }

    fn input(&self, t: &[Entry], section: Option<&Entry>) -> R<InputSpec> {
        self.known_in(t, "input", INPUT_KEYS)?;
        let splits = [("lines", Split::Lines), ("files", Split::Files), ("hash", Split::Hash), ("range", Split::Range)];
        let mut i = InputSpec::default();
        for e in t {
            match e.key.as_str() {
                "path" => i.path = Some(self.nonempty(e, "input")?),
                "args" => i.args = Some(self.strings(e, "input")?),
                "split" => i.split = Some(self.choice(e, "input", &splits)?),
                "partitions" => i.partitions = Some(self.count(e, "input", 1)?),
                "chunk" => i.chunk = Some(self.size(e, "input", 1, "1 byte")?),
                "key" => i.key = Some(self.input_key(e)?),
                "partitioner" => i.partitioner = self.partitioner(e, "input")?,
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
                    .err(pos("input"), "the job has no input: [input] needs path or args")
                    .hint("add path = \"data.txt\" (a file or directory) or args = [\"a\", \"b\"] (one task per argument) to [input]"))
            }
            (Some(_), Some(_)) => {
                return Err(self
                    .err(pos("args"), "[input] has both path and args; give one of them")
                    .hint("path splits a file or directory into tasks; args makes one task per argument"))
            }
            _ => {}
        }
        if i.partitions.is_some() && i.chunk.is_some() {
            return Err(self
                .err(pos("chunk"), "[input] has both partitions and chunk; give one of them")
                .hint("partitions sets how many pieces the input is cut into, chunk how big each piece is"));
        }
        if i.path.as_deref().is_some_and(|p| p.contains(HOST_PATTERN)) {
            if i.is_shared() {
                return Err(self.err(pos("path"), "[input] path has both shared: and {host}; give one of them").hint(
                    "shared: is one path every host sees the same way; {host} names a different file on each host, in its own file system",
                ));
            }
            if matches!(i.split, Some(Split::Hash | Split::Range)) {
                return Err(self.err(pos("split"), "[input] split = \"hash\" and \"range\" cannot read files that live on the hosts").hint(
                    "each host reads its own file where it is; use split = \"lines\" (the default for a file) or \"files\" (for a directory)",
                ));
            }
        }
        if let Some(shared) = i.path.as_deref().and_then(InputSpec::shared_path) {
            if !shared.starts_with('/') {
                return Err(self
                    .err(pos("path"), format!("[input] path = \"shared:{shared}\" is not absolute"))
                    .hint("a shared: path is one every host sees the same way (NFS, a parallel file system): write it from the root, shared:/data/logs"));
            }
            if matches!(i.split, Some(Split::Hash | Split::Range)) {
                return Err(self.err(pos("split"), "[input] split = \"hash\" and \"range\" cannot read a shared: input in place").hint(
                    "routing lines by key reads the whole input on this machine; use split = \"lines\" or \"files\", or drop shared: to route it here",
                ));
            }
        }
        if matches!(i.split, Some(Split::Hash | Split::Range)) && i.key.is_none() {
            return Err(self
                .err(pos("split"), "[input] split = \"hash\" and \"range\" need a key")
                .hint("add key = { field = 1, sep = \"\\t\" }"));
        }
        Ok(())
    }

    fn input_key(&self, e: &Entry) -> R<KeySpec> {
        let form = "write key = { field = 1, sep = \"\\t\" }";
        let t = self.table(&e.node, "[input] key", form)?;
        self.known(t, &["field", "sep"], "[input] key", form)?;
        let mut k = KeySpec::default();
        for f in t {
            let f = nested("key", f);
            match f.key.as_str() {
                "key.field" => {
                    k.field = self.count(&f, "input", 1).map_err(|e| e.hint("fields are counted from 1: the first is field = 1"))? as usize
                }
                "key.sep" => k.sep = self.separator(&f, "input")?,
                _ => {}
            }
        }
        Ok(k)
    }

    /// A field separator; unlike other strings, whitespace is meaningful.
    fn separator(&self, e: &Entry, section: &str) -> R<String> {
        let s = self.string(e, section)?;
        if s.is_empty() {
            return Err(self.bad(e, section, "must not be empty").hint("write sep = \"\\t\" for tabs, or sep = \",\" for commas"));
        }
        Ok(s)
    }

    fn partitioner(&self, e: &Entry, section: &str) -> R<Partitioner> {
        self.choice(e, section, &[("hash", Partitioner::Hash), ("modulo", Partitioner::Modulo)])
    }

    fn map(&self, top: &[Entry]) -> R<StepSpec> {
        let e = find(top, "map").ok_or_else(|| {
            self.err(Some(0), "the job has no [map] section").hint("add [map] with command = \"...\": the command each task runs")
        })?;
        self.step(self.section(top, "map")?, "map", e)
    }

    /// `[map]`, `[combine]` or the step keys of `[reduce]`; `at` is the
    /// section's entry, for the position of a missing command.
    fn step(&self, t: &[Entry], section: &str, at: &Entry) -> R<StepSpec> {
        self.known_in(t, section, &section_keys(section).unwrap_or_default())?;
        let mut s = StepSpec::default();
        for e in t {
            match e.key.as_str() {
                "command" => s.command = self.string(e, section)?,
                "command_on" => s.command_on = self.string_map(e, section)?,
                "image" => s.image = Some(self.nonempty(e, section)?),
                "timeout" => s.timeout = Some(self.duration(e, section)?),
                "memory" => s.memory = Some(self.size(e, section, 1 << 20, "1MiB")?),
                "network" => s.network = self.boolean(e, section)?,
                "cpus" => s.cpus = Some(self.positive(e, section)?),
                _ => {}
            }
        }
        self.commands_fit(t, section, &s)?;
        if s.command.trim().is_empty() {
            let pos = find(t, "command").and_then(|e| e.node.pos).or(at.key_pos);
            return Err(self
                .err(pos, format!("[{section}] needs a command"))
                .hint(format!("add command = \"...\" to [{section}]: a shell command that reads stdin and writes stdout")));
        }
        Ok(s)
    }

    /// A command reaches `sh -c` as one argument, which Linux caps.
    fn commands_fit(&self, t: &[Entry], section: &str, s: &StepSpec) -> R<()> {
        for e in t {
            let len = match e.key.as_str() {
                "command" => s.command.len(),
                "command_on" => s.command_on.values().map(String::len).max().unwrap_or(0),
                _ => continue,
            };
            if len + 1 > ARG_MAX_BYTES {
                return Err(self
                    .bad(
                        e,
                        section,
                        format_args!(
                            "is {len} bytes; a command reaches the shell as one argument, and Linux refuses an argument over 128 KiB"
                        ),
                    )
                    .hint("put the script in a file listed in [sync] and run that file"));
            }
        }
        Ok(())
    }

    fn reduce(&self, t: &[Entry], at: &Entry) -> R<ReduceSpec> {
        let mut r = ReduceSpec {
            step: self.step(t, "reduce", at)?,
            partitions: None,
            partitioner: Partitioner::Hash,
            key: ShuffleKey::default(),
            sort: SortOrder::Bytes,
            sort_buffer: 256 << 20,
        };
        for e in t {
            match e.key.as_str() {
                "partitions" => r.partitions = Some(self.reduce_partitions(e)?),
                "partitioner" => r.partitioner = self.partitioner(e, "reduce")?,
                "key" => r.key = self.shuffle_key(e)?,
                "sort" => r.sort = self.choice(e, "reduce", &[("bytes", SortOrder::Bytes), ("numeric", SortOrder::Numeric)])?,
                // Below this a sort spills so often that it is a mistake.
                "sort_buffer" => r.sort_buffer = self.size(e, "reduce", 64 << 10, "64KiB")?,
                _ => {}
            }
        }
        Ok(r)
    }

    fn reduce_partitions(&self, e: &Entry) -> R<u32> {
        let n = self.count(e, "reduce", 1)?;
        if n <= MAX_REDUCE_PARTITIONS {
            return Ok(n);
        }
        Err(self
            .bad(e, "reduce", format_args!("is {n}, over the limit of {MAX_REDUCE_PARTITIONS}: every map task reports one bucket per reduce partition in one message"))
            .hint("use fewer reduce partitions: each is a task, and a few per slot of the cluster is plenty"))
    }

    fn shuffle_key(&self, e: &Entry) -> R<ShuffleKey> {
        let form = "write key = { sep = \"\\t\", fields = 1 }";
        let t = self.table(&e.node, "[reduce] key", form)?;
        self.known(t, &["sep", "fields"], "[reduce] key", form)?;
        let mut k = ShuffleKey::default();
        for f in t {
            let f = nested("key", f);
            match f.key.as_str() {
                "key.sep" => k.sep = self.separator(&f, "reduce")?,
                "key.fields" => k.fields = self.count(&f, "reduce", 1)? as usize,
                _ => {}
            }
        }
        Ok(k)
    }

    fn params(&self, t: &[Entry]) -> R<BTreeMap<String, ParamValue>> {
        let mut total = 0;
        let mut out = BTreeMap::new();
        for e in t {
            let (name, value) = (self.param_name(e)?, self.param_value(e)?);
            // As the variable reaches a task: SHOAL_PARAM_<NAME>=<value> and a NUL.
            let bytes = "SHOAL_PARAM_=".len() + name.len() + value.to_env().len() + 1;
            if bytes > ARG_MAX_BYTES {
                return Err(self
                    .bad(e, "params", format_args!("is {} bytes; each param reaches every task as one environment variable, and Linux refuses a variable over 128 KiB", value.to_env().len()))
                    .hint(PARAMS_HINT));
            }
            total += bytes;
            if total > PARAMS_MAX_BYTES {
                return Err(self
                    .err(e.key_pos, format!("[params] {} brings the params to {total} bytes; they reach every task in its environment, keep them under 1 MiB in all", e.key))
                    .hint(PARAMS_HINT));
            }
            out.insert(name, value);
        }
        Ok(out)
    }

    /// Params become `SHOAL_PARAM_<NAME>`, so names must suit a variable.
    fn param_name(&self, e: &Entry) -> R<String> {
        let valid = !e.key.is_empty() && e.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            return Ok(e.key.clone());
        }
        Err(self
            .err(e.key_pos, format!("[params] {:?} is not a valid name: it becomes SHOAL_PARAM_<NAME>", e.key))
            .hint("use letters, digits and _"))
    }

    fn param_value(&self, e: &Entry) -> R<ParamValue> {
        match &e.node.val {
            Val::Str(s) => Ok(ParamValue::Str(s.clone())),
            Val::Int(i) => Ok(ParamValue::Int(*i)),
            Val::Float(f) => Ok(ParamValue::Float(*f)),
            Val::Bool(b) => Ok(ParamValue::Bool(*b)),
            v => Err(self
                .err(e.node.pos, format!("[params] {} is {}, but params must be strings, numbers or booleans", e.key, v.kind()))
                .hint("params become environment variables; encode lists in a string, or ship a file with [sync]")),
        }
    }

    fn output(&self, t: &[Entry], job: &str) -> R<OutputSpec> {
        self.known_in(t, "output", OUTPUT_KEYS)?;
        let mut o = OutputSpec { path: format!("out/{job}"), merge: Merge::Concat, name: None, on_hosts: false, held: false };
        for e in t {
            match e.key.as_str() {
                "path" => o.path = self.nonempty(e, "output")?,
                "merge" => o.merge = self.merge(e)?,
                "name" => o.name = Some(self.name_pattern(e)?),
                "on_hosts" => o.on_hosts = self.boolean(e, "output")?,
                _ => {}
            }
        }
        if o.on_hosts && o.merge != Merge::None {
            let at = find(t, "merge").or_else(|| find(t, "on_hosts")).and_then(|e| e.key_pos);
            return Err(self
                .err(at, "[output] on_hosts = true leaves each part on the host that made it, so it cannot be merged")
                .hint("add merge = \"none\" to [output]; `shoal pull --output` brings the parts here when you want them"));
        }
        Ok(o)
    }

    fn merge(&self, e: &Entry) -> R<Merge> {
        if let Val::Table(t) = &e.node.val {
            let form = "write merge = { command = \"python3 merge.py\" }";
            self.known(t, &["command"], "[output] merge", form)?;
            let c = find(t, "command").ok_or_else(|| self.err(e.node.pos, "[output] merge needs a command").hint(form))?;
            return Ok(Merge::Command(self.nonempty(&nested("merge", c), "output")?));
        }
        match self.string(e, "output")?.as_str() {
            "concat" => Ok(Merge::Concat),
            "none" => Ok(Merge::None),
            "json-list" => Ok(Merge::JsonList),
            "csv" => Ok(Merge::Csv),
            other => Err(self
                .err(e.node.pos, format!("[output] merge = {other:?} is not a known merge"))
                .hint("use \"concat\", \"none\", \"json-list\", \"csv\", or { command = \"...\" }")),
        }
    }

    /// A per-file output name; an unknown `{word}` would otherwise end up
    /// verbatim in every file name.
    fn name_pattern(&self, e: &Entry) -> R<String> {
        let pattern = self.nonempty(e, "output")?;
        let words = pattern.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(w, _)| w));
        let unknown = words.filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).find(|w| !PLACEHOLDERS.contains(w));
        match unknown {
            None => Ok(pattern),
            Some(w) => Err(self
                .bad(e, "output", format_args!("{pattern:?} uses `{{{w}}}`, which is not a placeholder{}", suggestion(w, PLACEHOLDERS)))
                .hint("the placeholders are {name}, {stem}, {ext} and {partition}")),
        }
    }

    fn images(&self, t: &[Entry]) -> R<BTreeMap<String, ImageSpec>> {
        let form = "write \"name:tag\" = { file = \"image.tar\" }";
        let mut out = BTreeMap::new();
        for e in t {
            let spec = self.table(&e.node, &format!("[images] {:?}", e.key), form)?;
            self.known(spec, &["file"], &format!("[images] {:?}", e.key), form)?;
            let file = find(spec, "file").ok_or_else(|| self.err(e.key_pos, format!("[images] {:?} needs a file", e.key)).hint(form))?;
            out.insert(e.key.clone(), ImageSpec { file: self.nonempty(&nested(&format!("{:?}", e.key), file), "images")? });
        }
        Ok(out)
    }
}
