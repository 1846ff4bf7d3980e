//! Where the binaries under test are: the `shoal` command (crate
//! `shoal-cli`) and the example programs of crate `shoal`, all in
//! `target/<profile>/` beside the running test.
//!
//! Cargo builds a crate's own binaries before its integration tests, and
//! `CARGO_BIN_EXE_shoal` names the command then; any other test binary
//! (and `cargo test` with a named test target, which skips the examples)
//! builds what it needs here, once per process: a no-op when it is
//! current.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// The `shoal` command under test.
pub fn shoal() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("CARGO_BIN_EXE_shoal") {
        Some(path) => PathBuf::from(path),
        None => {
            cargo_build(&["-p", "shoal-cli", "--bin", "shoal"], "the shoal command");
            profile_dir().join("shoal")
        }
    })
    .clone()
}

/// An example program of crate `shoal` (`crates/shoal/examples/`, and the
/// Rust examples under `examples/rust/`).
pub fn program(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| cargo_build(&["-p", "shoal", "--examples"], "the example programs"));
    profile_dir().join("examples").join(name)
}

/// The target dir the running test was built in (`target/`, or
/// `$CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    profile_dir().parent().expect("target/<profile>/ has a parent").to_path_buf()
}

/// `target/<profile>/`: the running test is `target/<profile>/deps/<test>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent().and_then(Path::parent).expect("the test runs from target/<profile>/deps/").to_path_buf()
}

/// `cargo build --quiet ARGS`, in the profile of the running test.
fn cargo_build(args: &[&str], what: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet"]).args(args);
    if profile_dir().file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo build for {what}: {e}"));
    assert!(status.success(), "cargo build {} failed: cannot build {what}", args.join(" "));
}
