//! The canonical key encoding seen from Python: `python/tests/test_keys.py`
//! (equal keys encode equal, byte order is Python's order, refused keys
//! and their sentences) with the package's venv, and the routing hash of
//! the keys the issue names, fixed across Python processes with different
//! `PYTHONHASHSEED` and equal to what Rust computes for the same values.

use std::process::{Command, Output};

use shoal_core::canon::Key;
use shoal_core::partitioner::stable_hash;
use shoal_testkit::bin;

/// Runs `python/tests/test_keys.py` with `args` and a hash seed.
fn test_keys(args: &[&str], seed: &str) -> Output {
    let python = shoal_testkit::python::venv();
    let script = bin::repo().join("python/tests/test_keys.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(args)
        .env("PYTHONHASHSEED", seed)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{} {args:?} failed:\n{}{}", script.display(), text(&out.stdout), text(&out.stderr));
    out
}

#[test]
fn python_keys_encode_equal_when_equal_and_sort_in_python_order() {
    let out = test_keys(&[], "0");
    let report = String::from_utf8_lossy(&out.stderr);
    // unittest reports on stderr; a module that ran nothing would also "succeed".
    assert!(report.contains("Ran 8 tests") && report.trim_end().ends_with("OK"), "{report}");
}

#[test]
fn routing_hashes_are_the_same_in_every_process_and_in_rust() {
    let hashes = |seed| String::from_utf8(test_keys(&["hashes"], seed).stdout).expect("utf-8");
    let (one, two) = (hashes("1"), hashes("2"));
    let (one, two): (Vec<&str>, Vec<&str>) = (one.lines().collect(), two.lines().collect());
    // Python's own hash of "a" differs between the processes: the seeds took.
    assert!(one[5].starts_with("hash('a') ") && one[5] != two[5], "{one:?} / {two:?}");
    assert_eq!(one[..5], two[..5]);
    // 1, "a", (1, "a"), b"x", 1.0: Rust's encoding of the same values
    // hashes the same, and the values are pinned (a change moves keys
    // between reducers, and a resumed run would mix the two routings).
    let keys = [
        Key::int(1),
        Key::Str("a".into()),
        Key::Tuple(vec![Key::int(1), Key::Str("a".into())]),
        Key::Bytes(b"x".to_vec()),
        Key::Float(1.0),
    ];
    let rust: Vec<String> = keys.iter().map(|k| format!("{:016x}", stable_hash(&k.to_bytes().expect("encodable")))).collect();
    assert_eq!(one[..5], rust);
    assert_eq!(rust, PINNED);
}

const PINNED: [&str; 5] = ["ce7a2d17d568ed82", "5a009bfad28a234d", "567b248964339374", "9e0e62ef977d2fdf", "ce7a2d17d568ed82"];
