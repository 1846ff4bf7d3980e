//! The Python package under test: a virtual environment at
//! `target/python-venv` with `pip install ./python` done in it, as a user
//! would, kept current with the sources.
//!
//! Installing builds the extension (minutes from cold), so it happens only
//! when something it is built from changed since the last install: the
//! newest modification time of `python/` and of the workspace crates the
//! extension and the embedded `shoal` command are built from is kept in a
//! stamp file in the venv. The `shoal` command the extension embeds is the
//! release one built first with `cargo build --release -p shoal-cli` in the
//! same target dir (`SHOAL_EMBED_BINARY`), and the extension builds with
//! `CARGO_TARGET_DIR` set to it too, so the three builds share compiled
//! crates instead of each making its own tree.
//!
//! Every test of a binary shares one install (a process-wide `OnceLock`),
//! and test binaries take turns through an flock on
//! `target/python-venv.lock`, so two never install at once. `scripts/test`
//! brings the venv up before the test run, so no test pays for the build
//! in its own time.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use crate::bin;

/// The python of the venv with the `shoal` package installed, current
/// with the sources.
pub fn venv() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(install).clone()
}

/// The venv's directory, `target/python-venv`.
pub fn venv_dir() -> PathBuf {
    bin::target_dir().join("python-venv")
}

/// What the stamp records and the sources are compared with.
const STAMP: &str = ".shoal-sources-mtime";

fn install() -> PathBuf {
    let repo = bin::repo();
    let target = bin::target_dir();
    let dir = venv_dir();
    let _lock = Flock::take(&target.join("python-venv.lock"));
    let python = dir.join("bin/python");
    if !python.exists() {
        eprintln!("shoal-testkit: creating the venv {} (python3 -m venv)", dir.display());
        let out = Command::new("python3").arg("-m").arg("venv").arg(&dir).output();
        check(out, "python3 -m venv", "install python3 and python3-venv (scripts/install-deps)");
    }
    let newest = newest_source(&repo);
    let stamp = dir.join(STAMP);
    if std::fs::read_to_string(&stamp).ok().and_then(|s| s.trim().parse::<u128>().ok()) == Some(newest) {
        return python;
    }
    eprintln!("shoal-testkit: installing the Python package into {} (pip install ./python)", dir.display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "shoal-cli", "--bin", "shoal"])
        .current_dir(&repo)
        .env("CARGO_TARGET_DIR", &target)
        .output();
    check(out, "cargo build --release -p shoal-cli", "fix the build");
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .arg(repo.join("python"))
        .env("SHOAL_EMBED_BINARY", target.join("release/shoal"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("PYTHONPATH")
        .output();
    check(out, "pip install ./python", "fix what pip reports above");
    let mut file = std::fs::File::create(&stamp).expect("write the venv's stamp file");
    writeln!(file, "{newest}").expect("write the venv's stamp file");
    python
}

/// Panics with the command's output unless it succeeded.
#[track_caller]
fn check(out: std::io::Result<Output>, what: &str, fix: &str) {
    let out = out.unwrap_or_else(|e| panic!("cannot run {what} for the Python tests: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}) while preparing the Python tests' venv; {fix}.\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// The newest modification time (ns since the epoch) of what the package
/// is built from: `python/` (less caches and build output) and the
/// workspace's manifests and the sources of its crates.
fn newest_source(repo: &Path) -> u128 {
    let mut newest = 0;
    let mut roots = vec![repo.join("python"), repo.join("Cargo.toml"), repo.join("Cargo.lock")];
    for krate in ["core", "wire", "shoal", "cli"] {
        roots.push(repo.join("crates").join(krate).join("src"));
        roots.push(repo.join("crates").join(krate).join("Cargo.toml"));
    }
    for root in roots {
        newest = newest.max(newest_under(&root));
    }
    newest
}

fn newest_under(path: &Path) -> u128 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    let own = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    if !meta.is_dir() {
        return own;
    }
    let skip = |name: &str| matches!(name, "__pycache__" | "target" | "build" | "dist") || name.ends_with(".egg-info");
    let entries = std::fs::read_dir(path).into_iter().flatten().flatten();
    entries.filter(|e| !skip(&e.file_name().to_string_lossy())).map(|e| newest_under(&e.path())).fold(own, u128::max)
}

/// An interpreter with nothing but the standard library, made at `dir`
/// (`python -m venv --without-pip` from the test venv's base Python, so
/// the same version as the driver's): what a fresh host has. Checked:
/// neither `cloudpickle` nor `shoal` imports there.
pub fn stdlib_only(dir: &Path) -> PathBuf {
    let out = Command::new(venv()).args(["-m", "venv", "--without-pip"]).arg(dir).output();
    check(out, "python -m venv --without-pip", "fix the venv module");
    let python = dir.join("bin/python");
    for module in ["cloudpickle", "shoal"] {
        let out = Command::new(&python).args(["-c", &format!("import {module}")]).env_remove("PYTHONPATH").output().unwrap();
        assert!(!out.status.success(), "{} was meant to have only the standard library, but imports {module}", python.display());
    }
    python
}

/// The test venv's Python version, `3.11.7`.
pub fn version() -> String {
    version_of(&venv()).expect("the test venv's python runs")
}

fn version_of(py: &Path) -> Option<String> {
    let code = "import sys; print('%d.%d.%d' % sys.version_info[:3])";
    let out = Command::new(py).args(["-c", code]).env_remove("PYTHONPATH").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `3.11` of `3.11.7`.
fn minor(version: &str) -> Option<String> {
    version.rsplit_once('.').map(|(m, _)| m.to_string())
}

/// A Python 3.9 or newer whose major.minor differs from the test venv's,
/// from pyenv or the system (`None` when this machine has none).
pub fn other_minor() -> Option<PathBuf> {
    let mine = minor(&version());
    let recent = |m: &str| m.strip_prefix("3.").and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n >= 9);
    pythons().into_iter().find(|p| version_of(p).and_then(|v| minor(&v)).is_some_and(|m| Some(&m) != mine.as_ref() && recent(&m)))
}

/// A Python of the test venv's major.minor but another patch release
/// (Debian's 3.11.2 beside pyenv's 3.11.7), `None` when there is none.
pub fn other_patch() -> Option<PathBuf> {
    let mine = version();
    pythons().into_iter().find(|p| version_of(p).is_some_and(|v| v != mine && minor(&v) == minor(&mine)))
}

/// The Python 3 interpreters of pyenv and of the system, by path.
fn pythons() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let pyenv = std::fs::read_dir(home.join(".pyenv/versions")).into_iter().flatten().flatten().map(|e| e.path().join("bin/python3"));
    let versioned =
        |p: &PathBuf| p.file_name().is_some_and(|n| n.to_string_lossy().strip_prefix("python3.").is_some_and(|v| v.parse::<u32>().is_ok()));
    let system =
        ["/usr/bin", "/usr/local/bin"].into_iter().flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten().map(|e| e.path()));
    let mut found: Vec<PathBuf> = pyenv.chain(system.filter(versioned)).filter(|p| p.exists()).collect();
    found.sort();
    found
}

/// Writes the pure-Python wheel `name-version-py3-none-any.whl` into
/// `dir`: a package `name` whose `__init__.py` is `init`, for the Pythons
/// `python` admits (`Requires-Python`, none when empty), requiring
/// `requires` (`Requires-Dist` lines), made with the standard library's
/// `zipfile` as the wheel format says (METADATA, WHEEL, RECORD).
pub fn wheel(dir: &Path, name: &str, version: &str, python: &str, requires: &[&str], init: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let script = r#"
import base64, hashlib, sys, zipfile
out, name, version, python, init = sys.argv[1:6]
requires = sys.argv[6:]
info = f"{name}-{version}.dist-info"
meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
if python:
    meta += f"Requires-Python: {python}\n"
files = {f"{name}/__init__.py": init, f"{info}/METADATA": meta,
         f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: shoal-testkit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
record = []
with zipfile.ZipFile(out, "w") as z:
    for path, text in files.items():
        data = text.encode()
        z.writestr(path, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
"#;
    let path = dir.join(format!("{name}-{version}-py3-none-any.whl"));
    let out = Command::new(venv()).arg("-c").arg(script).arg(&path).args([name, version, python, init]).args(requires).output();
    check(out, "writing a test wheel", "fix the wheel writer");
    path
}

/// An exclusive flock, held until dropped (closing the file releases it).
struct Flock {
    _file: std::fs::File,
}

impl Flock {
    fn take(path: &Path) -> Flock {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot open the lock file {}: {e}", path.display()));
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "cannot lock {}: {}", path.display(), std::io::Error::last_os_error());
        Flock { _file: file }
    }
}
