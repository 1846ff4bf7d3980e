#!/usr/bin/env python3
"""The floor of a Python word count on this machine: how fast the textbook
chain (`flat_map(lambda line: line.lower().split())`, `map(lambda w: (w, 1))`,
`reduce_by_key(lambda a, b: a + b)`) can run in plain CPython, with no engine
around it, in one process per core over byte ranges of the corpus.

usage: bench/python_floor.py CORPUS [--procs N] [--batch LINES] [--only LIST] [--repeats N]

It answers what Shoal's Python executor must do for the issue-18 target (2x
faster than PySpark RDD and Dask bag): whatever the executor adds (reading
records from Rust, encoding the map output, the shuffle) comes on top of
the fastest of these ways of running the user's functions. Each variant is:

  read      the lines only: blocks of bytes, decoded, split into lists of
            --batch lines (what native `read_lines` hands Python); the cost
            every other variant pays too.
  generic   the chain as separate generic batch ops, as a naive executor
            runs a stage: `[y for x in batch for y in f(x)]`, then
            `list(map(g, words))`, then a dict combine that calls the
            user's `lambda a, b: a + b` per record.
  generic-sliced  `generic` over slices of 256 lines of each batch: the
            intermediate lists (a word and a tuple per record) stay in the
            CPU's caches, which at 8192 lines (65k words) they do not.
  fused     the same user functions, fused into one loop per batch (no
            intermediate lists): for each line, for each word, k, v = g(w),
            then the dict combine calling the reducer for a key seen before.
  fused-try `fused` with `try: acc[k] = r(acc[k], v) except KeyError:
            acc[k] = v` as the combine.
  fused-add `fused` with the reducer's body (`old + v`) in place of its
            call: what recognizing `lambda a, b: a + b` would save.
  fused-inline  `fused` with the three lambdas inlined by hand: what a
            compiler of the chain could reach, the ceiling of fusion.
  counter   `collections.Counter` updated with the split, lowercased words
            of each batch (the floor of any Python word count).
  counter-block  `counter` with one lower() and split() per batch of lines
            joined: nothing per word runs in Python bytecode.

Every variant's counts are checked word for word against those of the
first counting variant run.
Prints a Markdown table: wall seconds (median of --repeats, process start
and the merge of the per-process dicts included), the CPU of the workers
per word in ns, and the rate.
"""
import argparse
import collections
import multiprocessing
import os
import statistics
import sys
import time

BLOCK = 4 << 20


def batches(path, start, end, batch):
    """Lists of at most `batch` lines (str, without their line ends, as
    native `read_lines` yields them) of the lines that start in
    [start, end), read in blocks."""
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            f.readline()  # to the first line starting at or after start
        pos = f.tell()
        tail = b""
        while pos < end:
            chunk = f.read(min(BLOCK, end - pos))
            if not chunk:
                break
            pos += len(chunk)
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            if pos >= end:
                # Finish the line that crosses `end`: it starts in our range.
                data += f.readline() if cut < len(data) else b""
                cut = len(data)
            tail = data[cut:]
            lines = data[:cut].decode("utf-8").splitlines()
            for i in range(0, len(lines), batch):
                yield lines[i:i + batch]
        if tail:
            yield [tail.decode("utf-8")]


def run_read(path, start, end, batch):
    n = 0
    for b in batches(path, start, end, batch):
        n += len(b)
    return {}, n


def user_functions():
    """The textbook program's functions, as the user writes them."""
    return (lambda line: line.lower().split()), (lambda w: (w, 1)), (lambda a, b: a + b)


def run_generic(path, start, end, batch):
    f, g, r = user_functions()
    acc = {}
    words = 0
    for b in batches(path, start, end, batch):
        ws = [y for x in b for y in f(x)]  # flat_map
        pairs = list(map(g, ws))  # map
        words += len(pairs)
        for k, v in pairs:  # reduce_by_key's map-side combine
            if k in acc:
                acc[k] = r(acc[k], v)
            else:
                acc[k] = v
    return acc, words


SLICE = 256


def run_generic_sliced(path, start, end, batch):
    """`generic` over slices of SLICE lines of each batch: the same batch
    ops, with intermediate lists small enough to stay in the CPU's caches."""
    f, g, r = user_functions()
    acc = {}
    words = 0
    for b in batches(path, start, end, batch):
        for i in range(0, len(b), SLICE):
            ws = [y for x in b[i:i + SLICE] for y in f(x)]
            pairs = list(map(g, ws))
            words += len(pairs)
            for k, v in pairs:
                if k in acc:
                    acc[k] = r(acc[k], v)
                else:
                    acc[k] = v
    return acc, words


def run_fused(path, start, end, batch):
    f, g, r = user_functions()
    acc = {}
    get = acc.get
    missing = object()
    words = 0
    for b in batches(path, start, end, batch):
        for line in b:
            for w in f(line):
                k, v = g(w)
                old = get(k, missing)
                acc[k] = v if old is missing else r(old, v)
                words += 1
    return acc, words


def run_fused_try(path, start, end, batch):
    """`fused` with the combine as `acc[k] = r(acc[k], v)` and a KeyError
    for a key's first record: dict subscripts instead of a get() call."""
    f, g, r = user_functions()
    acc = {}
    words = 0
    for b in batches(path, start, end, batch):
        for line in b:
            for w in f(line):
                k, v = g(w)
                try:
                    acc[k] = r(acc[k], v)
                except KeyError:
                    acc[k] = v
                words += 1
    return acc, words


def run_fused_add(path, start, end, batch):
    """`fused` with the reducer's call replaced by its body (`old + v`):
    what recognizing `lambda a, b: a + b` (or operator.add) would save."""
    f, g, _ = user_functions()
    acc = {}
    get = acc.get
    missing = object()
    words = 0
    for b in batches(path, start, end, batch):
        for line in b:
            for w in f(line):
                k, v = g(w)
                old = get(k, missing)
                acc[k] = v if old is missing else old + v
                words += 1
    return acc, words


def run_fused_inline(path, start, end, batch):
    acc = {}
    get = acc.get
    words = 0
    for b in batches(path, start, end, batch):
        for line in b:
            ws = line.lower().split()
            words += len(ws)
            for w in ws:
                acc[w] = get(w, 0) + 1
    return acc, words


def run_counter(path, start, end, batch):
    acc = collections.Counter()
    words = 0
    for b in batches(path, start, end, batch):
        ws = [w for line in b for w in line.lower().split()]
        words += len(ws)
        acc.update(ws)
    return acc, words


def run_counter_block(path, start, end, batch):
    acc = collections.Counter()
    words = 0
    for b in batches(path, start, end, batch):
        ws = "\n".join(b).lower().split()
        words += len(ws)
        acc.update(ws)
    return acc, words


VARIANTS = {"read": run_read, "generic": run_generic, "generic-sliced": run_generic_sliced, "fused": run_fused, "fused-try": run_fused_try, "fused-add": run_fused_add, "fused-inline": run_fused_inline,
            "counter": run_counter, "counter-block": run_counter_block}


def worker(args):
    name, path, start, end, batch = args
    t = time.process_time()
    acc, words = VARIANTS[name](path, start, end, batch)
    return dict(acc), words, time.process_time() - t


def measure(pool, name, path, procs, batch):
    """Wall seconds, words, worker CPU seconds and the merged counts."""
    size = os.path.getsize(path)
    ranges = [(size * i // procs, size * (i + 1) // procs) for i in range(procs)]
    t = time.perf_counter()
    parts = pool.map(worker, [(name, path, s, e, batch) for s, e in ranges])
    total = collections.Counter()
    for acc, _, _ in parts:
        total.update(acc)
    wall = time.perf_counter() - t
    return wall, sum(p[1] for p in parts), sum(p[2] for p in parts), dict(total)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--procs", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=8192, help="lines per batch (default 8192)")
    ap.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    names = a.only.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"python_floor: unknown variant {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if not os.path.isfile(a.corpus):
        sys.exit(f"python_floor: the corpus {a.corpus} is not a file: bench/run wordcount writes one to "
                 "/tmp/shoal-bench/wc/corpus-SIZE.txt, or use examples/common/gen_corpus.py BYTES 42 > corpus.txt")
    mib = os.path.getsize(a.corpus) / (1 << 20)
    print(f"{mib:.0f} MiB corpus {a.corpus}, {a.procs} processes, batches of {a.batch} lines, "
          f"Python {sys.version.split()[0]}, median of {a.repeats}", file=sys.stderr)
    rows, reference = [], None
    # A fresh process per variant run (no fork of a warmed-up parent): the
    # pool is started inside the timing, as a user's program would be.
    ctx = multiprocessing.get_context("fork")
    for name in names:
        runs = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            with ctx.Pool(a.procs) as pool:
                wall, words, cpu, counts = measure(pool, name, a.corpus, a.procs, a.batch)
            runs.append((time.perf_counter() - t, words, cpu))
            print(f"  {name}: {runs[-1][0]:.2f} s", file=sys.stderr, flush=True)
        if name != "read":
            reference = reference or dict(collections.Counter(counts))
            if counts != reference:
                diff = [w for w in reference.keys() | counts.keys() if reference.get(w) != counts.get(w)]
                sys.exit(f"python_floor: {name} counts differ from the first variant's in {len(diff)} words, e.g. {diff[:5]}")
        wall = statistics.median(r[0] for r in runs)
        words, cpu = runs[0][1], statistics.median(r[2] for r in runs)
        rows.append((name, wall, words, cpu))
    # `read` counts lines, not words: its CPU is spread over the words the
    # others counted, so that its column reads as the share of each variant.
    total = max((w for n, _, w, _ in rows if n != "read"), default=0)
    print(f"{total:,} words", file=sys.stderr)
    print("| variant | wall s | worker CPU s | worker CPU ns/word | MiB/s |\n|---|---|---|---|---|")
    for name, wall, _, cpu in rows:
        per = f"{cpu / total * 1e9:.0f}" if total else "n/a"
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {per} | {mib / wall:.1f} |")


if __name__ == "__main__":
    main()
