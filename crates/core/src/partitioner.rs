//! The stable key partitioner, and Hadoop Streaming's key/value split.
//!
//! The hash is FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime
//! 0x100000001b3), over the key's bytes, modulo the partition count. It is
//! fixed forever: the same key goes to the same partition on every host,
//! every platform and every version of Shoal, which is what makes shuffle
//! output and resumed runs line up. `modulo` routes integer keys by
//! `key mod partitions` (Euclidean, so negative keys land in range).

/// FNV-1a 64 of `key`.
pub fn stable_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The partition of `key` among `partitions` by [`stable_hash`].
pub fn hash_partition(key: &[u8], partitions: u32) -> u32 {
    (stable_hash(key) % u64::from(partitions.max(1))) as u32
}

/// A key that `modulo` cannot route.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("key {key:?} is not an integer")]
pub struct KeyError {
    pub key: String,
}

/// The partition of an integer key: `key mod partitions`.
pub fn modulo_partition(key: &[u8], partitions: u32) -> Result<u32, KeyError> {
    let text = std::str::from_utf8(key).ok().map(str::trim);
    let n: i128 = text.and_then(|t| t.parse().ok()).ok_or_else(|| KeyError { key: String::from_utf8_lossy(key).into_owned() })?;
    Ok(n.rem_euclid(i128::from(partitions.max(1))) as u32)
}

/// Splits a line into key and value the Hadoop Streaming way: the key is
/// the text before the `fields`-th separator, the value what follows it;
/// a line with fewer separators is all key, with an empty value.
pub fn split_key<'a>(line: &'a [u8], sep: &[u8], fields: usize) -> (&'a [u8], &'a [u8]) {
    let mut seen = 0;
    let mut i = 0;
    while !sep.is_empty() && i + sep.len() <= line.len() {
        if &line[i..i + sep.len()] == sep {
            seen += 1;
            if seen == fields.max(1) {
                return (&line[..i], &line[i + sep.len()..]);
            }
            i += sep.len();
        } else {
            i += 1;
        }
    }
    (line, &[])
}

/// Field `n` (1-based) of a line, or `None` when the line is shorter.
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_vectors() {
        // Computed independently with a three-line Python FNV-1a.
        assert_eq!(stable_hash(b""), 0xcbf29ce484222325);
        assert_eq!(stable_hash(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(stable_hash(b"hello"), 0xa430d84680aabd0b);
        assert_eq!(stable_hash(b"the"), 0x56f5c9194461d57c);
        assert_eq!(hash_partition(b"hello", 7), (0xa430d84680aabd0bu64 % 7) as u32);
    }

    #[test]
    fn modulo_routes_integers() {
        assert_eq!(modulo_partition(b"10", 4), Ok(2));
        assert_eq!(modulo_partition(b" -1 ", 4), Ok(3));
        assert_eq!(modulo_partition(b"x1", 4).unwrap_err().to_string(), "key \"x1\" is not an integer");
    }

    #[test]
    fn hadoop_key_split() {
        assert_eq!(split_key(b"k\tv", b"\t", 1), (&b"k"[..], &b"v"[..]));
        assert_eq!(split_key(b"a\tb\tc", b"\t", 2), (&b"a\tb"[..], &b"c"[..]));
        assert_eq!(split_key(b"nokey", b"\t", 1), (&b"nokey"[..], &b""[..]));
        assert_eq!(split_key(b"k\t", b"\t", 1), (&b"k"[..], &b""[..]));
        assert_eq!(split_key(b"a b\tv", b"\t", 1), (&b"a b"[..], &b"v"[..]));
    }

    #[test]
    fn fields() {
        assert_eq!(field(b"a\tb\tc", b"\t", 2), Some(&b"b"[..]));
        assert_eq!(field(b"a\tb", b"\t", 3), None);
        assert_eq!(field(b"a,b", b",", 1), Some(&b"a"[..]));
        assert_eq!(field(b"abc", b"\t", 1), Some(&b"abc"[..]));
        assert_eq!(field(b"abc", b"\t", 0), None);
    }
}
