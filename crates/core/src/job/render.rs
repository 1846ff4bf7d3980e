//! Writes a [`JobSpec`] back as a job file (`shoal map --save`). Defaults
//! are written too, so the file documents what the run will do.

use std::time::Duration;

use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table};

use super::{JobSpec, Merge, ParamValue, Partitioner, SortOrder, Split, StepSpec};

pub fn to_toml(j: &JobSpec) -> String {
    let mut doc = DocumentMut::new();
    doc["job"] = Item::Table(meta(j));
    doc["sync"] = Item::Table(sync(j));
    doc["input"] = Item::Table(input(j));
    doc["map"] = Item::Table(step(&j.map));
    if let Some(c) = &j.combine {
        doc["combine"] = Item::Table(step(c));
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
        doc["reduce"] = Item::Table(t);
    }
    if !j.params.is_empty() {
        let mut t = Table::new();
        for (k, v) in &j.params {
            t[k.as_str()] = match v {
                ParamValue::Str(s) => value(s.clone()),
                ParamValue::Int(i) => value(*i),
                ParamValue::Float(f) => value(*f),
                ParamValue::Bool(b) => value(*b),
            };
        }
        doc["params"] = Item::Table(t);
    }
    doc["output"] = Item::Table(output(j));
    if !j.images.is_empty() {
        let mut t = Table::new();
        for (k, v) in &j.images {
            let mut it = InlineTable::new();
            it.insert("file", v.file.clone().into());
            t[k.as_str()] = value(it);
        }
        doc["images"] = Item::Table(t);
    }
    doc.to_string()
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
    if let Some(n) = &j.output.name {
        t["name"] = value(n.clone());
    }
    t
}
