"""How long the Python package takes to provision the hosts' environment
from a requirements file: the first run (wheels fetched from the package
index by the driver, shipped, and a virtual environment built offline on
every host) and the second (everything reused), on the 3 network-namespace
ssh test hosts of scripts/testcluster (needs root).

    target/python-venv/bin/python bench/provision.py [--runs 3]

Each first run starts clean: no environment on any host (their
`python-envs/` are removed), an interpreter with only the standard
library, and an empty wheel cache on the driver. The program is a 12-task job whose tasks import every
requirement. Prints a Markdown table for bench/RESULTS.md.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = "requests==2.32.3\npython-dateutil==2.9.0.post0\nattrs==24.2.0\ntomli==2.0.2\n"
MODULES = ["requests", "dateutil", "attrs", "tomli"]
PROGRAM = """
import importlib, sys
import shoal

with shoal.Context() as sc:
    def probe(x):
        return tuple(importlib.import_module(m).__name__ for m in %r) + ("/python-envs/" in sys.prefix,)
    print(sorted(set(sc.range(0, 12, 12).map(probe).collect())))
""" % (MODULES,)


def run(cmd, **kw):
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="first/second pairs to measure (default 3)")
    args = ap.parse_args()
    # The tests' cluster (one cluster at a time: the namespaces are named alike).
    cluster_dir = os.environ.get("SHOAL_TESTCLUSTER_DIR") or os.path.join(tempfile.gettempdir(), "shoal-testcluster-tests")
    up = run([os.path.join(ROOT, "scripts/testcluster"), "up", "3", "--dir", cluster_dir])
    base = up.stdout.strip().splitlines()[-1]
    with open(base) as f:
        cluster_text = f.read()
    rows = []
    for i in range(args.runs):
        for h in ("h1", "h2", "h3"):
            shutil.rmtree(os.path.join(cluster_dir, h, "work", "python-envs"), ignore_errors=True)
        with tempfile.TemporaryDirectory() as d:
            bare = os.path.join(d, "bare")
            run([sys.executable, "-m", "venv", "--without-pip", bare])
            with open(os.path.join(d, "requirements.txt"), "w") as f:
                f.write(REQUIREMENTS)
            with open(os.path.join(d, "probe.py"), "w") as f:
                f.write(PROGRAM)
            with open(os.path.join(d, "cluster.toml"), "w") as f:
                f.write(cluster_text + f'\n[python]\npython = "{bare}/bin/python"\nrequirements = "requirements.txt"\n')
            env = dict(os.environ, XDG_CACHE_HOME=os.path.join(d, "cache"))
            env.pop("PYTHONPATH", None)
            times = []
            for which in ("first", "second"):
                t = time.monotonic()
                out = run([sys.executable, "probe.py", "--cluster", "cluster.toml"], cwd=d, env=env)
                wall = time.monotonic() - t
                line = next(l for l in out.stderr.splitlines() if l.startswith("python: the environment"))
                want = "built on h1, h2, h3" if which == "first" else "reused on h1, h2, h3"
                if want not in line or "True" not in out.stdout:
                    sys.exit(f"unexpected {which} run:\n{out.stdout}{out.stderr}")
                setup = float(re.search(r"\(([0-9.]+) s\)$", line).group(1))
                times.append((wall, setup))
            rows.append(times)
            print(f"pair {i + 1}: first {times[0][0]:.2f} s (hosts {times[0][1]:.2f} s), second {times[1][0]:.2f} s (hosts {times[1][1]:.2f} s)", file=sys.stderr)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bench/provision.py --runs {args.runs}`: "
          f"3 ssh test hosts, requirements {', '.join(l for l in REQUIREMENTS.split())} (9 wheels with their dependencies), "
          "hosts with only the standard library; median of the runs.\n")
    print("| run | program wall s | of it, the hosts' check and build s |")
    print("|---|---|---|")
    for k, name in ((0, "first (wheels from the index, environments built)"), (1, "second (all reused)")):
        print(f"| {name} | {med([r[k][0] for r in rows]):.2f} | {med([r[k][1] for r in rows]):.2f} |")


if __name__ == "__main__":
    main()
