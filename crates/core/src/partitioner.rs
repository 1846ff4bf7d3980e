//! The stable key partitioner, and Hadoop Streaming's key/value split.
//!
//! This module owns the functions that decide which partition a record
//! goes to; it does no I/O (the shuffle in the `shoal` crate and the input
//! splitter in the driver call it line by line).
//!
//! **The hash is part of Shoal's on-disk contract and never changes.** It is
//! FNV-1a, 64 bits (offset basis `0xcbf29ce484222325`, prime
//! `0x100000001b3`), over the key's raw bytes, taken modulo the partition
//! count. Every host, every platform and every version of Shoal must send a
//! key to the same partition: map outputs written by one agent are merged
//! by reducers on others, and a resumed run reuses outputs written by an
//! earlier binary. That is why it is not `std`'s `DefaultHasher` (whose
//! algorithm may change between Rust releases and is seeded per process)
//! and why the tests pin known vectors. FNV-1a is simple enough to
//! reimplement in a line of any language, so external tools can predict
//! where a key lands.
//!
//! `modulo` routes integer keys by `key mod partitions` (Euclidean, so
//! negative keys land in range too), for users who want key `i` in
//! partition `i`.

/// The first state of FNV-1a 64.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// The FNV 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `key`: for each byte, xor it in, then multiply by the prime
/// (wrapping). Fixed forever; see the module doc.
pub fn stable_hash(key: &[u8]) -> u64 {
    key.iter().fold(FNV_OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// The partition of `key` among `partitions`: `stable_hash(key) % partitions`.
/// Zero partitions is treated as one (everything goes to partition 0).
pub fn hash_partition(key: &[u8], partitions: u32) -> u32 {
    (stable_hash(key) % u64::from(partitions.max(1))) as u32
}

/// A key that `modulo` cannot route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {key:?} is not an integer")]
pub struct KeyError {
    /// The key as text (invalid UTF-8 replaced), for the message.
    pub key: String,
}

/// The partition of an integer key: `key mod partitions`, Euclidean (so
/// `-1` goes to the last partition). The key is a decimal integer with an
/// optional sign, surrounded by optional ASCII whitespace. Any length is
/// fine: the remainder is computed digit by digit, so a 40-digit id routes
/// as well as a small one. Zero partitions is treated as one.
pub fn modulo_partition(key: &[u8], partitions: u32) -> Result<u32, KeyError> {
    let bad = || KeyError { key: String::from_utf8_lossy(key).into_owned() };
    let text = key.trim_ascii();
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let p = u64::from(partitions.max(1));
    let r = digits.iter().fold(0u64, |r, d| (r * 10 + u64::from(d - b'0')) % p);
    Ok(if negative && r != 0 { p - r } else { r } as u32)
}

/// Splits a line into key and value the Hadoop Streaming way
/// (`stream.num.map.output.key.fields`): the key is the text before the
/// `fields`-th separator, the value is what follows it. A line with fewer
/// separators is all key, with an empty value. `fields` 0 counts as 1, and
/// an empty separator makes the whole line the key.
pub fn split_key<'a>(line: &'a [u8], sep: &[u8], fields: usize) -> (&'a [u8], &'a [u8]) {
    if sep.is_empty() {
        return (line, &[]);
    }
    let mut start = 0;
    for _ in 0..fields.max(1) {
        match find(&line[start..], sep) {
            Some(at) => start += at + sep.len(),
            None => return (line, &[]),
        }
    }
    (&line[..start - sep.len()], &line[start..])
}

/// Field `n` (1-based) of a line split on `sep`, or `None` when the line
/// has fewer fields (or `n` is 0). With an empty separator the line is one
/// field.
pub fn field<'a>(line: &'a [u8], sep: &[u8], n: usize) -> Option<&'a [u8]> {
    if n == 0 {
        return None;
    }
    if sep.is_empty() {
        return (n == 1).then_some(line);
    }
    let mut rest = line;
    for _ in 1..n {
        let at = find(rest, sep)?;
        rest = &rest[at + sep.len()..];
    }
    Some(find(rest, sep).map_or(rest, |at| &rest[..at]))
}

/// The first position of a non-empty `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (line, separator, fields, key, value)
    type SplitCase = (&'static [u8], &'static [u8], usize, &'static [u8], &'static [u8]);
    /// (line, separator, n, field)
    type FieldCase = (&'static [u8], &'static [u8], usize, Option<&'static [u8]>);

    #[test]
    fn fnv1a_matches_known_vectors() {
        // Expected values computed independently (a four-line Python
        // FNV-1a); "a" and "foobar" are also the published FNV test vectors.
        let table: &[(&[u8], u64)] = &[
            (b"", 0xcbf29ce484222325),
            (b"a", 0xaf63dc4c8601ec8c),
            (b"b", 0xaf63df4c8601f1a5),
            (b"foobar", 0x85944171f73967e8),
            (b"hello", 0xa430d84680aabd0b),
            (b"the", 0x56f5c9194461d57c),
            (b"key\t", 0x5819cdd75cbdb51f),
            (&[0xff, 0x00], 0x0a99a607b6f60bea),
            (b"The quick brown fox jumps over the lazy dog", 0xf3f9b7f5e7e47110),
        ];
        for (key, want) in table {
            assert_eq!(stable_hash(key), *want, "key {:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn hash_partition_is_the_hash_modulo_the_count() {
        // (key, partitions, expected), expected from the same Python script.
        let table: &[(&[u8], u32, u32)] = &[
            (b"", 7, 2),
            (b"a", 7, 5),
            (b"b", 7, 0),
            (b"foobar", 7, 6),
            (b"hello", 16, 11),
            (b"The quick brown fox jumps over the lazy dog", 16, 0),
            (b"hello", 1, 0),
            (b"hello", 0, 0),
        ];
        for (key, n, want) in table {
            assert_eq!(hash_partition(key, *n), *want, "key {:?} among {n}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn modulo_routes_integers_euclidean() {
        let table: &[(&[u8], u32, u32)] = &[
            (b"0", 4, 0),
            (b"10", 4, 2),
            (b"+10", 4, 2),
            (b" 7\t", 4, 3),
            (b"-1", 4, 3),
            (b" -1 ", 4, 3),
            (b"-4", 4, 0),
            (b"-0", 4, 0),
            (b"007", 5, 2),
            (b"5", 1, 0),
            (b"5", 0, 0),
            // Far beyond i128: 10^40 = (10^4)^10, and 10^4 mod 7 = 4; 4^10 mod 7 = 4.
            (b"10000000000000000000000000000000000000000", 7, 4),
            (b"18446744073709551615", 1000, 615),
            (b"-18446744073709551616", 1000, 384),
        ];
        for (key, n, want) in table {
            assert_eq!(modulo_partition(key, *n), Ok(*want), "key {:?} among {n}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn modulo_rejects_what_is_not_an_integer() {
        let table: &[(&[u8], &str)] = &[
            (b"x1", "key \"x1\" is not an integer"),
            (b"", "key \"\" is not an integer"),
            (b"  ", "key \"  \" is not an integer"),
            (b"-", "key \"-\" is not an integer"),
            (b"1.5", "key \"1.5\" is not an integer"),
            (b"1 2", "key \"1 2\" is not an integer"),
            (b"--1", "key \"--1\" is not an integer"),
            (b"\xff1", "key \"\u{fffd}1\" is not an integer"),
            // Unicode digits and spaces are not ASCII: not accepted.
            ("\u{663}".as_bytes(), "key \"\u{663}\" is not an integer"),
            ("\u{a0}1".as_bytes(), "key \"\\u{a0}1\" is not an integer"),
        ];
        for (key, message) in table {
            let err = modulo_partition(key, 4).unwrap_err();
            assert_eq!(err.to_string(), *message);
        }
    }

    #[test]
    fn split_key_follows_hadoop_streaming() {
        let table: &[SplitCase] = &[
            (b"k\tv", b"\t", 1, b"k", b"v"),
            (b"a\tb\tc", b"\t", 1, b"a", b"b\tc"),
            (b"a\tb\tc", b"\t", 2, b"a\tb", b"c"),
            (b"a\tb\tc", b"\t", 3, b"a\tb\tc", b""),
            (b"nokey", b"\t", 1, b"nokey", b""),
            (b"k\t", b"\t", 1, b"k", b""),
            (b"\tv", b"\t", 1, b"", b"v"),
            (b"", b"\t", 1, b"", b""),
            (b"a b\tv", b"\t", 1, b"a b", b"v"),
            (b"a::b::c", b"::", 2, b"a::b", b"c"),
            (b"a:::b", b"::", 1, b"a", b":b"),
            (b"a\tb", b"\t", 0, b"a", b"b"),
            (b"a\tb", b"", 1, b"a\tb", b""),
        ];
        for (line, sep, fields, key, value) in table {
            let got = split_key(line, sep, *fields);
            assert_eq!(got, (*key, *value), "line {:?} sep {:?} fields {fields}", String::from_utf8_lossy(line), sep);
        }
    }

    #[test]
    fn field_picks_the_nth_field() {
        let table: &[FieldCase] = &[
            (b"a\tb\tc", b"\t", 1, Some(b"a")),
            (b"a\tb\tc", b"\t", 2, Some(b"b")),
            (b"a\tb\tc", b"\t", 3, Some(b"c")),
            (b"a\tb", b"\t", 3, None),
            (b"a\tb\t", b"\t", 3, Some(b"")),
            (b"a,,b", b",", 2, Some(b"")),
            (b"a,b", b",", 1, Some(b"a")),
            (b"abc", b"\t", 1, Some(b"abc")),
            (b"abc", b"\t", 0, None),
            (b"", b"\t", 1, Some(b"")),
            (b"x::y", b"::", 2, Some(b"y")),
            (b"abc", b"", 1, Some(b"abc")),
            (b"abc", b"", 2, None),
        ];
        for (line, sep, n, want) in table {
            assert_eq!(field(line, sep, *n), *want, "line {:?} sep {:?} n {n}", String::from_utf8_lossy(line), sep);
        }
    }
}
