//! Canonical keys: the bytes that stand for a Python key when records are
//! routed, sorted and grouped.
//!
//! A Python program's shuffle cannot use `hash()` (seeded per process) nor
//! pickle (not canonical: `1`, `1.0` and `True` pickle differently but are
//! one dict key). So the native module walks each key (`python/src/keys.rs`)
//! and writes it here, into bytes with three properties the agent relies on:
//!
//! - **Equal keys, equal bytes.** Values Python calls equal encode equal:
//!   `True == 1 == 1.0`, `-0.0 == 0`, `(1, "a") == (1.0, "a")`, and a
//!   frozenset whatever its iteration order. The agent's FNV-1a partitioner
//!   (`partitioner::stable_hash`) then sends them to one reducer on every
//!   host and every run, and its merge groups them.
//! - **Order preserved.** Byte order is Python's order within a type:
//!   numbers numerically across ints and floats (`1 < 1.5 < 2`,
//!   `-2**70 < -1.5`, `2**64 > 1e19`, infinities at the ends), strings by
//!   code point, bytes bytewise, tuples element by element with a prefix
//!   first. Across types, where Python refuses to compare, the order is
//!   fixed: None, numbers, NaN, str, bytes, tuple, frozenset. Frozensets
//!   get a deterministic order only (Python's is the partial subset order).
//! - **Prefix-free.** No encoding is a proper prefix of another, so the
//!   encodings of a tuple's elements can simply be concatenated.
//!
//! The bytes are binary (they contain `\n`, `\t` and NUL); the line codec
//! (`shoal::dataset::codec::escape_into`) escapes them in an order-preserving
//! way before they go on a line. Nothing decodes them: the original key
//! object travels pickled beside its encoding.
//!
//! **The encoding is part of the on-disk contract** (it decides where a key
//! lands, and `--resume` reuses map outputs), so the tests pin bytes.
//!
//! Layout, one tag byte then the body:
//! - None: `10`. Zero (any int 0, `False`, `0.0`, `-0.0`): `22`.
//!   `-inf`: `20`, `+inf`: `24`, NaN (every NaN): `25`.
//! - A positive finite number `1.f × 2^E`: `23`, then E (one byte
//!   `0x80 + E` for -64 <= E < 64; else `C0` and E as u32 big-endian above,
//!   `3F` and E as a wrapped u32 below), then the bits `f` after the
//!   leading one, trailing zeros dropped, 7 to a byte as `bits << 1 | more`
//!   (`more` is 1 on every byte but the last; no bits is the byte `00`).
//!   A negative number: `21`, then the body of its magnitude with every
//!   byte inverted, so that larger magnitudes sort first.
//! - str (UTF-8) `30`, bytes `31`: the content with `00` written `00 FF`,
//!   then `00 01`.
//! - tuple `40`, frozenset `41` (elements sorted by encoding, duplicates
//!   dropped): the elements' encodings, then `00`, below every tag.

/// The most bits an integer key may have: `|n| < 2**16000` (about 4800
/// decimal digits). Bounds the work and the bytes one key can cost.
pub const MAX_INT_BITS: u64 = 16_000;

/// The deepest nesting of tuples and frozensets in a key.
pub const MAX_DEPTH: usize = 64;

/// Tag bytes. All lie above the line codec's escaped range (0x00-0x0B), so
/// they cost one byte on a line, and above `END`, so a tuple that is a
/// prefix of another sorts first.
mod tag {
    pub const END: u8 = 0x00;
    pub const NONE: u8 = 0x10;
    pub const NEG_INF: u8 = 0x20;
    pub const NEG: u8 = 0x21;
    pub const ZERO: u8 = 0x22;
    pub const POS: u8 = 0x23;
    pub const POS_INF: u8 = 0x24;
    pub const NAN: u8 = 0x25;
    pub const STR: u8 = 0x30;
    pub const BYTES: u8 = 0x31;
    pub const TUPLE: u8 = 0x40;
    pub const FROZENSET: u8 = 0x41;
}

/// A key that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonError {
    #[error(
        "an integer of {bits} bits in a key is too large to route records: integers in keys may have at most {} bits \
         (about 4800 decimal digits); turn it into a str or hash it first",
        MAX_INT_BITS
    )]
    IntTooLarge { bits: u64 },
    #[error("a key with tuples or frozensets nested more than {} deep cannot be used to route records: flatten it", MAX_DEPTH)]
    TooDeep,
}

/// A key in the value model this module encodes: what a hashable Python
/// key of the supported types is, without Python. The native module walks
/// Python objects with the same primitives instead of building one.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    None,
    Bool(bool),
    /// An integer of any size: its sign and its magnitude, big-endian
    /// (leading zero bytes allowed; a zero magnitude is 0 whatever the sign).
    Int {
        negative: bool,
        magnitude: Vec<u8>,
    },
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Key>),
    /// The elements in any order; duplicates count once.
    FrozenSet(Vec<Key>),
}

impl Key {
    /// An integer key from a machine integer.
    pub fn int(n: i128) -> Key {
        Key::Int { negative: n < 0, magnitude: n.unsigned_abs().to_be_bytes().to_vec() }
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CanonError> {
        self.encode_at(out, 0)
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CanonError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// `depth` is the number of containers around `self`.
    fn encode_at(&self, out: &mut Vec<u8>, depth: usize) -> Result<(), CanonError> {
        match self {
            Key::None => none(out),
            Key::Bool(b) => bool(out, *b),
            Key::Int { negative, magnitude } => int(out, *negative, magnitude)?,
            Key::Float(f) => float(out, *f),
            Key::Str(s) => str(out, s.as_bytes()),
            Key::Bytes(b) => bytes(out, b),
            Key::Tuple(items) => {
                open_tuple(out, depth + 1)?;
                for item in items {
                    item.encode_at(out, depth + 1)?;
                }
                close_tuple(out);
            }
            Key::FrozenSet(items) => {
                let mut elements = Vec::with_capacity(items.len());
                for item in items {
                    let mut element = Vec::new();
                    item.encode_at(&mut element, depth + 1)?;
                    elements.push(element);
                }
                frozenset(out, depth + 1, elements)?;
            }
        }
        Ok(())
    }
}

/// Appends None.
pub fn none(out: &mut Vec<u8>) {
    out.push(tag::NONE);
}

/// Appends a boolean: the integer 0 or 1, as in Python.
pub fn bool(out: &mut Vec<u8>, b: bool) {
    i64(out, i64::from(b));
}

/// Appends a machine integer (the fast path for most int keys).
pub fn i64(out: &mut Vec<u8>, n: i64) {
    number(out, n < 0, &n.unsigned_abs().to_be_bytes(), 0);
}

/// Appends an integer given as its sign and big-endian magnitude (leading
/// zero bytes allowed). Refuses more than [`MAX_INT_BITS`] bits.
pub fn int(out: &mut Vec<u8>, negative: bool, magnitude: &[u8]) -> Result<(), CanonError> {
    let bits = bit_length(magnitude);
    if bits > MAX_INT_BITS {
        return Err(CanonError::IntTooLarge { bits });
    }
    number(out, negative, magnitude, 0);
    Ok(())
}

/// Appends a float: equal to the int of the same value, every NaN alike.
pub fn float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.push(tag::NAN);
    } else if f.is_infinite() {
        out.push(if f < 0.0 { tag::NEG_INF } else { tag::POS_INF });
    } else {
        // A finite double is `significand × 2^shift` exactly.
        let bits = f.to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as i64;
        let fraction = bits & ((1 << 52) - 1);
        let (significand, shift) = if exponent == 0 { (fraction, -1074) } else { (fraction | 1 << 52, exponent - 1075) };
        number(out, f.is_sign_negative(), &significand.to_be_bytes(), shift);
    }
}

/// Appends a str given as its UTF-8 bytes (whose byte order is code point
/// order). A Python str with lone surrogates comes as its `surrogatepass`
/// bytes, which keep that order too.
pub fn str(out: &mut Vec<u8>, utf8: &[u8]) {
    out.push(tag::STR);
    terminated(out, utf8);
}

/// Appends a bytes object.
pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.push(tag::BYTES);
    terminated(out, b);
}

/// Starts a tuple nested `depth` containers deep (a key that is a tuple is
/// at depth 1); the elements follow, then [`close_tuple`].
pub fn open_tuple(out: &mut Vec<u8>, depth: usize) -> Result<(), CanonError> {
    if depth > MAX_DEPTH {
        return Err(CanonError::TooDeep);
    }
    out.push(tag::TUPLE);
    Ok(())
}

/// Ends a tuple.
pub fn close_tuple(out: &mut Vec<u8>) {
    out.push(tag::END);
}

/// Appends a frozenset nested `depth` deep from its elements' encodings, in
/// any order (each encoded one level deeper).
pub fn frozenset(out: &mut Vec<u8>, depth: usize, mut elements: Vec<Vec<u8>>) -> Result<(), CanonError> {
    if depth > MAX_DEPTH {
        return Err(CanonError::TooDeep);
    }
    elements.sort_unstable();
    elements.dedup();
    out.push(tag::FROZENSET);
    for element in &elements {
        out.extend_from_slice(element);
    }
    out.push(tag::END);
    Ok(())
}

/// Appends the number `magnitude × 2^shift` with a sign.
fn number(out: &mut Vec<u8>, negative: bool, magnitude: &[u8], shift: i64) {
    let magnitude = trim_leading_zeros(magnitude);
    if magnitude.is_empty() {
        out.push(tag::ZERO);
        return;
    }
    out.push(if negative { tag::NEG } else { tag::POS });
    let start = out.len();
    exponent(out, bit_length(magnitude) as i64 - 1 + shift);
    mantissa(out, magnitude);
    if negative {
        for b in &mut out[start..] {
            *b = !*b;
        }
    }
}

/// Appends the binary exponent E of `1.f × 2^E`, order-preserving and
/// prefix-free: one byte for the usual range, five beyond it.
fn exponent(out: &mut Vec<u8>, e: i64) {
    match e {
        -64..=63 => out.push((0x80 + e) as u8),
        64.. => {
            out.push(0xC0);
            out.extend_from_slice(&(e as u32).to_be_bytes());
        }
        _ => {
            out.push(0x3F);
            // Wrapped, the negative exponents keep their order (-1074 is
            // the smallest a double has).
            out.extend_from_slice(&(e as i32 as u32).to_be_bytes());
        }
    }
}

/// Appends the bits of a nonzero `magnitude` after its leading one, trailing
/// zeros dropped, 7 to a byte as `bits << 1 | more`. Ending each byte with
/// the `more` flag keeps the order: where two mantissas agree on a byte's
/// bits, the one that goes on has a one bit still to come and is larger.
fn mantissa(out: &mut Vec<u8>, magnitude: &[u8]) {
    let first = magnitude[0].leading_zeros() as usize + 1;
    let end = magnitude.len() * 8 - trailing_zero_bits(magnitude);
    let count = end.saturating_sub(first);
    let groups = count.div_ceil(7).max(1);
    let bit = |at: usize| at < end && magnitude[at / 8] & (0x80 >> (at % 8)) != 0;
    for g in 0..groups {
        let bits = (0..7).fold(0u8, |acc, i| acc << 1 | u8::from(bit(first + g * 7 + i)));
        out.push(bits << 1 | u8::from(g + 1 < groups));
    }
}

/// Appends `content` with `00` escaped as `00 FF`, then the terminator
/// `00 01`: below every content byte, and never inside escaped content, so
/// the result is prefix-free and a string that is a prefix of another
/// sorts first.
fn terminated(out: &mut Vec<u8>, content: &[u8]) {
    for (i, part) in content.split(|&b| b == 0).enumerate() {
        if i > 0 {
            out.extend_from_slice(&[0x00, 0xFF]);
        }
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

fn trim_leading_zeros(magnitude: &[u8]) -> &[u8] {
    let zeros = magnitude.iter().take_while(|&&b| b == 0).count();
    &magnitude[zeros..]
}

/// The number of bits of a big-endian magnitude, without leading zeros.
fn bit_length(magnitude: &[u8]) -> u64 {
    let magnitude = trim_leading_zeros(magnitude);
    match magnitude.first() {
        None => 0,
        Some(top) => (magnitude.len() as u64 - 1) * 8 + u64::from(8 - top.leading_zeros()),
    }
}

/// The zero bits after the last one bit (of a nonzero magnitude).
fn trailing_zero_bits(magnitude: &[u8]) -> usize {
    let zero_bytes = magnitude.iter().rev().take_while(|&&b| b == 0).count();
    zero_bytes * 8 + magnitude[magnitude.len() - 1 - zero_bytes].trailing_zeros() as usize
}

#[cfg(test)]
#[path = "canon_tests.rs"]
mod tests;
