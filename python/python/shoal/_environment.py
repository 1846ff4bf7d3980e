"""Every host's Python, checked (and provisioned) before a program's
first job runs.

- Each host's interpreter: `python_on[host]`, else `python` (from
  `shoal.Context(...)`, else the cluster file's `[python]` table), else
  the host's `SHOAL_PYTHON` (its `env` in the cluster file), else this
  very interpreter on this machine and `python3` elsewhere.
- With `requirements`, this machine gets the wheels once (`pip wheel`,
  from the package index it reaches or only from the `wheels` directory),
  kept in `~/.cache/shoal/wheels/<key>`; they travel to the hosts by
  content hash like any synced file, with `pip`'s own wheel, and each
  host builds a virtual environment from them offline
  (`shoal/_hostenv.py`).
- Every host reports its fingerprint (Python version, platform, the
  `shoal` and `cloudpickle` versions its tasks import, the requirements
  it was built from). A host whose interpreter cannot be used (missing,
  cannot import the package, its environment fails to build) is named
  and left out; one that differs from this driver where pickled
  functions care (Python major.minor, platform) is refused with a table.

On this machine alone with its own interpreter and no requirements,
nothing needs checking: the tasks run the driver's interpreter.
"""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time

import cloudpickle

from shoal import _native
from shoal.errors import ShoalError

#: The setup's files, in the session dir (synced to every host).
SETUP_FILE = ".shoal-setup.json"
WHEEL_DIR = ".shoal-wheels"
PIP_DIR = ".shoal-pip"
PACKAGE_DIR = ".shoal-python"

#: Run on every host by `sh`, with `$SHOAL_PYTHON` set to its interpreter:
#: one line whatever happens (a missing interpreter, or one too old to run
#: the script, is reported, not a failed task that is retried).
COMMAND = (
    'PY="${SHOAL_PYTHON:-python3}"; '
    'if ! command -v "$PY" >/dev/null 2>&1; then printf \'shoal-no-python\\t%s\\t%s\\n\' "$SHOAL_HOST" "$PY"; exit 0; fi; '
    f'if out=$("$PY" -I {PACKAGE_DIR}/shoal/_hostenv.py {SETUP_FILE} 2>&1); then printf \'%s\\n\' "$out" | tail -n 1; '
    "else printf 'shoal-crashed\\t%s\\t%s\\t%s\\n' \"$SHOAL_HOST\" \"$PY\" \"$(printf '%s' \"$out\" | tail -c 2000 | tr '\\n\\t' '  ')\"; fi"
)

#: The fingerprint's columns, in the table's order.
COLUMNS = ("python", "platform", "shoal", "cloudpickle", "requirements")


def provision(driver, python=None, requirements=None, wheels=None, quiet=False):
    """Checks every host's Python and sets the interpreter its tasks run
    (`SHOAL_PYTHON`); leaves out the hosts that cannot run them."""
    file_python, python_on, file_requirements, file_wheels = driver.python_config()
    python = python or file_python
    requirements = os.path.abspath(requirements or file_requirements) if requirements or file_requirements else None
    wheels = os.path.abspath(wheels or file_wheels) if wheels or file_wheels else None
    hosts = driver.hosts()
    chosen = {}
    for name, local, env in hosts:
        chosen[name] = python_on.get(name) or python or env.get("SHOAL_PYTHON") or (sys.executable if local else "python3")
    if not requirements and all(local and chosen[name] == sys.executable for name, local, _ in hosts):
        for name in chosen:
            driver.set_host_env(name, "SHOAL_PYTHON", sys.executable)
        return
    expect = expected()
    setup = {"expect": {"python": expect["python"].rsplit(".", 1)[0], "platform": expect["platform"]}, "package": PACKAGE_DIR}
    sync = [PACKAGE_DIR, SETUP_FILE]
    if requirements:
        cache, files, ident = wheelset(requirements, wheels)
        pip = pip_wheel(wheels)
        stage(driver.session_dir, cache, files, pip)
        setup.update(requirements=ident, wheels=files, wheel_dir=WHEEL_DIR, pip=os.path.join(PIP_DIR, os.path.basename(pip)))
        sync += [WHEEL_DIR, PIP_DIR]
        expect["requirements"] = ident
    with open(os.path.join(driver.session_dir, SETUP_FILE), "w") as f:
        json.dump(setup, f)
    for name, interpreter in chosen.items():
        driver.set_host_env(name, "SHOAL_PYTHON", interpreter)
    started = time.monotonic()
    reports = [parse(line) for line in driver.run_setup(COMMAND, sync).decode("utf-8", "replace").splitlines() if line.strip()]
    check(driver, reports, expect, requirements, quiet, time.monotonic() - started)


def expected():
    """This driver's fingerprint: what every host must match."""
    return {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "platform": sysconfig.get_platform(),
        "shoal": _native.__version__,
        "cloudpickle": cloudpickle.__version__,
        "requirements": None,
    }


def parse(line):
    """A host's report line (JSON, or the shell's `shoal-*` lines)."""
    if line.startswith("shoal-no-python\t"):
        _, host, py = (line.split("\t") + ["", ""])[:3]
        return {"host": host, "error": f"there is no Python interpreter {py!r} on it (not found on its PATH)"}
    if line.startswith("shoal-crashed\t"):
        _, host, py, text = (line.split("\t", 3) + ["", "", ""])[:4]
        return {"host": host, "error": f"{py} could not run Shoal's check of it (which needs Python 3.6 or newer): {text.strip()}"}
    try:
        return json.loads(line)
    except ValueError:
        return {"host": "?", "error": f"unreadable report: {line[:200]}"}


def check(driver, reports, expect, requirements, quiet, seconds):
    """Refuses a mismatch with the table; leaves out the hosts that
    failed; sets the others' interpreters."""
    bad = [r for r in reports if "error" not in r and differs(r, expect)]
    if bad:
        raise mismatch(reports, expect, bad)
    failed = [r for r in reports if r.get("error")]
    good = [r for r in reports if not r.get("error")]
    if not good:
        lines = "\n".join(f"  {r['host']}: {r['error']}" for r in failed)
        err = ShoalError(f"no host can run the program's Python tasks:\n{lines}")
        err.exit_code = 3
        raise err
    for r in failed:
        what = "its Python environment could not be built" if requirements and "built" in r else "its Python cannot run tasks"
        print(f"warning: host {r['host']} is left out: {what}: {r['error']}", file=sys.stderr)
        driver.leave_out(r["host"], r["error"])
    for r in good:
        driver.set_host_env(r["host"], "SHOAL_PYTHON", r["interpreter"])
    if requirements and not quiet:
        built = [r["host"] for r in good if r.get("built")]
        reused = [r["host"] for r in good if not r.get("built")]
        parts = []
        if built:
            parts.append(f"built on {', '.join(built)}")
        if reused:
            parts.append(f"reused on {', '.join(reused)}")
        print(f"python: the environment for {os.path.basename(requirements)} ({expect['requirements']}): {'; '.join(parts)} ({seconds:.1f} s)", file=sys.stderr)


def differs(report, expect):
    """The columns where `report` differs from this driver in a way that
    matters: Python's major.minor (pickled code), the platform (the native
    module), the package versions and the requirements. A host of another
    Python or platform is not measured further: only those two count."""
    out = []
    for col in COLUMNS:
        mine, theirs = expect.get(col), report.get(col)
        if col == "python":
            mine, theirs = mine.rsplit(".", 1)[0], (theirs or "").rsplit(".", 1)[0]
        if mine != theirs:
            out.append(col)
        if col == "platform" and out:
            break
    return out


def mismatch(reports, expect, bad):
    """The error naming each host's fingerprint, and how to fix each difference."""
    rows = [("host", *COLUMNS), ("(this driver)", *[str(expect.get(c) or "-") for c in COLUMNS])]
    notes = {}
    for r in reports:
        if r.get("error"):
            notes[len(rows)] = f"(cannot run tasks: {r['error']})"
            rows.append((r["host"],) + ("",) * len(COLUMNS))
            continue
        d = differs(r, expect)
        measured = COLUMNS if not {"python", "platform"} & set(d) else COLUMNS[:2]
        rows.append((r["host"], *[(str(r.get(c) or "-") + (" *" if c in d else "")) if c in measured else "?" for c in COLUMNS]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), notes[i]] if i in notes else [cell.ljust(w) for cell, w in zip(row, widths)]
        lines.append("  " + "  ".join(cells).rstrip())
    table = "\n".join(lines)
    kinds = sorted({c for r in bad for c in differs(r, expect)}, key=COLUMNS.index)
    names = lambda kind: ", ".join(r["host"] for r in bad if kind in differs(r, expect))  # noqa: E731
    version = expect["python"].rsplit(".", 1)[0]
    first = lambda kind: next(r["host"] for r in bad if kind in differs(r, expect))  # noqa: E731
    fixes = {
        "python": lambda: (
            f"functions are pickled by this Python {version} and load only into the same major.minor: "
            f"give {names('python')} an interpreter of that version ([python] python = \"...\", or "
            f"python_on = {{ {first('python')} = \"/path/to/python{version}\" }} in the cluster file, or shoal.Context(python=...)), "
            "or run the program with the hosts' version"
        ),
        "platform": lambda: f"the shoal package's native module is built for {expect['platform']}: leave {names('platform')} out of the cluster file, or run the driver on their platform",
        "shoal": lambda: f"the tasks on {names('shoal')} import another shoal package than the one this driver sent: take it off their PYTHONPATH",
        "cloudpickle": lambda: f"the tasks on {names('cloudpickle')} import another cloudpickle than the one this driver sent: take it off their PYTHONPATH",
        "requirements": lambda: f"the environments on {names('requirements')} were built from other requirements: run the program again to rebuild them",
    }
    hints = "\n".join(f"  - {fixes[k]()}" for k in kinds)
    err = ShoalError(f"the hosts' Python differs from this driver's (* marks what differs):\n{table}\nto fix:\n{hints}")
    err.exit_code = 2
    return err


def cache_root():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "shoal", "wheels")


def wheelset(requirements, wheels):
    """The wheels of `requirements` for this interpreter: `(dir, files,
    id)`, got once by `pip wheel` and kept by a key of the interpreter,
    the requirements text and the local wheel directory's listing."""
    try:
        with open(requirements, "rb") as f:
            text = f.read()
    except OSError as e:
        raise config_error(f"[python] requirements = {requirements}: cannot read it ({e.strerror})", "give the path of a pip requirements file") from None
    if wheels and not os.path.isdir(wheels):
        raise config_error(f"[python] wheels = {wheels}: not a directory", "give a directory holding .whl files, or leave wheels out to use the package index")
    key = hashlib.sha256()
    for part in (sys.version, sysconfig.get_platform(), sys.executable, requirements):
        key.update(part.encode() + b"\0")
    key.update(text)
    if wheels:
        for name in sorted(os.listdir(wheels)):
            st = os.stat(os.path.join(wheels, name))
            key.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    cache = os.path.join(cache_root(), key.hexdigest()[:24])
    done = os.path.join(cache, ".complete")
    if not os.path.exists(done):
        tmp = f"{cache}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        cmd = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--quiet", "-r", requirements, "-w", tmp]
        if wheels:
            cmd += ["--no-index", "--find-links", wheels]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if out.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            text = out.stdout.decode("utf-8", "replace").strip()[-3000:]
            where = f"only from {wheels}" if wheels else "from the package index"
            raise config_error(
                f"[python] requirements = {requirements}: pip could not get their wheels ({where}):\n{text}",
                "the hosts need no internet, but this machine must reach the package index, or give a directory of wheels with [python] wheels = \"DIR\"",
            )
        files = sorted(n for n in os.listdir(tmp) if n.endswith(".whl"))
        # The id names the wheels' content; hashed once, when they are got.
        ident = hashlib.sha256()
        for name in files:
            ident.update(name.encode() + b"\0" + file_hash(os.path.join(tmp, name)) + b"\0")
        with open(os.path.join(tmp, ".complete"), "w") as f:
            json.dump({"files": files, "id": ident.hexdigest()[:16]}, f)
        shutil.rmtree(cache, ignore_errors=True)
        os.rename(tmp, cache)
    with open(done) as f:
        kept = json.load(f)
    return cache, kept["files"], kept["id"]


def file_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


def pip_wheel(wheels):
    """pip's own wheel, which the hosts install with: from the wheel
    directory, else this Python's `ensurepip`, else downloaded once."""
    found = sorted(glob.glob(os.path.join(wheels, "pip-*.whl"))) if wheels else []
    if not found:
        try:
            import ensurepip

            found = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl")))
        except ImportError:
            pass
    if not found:
        dest = os.path.join(cache_root(), "pip")
        found = sorted(glob.glob(os.path.join(dest, "pip-*.whl")))
        if not found:
            out = subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--no-deps", "pip", "-d", dest],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            found = sorted(glob.glob(os.path.join(dest, "pip-*.whl")))
            if out.returncode != 0 or not found:
                raise config_error("the hosts install their environment with pip's wheel, and this machine has none (no ensurepip, and pip download pip failed)",
                                   "put a pip-*.whl in the [python] wheels directory")
    return found[-1]


def stage(session_dir, cache, files, pip):
    """The wheels and pip's wheel in the session dir, to be synced (hard
    links where the file system allows: nothing is copied twice)."""
    for sub, names, src in ((WHEEL_DIR, files, cache), (PIP_DIR, [os.path.basename(pip)], os.path.dirname(pip))):
        dest = os.path.join(session_dir, sub)
        os.makedirs(dest, exist_ok=True)
        for name in names:
            target = os.path.join(dest, name)
            if os.path.exists(target):
                continue
            try:
                os.link(os.path.join(src, name), target)
            except OSError:
                shutil.copyfile(os.path.join(src, name), target)


def config_error(message, hint):
    err = ShoalError(f"{message}\n  hint: {hint}")
    err.exit_code = 2
    return err
