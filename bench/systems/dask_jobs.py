#!/usr/bin/env python3
"""The Dask side of bench/run: each job on a fresh dask.distributed
LocalCluster of one single-threaded worker process per core, the set-up a
Dask user picks to get past the GIL. Its wall time includes starting the
cluster, as a user's script would.

usage: dask_jobs.py check
       dask_jobs.py wordcount INPUT OUTPUT.tsv
       dask_jobs.py tiny N

Runs under bench/.venv's python (bench/install). Binds to 127.0.0.1 only;
no dashboard.
"""
import logging
import os
import sys


def cluster():
    from dask.distributed import Client, LocalCluster

    workers = int(os.environ.get("BENCH_DASK_WORKERS", os.cpu_count()))
    c = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                     host="127.0.0.1", silence_logs=logging.ERROR)
    return c, Client(c)


def tokens(line):
    """The harness-wide tokenizing: whitespace split, each word lowercased."""
    return [w.lower() for w in line.split()]


def wordcount(client, inp, out):
    """dask.bag: read_text in blocks (its default is one partition per
    file, which would leave a core idle), then frequencies(), which counts
    per partition and merges the small per-partition tables."""
    import dask.bag as db

    size = os.path.getsize(inp)
    # About 4 blocks per worker, between 1 MiB and 64 MiB.
    block = min(64 << 20, max(1 << 20, size // (4 * len(client.scheduler_info()["workers"]))))
    counts = db.read_text(inp, blocksize=block).map(tokens).flatten().frequencies().compute()
    with open(out, "w") as f:
        for word, n in counts:
            f.write(f"{word}\t{n}\n")


def noop(x):
    return x


def tiny(client, n):
    """n no-op tasks through client.map (pure=False: no result caching)."""
    got = client.gather(client.map(noop, range(n), pure=False))
    if len(got) != n:
        sys.exit(f"dask tiny: {len(got)} results, want {n}")
    print(len(got))


def check(client):
    assert client.submit(sum, [1, 2, 3]).result() == 6
    import dask
    print(f"dask {dask.__version__} LocalCluster of {len(client.scheduler_info()['workers'])} workers ok")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    jobs = {"check": (check, 0), "wordcount": (wordcount, 2), "tiny": (lambda c, n: tiny(c, int(n)), 1)}
    if cmd not in jobs or len(args) != jobs[cmd][1]:
        sys.exit(__doc__)
    c, client = cluster()
    try:
        jobs[cmd][0](client, *args)
    finally:
        client.close()
        c.close()


if __name__ == "__main__":
    main()
