//! Errors in cluster and job files, and the small diagnostics both share.
//!
//! A [`SpecError`] names the file and, where there is one, the line and
//! column of the offending key or value, then a hint that says what to do.
//! Its `Display` is `{file}:{line}:{col}: {message}` followed by
//! `\n  hint: {hint}`; tests pin that text, so wording changes are deliberate.
//!
//! Besides the type this module holds what `cluster` and `job` both need to
//! word their errors: byte offset to line and column, "did you mean"
//! suggestions, the size and duration parsers, and [`find_duplicate`], which
//! locates a key given twice so that the message can name the host or
//! section instead of echoing the TOML parser. Knowing what a key means is
//! left to those two modules.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A mistake in a cluster or job file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line of the offending key or value.
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub col: Option<usize>,
    /// A sentence: where, what is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message)?,
            _ => write!(f, "{}: {}", self.file, self.message)?,
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

impl SpecError {
    /// An error about the file as a whole, or about something outside it
    /// (a `--set` or `--hosts` argument).
    pub fn new(file: &str, message: impl Into<String>) -> Self {
        SpecError { file: file.to_string(), line: None, col: None, message: message.into(), hint: None }
    }

    /// An error at a byte offset of `text`.
    pub fn at(file: &str, text: &str, offset: Option<usize>, message: impl Into<String>) -> Self {
        let (line, col) = offset.map(|o| line_col(text, o)).unzip();
        SpecError { file: file.to_string(), line, col, message: message.into(), hint: None }
    }

    /// Adds what to do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// 1-based line and column (in characters) of a byte offset; an offset
/// past the end or inside a character is clamped rather than trusted.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The closest of `known` to `word`, when it is close enough to suggest.
pub fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), *k))
        // Short words are all close to each other; only suggest a word
        // when at most half of it would have to change.
        .filter(|(d, k)| *d <= 2.max(k.len() / 3) && 2 * d <= k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `"; did you mean `x`?"` when a suggestion is close, else nothing.
pub fn suggestion(word: &str, known: &[&str]) -> String {
    did_you_mean(word, known).map_or(String::new(), |s| format!("; did you mean `{s}`?"))
}

/// What a size may look like, for hints.
pub const SIZE_HINT: &str =
    "write a number of bytes, or a string with one of the units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB (e.g. \"64MiB\")";

/// What a duration may look like, for hints.
pub const DURATION_HINT: &str =
    "write a number of seconds, or a string with one of the units ms, s, m, h (e.g. \"500ms\", \"10s\", \"2m\")";

/// Why a size or duration cannot be read; its `Display` is a reason to
/// append to "... is not a size: " (or "a duration").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("it does not start with a number")]
    NoNumber,
    #[error("the unit `{0}` is unknown")]
    UnknownUnit(String),
    /// A size past what TOML can write back (an i64 of bytes).
    #[error("it is too large")]
    TooLarge,
    /// A duration past `u64` seconds.
    #[error("it is too long")]
    TooLong,
}

/// Parses a size: `64MiB`, `1.5GB`, `512 KiB`, `10B` or a bare number of
/// bytes. Fractions are exact and round down to whole bytes. The error is
/// a reason to append to "... is not a size: ".
pub fn parse_size(s: &str) -> Result<u64, QuantityError> {
    let (num, unit) = split_number(s)?;
    let mult: u128 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => return Err(QuantityError::UnknownUnit(other.to_string())),
    };
    // TOML integers are i64, so a larger size could not be written back.
    scaled(num, mult).and_then(|n| i64::try_from(n).ok()).map(|n| n as u64).ok_or(QuantityError::TooLarge)
}

/// Parses a duration: `500ms`, `10s`, `1.5s`, `2m`, `1h` or a bare number
/// of seconds, exactly to the nanosecond. Zero is allowed here; callers
/// that need a positive duration say so in their own words.
pub fn parse_duration(s: &str) -> Result<Duration, QuantityError> {
    let (num, unit) = split_number(s)?;
    let nanos_per: u128 = match unit {
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => return Err(QuantityError::UnknownUnit(other.to_string())),
    };
    let nanos = scaled(num, nanos_per).ok_or(QuantityError::TooLong)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| QuantityError::TooLong)?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Splits `"1.5 KiB"` into `("1.5", "KiB")`.
fn split_number(s: &str) -> Result<(&str, &str), QuantityError> {
    let t = s.trim();
    let end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    if !num.chars().any(|c| c.is_ascii_digit()) || num.matches('.').count() > 1 {
        return Err(QuantityError::NoNumber);
    }
    Ok((num, unit.trim()))
}

/// `num` (decimal digits with at most one `.`) times `unit`, rounded down,
/// in integers so that `0.1s` is exactly 100ms; `None` on overflow.
fn scaled(num: &str, unit: u128) -> Option<u128> {
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    // Digits past the 18th cannot change a result counted in nanoseconds
    // or bytes, and keeping 18 keeps the product below well within u128.
    let frac = &frac[..frac.len().min(18)];
    let frac_part = if frac.is_empty() { 0 } else { frac.parse::<u128>().ok()? * unit / 10u128.pow(frac.len() as u32) };
    whole.checked_mul(unit)?.checked_add(frac_part)
}

/// A key or table given twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// Keys from the top of the file to the repeated one, e.g.
    /// `["hosts", "alpha"]` for a second `[hosts.alpha]`.
    pub path: Vec<String>,
    /// Byte offset of the second occurrence.
    pub offset: usize,
}

/// The first key given twice, if that is what is wrong with the file.
///
/// Both parsers refuse duplicates, but their messages name neither the
/// host nor the section in our terms, so this runs before validation and
/// lets the caller word the error. `None` means no duplicate was found,
/// including when the file has some other syntax error.
pub fn find_duplicate(text: &str, json: bool) -> Option<Duplicate> {
    if json {
        json_duplicate(text)
    } else {
        toml_duplicate(text)
    }
}

fn toml_duplicate(text: &str) -> Option<Duplicate> {
    let err = toml_edit::ImDocument::parse(text).err()?;
    // toml_edit has no error kinds; its wording is the only way to tell a
    // duplicate from other syntax errors (pinned by a test below).
    if !err.message().contains("duplicate key") {
        return None;
    }
    let offset = err.span()?.start;
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    // A duplicate inside an inline table starts mid-line; its key path is
    // not on the line's left, so leave that case to the parser's message.
    if line_start + (line.len() - line.trim_start().len()) != offset {
        return None;
    }
    let candidate = header_path(line).or_else(|| {
        let mut path = enclosing_header(&text[..line_start]);
        path.extend(key_path(line)?);
        Some(path)
    })?;
    let path = longest_existing(&text[..line_start], candidate)?;
    Some(Duplicate { path, offset })
}

/// The table path of a `[a.b]` header line.
fn header_path(line: &str) -> Option<Vec<String>> {
    if !line.trim_start().starts_with('[') {
        return None;
    }
    let doc = toml_edit::ImDocument::parse(line).ok()?;
    Some(first_chain(doc.as_table()))
}

/// The dotted key of a `a.b = ...` line (the value may span lines, so
/// only the part before `=` is parsed).
fn key_path(line: &str) -> Option<Vec<String>> {
    let (key, _) = line.split_once('=')?;
    let doc = toml_edit::ImDocument::parse(format!("{key} = 0")).ok()?;
    Some(first_chain(doc.as_table()))
}

/// Keys from `t` down its first entry, for a document of one header or key.
fn first_chain(mut t: &toml_edit::Table) -> Vec<String> {
    let mut path = Vec::new();
    while let Some((k, item)) = t.iter().next() {
        path.push(k.to_string());
        match item.as_table() {
            Some(inner) => t = inner,
            None => break,
        }
    }
    path
}

/// The path of the last header in `before`, or the root.
fn enclosing_header(before: &str) -> Vec<String> {
    before.lines().rev().find_map(header_path).unwrap_or_default()
}

/// The longest prefix of `path` that `before` already defines: that is the
/// key being repeated (`[hosts]` then `a.port = 1` repeats `hosts.a`).
fn longest_existing(before: &str, mut path: Vec<String>) -> Option<Vec<String>> {
    let doc = toml_edit::ImDocument::parse(before).ok()?;
    while !path.is_empty() {
        let mut item = doc.as_item();
        if path.iter().all(|k| item.get(k.as_str()).map(|i| item = i).is_some()) {
            return Some(path);
        }
        path.pop();
    }
    None
}

fn json_duplicate(text: &str) -> Option<Duplicate> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let err = PathSeed { path: Vec::new(), found: &found }.deserialize(&mut de).err()?;
    let path: Vec<String> = found.into_inner()?;
    let key = path.last()?;
    // serde_json reports the closing quote of the key; point at its start.
    let line_start: usize = text.split_inclusive('\n').take(err.line().saturating_sub(1)).map(str::len).sum();
    let end = (line_start + err.column()).min(text.len());
    let offset = text.get(..end).and_then(|t| t.rfind(&format!("\"{key}\""))).unwrap_or(line_start);
    Some(Duplicate { path, offset })
}

/// Walks a JSON document keeping the path, and stops at the first key an
/// object repeats (serde_json alone would silently keep the last one).
struct PathSeed<'a> {
    path: Vec<String>,
    found: &'a RefCell<Option<Vec<String>>>,
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PathSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(PathSeed { path: self.path.clone(), found: self.found })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let mut path = self.path.clone();
            path.push(key.clone());
            if seen.contains(&key) {
                *self.found.borrow_mut() = Some(path);
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(PathSeed { path, found: self.found })?;
            seen.push(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_position() {
        let e = SpecError::at("c.toml", "a\nbc = 1\n", Some(4), "bad").hint("fix it");
        assert_eq!(e.to_string(), "c.toml:2:3: bad\n  hint: fix it");
        assert_eq!(SpecError::new("c.toml", "gone").to_string(), "c.toml: gone");
    }

    #[test]
    fn positions_count_characters_and_clamp() {
        assert_eq!(line_col("é = 1\nx", 2), (1, 2));
        assert_eq!(line_col("é = 1\nx", 7), (2, 1));
        assert_eq!(line_col("é", 1), (1, 1));
        assert_eq!(line_col("ab\n", 99), (2, 1));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("64XB"), Err(QuantityError::UnknownUnit("XB".into())));
        assert_eq!(parse_size("64XB").unwrap_err().to_string(), "the unit `XB` is unknown");
        assert_eq!(parse_size("lots"), Err(QuantityError::NoNumber));
        assert_eq!(parse_size("1.2.3B").unwrap_err().to_string(), "it does not start with a number");
        assert_eq!(parse_size("99999999999999TiB"), Err(QuantityError::TooLarge));
        assert_eq!(parse_size("99999999999999TiB").unwrap_err().to_string(), "it is too large");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.000000001s"), Ok(Duration::new(1, 1)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("3 fortnights").unwrap_err().to_string(), "the unit `fortnights` is unknown");
        assert_eq!(parse_duration("99999999999999999999999h"), Err(QuantityError::TooLong));
        assert_eq!(parse_duration("99999999999999999999999h").unwrap_err().to_string(), "it is too long");
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("adress", &["address", "port"]), Some("address"));
        assert_eq!(did_you_mean("zzzzzz", &["address", "port"]), None);
        assert_eq!(suggestion("prot", &["port"]), "; did you mean `port`?");
    }

    fn dup(text: &str, json: bool) -> Option<(Vec<String>, (usize, usize))> {
        find_duplicate(text, json).map(|d| (d.path, line_col(text, d.offset)))
    }

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn toml_duplicates_are_located() {
        assert_eq!(dup("[hosts.a]\nx = 1\n[hosts.a]\n", false), Some((path(&["hosts", "a"]), (3, 1))));
        assert_eq!(dup("[hosts.a]\nport = 1\n  port = 2\n", false), Some((path(&["hosts", "a", "port"]), (3, 3))));
        assert_eq!(dup("[hosts.a]\nx = 1\n[hosts]\na.port = 2\n", false), Some((path(&["hosts", "a"]), (4, 1))));
        assert_eq!(dup("x = 1\nx = 2\n", false), Some((path(&["x"]), (2, 1))));
        assert_eq!(dup("[hosts.a]\nx = 1\n", false), None);
        assert_eq!(dup("x = = 1\n", false), None);
    }

    #[test]
    fn json_duplicates_are_located() {
        let text = "{\"hosts\": {\"a\": {\"address\": \"x\"},\n \"a\": {}}}";
        assert_eq!(dup(text, true), Some((path(&["hosts", "a"]), (2, 2))));
        assert_eq!(dup("{\"a\": [1, {\"b\": 1, \"b\": 2}]}", true), Some((path(&["a", "b"]), (1, 20))));
        assert_eq!(dup("{\"a\": 1, \"b\": 2}", true), None);
    }
}
