//! Puts the `shoal` command inside the extension module: the Python driver
//! is `python`, so the agent it deploys to hosts (and runs locally) must
//! come from somewhere, and a package that carries it needs nothing else
//! installed on the driver (`src/agent_binary.rs` extracts it at run time).
//!
//! The binary is `$SHOAL_EMBED_BINARY` when that names a file (the tests
//! and CI pass the release `shoal` they already built), else `shoal-cli`
//! built here in release by a nested cargo. That cargo gets a target dir of
//! its own (`embedded/` beside the outer build's profile dir): the outer
//! cargo holds the lock of its own profile dir for as long as this script
//! runs, so sharing it would deadlock.
//!
//! Tells the crate, by environment variables read with `env!`:
//! `SHOAL_EMBEDDED_AGENT` (the file to `include_bytes!`) and
//! `SHOAL_EMBEDDED_AGENT_BLAKE3` (its hash, which names the extracted copy).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SHOAL_EMBED_BINARY");
    let binary = match env::var_os("SHOAL_EMBED_BINARY").filter(|v| !v.is_empty()) {
        Some(given) => given_binary(PathBuf::from(given)),
        None => build_shoal_cli(),
    };
    println!("cargo:rerun-if-changed={}", binary.display());
    let bytes =
        std::fs::read(&binary).unwrap_or_else(|e| fail(&format!("cannot read the shoal command to embed, {}: {e}", binary.display())));
    println!("cargo:rustc-env=SHOAL_EMBEDDED_AGENT={}", binary.display());
    println!("cargo:rustc-env=SHOAL_EMBEDDED_AGENT_BLAKE3={}", blake3::hash(&bytes).to_hex());
}

/// `$SHOAL_EMBED_BINARY`, checked to be a file.
fn given_binary(path: PathBuf) -> PathBuf {
    if !path.is_file() {
        fail(&format!(
            "SHOAL_EMBED_BINARY names {}, which is not a file: build it first \
             (cargo build --release -p shoal-cli) or unset SHOAL_EMBED_BINARY to build it here",
            path.display()
        ));
    }
    path.canonicalize().unwrap_or(path)
}

/// Builds `shoal-cli` in release from the workspace this crate sits in and
/// returns the `shoal` it made.
fn build_shoal_cli() -> PathBuf {
    let repo = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("..");
    let manifest = repo.join("Cargo.toml");
    if !manifest.is_file() {
        fail(&format!(
            "cannot build the shoal command to embed: there is no workspace at {}; \
             build the package from a checkout of the Shoal repository, or set SHOAL_EMBED_BINARY to a built `shoal`",
            manifest.display()
        ));
    }
    for dir in ["crates/core", "crates/wire", "crates/shoal", "crates/cli"] {
        println!("cargo:rerun-if-changed={}", repo.join(dir).join("src").display());
        println!("cargo:rerun-if-changed={}", repo.join(dir).join("Cargo.toml").display());
    }
    println!("cargo:rerun-if-changed={}", manifest.display());
    println!("cargo:rerun-if-changed={}", repo.join("Cargo.lock").display());

    let target_dir = embedded_target_dir();
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let cross = env::var("HOST").is_ok_and(|host| host != target);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "-p", "shoal-cli", "--bin", "shoal", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's target dir must not win over --target-dir's
        // sibling, and its rustc flags are for this crate, not the command.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if cross {
        cmd.args(["--target", &target]);
    }
    let status = cmd.status().unwrap_or_else(|e| fail(&format!("cannot run cargo to build the shoal command: {e}")));
    if !status.success() {
        fail(&format!(
            "cargo build --release -p shoal-cli (target dir {}) failed with {status}; \
             its errors are above. Fix them, or set SHOAL_EMBED_BINARY to a built `shoal`",
            target_dir.display()
        ));
    }
    let profile_dir = if cross { target_dir.join(&target).join("release") } else { target_dir.join("release") };
    profile_dir.join("shoal")
}

/// `<profile dir>/../embedded`: OUT_DIR is `<profile dir>/build/<pkg>/out`.
fn embedded_target_dir() -> PathBuf {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    match out.ancestors().nth(3).and_then(Path::parent) {
        Some(dir) => dir.join("embedded"),
        None => out.join("embedded"),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
