//! How typed records travel: one record per line, so that every block,
//! shuffle bucket and merged output the command-job machinery handles is
//! also a valid file of records.
//!
//! - A plain record is `esc(postcard(value))\n`.
//! - A keyed record is `esc(storekey(key))\t esc(postcard(value))\n`. The
//!   storekey encoding preserves the key type's order byte for byte, so
//!   the agent's line sort and k-way merge (which compare the bytes before
//!   the first tab) put keys in their `Ord` order, and the stable FNV-1a
//!   partitioner routes equal keys to one reducer.
//!
//! `esc` keeps lines intact and order intact: bytes up to 0x0B (which
//! include tab and newline) become the pair `0x0B, b + 0x40`; every other
//! byte stands for itself. Every escaped byte is greater than the tab that
//! ends a key, so a key that is a prefix of another still sorts first, as
//! it does unescaped.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The escape byte; everything up to and including it is escaped.
const ESC: u8 = 0x0B;
const SHIFT: u8 = 0x40;

/// A record that could not be encoded or decoded, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// An escape byte followed by a byte no escape makes.
    #[error("a record line is damaged (bad escape); was the file written by shoal?")]
    Damaged,
    /// A shuffled line without the tab after its key.
    #[error("a shuffled record has no key")]
    NoKey,
    #[error("cannot encode a record: {0}")]
    EncodeRecord(#[source] postcard::Error),
    #[error("cannot decode a record: {0} (does the type match the data?)")]
    DecodeRecord(#[source] postcard::Error),
    #[error("cannot encode a key: {0}")]
    EncodeKey(#[source] storekey::encode::Error),
    #[error("cannot decode a key: {0}")]
    DecodeKey(#[source] storekey::decode::Error),
    #[error("cannot encode a value: {0}")]
    EncodeValue(#[source] postcard::Error),
    #[error("cannot decode a value: {0}")]
    DecodeValue(#[source] postcard::Error),
}

/// Appends `raw`, escaped, to `out`.
pub fn escape_into(raw: &[u8], out: &mut Vec<u8>) {
    for &b in raw {
        if b <= ESC {
            out.extend_from_slice(&[ESC, b + SHIFT]);
        } else {
            out.push(b);
        }
    }
}

/// Undoes [`escape_into`].
pub fn unescape(enc: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(enc.len());
    let mut it = enc.iter();
    while let Some(&b) = it.next() {
        if b == ESC {
            match it.next() {
                Some(&n) if (SHIFT..=SHIFT + ESC).contains(&n) => out.push(n - SHIFT),
                _ => return Err(CodecError::Damaged),
            }
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

/// Appends one plain record line.
pub fn put_record<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let raw = postcard::to_stdvec(value).map_err(CodecError::EncodeRecord)?;
    escape_into(&raw, out);
    out.push(b'\n');
    Ok(())
}

/// Decodes one plain record line (with or without its newline).
pub fn get_record<T: DeserializeOwned>(line: &[u8]) -> Result<T, CodecError> {
    let raw = unescape(strip(line))?;
    postcard::from_bytes(&raw).map_err(CodecError::DecodeRecord)
}

/// The order-preserving key bytes, escaped (what goes before the tab).
pub fn key_bytes<K: Serialize>(key: &K) -> Result<Vec<u8>, CodecError> {
    let raw = storekey::serialize(key).map_err(CodecError::EncodeKey)?;
    let mut out = Vec::with_capacity(raw.len() + 4);
    escape_into(&raw, &mut out);
    Ok(out)
}

/// Appends one keyed record line from already encoded key bytes.
pub fn put_keyed<V: Serialize>(key: &[u8], value: &V, out: &mut Vec<u8>) -> Result<(), CodecError> {
    out.extend_from_slice(key);
    out.push(b'\t');
    let raw = postcard::to_stdvec(value).map_err(CodecError::EncodeValue)?;
    escape_into(&raw, out);
    out.push(b'\n');
    Ok(())
}

/// Splits a keyed line into its escaped key and escaped value.
pub fn split_keyed(line: &[u8]) -> Result<(&[u8], &[u8]), CodecError> {
    let line = strip(line);
    let tab = line.iter().position(|&b| b == b'\t').ok_or(CodecError::NoKey)?;
    Ok((&line[..tab], &line[tab + 1..]))
}

/// Decodes escaped key bytes.
pub fn get_key<K: DeserializeOwned>(enc: &[u8]) -> Result<K, CodecError> {
    let raw = unescape(enc)?;
    storekey::deserialize(&raw).map_err(CodecError::DecodeKey)
}

/// Decodes an escaped value.
pub fn get_value<V: DeserializeOwned>(enc: &[u8]) -> Result<V, CodecError> {
    let raw = unescape(enc)?;
    postcard::from_bytes(&raw).map_err(CodecError::DecodeValue)
}

fn strip(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escaped(raw: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        escape_into(raw, &mut v);
        v
    }

    #[test]
    fn escaping_removes_tabs_and_newlines() {
        let e = escaped(b"a\tb\nc\x0b\x00");
        assert!(!e.contains(&b'\t') && !e.contains(&b'\n'));
        assert_eq!(unescape(&e).unwrap(), b"a\tb\nc\x0b\x00");
    }

    #[test]
    fn damaged_lines_are_errors_not_panics() {
        assert_eq!(unescape(b"ab\x0b").unwrap_err().to_string(), "a record line is damaged (bad escape); was the file written by shoal?");
        assert!(matches!(unescape(b"ab\x0b\x01"), Err(CodecError::Damaged)));
        assert!(matches!(split_keyed(b"no tab\n"), Err(CodecError::NoKey)));
        let err = get_record::<u64>(b"").unwrap_err();
        assert!(matches!(err, CodecError::DecodeRecord(_)), "{err:?}");
        assert!(err.to_string().starts_with("cannot decode a record: ") && err.to_string().ends_with(" (does the type match the data?)"));
        assert!(get_record::<String>(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn key_bytes_sort_like_keys() {
        let mut words = vec!["b", "a", "ab", "", "a\t", "a\u{0}", "zz", "é"];
        let mut by_bytes = words.clone();
        by_bytes.sort_by_key(|w| key_bytes(&w.to_string()).unwrap());
        words.sort();
        assert_eq!(by_bytes, words);
        let mut nums: Vec<i64> = vec![5, -3, 0, i64::MIN, i64::MAX, 10, -100];
        let mut nb = nums.clone();
        nb.sort_by_key(|n| key_bytes(n).unwrap());
        nums.sort();
        assert_eq!(nb, nums);
    }

    proptest! {
        #[test]
        fn escape_round_trips(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(unescape(&escaped(&raw)).unwrap(), raw);
        }

        #[test]
        fn escape_preserves_order(a in proptest::collection::vec(any::<u8>(), 0..16), b in proptest::collection::vec(any::<u8>(), 0..16)) {
            // The key is followed by a tab on the line: compare that way.
            let mut ea = escaped(&a); ea.push(b'\t');
            let mut eb = escaped(&b); eb.push(b'\t');
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
        }

        #[test]
        fn tuple_keys_round_trip_and_sort(x in any::<(u32, String)>(), y in any::<(u32, String)>()) {
            prop_assume!(!x.1.contains('\u{0}') && !y.1.contains('\u{0}'));
            let (kx, ky) = (key_bytes(&x).unwrap(), key_bytes(&y).unwrap());
            prop_assert_eq!(get_key::<(u32, String)>(&kx).unwrap(), x.clone());
            prop_assert_eq!(x.cmp(&y), kx.cmp(&ky));
        }
    }
}
