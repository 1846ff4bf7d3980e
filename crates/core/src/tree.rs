//! A format-neutral tree of a spec file's values, each with the byte offset
//! it came from, so that validation can point at the line and column of a
//! bad key or value whether the file was TOML or JSON.
//!
//! TOML positions come from `toml_edit`'s spans. serde_json keeps no
//! positions, so for JSON a key's offset is found by searching for its
//! quoted name after its parent's; that is exact for the usual
//! one-key-per-line files and never worse than the enclosing object.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::spec_error::SpecError;

/// A value and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub val: Val,
    pub pos: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Arr(Vec<Node>),
    Table(Vec<Entry>),
}

/// One key of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Option<usize>,
    pub node: Node,
}

impl Val {
    /// The kind of value, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Int(_) => "an integer",
            Val::Float(_) => "a float",
            Val::Bool(_) => "a boolean",
            Val::Arr(_) => "an array",
            Val::Table(_) => "a table",
        }
    }
}

/// Parses TOML or JSON (by the file name's extension) into a tree.
pub fn parse(text: &str, file: &str) -> Result<Node, SpecError> {
    if file.ends_with(".json") {
        parse_json(text, file)
    } else {
        parse_toml(text, file)
    }
}

fn parse_toml(text: &str, file: &str) -> Result<Node, SpecError> {
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        let raw = e.message().trim().trim_end_matches('.').to_string();
        let msg = match raw.lines().find(|l| l.contains("duplicate key")) {
            Some(line) => format!("{}: each host and key may appear only once", line.trim()),
            None => raw.replace('\n', "; "),
        };
        SpecError::at(file, text, e.span().map(|s| s.start), format!("invalid TOML: {msg}"))
    })?;
    Ok(table_node(doc.as_table(), Some(0)))
}

fn table_node(t: &toml_edit::Table, pos: Option<usize>) -> Node {
    let entries = t
        .iter()
        .map(|(k, item)| {
            let key_pos = t.key(k).and_then(|key| key.span()).map(|s| s.start);
            Entry { key: k.to_string(), key_pos, node: item_node(item, key_pos) }
        })
        .collect();
    Node { val: Val::Table(entries), pos: t.span().map(|s| s.start).or(pos) }
}

fn item_node(item: &toml_edit::Item, key_pos: Option<usize>) -> Node {
    match item {
        toml_edit::Item::Table(t) => table_node(t, key_pos),
        toml_edit::Item::Value(v) => value_node(v, key_pos),
        toml_edit::Item::ArrayOfTables(a) => Node { val: Val::Arr(a.iter().map(|t| table_node(t, key_pos)).collect()), pos: key_pos },
        toml_edit::Item::None => Node { val: Val::Table(vec![]), pos: key_pos },
    }
}

fn value_node(v: &toml_edit::Value, fallback: Option<usize>) -> Node {
    use toml_edit::Value as V;
    let pos = v.span().map(|s| s.start).or(fallback);
    let val = match v {
        V::String(s) => Val::Str(s.value().clone()),
        V::Integer(i) => Val::Int(*i.value()),
        V::Float(f) => Val::Float(*f.value()),
        V::Boolean(b) => Val::Bool(*b.value()),
        V::Datetime(d) => Val::Str(d.value().to_string()),
        V::Array(a) => Val::Arr(a.iter().map(|x| value_node(x, pos)).collect()),
        V::InlineTable(t) => Val::Table(
            t.iter()
                .map(|(k, x)| {
                    let key_pos = t.key(k).and_then(|key| key.span()).map(|s| s.start);
                    Entry { key: k.to_string(), key_pos, node: value_node(x, key_pos) }
                })
                .collect(),
        ),
    };
    Node { val, pos }
}

fn parse_json(text: &str, file: &str) -> Result<Node, SpecError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let node = JsonNode::deserialize_from(&mut de).map_err(|e| json_error(text, file, &e))?;
    let mut node = node.0;
    locate(&mut node, text, 0);
    Ok(node)
}

fn json_error(text: &str, file: &str, e: &serde_json::Error) -> SpecError {
    let offset = offset_of(text, e.line(), e.column());
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    SpecError::at(file, text, Some(offset), format!("invalid JSON: {msg}"))
}

fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    start + col.saturating_sub(1)
}

/// Fills in JSON key positions by searching forward from the parent.
fn locate(node: &mut Node, text: &str, from: usize) {
    node.pos.get_or_insert(from);
    match &mut node.val {
        Val::Table(entries) => {
            let mut cursor = from;
            for e in entries {
                let quoted = format!("\"{}\"", e.key);
                let at = text.get(cursor..).and_then(|t| t.find(&quoted)).map(|i| i + cursor);
                e.key_pos = at.or(Some(from));
                if let Some(a) = at {
                    cursor = a + quoted.len();
                }
                locate(&mut e.node, text, e.key_pos.unwrap_or(from));
            }
        }
        Val::Arr(items) => items.iter_mut().for_each(|i| locate(i, text, from)),
        _ => {}
    }
}

/// A JSON value that refuses duplicate keys (serde_json keeps the last).
struct JsonNode(Node);

impl JsonNode {
    fn deserialize_from<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

impl<'de> de::Deserialize<'de> for JsonNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

fn leaf(val: Val) -> JsonNode {
    JsonNode(Node { val, pos: None })
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = JsonNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<JsonNode, E> {
        Ok(leaf(Val::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<JsonNode, E> {
        Ok(leaf(Val::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonNode, E> {
        i64::try_from(v).map(|i| leaf(Val::Int(i))).map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<JsonNode, E> {
        Ok(leaf(Val::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<JsonNode, E> {
        Ok(leaf(Val::Str(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<JsonNode, E> {
        Err(E::custom("null is not allowed; leave the key out instead"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonNode, A::Error> {
        let mut items = Vec::new();
        while let Some(JsonNode(n)) = seq.next_element()? {
            items.push(n);
        }
        Ok(leaf(Val::Arr(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonNode, A::Error> {
        let mut entries: Vec<Entry> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if entries.iter().any(|e| e.key == key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`: each host and key may appear only once")));
            }
            let JsonNode(node) = map.next_value()?;
            entries.push(Entry { key, key_pos: None, node });
        }
        Ok(leaf(Val::Table(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_positions() {
        let text = "[hosts.a]\naddress = \"x\"\n";
        let n = parse(text, "c.toml").unwrap();
        let Val::Table(top) = &n.val else { panic!() };
        let Val::Table(hosts) = &top[0].node.val else { panic!() };
        let Val::Table(a) = &hosts[0].node.val else { panic!() };
        assert_eq!(a[0].key, "address");
        assert_eq!(a[0].key_pos, Some(10));
    }

    #[test]
    fn json_duplicates_are_refused() {
        let err = parse("{\"hosts\": {\"a\": {}, \"a\": {}}}", "c.json").unwrap_err();
        assert_eq!(err.to_string(), "c.json:1:23: invalid JSON: duplicate key `a`: each host and key may appear only once");
    }

    #[test]
    fn json_keys_are_located() {
        let text = "{\n  \"hosts\": {\n    \"a\": {\"port\": 22}\n  }\n}";
        let n = parse(text, "c.json").unwrap();
        let Val::Table(top) = &n.val else { panic!() };
        assert_eq!(crate::spec_error::line_col(text, top[0].key_pos.unwrap()), (2, 3));
    }
}
