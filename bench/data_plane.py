#!/usr/bin/env python3
"""Where a shuffle's bytes go: direct (host to host) against relay (through
the driver), on N netns ssh test hosts of scripts/testcluster (root needed).

usage: bench/data_plane.py [--hosts 3 8] [--sort-mib 1024] [--wc-mib 256]
                           [--repeats 1] [--out bench/RESULTS-data.md]

Two jobs, each run with `data = "direct"` and with `data = "relay"` (the
relay is the only path Shoal had before the direct one, so its row is the
"before"):

- sort: the Rust Dataset example `sort` (sort_by_key) over 100-byte records
  (bench/systems/gen_records.py, seed 11);
- streaming word count: examples/wordcount-streaming (Python mapper, the
  reducer as combiner, 4 reducers) over a Zipf-like corpus (seed 42).

For each run it sums, over the summaries of the runs the program made
(`.shoal/runs/*/summary.json`), the shuffle bytes that crossed the driver
(`via_driver_bytes`), those that went host to host (`direct_bytes`), and
the input bytes the driver sent (inputs are not read in place yet, so
those cross the driver either way), and it checks the answer: the sort's
output is the input's lines in order, the word count equals a count made
here. The test hosts share this machine's cores and its one kernel:
direct and relay move the same bytes through the same loopback-speed
bridge, so the wall times say what each path costs in CPU, not what a
real network's links would allow (bench/shuffle_model.py models that).
"""
import argparse
import collections
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
TESTCLUSTER = os.path.join(ROOT, "scripts", "testcluster")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
SHOAL = os.path.join(TARGET, "release", "shoal")
SORT = os.path.join(TARGET, "release", "examples", "sort")
PEER = os.path.join(TARGET, "release", "examples", "peer_throughput")
WORK = "/tmp/shoal-bench-data-plane"
CLUSTER_DIR = "/tmp/shoal-bench-data-plane-cluster"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def corpus(path, mib, seed=42):
    """Lines of 1-12 words drawn from a Zipf-like vocabulary of 50,000."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(50_000)]
    cum, total = [], 0.0
    for i in range(len(vocab)):
        total += 1 / (i + 1)
        cum.append(total)
    with open(path, "w") as f:
        written = 0
        while written < mib << 20:
            words = rng.choices(vocab, cum_weights=cum, k=4096)
            lines, i = [], 0
            while i < len(words):
                n = rng.randint(1, 12)
                lines.append(" ".join(words[i:i + n]))
                i += n
            text = "\n".join(lines) + "\n"
            f.write(text)
            written += len(text)


def cluster(n):
    out = sh([TESTCLUSTER, "up", str(n), "--dir", CLUSTER_DIR], capture_output=True, text=True)
    base = open(out.stdout.strip()).read()
    files = {}
    for mode in ("direct", "relay"):
        files[mode] = os.path.join(WORK, f"cluster-{n}-{mode}.toml")
        with open(files[mode], "w") as f:
            f.write(f'data = "{mode}"\n{base}')
    return files


def bytes_of(state):
    """Sums the summaries of every run under a state dir."""
    total = collections.Counter()
    for path in glob.glob(os.path.join(state, "runs", "*", "summary.json")):
        s = json.load(open(path))
        total["input"] += s.get("input_bytes_sent", 0)
        sh_ = s.get("shuffle") or {}
        total["relayed"] += sh_.get("via_driver_bytes", 0)
        total["direct"] += sh_.get("direct_bytes", 0)
        total["refused"] += sh_.get("refused_connections", 0)
    return total


def run_sort(cluster_file, records, d):
    out = os.path.join(d, "sorted")
    t = time.monotonic()
    sh([SORT, "--cluster", cluster_file, records, out], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t
    parts = sorted(glob.glob(os.path.join(out, "part-*"))) if os.path.isdir(out) else [out]
    got = b"".join(open(p, "rb").read() for p in parts).splitlines()
    want = open(records, "rb").read().splitlines()
    ok = len(got) == len(want) and all(got[i][:10] <= got[i + 1][:10] for i in range(len(got) - 1)) \
        and collections.Counter(got) == collections.Counter(want)
    return wall, ok


def run_wordcount(cluster_file, text, d, where=None, env=None):
    """examples/wordcount-streaming over `text` in `d/job`, on the cluster
    file (or `where`: other flags, such as `--on NAME`); returns the wall
    time, whether the counts are right, and the job's state dir."""
    job = os.path.join(d, "job")
    shutil.copytree(os.path.join(ROOT, "examples", "wordcount-streaming"), job, dirs_exist_ok=True)
    os.makedirs(os.path.join(job, "data"), exist_ok=True)
    shutil.copy(text, os.path.join(job, "data", "corpus.txt"))
    t = time.monotonic()
    sh([SHOAL, "run", "job.toml"] + (where or ["--cluster", cluster_file]), cwd=job, env=env, stdout=subprocess.DEVNULL,
       stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t
    got = {}
    for line in open(os.path.join(job, "out", "counts.tsv")):
        w, n = line.rstrip("\n").split("\t")
        got[w] = int(n)
    want = collections.Counter(w.lower() for line in open(text) for w in line.split())
    return wall, got == dict(want), os.path.join(job, ".shoal")


def per_byte_costs(cluster_file, d, size_mib=256):
    """The two paths' throughput on this machine, for bench/shuffle_model.py:
    the relay moves each byte over two ssh links of the driver (fetched from
    the map's host, uploaded to the reducer's), timed as a `shoal pull` and
    a `shoal push` of one file with one host (less an empty file's time:
    connecting); the direct path is `peer_throughput` (one Noise fetch)."""
    os.makedirs(d, exist_ok=True)
    big, empty = os.path.join(d, "big"), os.path.join(d, "empty")
    with open(big, "wb") as f:
        f.write(os.urandom(size_mib << 20))
    open(empty, "w").close()

    def timed(*args):
        t = time.monotonic()
        sh([SHOAL, *args, "--cluster", cluster_file, "--hosts", "h1"], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.monotonic() - t

    push = timed("push", big, "--to", "bench-big") - timed("push", empty, "--to", "bench-empty")
    pull = timed("pull", "bench-big/big", "--to", "pulled") - timed("pull", "bench-empty/empty", "--to", "pulled-empty")
    mb = (size_mib << 20) / 1e6
    relay = 1 / (push / mb + pull / mb)
    out = sh([PEER, str(size_mib * 2)], capture_output=True, text=True).stdout
    direct = float(out.split()[0])
    return {"relay_mbps": round(relay), "direct_mbps": round(direct), "push_mbps": round(mb / push), "pull_mbps": round(mb / pull)}


def mib(n):
    return f"{n / (1 << 20):,.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[3, 8])
    ap.add_argument("--sort-mib", type=int, default=1024)
    ap.add_argument("--wc-mib", type=int, default=256)
    ap.add_argument("--out", default=os.path.join(BENCH, "RESULTS-data.md"))
    args = ap.parse_args()
    for exe in (SHOAL, SORT, PEER):
        if not os.path.exists(exe):
            sys.exit(f"{exe} is missing: cargo build --release -p shoal-cli -p shoal --example sort --example peer_throughput")
    os.makedirs(WORK, exist_ok=True)
    records, text = os.path.join(WORK, "records.txt"), os.path.join(WORK, "corpus.txt")
    if not os.path.exists(records) or os.path.getsize(records) < args.sort_mib << 20:
        sh([sys.executable, os.path.join(BENCH, "systems", "gen_records.py"), str(args.sort_mib << 20), "11"],
           stdout=open(records, "w"))
    if not os.path.exists(text) or os.path.getsize(text) < args.wc_mib << 20:
        corpus(text, args.wc_mib)
    rows = []
    costs = None
    try:
        for n in args.hosts:
            files = cluster(n)
            if costs is None:
                costs = per_byte_costs(files["direct"], os.path.join(WORK, "costs"))
                print(f"per-byte costs: {costs}", file=sys.stderr)
            for job in ("sort", "wordcount"):
                for mode in ("relay", "direct"):
                    d = os.path.join(WORK, f"{job}-{n}-{mode}")
                    shutil.rmtree(d, ignore_errors=True)
                    os.makedirs(d)
                    # Every host starts with an empty block cache, so that
                    # no bucket is skipped for having been moved before.
                    for h in range(1, n + 1):
                        shutil.rmtree(os.path.join(CLUSTER_DIR, f"h{h}", "work", "blocks"), ignore_errors=True)
                    if job == "sort":
                        wall, ok = run_sort(files[mode], records, d)
                        b = bytes_of(os.path.join(d, ".shoal"))
                    else:
                        wall, ok, state = run_wordcount(files[mode], text, d)
                        b = bytes_of(state)
                    print(f"{job} on {n} hosts, {mode}: {wall:.1f} s, shuffle via driver {mib(b['relayed'])} MiB, "
                          f"direct {mib(b['direct'])} MiB, input sent {mib(b['input'])} MiB, answer {'ok' if ok else 'WRONG'}",
                          file=sys.stderr)
                    rows.append((job, n, mode, wall, b, ok))
    finally:
        subprocess.run([TESTCLUSTER, "down", "--dir", CLUSTER_DIR], capture_output=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "## Shuffle data path: direct against relay",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores of {cpu} by "
        f"`bench/data_plane.py --hosts {' '.join(map(str, args.hosts))} --sort-mib {args.sort_mib} --wc-mib {args.wc_mib}`, "
        "one run each, every host's block cache emptied before each run. sort: the Rust `sort` example (sort_by_key) "
        f"over {args.sort_mib} MiB of 100-byte records; word count: examples/wordcount-streaming (Python mapper and "
        f"combiner, 4 reducers) over a {args.wc_mib} MiB corpus. The relay row is Shoal before the direct path.",
        "",
        "| job | hosts | data | wall s | shuffle MiB via driver | shuffle MiB host to host | input MiB sent by the driver | answer |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for job, n, mode, wall, b, ok in rows:
        lines.append(f"| {job} | {n} | {mode} | {wall:.1f} | {mib(b['relayed'])} | {mib(b['direct'])} | {mib(b['input'])} | "
                     f"{'checked' if ok else 'WRONG'} |")
    lines += ["", "All test hosts share this machine's cores: the wall times compare CPU costs of the two paths, not "
              "network links (see bench/shuffle_model.py for links).", "",
              f"Per-byte costs on this machine: the relay moves {costs['relay_mbps']} MB/s through the driver (a `shoal pull` "
              f"from a host at {costs['pull_mbps']} MB/s and a `shoal push` to one at {costs['push_mbps']} MB/s, each byte "
              f"crossing both), a direct fetch {costs['direct_mbps']} MB/s (`peer_throughput`: one Noise fetch, both ends "
              "on this machine). With these, `bench/shuffle_model.py --measured bench/data_plane.json` gives:", ""]
    with open(os.path.join(BENCH, "data_plane.json"), "w") as f:
        json.dump(costs, f)
    model = sh([sys.executable, os.path.join(BENCH, "shuffle_model.py"), "--measured", os.path.join(BENCH, "data_plane.json")],
               capture_output=True, text=True).stdout
    lines += model.strip().splitlines()
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not all(r[5] for r in rows):
        sys.exit("a wrong answer (above)")


if __name__ == "__main__":
    main()
