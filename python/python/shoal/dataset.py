"""`Dataset`: a lazy, partitioned collection of Python records.

Transformations build a graph of nodes and run nothing; an action asks
the context (`context.py`) to cut the graph into jobs and run them. A
node is one of:

- a source (`parallelize`, `range`, `text_file`, `text_file_on_hosts`),
- a narrow operation over its parent's batches (`map`, `filter`, ...),
- a union of its parents' partitions,
- a shuffle: each parent's map side (a writer of keyed lines, after a
  per-parent chain) and the reduce side (a reader of merged groups).

Records are any picklable Python objects; keys of shuffles must be
hashable values the canonical encoding knows (None, bool, int, float,
str, bytes, and tuples or frozensets of them).
"""

import collections
import functools
import itertools
import os
import subprocess
import sys
import threading

from shoal import _plan


def _site(depth=2):
    """`file:line` of the user's call (for messages)."""
    f = sys._getframe(depth)
    return f"{f.f_code.co_filename}:{f.f_lineno}"


class Dataset:
    def __init__(self, ctx, kind, op, parents=(), site=None, **info):
        self._ctx = ctx
        self._kind = kind  # "source" | "narrow" | "union" | "shuffle"
        self._op = op
        self._parents = list(parents)
        self._site = site or _site(3)
        self._info = info
        self._id = ctx._next_node()
        self._cached = False
        # Key of the driver's partitions once this node is materialized.
        self._materialized = None

    def __repr__(self):
        return f"<Dataset {self._op} at {self._site}>"

    def _where(self):
        return f"{self._op}() at {self._site}"

    # Narrow transformations.

    def _narrow(self, op, fn, user_fn):
        return Dataset(self._ctx, "narrow", op, [self], fn=fn, user_fn=user_fn, site=_site(3))

    def map(self, f):
        """Each record `x` becomes `f(x)`."""
        return self._narrow("map", _plan.Map(f), f)

    def flat_map(self, f):
        """Each record `x` becomes the records of the iterable `f(x)`."""
        return self._narrow("flat_map", _plan.FlatMap(f), f)

    def filter(self, f):
        """The records for which `f(x)` is true."""
        return self._narrow("filter", _plan.Filter(f), f)

    def map_partitions(self, f):
        """Each partition's records (an iterator) become those of the iterable `f(records)`."""
        return self._narrow("map_partitions", _plan.MapPartitions(f), f)

    def key_by(self, f):
        """Each record `x` becomes `(f(x), x)`."""
        return self._narrow("key_by", _plan.KeyBy(f), f)

    def pipe(self, command, image=None):
        """Each partition's records, as `str(record)` lines, through the
        shell command `command` on its stdin; its stdout lines (without
        their line ends) are the new records, str. With `image`, the
        command runs in that Docker image (`docker run --rm -i --init`,
        as this user, no network, the run's work dir at /shoal/work). A
        command that exits non-zero fails the task, with its exit code
        and the end of its stderr."""
        return self._narrow("pipe", _plan.MapPartitions(_Pipe(command, image)), None)

    def union(self, *others):
        """The partitions of this dataset, then those of each of `others`."""
        return Dataset(self._ctx, "union", "union", [self, *others], site=_site())

    def cache(self):
        """Computes this dataset once, when an action first needs it, and
        keeps its partitions on the hosts for later jobs."""
        self._cached = True
        return self

    # Shuffles.

    def _shuffle(self, op, parents, pre_ops, map_writer, reader, n, user_fns, **info):
        return Dataset(
            self._ctx, "shuffle", op, parents, site=_site(3), pre_ops=pre_ops,
            map_writer=map_writer, reader=reader, partitions=n, user_fns=user_fns, **info,
        )

    def reduce_by_key(self, f, n=None):
        """`(k, v)` records to one `(k, f(f(v1, v2), v3)...)` per key, in `n` partitions."""
        combine = _plan.Combine(_plan.identity, f)
        return self._shuffle("reduce_by_key", [self], [[]], combine, _plan.GroupReader(_plan.ReduceGroup(f)), n, [f])

    def aggregate_by_key(self, zero, seq, comb, n=None):
        """`(k, v)` records to one `(k, acc)` per key: values folded into a
        copy of `zero` by `seq(acc, v)`, accumulators merged by `comb(a, b)`."""
        combine = _plan.Combine(_plan.SeqFromZero(zero, seq), seq)
        reader = _plan.GroupReader(_plan.ReduceGroup(comb))
        return self._shuffle("aggregate_by_key", [self], [[]], combine, reader, n, [seq, comb])

    def group_by_key(self, n=None):
        """`(k, v)` records to one `(k, [values])` per key."""
        return self._shuffle("group_by_key", [self], [[]], _plan.Pairs(), _plan.GroupReader(_plan.whole_group), n, [])

    def distinct(self, n=None):
        """Each distinct record once (records must be valid keys)."""
        combine = _plan.Combine(_plan.identity, _plan.keep_first)
        return self._shuffle("distinct", [self], [[_plan.AsKey()]], combine, _plan.GroupReader(_plan.key_only), n, [])

    def join(self, other, n=None):
        """Inner join of `(k, v)` and `(k, w)` records: `(k, (v, w))` for every pair."""
        pre = [[_plan.Tag(0)], [_plan.Tag(1)]]
        return self._shuffle("join", [self, other], pre, _plan.Pairs(), _plan.GroupReader(_plan.join_group), n, [])

    def sort_by_key(self, ascending=True, n=None):
        """`(k, v)` records sorted by key across partitions (partition 0
        holds the smallest keys, or the largest when not `ascending`)."""
        return self._shuffle(
            "sort_by_key", [self], [[]], None, _plan.SortedReader(ascending), n, [], ascending=ascending,
        )

    # Actions.

    def collect(self):
        """Every record, in partition order."""
        raw = self._ctx._run(self, _plan.Records())
        return [x for b in self._ctx._batches(raw) for x in b]

    def count(self):
        raw = self._ctx._run(self, _plan.Count())
        return sum(n for b in self._ctx._batches(raw) for n in b)

    def take(self, n):
        """The first `n` records, in partition order."""
        raw = self._ctx._run(self, _plan.Take(n))
        return list(itertools.islice((x for b in self._ctx._batches(raw) for x in b), n))

    def reduce(self, f):
        """The records combined by `f(a, b)` (associative); an empty dataset is an error."""
        raw = self._ctx._run(self, _plan.Reduce(f))
        partials = [x for b in self._ctx._batches(raw) for x in b]
        if not partials:
            raise ValueError(f"reduce() of {self._where()}: the dataset is empty; use fold(zero, f) for a value on empty data")
        return functools.reduce(f, partials)

    def fold(self, zero, f):
        """The records folded by `f(acc, x)` from `zero` in each partition, then the partitions' results from `zero`."""
        raw = self._ctx._run(self, _plan.Fold(zero, f))
        return functools.reduce(f, (x for b in self._ctx._batches(raw) for x in b), zero)

    def for_each(self, f):
        """Calls `f(x)` on every record, on the hosts."""
        self._ctx._run(self, _plan.ForEach(f))

    def save_as_text(self, path):
        """Writes `str(x)` of every record as lines to the file `path` (on the driver)."""
        self._ctx._run(self, _plan.Text(), path=path)


class _Pipe:
    """`Dataset.pipe`'s function of a partition. The records are written
    to the command's stdin from the task's own thread (the native readers
    upstream are bound to it), while threads drain its stdout and stderr,
    so that neither side can block the other on a full pipe."""

    #: Exit code of `docker run` when Docker itself failed (agent/container.rs).
    DOCKER_ERROR = 125
    #: Lines of the command's stderr kept for the error.
    TAIL = 20

    def __init__(self, command, image):
        self.command, self.image = command, image

    def argv(self):
        if self.image is None:
            return ["sh", "-c", self.command]
        # As agent/container.rs runs a task's image: this user, no network, --init.
        return ["docker", "run", "--rm", "-i", "--init", "--user", f"{os.getuid()}:{os.getgid()}", "--network", "none",
                "-v", f"{os.getcwd()}:/shoal/work", "-w", "/shoal/work", self.image, "/bin/sh", "-c", self.command]

    def what(self):
        return f"pipe({self.command!r})" if self.image is None else f"pipe({self.command!r}, image={self.image!r})"

    def __call__(self, records):
        try:
            proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            fix = "install Docker on the hosts or drop image=" if self.image else "check that sh is on the hosts"
            raise RuntimeError(f"{self.what()} cannot start {self.argv()[0]}: {e}; {fix}") from None
        out, tail = collections.deque(), collections.deque(maxlen=self.TAIL)
        readers = [threading.Thread(target=_drain, args=(proc.stdout, out.append), daemon=True),
                   threading.Thread(target=_drain, args=(proc.stderr, tail.append), daemon=True)]
        for t in readers:
            t.start()
        try:
            yield from self._feed(proc, records, out)
        finally:
            _close(proc.stdin)
            for t in readers:
                t.join()
            code = proc.wait()
        yield from _lines(out)
        if code != 0:
            err = b"".join(tail).decode("utf-8", "replace").rstrip("\n") or "(nothing)"
            if self.image is not None and code == self.DOCKER_ERROR:
                raise RuntimeError(f"{self.what()}: Docker could not run the image (docker run exited with code {code}); "
                                   f"its stderr ends:\n{err}\ncheck that the image exists on every host (docker images)")
            raise RuntimeError(f"{self.what()} exited with code {code}; the end of its stderr:\n{err}\n"
                               "fix the command (run it by hand on a few records) or the records it reads")

    def _feed(self, proc, records, out):
        """Writes the records, handing on the lines the command wrote meanwhile."""
        for batch in _plan.rebatch(records):
            try:
                proc.stdin.write("".join(f"{x}\n" for x in batch).encode())
            except BrokenPipeError:
                # The command stopped reading (`head`): its exit code tells.
                return
            yield from _lines(out)


def _drain(stream, put):
    for line in stream:
        put(line)
    stream.close()


def _close(stream):
    try:
        stream.close()
    except BrokenPipeError:
        pass


def _lines(out):
    """The lines in `out` so far, without their line ends."""
    while out:
        line = out.popleft().decode()
        yield line[:-1] if line.endswith("\n") else line
