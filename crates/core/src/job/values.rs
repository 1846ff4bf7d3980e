//! Typed reading of single job-file values, each refusing a wrong type or
//! range with the section, key and position in the message. The sections
//! themselves are put together in `parse`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::spec_error::{did_you_mean, parse_duration, parse_size, suggestion, SpecError, DURATION_HINT, SIZE_HINT};
use crate::tree::{Entry, Node, Val};

/// Validation context: the file name and text, for positions.
pub(super) struct Cx<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

pub(super) type R<T> = Result<T, SpecError>;

/// How a value reads in the file, for "key = value" messages.
fn shown(v: &Val) -> String {
    match v {
        Val::Str(s) => format!("{s:?}"),
        Val::Int(i) => i.to_string(),
        Val::Float(f) => f.to_string(),
        Val::Bool(b) => b.to_string(),
        other => other.kind().to_string(),
    }
}

impl Cx<'_> {
    pub fn err(&self, pos: Option<usize>, msg: impl Into<String>) -> SpecError {
        SpecError::at(self.file, self.text, pos, msg)
    }

    /// An error about the value of `e` in `[section]`.
    pub fn bad(&self, e: &Entry, section: &str, msg: impl std::fmt::Display) -> SpecError {
        self.err(e.node.pos.or(e.key_pos), format!("[{section}] {} {msg}", e.key))
    }

    pub fn table<'n>(&self, n: &'n Node, what: &str, hint: &str) -> R<&'n [Entry]> {
        match &n.val {
            Val::Table(t) => Ok(t),
            v => Err(self.err(n.pos, format!("{what} must be a table, not {}", v.kind())).hint(hint)),
        }
    }

    /// Refuses the first key of `t` that is not in `keys`.
    pub fn known(&self, t: &[Entry], keys: &[&str], place: &str, hint: &str) -> R<()> {
        let Some(e) = t.iter().find(|e| !keys.contains(&e.key.as_str())) else {
            return Ok(());
        };
        Err(self.err(e.key_pos, format!("unknown key `{}` in {place}{}", e.key, suggestion(&e.key, keys))).hint(hint))
    }

    pub fn known_in(&self, t: &[Entry], section: &str, keys: &[&str]) -> R<()> {
        self.known(t, keys, &format!("[{section}]"), &format!("the keys of [{section}] are: {}", keys.join(", ")))
    }

    pub fn string(&self, e: &Entry, section: &str) -> R<String> {
        match &e.node.val {
            Val::Str(s) => Ok(s.clone()),
            v => Err(self
                .bad(e, section, format_args!("must be a string, not {}", v.kind()))
                .hint(format!("put the value in quotes: {} = \"...\"", e.key))),
        }
    }

    pub fn nonempty(&self, e: &Entry, section: &str) -> R<String> {
        let s = self.string(e, section)?;
        if s.trim().is_empty() {
            return Err(self.bad(e, section, "must not be empty").hint(format!("give {} a value, or leave it out", e.key)));
        }
        Ok(s)
    }

    pub fn strings(&self, e: &Entry, section: &str) -> R<Vec<String>> {
        let err = |n: &Node| {
            self.err(n.pos.or(e.key_pos), format!("[{section}] {} must be an array of strings", e.key))
                .hint(format!("write {} = [\"a\", \"b\"]", e.key))
        };
        let Val::Arr(items) = &e.node.val else {
            return Err(err(&e.node));
        };
        items.iter().map(|i| if let Val::Str(s) = &i.val { Ok(s.clone()) } else { Err(err(i)) }).collect()
    }

    /// A string table such as `command_on = { host = "command" }`.
    pub fn string_map(&self, e: &Entry, section: &str) -> R<BTreeMap<String, String>> {
        let hint = format!("write {} = {{ NAME = \"...\" }}", e.key);
        let t = self.table(&e.node, &format!("[{section}] {}", e.key), &hint)?;
        t.iter()
            .map(|x| match &x.node.val {
                Val::Str(s) if !s.trim().is_empty() => Ok((x.key.clone(), s.clone())),
                _ => Err(self
                    .err(x.node.pos.or(x.key_pos), format!("[{section}] {}.{} must be a non-empty string", e.key, x.key))
                    .hint(hint.clone())),
            })
            .collect()
    }

    pub fn int(&self, e: &Entry, section: &str, min: i64, max: i64) -> R<i64> {
        match e.node.val {
            Val::Int(i) if i < min => Err(self.bad(e, section, format_args!("= {i} is too small; it must be at least {min}"))),
            Val::Int(i) if i > max => Err(self.bad(e, section, format_args!("= {i} is too large; it must be at most {max}"))),
            Val::Int(i) => Ok(i),
            ref v => {
                Err(self.bad(e, section, format_args!("must be an integer, not {}", v.kind())).hint("write a whole number without quotes"))
            }
        }
    }

    pub fn count(&self, e: &Entry, section: &str, min: u32) -> R<u32> {
        // The range check above makes the conversion exact.
        self.int(e, section, min.into(), u32::MAX.into()).map(|i| i as u32)
    }

    pub fn boolean(&self, e: &Entry, section: &str) -> R<bool> {
        match e.node.val {
            Val::Bool(b) => Ok(b),
            ref v => Err(self
                .bad(e, section, format_args!("must be true or false, not {}", v.kind()))
                .hint(format!("write {0} = true or {0} = false, without quotes", e.key))),
        }
    }

    /// A positive number, such as `cpus`.
    pub fn positive(&self, e: &Entry, section: &str) -> R<f64> {
        match e.node.val {
            Val::Int(i) if i > 0 => Ok(i as f64),
            Val::Float(f) if f > 0.0 && f.is_finite() => Ok(f),
            ref v => {
                Err(self.bad(e, section, format_args!("= {} is not a positive number", shown(v))).hint(format!("write {} = 1.5", e.key)))
            }
        }
    }

    /// A size in bytes, at least `min` (written as `min_text` in errors).
    pub fn size(&self, e: &Entry, section: &str, min: u64, min_text: &str) -> R<u64> {
        let n = match &e.node.val {
            Val::Int(i) => {
                u64::try_from(*i).map_err(|_| self.bad(e, section, format_args!("= {i} is not a size: it is negative")).hint(SIZE_HINT))?
            }
            Val::Str(s) => {
                parse_size(s).map_err(|why| self.bad(e, section, format_args!("= {s:?} is not a size: {why}")).hint(SIZE_HINT))?
            }
            v => return Err(self.bad(e, section, format_args!("must be a size, not {}", v.kind())).hint(SIZE_HINT)),
        };
        if n < min {
            return Err(self.bad(e, section, format_args!("= {} is too small; it must be at least {min_text}", shown(&e.node.val))));
        }
        Ok(n)
    }

    /// A duration longer than zero.
    pub fn duration(&self, e: &Entry, section: &str) -> R<Duration> {
        let bad = |msg: String| self.bad(e, section, msg).hint(DURATION_HINT);
        let d = match &e.node.val {
            Val::Int(i) => u64::try_from(*i).ok().map(Duration::from_secs),
            Val::Float(f) => Duration::try_from_secs_f64(*f).ok(),
            Val::Str(s) => Some(parse_duration(s).map_err(|why| bad(format!("= {s:?} is not a duration: {why}")))?),
            v => return Err(bad(format!("must be a duration, not {}", v.kind()))),
        };
        d.filter(|d| !d.is_zero()).ok_or_else(|| bad("must be a duration longer than zero".into()))
    }

    /// One of a few names, e.g. `split = "lines"`.
    pub fn choice<T: Copy>(&self, e: &Entry, section: &str, options: &[(&str, T)]) -> R<T> {
        let s = self.string(e, section)?;
        if let Some((_, v)) = options.iter().find(|(n, _)| *n == s) {
            return Ok(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let listed: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        let mut msg = format!("= {s:?} is not one of {}", listed.join(", "));
        if let Some(close) = did_you_mean(&s, &names) {
            msg.push_str(&format!("; did you mean {close:?}?"));
        }
        Err(self.bad(e, section, msg))
    }
}
