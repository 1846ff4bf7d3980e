//! Writes job files: [`JobText`] key by key (`shoal map` turns its flags
//! into one, which then goes through the parser like any job file), and
//! [`to_toml`] a whole [`JobSpec`] (`shoal map --save`), defaults too, so
//! the file documents what the run will do.

use std::time::Duration;

use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table, Value};

use super::{JobSpec, Merge, ParamValue, Partitioner, SortOrder, Split, StepSpec, SECTIONS};

/// A job file's text, written key by key. Each section lands where a job
/// file has it (`[job]`, `[sync]`, `[input]`, `[map]`, `[combine]`,
/// `[reduce]`, `[params]`, `[output]`, `[images]`) whatever order it is
/// written in, and
/// every value is quoted as TOML quotes it, so no text a user gave can
/// change the file's shape.
#[derive(Clone, Debug)]
pub struct JobText {
    sections: Vec<Option<Table>>,
}

impl Default for JobText {
    fn default() -> Self {
        JobText { sections: vec![None; SECTIONS.len()] }
    }
}

impl JobText {
    pub fn new() -> JobText {
        JobText::default()
    }

    /// `[name]`, made (empty) if it is not there yet. Panics on a name that
    /// is not a job file section: that is a bug in the caller, not input.
    pub fn section(&mut self, name: &str) -> &mut Table {
        let i = SECTIONS.iter().position(|s| *s == name).unwrap_or_else(|| panic!("a job file has no section [{name}]"));
        self.sections[i].get_or_insert_with(Table::new)
    }

    /// Sets `key` of `[section]` to `v`.
    pub fn set(&mut self, section: &str, key: &str, v: impl Into<Value>) -> &mut JobText {
        self.section(section)[key] = value(v);
        self
    }

    /// Sets `key` of `[section]` to an array of strings.
    pub fn set_strings(&mut self, section: &str, key: &str, v: &[String]) -> &mut JobText {
        self.set(section, key, strings(v))
    }

    /// Sets `key` of `[section]` to an inline table of these entries.
    pub fn set_inline<V: Into<Value>>(&mut self, section: &str, key: &str, entries: impl IntoIterator<Item = (String, V)>) -> &mut JobText {
        let mut t = InlineTable::new();
        for (k, v) in entries {
            t.insert(&k, v.into());
        }
        self.set(section, key, t)
    }

    /// The text: the sections written so far, in a job file's order.
    pub fn finish(self) -> String {
        let mut doc = DocumentMut::new();
        for (name, table) in SECTIONS.iter().zip(self.sections) {
            if let Some(t) = table {
                doc[*name] = Item::Table(t);
            }
        }
        doc.to_string()
    }

    fn put(&mut self, section: &str, t: Table) {
        *self.section(section) = t;
    }
}

pub fn to_toml(j: &JobSpec) -> String {
    let mut text = JobText::new();
    text.put("job", meta(j));
    text.put("sync", sync(j));
    text.put("input", input(j));
    text.put("map", step(&j.map));
    if let Some(c) = &j.combine {
        text.put("combine", step(c));
    }
    if let Some(r) = &j.reduce {
        let mut t = step(&r.step);
        if let Some(p) = r.partitions {
            t["partitions"] = value(i64::from(p));
        }
        t["partitioner"] = value(partitioner(r.partitioner));
        let mut k = InlineTable::new();
        k.insert("sep", r.key.sep.clone().into());
        k.insert("fields", (r.key.fields as i64).into());
        t["key"] = value(k);
        t["sort"] = value(if r.sort == SortOrder::Numeric { "numeric" } else { "bytes" });
        t["sort_buffer"] = value(r.sort_buffer as i64);
        text.put("reduce", t);
    }
    for (k, v) in &j.params {
        match v {
            ParamValue::Str(s) => text.set("params", k, s.as_str()),
            ParamValue::Int(i) => text.set("params", k, *i),
            ParamValue::Float(f) => text.set("params", k, *f),
            ParamValue::Bool(b) => text.set("params", k, *b),
        };
    }
    text.put("output", output(j));
    for (k, v) in &j.images {
        text.set_inline("images", k, [("file".to_string(), v.file.as_str())]);
    }
    text.finish()
}

fn strings(v: &[String]) -> Array {
    v.iter().map(String::as_str).collect()
}

fn meta(j: &JobSpec) -> Table {
    let mut t = Table::new();
    t["name"] = value(j.job.name.clone());
    t["seed"] = value(j.job.seed as i64);
    t["max_attempts"] = value(i64::from(j.job.max_attempts));
    t["exclude_after"] = value(i64::from(j.job.exclude_after));
    t["speculate"] = value(j.job.speculate);
    t["skip_bad_records"] = value(i64::from(j.job.skip_bad_records));
    t
}

fn sync(j: &JobSpec) -> Table {
    let mut t = Table::new();
    t["files"] = value(strings(&j.sync.files));
    if let Some(l) = &j.sync.list_file {
        t["list_file"] = value(l.clone());
    }
    t["max_size"] = value(j.sync.max_size as i64);
    t["force"] = value(strings(&j.sync.force));
    t["exclude"] = value(strings(&j.sync.exclude));
    t
}

fn partitioner(p: Partitioner) -> &'static str {
    if p == Partitioner::Modulo {
        "modulo"
    } else {
        "hash"
    }
}

fn input(j: &JobSpec) -> Table {
    let i = &j.input;
    let mut t = Table::new();
    if let Some(p) = &i.path {
        t["path"] = value(p.clone());
    }
    if let Some(a) = &i.args {
        t["args"] = value(strings(a));
    }
    if let Some(s) = i.split {
        t["split"] = value(match s {
            Split::Lines => "lines",
            Split::Files => "files",
            Split::Hash => "hash",
            Split::Range => "range",
        });
    }
    if let Some(p) = i.partitions {
        t["partitions"] = value(i64::from(p));
    }
    if let Some(c) = i.chunk {
        t["chunk"] = value(c as i64);
    }
    if let Some(k) = &i.key {
        let mut it = InlineTable::new();
        it.insert("field", (k.field as i64).into());
        it.insert("sep", k.sep.clone().into());
        t["key"] = value(it);
    }
    t["partitioner"] = value(partitioner(i.partitioner));
    t["weighted"] = value(i.weighted);
    t
}

fn step(s: &StepSpec) -> Table {
    let mut t = Table::new();
    t["command"] = value(s.command.clone());
    if !s.command_on.is_empty() {
        let mut it = InlineTable::new();
        for (h, c) in &s.command_on {
            it.insert(h, c.clone().into());
        }
        t["command_on"] = value(it);
    }
    if let Some(i) = &s.image {
        t["image"] = value(i.clone());
    }
    if let Some(d) = s.timeout {
        t["timeout"] = value(duration(d));
    }
    if let Some(m) = s.memory {
        t["memory"] = value(m as i64);
    }
    if s.network {
        t["network"] = value(true);
    }
    if let Some(c) = s.cpus {
        t["cpus"] = value(c);
    }
    t
}

/// Whole milliseconds where that is exact, else seconds to the nanosecond,
/// so that the text parses back to the same duration.
fn duration(d: Duration) -> String {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}.{:09}s", d.as_secs(), d.subsec_nanos())
    }
}

fn output(j: &JobSpec) -> Table {
    let mut t = Table::new();
    t["path"] = value(j.output.path.clone());
    match &j.output.merge {
        Merge::Command(c) => {
            let mut it = InlineTable::new();
            it.insert("command", c.clone().into());
            t["merge"] = value(it);
        }
        m => {
            t["merge"] = value(match m {
                Merge::None => "none",
                Merge::JsonList => "json-list",
                Merge::Csv => "csv",
                _ => "concat",
            })
        }
    }
    if j.output.on_hosts {
        t["on_hosts"] = value(true);
    }
    if let Some(n) = &j.output.name {
        t["name"] = value(n.clone());
    }
    t
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn sections_land_in_file_order_whatever_order_they_are_written_in() {
        let mut t = JobText::new();
        t.set("output", "path", "out");
        t.set("map", "command", "cat");
        t.set_strings("input", "args", &["a".into()]);
        t.set("job", "name", "j");
        assert_eq!(t.finish(), "[job]\nname = \"j\"\n\n[input]\nargs = [\"a\"]\n\n[map]\ncommand = \"cat\"\n\n[output]\npath = \"out\"\n");
    }

    #[test]
    fn values_cannot_change_the_files_shape() {
        let mut t = JobText::new();
        let sneaky = "cat\"\n[reduce]\ncommand = \"rm -rf /";
        t.set("map", "command", sneaky).set_strings("input", "args", &["x\"]\ny = [\"".into()]);
        t.set("output", "path", "o");
        let job = JobSpec::parse(&t.finish(), Path::new("job.toml")).unwrap();
        assert_eq!(job.map.command, sneaky);
        assert!(job.reduce.is_none());
        assert_eq!(job.input.args.as_deref(), Some(&["x\"]\ny = [\"".to_string()][..]));
    }

    #[test]
    #[should_panic(expected = "a job file has no section [mapp]")]
    fn an_unknown_section_is_a_bug() {
        JobText::new().set("mapp", "command", "cat");
    }
}
