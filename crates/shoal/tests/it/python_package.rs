//! The Python package as `pip install ./python` makes it
//! (`shoal_testkit::python::venv`): it imports from the venv alone (its
//! native module, cloudpickle, the standard library, nothing of the
//! system's site-packages), and it carries a working `shoal` command,
//! extracted by `shoal._native.agent_binary()` to a private file named by
//! its hash. `scripts/test` runs this module first, so that the venv is
//! built before the test run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use shoal_testkit::python::venv_dir;
use shoal_testkit::{bin, Shoal};

/// Prints, as JSON, where the package and its dependency come from, every
/// loaded module that is neither in the venv nor in the standard library,
/// and every `sys.path` entry of a site-packages outside the venv.
const WHERE_FROM: &str = r#"
import json, os, sys, sysconfig
import shoal, shoal._native, cloudpickle
real = os.path.realpath
venv = real(sys.prefix)
stdlib = [real(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")]
def inside(path, dirs):
    return any(path.startswith(d + os.sep) for d in dirs)
outside = []
for name, module in sorted(sys.modules.items()):
    f = getattr(module, "__file__", None)
    if f and not inside(real(f), [venv]) and not (inside(real(f), stdlib) and "site-packages" not in f):
        outside.append(name + " " + f)
print(json.dumps({
    "prefix": venv,
    "shoal": real(shoal.__file__),
    "native": real(shoal._native.__file__),
    "cloudpickle": real(cloudpickle.__file__),
    "outside": outside,
    "foreign_site": [p for p in sys.path if "site-packages" in p and not inside(real(p), [venv])],
}))
"#;

#[test]
fn the_package_imports_from_the_venv_alone() {
    let ran = Shoal::python().args(["-I", "-c", WHERE_FROM]).run().success();
    let venv = venv_dir().canonicalize().unwrap();
    let found = ran.json();
    let path = |k: &str| PathBuf::from(found[k].as_str().unwrap_or_else(|| panic!("no {k} in {found}")));
    assert_eq!(path("prefix"), venv);
    for module in ["shoal", "native", "cloudpickle"] {
        let site = path(module);
        assert!(site.starts_with(&venv) && site.to_string_lossy().contains("site-packages"), "{module} is at {site:?}");
    }
    assert!(path("native").file_name().unwrap().to_string_lossy().starts_with("_native."), "{found}");
    assert_eq!(found["outside"], serde_json::json!([]), "modules loaded from outside the venv and the stdlib");
    assert_eq!(found["foreign_site"], serde_json::json!([]), "site-packages outside the venv on sys.path");
}

#[test]
fn agent_binary_extracts_the_embedded_shoal_command_named_by_its_hash() {
    let cache = tempfile::tempdir().unwrap();
    let ran = Shoal::python()
        .args(["-c", "import shoal._native as n; print(n.agent_binary()); print(n.agent_binary())"])
        .env("XDG_CACHE_HOME", cache.path())
        .run()
        .success();
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", ran.stdout);
    assert_eq!(lines[0], lines[1], "a second call returns the same file");
    let agent = PathBuf::from(lines[0]);

    let bin_dir = cache.path().join("shoal/bin");
    let hash = shoal::binary::hash_file(agent.clone()).unwrap().hash;
    assert_eq!(agent, bin_dir.join(format!("shoal-{hash}")));
    assert_eq!(mode(&agent), 0o700);
    assert_eq!(mode(&bin_dir), 0o700);
    assert_eq!(std::fs::read_dir(&bin_dir).unwrap().count(), 1, "no temp file is left behind");

    let version = |exe: &Path| {
        let out = Command::new(exe).arg("--version").output().unwrap();
        assert!(out.status.success(), "{} --version failed: {out:?}", exe.display());
        String::from_utf8(out.stdout).unwrap()
    };
    let embedded = version(&agent);
    assert!(embedded.starts_with("shoal "), "{embedded}");
    assert_eq!(embedded, version(&bin::shoal()));
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
