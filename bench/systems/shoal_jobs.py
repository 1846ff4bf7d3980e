#!/usr/bin/env python3
"""The Shoal Python side of bench/run: the programs a Python user writes with
the `shoal` package (python/ at the repo root, `pip install ./python`), in
the form issue 18 sets its speed targets for. Each runs the whole job from
this one driver process, as a user's script does: its wall time includes
starting the agents on this machine.

usage: shoal_jobs.py check
       shoal_jobs.py wordcount INPUT OUTPUT.tsv [FLAGS]
       shoal_jobs.py tiny N [FLAGS]

FLAGS are the Dataset program's (`--quiet`, `--partitions N`, ...), read by
shoal.Context() from the command line like any Shoal program's; the other
words are `sc.args`. Runs under bench/.venv-shoal's python (bench/install
shoal-python); nothing is reached over the network.
"""
import sys

import shoal


def wordcount(sc, inp, out):
    """The textbook form of issue 18, word for word: one generic flat_map,
    map and reduce_by_key of Python lambdas, no hand-tuned combining."""
    counts = (sc.text_file(inp)
                .flat_map(lambda line: line.lower().split())
                .map(lambda w: (w, 1))
                .reduce_by_key(lambda a, b: a + b)
                .collect())
    with open(out, "w") as f:
        for word, n in counts:
            f.write(f"{word}\t{n}\n")


def tiny(sc, n):
    """n no-op Python tasks: one partition (so one task) per element, as in
    Spark's and Dask's rows."""
    got = sc.parallelize(range(n), n).map(lambda x: x).count()
    if got != n:
        sys.exit(f"shoal tiny: counted {got}, want {n}")
    print(got)


def check(sc):
    got = sc.parallelize(range(100), 2).map(lambda x: x * 2).reduce(lambda a, b: a + b)
    if got != 9900:
        sys.exit(f"shoal check: the sum of 2x over range(100) came back as {got!r}, not 9900")
    print(f"shoal {shoal.__version__} ok")


def main():
    jobs = {"check": (check, 0), "wordcount": (wordcount, 2), "tiny": (lambda sc, n: tiny(sc, int(n)), 1)}
    with shoal.Context() as sc:
        args = list(sc.args)
        if not args or args[0] not in jobs or len(args) - 1 != jobs[args[0]][1]:
            sys.exit(__doc__)
        jobs[args[0]][0](sc, *args[1:])


if __name__ == "__main__":
    main()
