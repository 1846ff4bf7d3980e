use super::*;
use proptest::prelude::*;
use std::cmp::Ordering;
use std::collections::BTreeSet;

fn enc(key: &Key) -> Vec<u8> {
    key.to_bytes().expect("encodable")
}

fn tuple(items: Vec<Key>) -> Key {
    Key::Tuple(items)
}

fn s(text: &str) -> Key {
    Key::Str(text.to_string())
}

/// `2**bits` (or its negation) as a key.
fn pow2(bits: usize, negative: bool) -> Key {
    let mut magnitude = vec![0u8; bits / 8 + 1];
    magnitude[0] = 1 << (bits % 8);
    Key::Int { negative, magnitude }
}

#[test]
fn encodings_are_pinned() {
    // Part of the on-disk contract: where a key lands must not change.
    let table: &[(Key, &[u8])] = &[
        (Key::None, &[0x10]),
        (Key::int(0), &[0x22]),
        (Key::Bool(false), &[0x22]),
        (Key::Float(-0.0), &[0x22]),
        (Key::int(1), &[0x23, 0x80, 0x00]),
        (Key::Bool(true), &[0x23, 0x80, 0x00]),
        (Key::Float(1.0), &[0x23, 0x80, 0x00]),
        (Key::int(2), &[0x23, 0x81, 0x00]),
        (Key::int(3), &[0x23, 0x81, 0x80]),
        (Key::Float(1.5), &[0x23, 0x80, 0x80]),
        (Key::Float(0.5), &[0x23, 0x7F, 0x00]),
        (Key::int(-1), &[0x21, 0x7F, 0xFF]),
        (Key::int(255), &[0x23, 0x87, 0xFE]),
        (Key::int(256), &[0x23, 0x88, 0x00]),
        (Key::int(257), &[0x23, 0x88, 0x01, 0x80]),
        (pow2(64, false), &[0x23, 0xC0, 0x00, 0x00, 0x00, 0x40, 0x00]),
        (Key::Float(5e-324), &[0x23, 0x3F, 0xFF, 0xFF, 0xFB, 0xCE, 0x00]),
        (Key::Float(f64::INFINITY), &[0x24]),
        (Key::Float(f64::NEG_INFINITY), &[0x20]),
        (Key::Float(f64::NAN), &[0x25]),
        (Key::Float(-f64::NAN), &[0x25]),
        (s(""), &[0x30, 0x00, 0x01]),
        (s("a"), &[0x30, b'a', 0x00, 0x01]),
        (s("a\0b"), &[0x30, b'a', 0x00, 0xFF, b'b', 0x00, 0x01]),
        (Key::Bytes(b"x".to_vec()), &[0x31, b'x', 0x00, 0x01]),
        (tuple(vec![]), &[0x40, 0x00]),
        (tuple(vec![Key::int(1), s("a")]), &[0x40, 0x23, 0x80, 0x00, 0x30, b'a', 0x00, 0x01, 0x00]),
        (Key::FrozenSet(vec![]), &[0x41, 0x00]),
        (Key::FrozenSet(vec![s("b"), Key::int(1), s("b")]), &[0x41, 0x23, 0x80, 0x00, 0x30, b'b', 0x00, 0x01, 0x00]),
    ];
    for (key, want) in table {
        assert_eq!(enc(key), *want, "{key:?}");
    }
}

#[test]
fn numbers_order_across_ints_floats_and_sizes() {
    // Each row is strictly below the next.
    let ascending = [
        Key::Float(f64::NEG_INFINITY),
        pow2(1024, true),
        Key::Float(f64::MIN),
        pow2(70, true),
        Key::Float(-1e19),
        Key::int(-2),
        Key::Float(-1.5),
        Key::int(-1),
        Key::Float(-5e-324),
        Key::int(0),
        Key::Float(5e-324),
        Key::Float(f64::MIN_POSITIVE),
        Key::Float(0.5),
        Key::int(1),
        Key::Float(1.5),
        Key::int(2),
        Key::Float(9007199254740992.0),
        Key::int(9007199254740993),
        Key::Float(9007199254740994.0),
        Key::Float(1e19),
        pow2(64, false),
        Key::int(i128::MAX),
        Key::Float(f64::MAX),
        pow2(1024, false),
        pow2(15_999, false),
        Key::Float(f64::INFINITY),
        Key::Float(f64::NAN),
    ];
    for pair in ascending.windows(2) {
        assert!(enc(&pair[0]) < enc(&pair[1]), "{:?} < {:?}", pair[0], pair[1]);
    }
}

#[test]
fn types_order_none_numbers_nan_str_bytes_tuple_frozenset() {
    let ascending =
        [Key::None, Key::Float(f64::NEG_INFINITY), Key::Float(f64::NAN), s(""), Key::Bytes(vec![]), tuple(vec![]), Key::FrozenSet(vec![])];
    for pair in ascending.windows(2) {
        assert!(enc(&pair[0]) < enc(&pair[1]), "{:?} < {:?}", pair[0], pair[1]);
    }
}

#[test]
fn integers_beyond_the_limit_are_refused_with_a_sentence() {
    assert!(pow2(15_999, true).to_bytes().is_ok());
    let err = pow2(16_000, false).to_bytes().unwrap_err();
    assert_eq!(err, CanonError::IntTooLarge { bits: 16_001 });
    assert_eq!(
        err.to_string(),
        "an integer of 16001 bits in a key is too large to route records: integers in keys may have at most 16000 bits \
         (about 4800 decimal digits); turn it into a str or hash it first"
    );
    // Inside a tuple, too.
    assert!(tuple(vec![pow2(20_000, true)]).to_bytes().is_err());
}

#[test]
fn nesting_beyond_the_limit_is_refused_with_a_sentence() {
    let nest = |depth: usize, wrap: fn(Vec<Key>) -> Key| (0..depth).fold(Key::None, |inner, _| wrap(vec![inner]));
    assert!(nest(MAX_DEPTH, Key::Tuple).to_bytes().is_ok());
    assert!(nest(MAX_DEPTH, Key::FrozenSet).to_bytes().is_ok());
    for wrap in [Key::Tuple as fn(Vec<Key>) -> Key, Key::FrozenSet] {
        let err = nest(MAX_DEPTH + 1, wrap).to_bytes().unwrap_err();
        assert_eq!(err, CanonError::TooDeep);
        assert_eq!(err.to_string(), "a key with tuples or frozensets nested more than 64 deep cannot be used to route records: flatten it");
    }
}

#[test]
fn leading_zero_bytes_and_the_sign_of_zero_do_not_matter() {
    let padded = Key::Int { negative: false, magnitude: vec![0, 0, 0, 5] };
    assert_eq!(enc(&padded), enc(&Key::int(5)));
    assert_eq!(enc(&Key::Int { negative: true, magnitude: vec![0, 0] }), enc(&Key::int(0)));
    assert_eq!(enc(&Key::Int { negative: true, magnitude: vec![] }), enc(&Key::int(0)));
}

// The model: Python's order within a type, the module's fixed order
// across types. Frozensets are left out: their order is only deterministic.

fn rank(key: &Key) -> u8 {
    match key {
        Key::None => 0,
        Key::Float(f) if f.is_nan() => 2,
        Key::Bool(_) | Key::Int { .. } | Key::Float(_) => 1,
        Key::Str(_) => 3,
        Key::Bytes(_) => 4,
        Key::Tuple(_) => 5,
        Key::FrozenSet(_) => 6,
    }
}

/// A number of the model: ints in the strategies fit an i128.
enum Num {
    Int(i128),
    Float(f64),
}

fn num(key: &Key) -> Num {
    match key {
        Key::Bool(b) => Num::Int(i128::from(*b)),
        Key::Int { negative, magnitude } => {
            let mut be = [0u8; 16];
            be[16 - magnitude.len()..].copy_from_slice(magnitude);
            let m = u128::from_be_bytes(be);
            Num::Int(if *negative { 0i128.wrapping_sub_unsigned(m) } else { m as i128 })
        }
        Key::Float(f) => Num::Float(*f),
        _ => unreachable!("not a number"),
    }
}

/// Exact `n <=> f` for a non-NaN float.
fn int_vs_float(n: i128, f: f64) -> Ordering {
    const TWO_127: f64 = 170141183460469231731687303715884105728.0;
    if f >= TWO_127 {
        return Ordering::Less;
    }
    if f < -TWO_127 {
        return Ordering::Greater;
    }
    let floor = f.floor();
    match n.cmp(&(floor as i128)) {
        Ordering::Equal if floor < f => Ordering::Less,
        other => other,
    }
}

fn model_cmp(a: &Key, b: &Key) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Key::Str(x), Key::Str(y)) => x.cmp(y),
        (Key::Bytes(x), Key::Bytes(y)) => x.cmp(y),
        (Key::Tuple(x), Key::Tuple(y)) => {
            x.iter().zip(y).map(|(p, q)| model_cmp(p, q)).find(|o| o.is_ne()).unwrap_or(x.len().cmp(&y.len()))
        }
        _ if rank(a) == 1 => match (num(a), num(b)) {
            (Num::Int(x), Num::Int(y)) => x.cmp(&y),
            (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y).expect("no NaN"),
            (Num::Int(x), Num::Float(y)) => int_vs_float(x, y),
            (Num::Float(x), Num::Int(y)) => int_vs_float(y, x).reverse(),
        },
        _ => Ordering::Equal,
    })
}

fn float() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as f;
    prop_oneof![
        prop::sample::select(vec![0.0, -0.0, 0.5, 1.0, 1.5, 2.0, -1.0, -1.5, 1e19, f64::MAX, f64::MIN, 5e-324, f64::INFINITY]),
        (-4i32..4).prop_map(f64::from),
        f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO | f::INFINITE,
    ]
}

/// `±(2^top + 2^a + 2^b ...)` with the lower bits at most `span` below
/// `top`: numbers that share an exponent and differ deep in the mantissa,
/// or end early, which is where an encoding of mantissas goes wrong.
fn sparse(tops: std::ops::Range<i32>, span: i32) -> impl Strategy<Value = (bool, i32, BTreeSet<i32>)> {
    (any::<bool>(), tops).prop_flat_map(move |(negative, top)| {
        (Just(negative), Just(top), prop::collection::btree_set((top - span).max(0)..top.max(1), 0..3))
    })
}

fn sparse_int() -> impl Strategy<Value = i128> {
    prop_oneof![sparse(0..10, 126), sparse(0..126, 126)].prop_map(|(negative, top, low)| {
        let m = low.iter().filter(|&&b| b < top).fold(1i128 << top, |m, &b| m | 1 << b);
        if negative {
            -m
        } else {
            m
        }
    })
}

fn sparse_float() -> impl Strategy<Value = f64> {
    // Shifted by -30 so that fractions come up; 53 bits at most, so exact.
    prop_oneof![sparse(26..40, 52), sparse(0..60, 52)].prop_map(|(negative, top, low)| {
        let power = |b: i32| 2f64.powi(b - 30);
        let m = low.iter().filter(|&&b| b < top).fold(power(top), |m, &b| m + power(b));
        if negative {
            -m
        } else {
            m
        }
    })
}

fn number() -> impl Strategy<Value = Key> {
    prop_oneof![
        Just(Key::Bool(true)),
        prop_oneof![-4i128..4, any::<i64>().prop_map(i128::from), any::<i128>(), sparse_int()].prop_map(Key::int),
        prop_oneof![float(), sparse_float()].prop_map(Key::Float),
    ]
}

fn leaf() -> impl Strategy<Value = Key> {
    prop_oneof![
        Just(Key::None),
        Just(Key::Bool(false)),
        number(),
        Just(Key::Float(f64::NAN)),
        prop_oneof!["[ab\\x00\\x01\u{e9}]{0,3}", ".{0,4}"].prop_map(Key::Str),
        prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()], 0..4).prop_map(Key::Bytes),
    ]
}

/// Keys without frozensets: the model orders all of them.
fn ordered_key() -> impl Strategy<Value = Key> {
    leaf().prop_recursive(3, 24, 4, |inner| prop::collection::vec(inner, 0..4).prop_map(Key::Tuple))
}

fn any_key() -> impl Strategy<Value = Key> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Key::Tuple),
            prop::collection::vec(inner, 0..4).prop_map(Key::FrozenSet)
        ]
    })
}

/// A key Python calls equal to `key` but built differently: ints as floats
/// where exact and back, bools as ints, -0.0 as 0, magnitudes padded,
/// frozensets reversed with a duplicate.
fn twin(key: &Key) -> Key {
    match key {
        Key::Bool(b) => Key::int(i128::from(*b)),
        Key::Int { .. } => match num(key) {
            Num::Int(n) if n.unsigned_abs() <= 1 << 53 => Key::Float(n as f64),
            _ => match key.clone() {
                Key::Int { negative, mut magnitude } => {
                    magnitude.insert(0, 0);
                    Key::Int { negative, magnitude }
                }
                _ => unreachable!(),
            },
        },
        Key::Float(f) if f.fract() == 0.0 && f.abs() < 1e38 => Key::int(*f as i128),
        Key::Tuple(items) => Key::Tuple(items.iter().map(twin).collect()),
        Key::FrozenSet(items) => {
            let mut items: Vec<Key> = items.iter().rev().map(twin).collect();
            items.extend(items.first().cloned());
            Key::FrozenSet(items)
        }
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn byte_order_is_the_model_order(keys in prop::collection::vec(ordered_key(), 2..12)) {
        for a in &keys {
            for b in &keys {
                prop_assert_eq!(enc(a).cmp(&enc(b)), model_cmp(a, b), "{:?} vs {:?}", a, b);
            }
        }
    }

    #[test]
    fn numbers_order_by_value(keys in prop::collection::vec(number(), 2..16)) {
        for a in &keys {
            for b in &keys {
                prop_assert_eq!(enc(a).cmp(&enc(b)), model_cmp(a, b), "{:?} vs {:?}", a, b);
            }
        }
    }

    #[test]
    fn equal_values_encode_equal(key in any_key()) {
        prop_assert_eq!(enc(&twin(&key)), enc(&key));
    }

    #[test]
    fn no_encoding_is_a_proper_prefix_of_another(a in any_key(), b in any_key()) {
        let (a, b) = (enc(&a), enc(&b));
        prop_assert!(a == b || !(a.starts_with(&b) || b.starts_with(&a)), "{:?} / {:?}", a, b);
    }

    #[test]
    fn big_integers_order_by_value(
        a in (any::<bool>(), prop::collection::vec(any::<u8>(), 0..40)),
        b in (any::<bool>(), prop::collection::vec(any::<u8>(), 0..40)),
    ) {
        // Sign-magnitude compare of the trimmed magnitudes.
        let value = |(negative, magnitude): &(bool, Vec<u8>)| {
            let m = trim_leading_zeros(magnitude).to_vec();
            let sign = if m.is_empty() { 0 } else if *negative { -1 } else { 1 };
            (sign, m)
        };
        let (sa, ma) = value(&a);
        let (sb, mb) = value(&b);
        let by_magnitude = ma.len().cmp(&mb.len()).then(ma.cmp(&mb));
        let want = sa.cmp(&sb).then(if sa < 0 { by_magnitude.reverse() } else { by_magnitude });
        let ka = Key::Int { negative: a.0, magnitude: a.1.clone() };
        let kb = Key::Int { negative: b.0, magnitude: b.1.clone() };
        prop_assert_eq!(enc(&ka).cmp(&enc(&kb)), want);
    }

    #[test]
    fn the_i64_fast_path_matches_the_general_one(n in any::<i64>()) {
        let mut fast = Vec::new();
        i64(&mut fast, n);
        prop_assert_eq!(fast, enc(&Key::int(i128::from(n))));
    }
}
