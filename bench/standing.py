#!/usr/bin/env python3
"""A standing cluster against ephemeral runs, on 3 netns ssh test hosts of
scripts/testcluster (root needed), side by side in one run.

usage: bench/standing.py [--tiny 2000] [--wc-mib 64] [--repeats 5]
                         [--out bench/RESULTS-standing.md]

- Latency: `shoal run` of a 1-task job, from the moment the command is
  started to the moment its task starts (the task writes the clock to a
  file; all hosts share this machine's clock) and to the end, ephemeral
  (`--cluster`, a connect and agent start per host per run) against `--on`
  a standing cluster (`shoal cluster up` beforehand). Median of --repeats.
- Sharing: two applications of --tiny tiny tasks each (`true` per task)
  submitted at once to the standing cluster, against the same two run one
  after the other; from their summaries, how many slots each held over
  time (attempts running, per 100 ms), and the total times.
- Throughput: one application of --tiny tiny tasks, and the streaming word
  count (examples/wordcount-streaming over a --wc-mib Zipf corpus), each
  ephemeral and standing.

The test hosts share this machine's 2 cores and its kernel: these compare
what each mode costs, not a real network.
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
TESTCLUSTER = os.path.join(ROOT, "scripts", "testcluster")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
SHOAL = os.path.join(TARGET, "release", "shoal")
WORK = "/tmp/shoal-bench-standing"
CLUSTER_DIR = "/tmp/shoal-bench-standing-cluster"
HOME = os.path.join(WORK, "home")
NAME = "bench"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def env():
    e = dict(os.environ, HOME=HOME, NO_COLOR="1")
    e.pop("SHOAL_CLUSTER", None)
    e.pop("SHOAL_ON", None)
    return e


def shoal(args, cwd, check=True):
    return subprocess.run([SHOAL] + args, cwd=cwd, env=env(), check=check, capture_output=True, text=True)


def where(mode, cluster_file):
    return ["--cluster", cluster_file] if mode == "ephemeral" else ["--on", NAME]


def latency(mode, cluster_file, d):
    """(ms to the task's start, ms to the end) of one 1-task run."""
    os.makedirs(d, exist_ok=True)
    stamp = os.path.join(d, "started")
    with open(os.path.join(d, "job.toml"), "w") as f:
        f.write(f'[job]\nname = "one"\n[input]\nargs = ["x"]\n[map]\ncommand = "true {{}}; date +%s%N > {stamp}"\n'
                '[output]\npath = "out.txt"\n')
    if os.path.exists(stamp):
        os.remove(stamp)
    t0 = time.time_ns()
    shoal(["run", "job.toml", "--json"] + where(mode, cluster_file), d)
    t1 = time.time_ns()
    started = int(open(stamp).read().strip())
    return (started - t0) / 1e6, (t1 - t0) / 1e6


def tiny_job(d, name, n):
    os.makedirs(d, exist_ok=True)
    args = ", ".join(f'"{i}"' for i in range(n))
    with open(os.path.join(d, "job.toml"), "w") as f:
        f.write(f'[job]\nname = "{name}"\n[input]\nargs = [{args}]\n[map]\ncommand = "true"\n'
                '[output]\npath = "out.txt"\n')


def summaries(d):
    return [json.load(open(p)) for p in glob.glob(os.path.join(d, ".shoal", "runs", "*", "summary.json"))]


def concurrency(summary, step_ms=100):
    """Tasks finished in each step_ms of a run, from its attempts (ms since its start)."""
    end = max((a.get("end_ms") or 0) for a in summary["attempts"]) if summary["attempts"] else 0
    steps = [0] * (end // step_ms + 1)
    for a in summary["attempts"]:
        if a.get("end_ms") is not None:
            steps[a["end_ms"] // step_ms] += 1
    return summary["started_unix_ms"], steps


def wordcount(mode, cluster_file, corpus_path, d):
    """Wall seconds of examples/wordcount-streaming over the corpus (the
    answer checked against a count made here)."""
    from data_plane import run_wordcount
    shutil.rmtree(d, ignore_errors=True)
    wall, ok, _ = run_wordcount(cluster_file, corpus_path, d, where=where(mode, cluster_file), env=env())
    if not ok:
        sys.exit(f"the word count on {mode} is wrong")
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", type=int, default=2000)
    ap.add_argument("--wc-mib", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(BENCH, "RESULTS-standing.md"))
    args = ap.parse_args()
    if not os.path.exists(SHOAL):
        sys.exit(f"{SHOAL} is missing: cargo build --release -p shoal-cli")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(HOME)
    out = sh([TESTCLUSTER, "up", "3", "--dir", CLUSTER_DIR], capture_output=True, text=True)
    cluster_file = out.stdout.strip()
    results = {}
    try:
        up = shoal(["cluster", "up", "--name", NAME, "--cluster", cluster_file, "--json"], WORK)
        print(f"cluster up: {json.loads(up.stdout)['coordinator']}", file=sys.stderr)
        # Latency, interleaved so that both modes see the same machine.
        lat = {"ephemeral": [], "standing": []}
        for i in range(args.repeats):
            for mode in ("ephemeral", "standing"):
                lat[mode].append(latency(mode, cluster_file, os.path.join(WORK, f"lat-{mode}-{i}")))
        results["latency"] = {m: {"first_task_ms": statistics.median(x[0] for x in v), "end_ms": statistics.median(x[1] for x in v),
                                  "runs": v} for m, v in lat.items()}
        print(f"latency: {results['latency']}", file=sys.stderr)
        # Tiny-task throughput, one application.
        tiny = {}
        for mode in ("ephemeral", "standing"):
            d = os.path.join(WORK, f"tiny-{mode}")
            tiny_job(d, f"tiny-{mode}", args.tiny)
            t0 = time.time()
            shoal(["run", "job.toml", "--json"] + where(mode, cluster_file), d)
            tiny[mode] = time.time() - t0
        results["tiny"] = tiny
        print(f"tiny: {tiny}", file=sys.stderr)
        # Two applications at once, and one after the other.
        da, db = os.path.join(WORK, "share-a"), os.path.join(WORK, "share-b")
        tiny_job(da, "share-a", args.tiny)
        tiny_job(db, "share-b", args.tiny)
        t0 = time.time()
        pa = subprocess.Popen([SHOAL, "run", "job.toml", "--json", "--on", NAME], cwd=da, env=env(), stdout=subprocess.PIPE)
        pb = subprocess.Popen([SHOAL, "run", "job.toml", "--json", "--on", NAME], cwd=db, env=env(), stdout=subprocess.PIPE)
        pa.communicate()
        pb.communicate()
        together = time.time() - t0
        t0 = time.time()
        for d in (da, db):
            shoal(["run", "job.toml", "--json", "--on", NAME], d)
        apart = time.time() - t0
        sa, sb = sorted(summaries(da), key=lambda s: s["started_unix_ms"])[0], sorted(summaries(db), key=lambda s: s["started_unix_ms"])[0]
        (a0, ca), (b0, cb) = concurrency(sa), concurrency(sb)
        base = min(a0, b0)
        timeline = []
        for i in range(max(len(ca) + (a0 - base) // 100, len(cb) + (b0 - base) // 100)):
            ia, ib = i - (a0 - base) // 100, i - (b0 - base) // 100
            timeline.append((i * 100, ca[ia] if 0 <= ia < len(ca) else 0, cb[ib] if 0 <= ib < len(cb) else 0))
        results["sharing"] = {"together_s": together, "apart_s": apart, "timeline": timeline,
                              "wall_a_ms": sa["wall_ms"], "wall_b_ms": sb["wall_ms"]}
        print(f"sharing: together {together:.2f} s, apart {apart:.2f} s", file=sys.stderr)
        # Word count.
        from data_plane import corpus
        text = os.path.join(WORK, "corpus.txt")
        corpus(text, args.wc_mib)
        results["wordcount"] = {m: wordcount(m, cluster_file, text, os.path.join(WORK, f"wc-{m}")) for m in ("ephemeral", "standing")}
        print(f"wordcount: {results['wordcount']}", file=sys.stderr)
    finally:
        subprocess.run([SHOAL, "cluster", "down", "--name", NAME], cwd=WORK, env=env(), capture_output=True)
        subprocess.run([TESTCLUSTER, "down", "--dir", CLUSTER_DIR], capture_output=True)
    with open(os.path.join(BENCH, "standing.json"), "w") as f:
        json.dump(results, f, indent=1)
    write(results, args)


def write(r, args):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lat = r["latency"]
    lines = [
        "## A standing cluster against ephemeral runs",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores of {cpu} by "
        f"`bench/standing.py --tiny {args.tiny} --wc-mib {args.wc_mib} --repeats {args.repeats}`, on 3 netns ssh test hosts "
        "(scripts/testcluster) that share this machine's cores. Ephemeral: `shoal run --cluster` (ssh connect and agent "
        "start per host per run); standing: `shoal run --on` a cluster started once by `shoal cluster up`.",
        "",
        "| measure | ephemeral | standing | standing / ephemeral |",
        "|---|---:|---:|---:|",
        f"| 1-task job: `shoal run` to its task's start, ms (median of {args.repeats}) | {lat['ephemeral']['first_task_ms']:.0f} | "
        f"{lat['standing']['first_task_ms']:.0f} | {lat['standing']['first_task_ms'] / lat['ephemeral']['first_task_ms']:.2f}x |",
        f"| 1-task job: `shoal run` to its end, ms | {lat['ephemeral']['end_ms']:.0f} | {lat['standing']['end_ms']:.0f} | "
        f"{lat['standing']['end_ms'] / lat['ephemeral']['end_ms']:.2f}x |",
        f"| {args.tiny} tiny tasks (`true`), s | {r['tiny']['ephemeral']:.2f} | {r['tiny']['standing']:.2f} | "
        f"{r['tiny']['standing'] / r['tiny']['ephemeral']:.2f}x |",
        f"| streaming word count, {args.wc_mib} MiB, s | {r['wordcount']['ephemeral']:.2f} | {r['wordcount']['standing']:.2f} | "
        f"{r['wordcount']['standing'] / r['wordcount']['ephemeral']:.2f}x |",
        "",
        f"Two applications of {args.tiny} tiny tasks each on the standing cluster: submitted at once, both done in "
        f"{r['sharing']['together_s']:.2f} s; one after the other, {r['sharing']['apart_s']:.2f} s. Tasks finished "
        "in a 100 ms step by each application (from their summaries, on one clock; one step in every few shown; 6 slots in "
        "all, divided 3 and 3 while both run):",
        "",
        "| ms | application a | application b |",
        "|---:|---:|---:|",
    ]
    tl = r["sharing"]["timeline"]
    stride = max(1, len(tl) // 25)
    for ms, a, b in tl[::stride]:
        lines.append(f"| {ms} | {a} | {b} |")
    lines.append("")
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
