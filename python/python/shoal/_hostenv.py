"""A host's side of the Python check, before any job of a program runs:
`python -I .shoal-python/shoal/_hostenv.py SETUP.json`, run once on every
host by the driver (`shoal._environment`) with the interpreter it chose
for that host. Standard library only, and no newer syntax than Python
3.6 allows: it must report on any interpreter, even one the job cannot
use.

It prints one JSON line: the host's fingerprint (Python version,
platform, the `shoal` and `cloudpickle` versions the tasks will import,
the requirements' id) and the interpreter the tasks are to use. With
requirements, that interpreter is a virtual environment's, kept under the
agent's work dir (`$SHOAL_AGENT_DIR/python-envs/<key>`), where `<key>`
hashes this interpreter, its version and platform, and the set of wheels:

- it is built once, offline, from the wheels the driver shipped with the
  job (`pip` itself comes as one of them), and reused by every later
  program with the same key; a build is done under a lock (two programs
  starting at once build it once) and counts only once complete;
- environments not used for `STALE_SECONDS`, beyond the `KEEP` most
  recently used, are removed;
- when the build fails, the line carries the installer's error and the
  driver leaves this host out.
"""

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import time

#: Environments always kept, most recently used first.
KEEP = 4
#: An environment beyond `KEEP` is removed once unused for this long.
STALE_SECONDS = 7 * 24 * 3600
#: Marks a complete environment (and when it was last used, by its mtime).
COMPLETE = ".shoal-complete"
#: The most of an installer's output a report carries.
ERROR_TAIL = 3000

#: Run by the interpreter the tasks will use, with the synced package first
#: on its path, exactly as a task imports it.
FINGERPRINT = r"""
import json, os, sys, sysconfig
out = {"python": "%d.%d.%d" % sys.version_info[:3], "platform": sysconfig.get_platform()}
try:
    import cloudpickle
    out["cloudpickle"] = cloudpickle.__version__
except Exception as e:
    out["cloudpickle"] = None
    out["error"] = "cannot import cloudpickle: %s: %s" % (type(e).__name__, e)
try:
    import shoal
    from shoal import _native
    out["shoal"] = _native.__version__
except Exception as e:
    out["shoal"] = None
    out.setdefault("error", "cannot import the shoal package: %s: %s" % (type(e).__name__, e))
try:
    with open(os.path.join(sys.prefix, ".shoal-complete")) as f:
        out["requirements"] = json.load(f)["requirements"]
except Exception:
    out["requirements"] = None
print(json.dumps(out))
"""


def main(argv):
    with open(argv[1]) as f:
        setup = json.load(f)
    started = time.time()
    report = {"host": os.environ.get("SHOAL_HOST", platform.node()), "built": False}
    report.update(own_fingerprint())
    expect = setup["expect"]
    if report["python"].rsplit(".", 1)[0] != expect["python"] or report["platform"] != expect["platform"]:
        # Nothing is built for an interpreter the driver will refuse.
        print(json.dumps(report))
        return
    # The driver set it for this host; the tasks will run it.
    interpreter = os.environ.get("SHOAL_PYTHON") or "python3"
    if setup.get("requirements"):
        try:
            interpreter, report["built"] = environment(setup)
        except BuildError as e:
            report["error"] = str(e)
            print(json.dumps(report))
            return
    report["interpreter"] = interpreter
    report.update(task_fingerprint(interpreter, setup["package"]))
    report["seconds"] = round(time.time() - started, 3)
    print(json.dumps(report))


def own_fingerprint():
    return {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "platform": sysconfig.get_platform(),
        "executable": os.path.realpath(sys.executable),
    }


def task_fingerprint(interpreter, package):
    """The fingerprint as a task sees it: `interpreter` importing the
    synced package first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.abspath(package) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        out = subprocess.run([interpreter, "-c", FINGERPRINT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": "cannot run %s: %s" % (interpreter, e)}
    if out.returncode != 0:
        return {"error": "%s failed to start: %s" % (interpreter, tail(out.stderr))}
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


class BuildError(Exception):
    pass


def environment(setup):
    """The interpreter of the environment for `setup`'s requirements,
    built now unless it exists; and whether it was built now."""
    home = os.environ.get("SHOAL_AGENT_DIR")
    if not home:
        raise BuildError("SHOAL_AGENT_DIR is not set: this agent is older than the driver")
    root = os.path.join(home, "python-envs")
    os.makedirs(root, mode=0o700, exist_ok=True)
    mine = own_fingerprint()
    key = hashlib.sha256(
        json.dumps([mine["python"], mine["platform"], mine["executable"], setup["requirements"]]).encode()
    ).hexdigest()[:24]
    env = os.path.join(root, key)
    python = os.path.join(env, "bin", "python")
    with open(env + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        complete = os.path.join(env, COMPLETE)
        built = False
        if not os.path.exists(complete):
            build(env, setup)
            with open(complete + ".tmp", "w") as f:
                json.dump({"requirements": setup["requirements"], "wheels": sorted(setup["wheels"])}, f)
            os.rename(complete + ".tmp", complete)
            built = True
        os.utime(complete)
    collect_garbage(root, keep=key)
    return python, built


def build(env, setup):
    """A fresh environment at `env` with every shipped wheel installed,
    offline; a failed build leaves nothing behind."""
    shutil.rmtree(env, ignore_errors=True)
    wheels = os.path.abspath(setup["wheel_dir"])
    pip = os.path.join(os.path.abspath(setup["pip"]), "pip")
    steps = [
        [sys.executable, "-m", "venv", "--without-pip", env],
        [os.path.join(env, "bin", "python"), pip, "install", "--no-index", "--find-links", wheels,
         "--no-cache-dir", "--disable-pip-version-check", "--no-warn-script-location", "--quiet"]
        + [os.path.join(wheels, w) for w in sorted(setup["wheels"])],
    ]
    for step in steps:
        env_vars = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
        try:
            out = subprocess.run(step, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env_vars, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            shutil.rmtree(env, ignore_errors=True)
            raise BuildError("%s: %s" % (" ".join(step[:3]), e))
        if out.returncode != 0:
            shutil.rmtree(env, ignore_errors=True)
            what = "python -m venv" if step[1] == "-m" else "pip install (offline, from the shipped wheels)"
            raise BuildError("%s failed (exit %d): %s" % (what, out.returncode, tail(out.stdout)))


def collect_garbage(root, keep):
    """Removes environments unused for `STALE_SECONDS`, beyond the `KEEP`
    most recently used; never `keep`, nor one being built (locked)."""
    found = []
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if name.endswith(".lock") or name == keep or not os.path.isdir(path):
            continue
        try:
            used = os.path.getmtime(os.path.join(path, COMPLETE))
        except OSError:
            used = os.path.getmtime(path)
        found.append((used, name))
    found.sort(reverse=True)
    now = time.time()
    for used, name in found[max(0, KEEP - 1):]:
        if now - used < STALE_SECONDS:
            continue
        with open(os.path.join(root, name + ".lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def tail(raw):
    text = raw.decode("utf-8", "replace").strip()
    return text if len(text) <= ERROR_TAIL else "..." + text[-ERROR_TAIL:]


if __name__ == "__main__":
    main(sys.argv)
