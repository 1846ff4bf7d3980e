//! Key order of shuffle records: the key is the text before the
//! `fields`-th separator (Hadoop Streaming); keys compare as bytes, or as
//! numbers when asked (keys that are not numbers sort after all numbers,
//! by bytes). Ties break on the whole line, so every sort is
//! deterministic.

use std::cmp::Ordering;

use shoal_core::partitioner::split_key;
use shoal_wire::KeyFormat;

/// A comparable form of one line's key.
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    Num(f64),
    Bytes(Vec<u8>),
}

/// Extracts keys and compares lines.
#[derive(Clone, Debug)]
pub struct KeyOrder {
    sep: Vec<u8>,
    fields: usize,
    numeric: bool,
}

impl KeyOrder {
    pub fn new(k: &KeyFormat) -> Self {
        KeyOrder { sep: k.sep.clone(), fields: k.fields.max(1) as usize, numeric: k.numeric }
    }

    /// The key bytes of a line (without its newline).
    pub fn key<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        split_key(strip(line), &self.sep, self.fields).0
    }

    /// Whether keys compare as numbers.
    pub fn is_numeric(&self) -> bool {
        self.numeric
    }

    /// The key as a number, when keys are numeric and this one parses.
    pub fn sort_key_num(&self, line: &[u8]) -> Option<f64> {
        if !self.numeric {
            return None;
        }
        std::str::from_utf8(self.key(line)).ok().and_then(|s| s.trim().parse::<f64>().ok()).filter(|n| !n.is_nan())
    }

    pub fn sort_key(&self, line: &[u8]) -> SortKey {
        match self.sort_key_num(line) {
            Some(n) => SortKey::Num(n),
            None => SortKey::Bytes(self.key(line).to_vec()),
        }
    }

    /// Compares two lines by key, then by the whole line.
    pub fn compare(&self, a: &[u8], b: &[u8]) -> Ordering {
        let by_key = if self.numeric { cmp_keys(&self.sort_key(a), &self.sort_key(b)) } else { self.key(a).cmp(self.key(b)) };
        by_key.then_with(|| strip(a).cmp(strip(b)))
    }
}

/// Numbers first (by value), then byte keys.
pub fn cmp_keys(a: &SortKey, b: &SortKey) -> Ordering {
    match (a, b) {
        (SortKey::Num(x), SortKey::Num(y)) => x.total_cmp(y),
        (SortKey::Num(_), SortKey::Bytes(_)) => Ordering::Less,
        (SortKey::Bytes(_), SortKey::Num(_)) => Ordering::Greater,
        (SortKey::Bytes(x), SortKey::Bytes(y)) => x.cmp(y),
    }
}

fn strip(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(numeric: bool) -> KeyOrder {
        KeyOrder::new(&KeyFormat { sep: b"\t".to_vec(), fields: 1, numeric })
    }

    #[test]
    fn bytes_then_line() {
        let o = order(false);
        assert_eq!(o.compare(b"a\t2\n", b"b\t1\n"), Ordering::Less);
        assert_eq!(o.compare(b"a\t2\n", b"a\t1\n"), Ordering::Greater);
        assert_eq!(o.compare(b"10\tx", b"9\tx"), Ordering::Less);
    }

    #[test]
    fn numeric_keys() {
        let o = order(true);
        assert_eq!(o.compare(b"10\tx", b"9\tx"), Ordering::Greater);
        assert_eq!(o.compare(b"-1\tx", b"abc\tx"), Ordering::Less);
    }
}
