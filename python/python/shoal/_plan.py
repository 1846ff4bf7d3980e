"""What one job computes, as the driver pickles it and the executor on
each host runs it: a `JobPlan`.

A job reads its map partitions from one or more *segments* (a root: a
source or a materialized dataset, and the chain of narrow operations
after it). Without a shuffle each map task's output is the job's sink;
with one, each segment ends in its shuffle parent's map-side writer
(keyed lines), and the reduce tasks read the merged groups, run the
reduce-side chain and write the sink.

Every operation works on an iterator of *batches* (lists of records), and
the native module is called once per batch, never per record. Operations
are instances of the classes below (pickled by reference to this module,
with the user's functions inside pickled by value by cloudpickle).

On a host, each run of narrow operations of a stage (map, flat_map,
filter, key_by, and the tags of join and distinct), together with the
map-side combiner that follows it, is compiled into ONE Python function
(`compile_chain`) that loops over each batch's records with no
intermediate lists; the executor builds it the first time a task of the
plan runs and keeps it for the plan's other tasks. A merge that is
`lambda a, b: a + b` is added in line, and the textbook count (`map(lambda
w: (w, 1))` into such a combiner) is counted by collections' C helper.
"""

import bisect
import copy
import functools
import inspect
import itertools
import operator
import os
import sys

try:
    from collections import _count_elements as count_elements
except ImportError:  # not every Python has the C helper
    count_elements = None

from shoal import _native

#: Records per batch when Python makes the batches.
BATCH = 4096
#: Keys held by a map-side combiner before it writes them out.
COMBINE_MAX = 1 << 18


def rebatch(records, size=BATCH):
    """Batches of `size` records from an iterable of records."""
    it = iter(records)
    while True:
        batch = list(itertools.islice(it, size))
        if not batch:
            return
        yield batch


def flatten(batches):
    return itertools.chain.from_iterable(batches)


# Readers: a task's input (bytes, or a file when is_file) as batches.

class TextReader:
    def __call__(self, src, is_file):
        return _native.read_lines(src, is_file)


class HostTextReader:
    """A partition naming `host\\npath`: the file on the host the task runs on."""

    def __call__(self, src, is_file):
        spec = open(src, "rb").read() if is_file else bytes(src)
        host, _, path = spec.decode().partition("\n")
        try:
            return _native.read_lines(path, True)
        except OSError as e:
            raise OSError(f"text_file_on_hosts: cannot read {path} on {host}: {e}") from None


class BatchReader:
    def __call__(self, src, is_file):
        return _native.read_batches(src, is_file)


class RangeReader:
    """A partition `start stop` of `Context.range`."""

    def __call__(self, src, is_file):
        spec = open(src, "rb").read() if is_file else bytes(src)
        start, stop = map(int, spec.split())
        return rebatch(range(start, stop))


class GroupReader:
    """A reduce input as `(key, [values])` groups, through `fn(key, values)`,
    which returns an iterable of output records."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, src, is_file):
        fn = self.fn
        return rebatch(y for k, vs in _native.read_groups(src, is_file) for y in fn(k, vs))


class SortedReader:
    def __init__(self, ascending):
        self.ascending = ascending

    def __call__(self, src, is_file):
        pairs = _native.read_sorted(src, is_file)
        if not self.ascending:
            pairs.reverse()
        return rebatch(pairs)


# Narrow operations: an iterator of batches to an iterator of batches.

class Fusable:
    """An operation `compile_chain` fuses with its neighbours; its `fuse`
    names what `_loops` generates for it."""

    fuse = None

    def __call__(self, batches):
        return _fuse([self], None)(batches)


class Map(Fusable):
    fuse = "map"

    def __init__(self, f):
        self.f = f


class FlatMap(Fusable):
    fuse = "flat_map"

    def __init__(self, f):
        self.f = f


class Filter(Fusable):
    fuse = "filter"

    def __init__(self, f):
        self.f = f


class MapPartitions:
    def __init__(self, f):
        self.f = f

    def __call__(self, batches):
        return rebatch(self.f(flatten(batches)))


class KeyBy(Fusable):
    fuse = "key_by"

    def __init__(self, f):
        self.f = f


class Tag(Fusable):
    """`(k, v)` to `(k, (side, v))`: which side of a join a value is from."""

    fuse = "tag"

    def __init__(self, side):
        self.side = side


class AsKey(Fusable):
    """`x` to `(x, None)`, for `distinct`."""

    fuse = "as_key"


# Writers: an iterator of batches to a task's output: bytes, or an
# iterator of chunks of bytes, which the executor writes as they come.

class Records:
    """Plain records (collect, materialize)."""

    def __call__(self, batches):
        return (_native.encode_batches(b) for b in batches if b)


class Count:
    def __call__(self, batches):
        return _native.encode_batches([sum(len(b) for b in batches)])


class Take:
    def __init__(self, n):
        self.n = n

    def __call__(self, batches):
        return _native.encode_batches(list(itertools.islice(flatten(batches), self.n)))


class Reduce:
    """The partition reduced by `f`, or nothing when it is empty."""

    def __init__(self, f):
        self.f = f

    def __call__(self, batches):
        it = flatten(batches)
        for first in it:
            return _native.encode_batches([functools.reduce(self.f, it, first)])
        return b""


class Fold:
    def __init__(self, zero, f):
        self.zero, self.f = zero, f

    def __call__(self, batches):
        return _native.encode_batches([functools.reduce(self.f, flatten(batches), copy.deepcopy(self.zero))])


class ForEach:
    def __init__(self, f):
        self.f = f

    def __call__(self, batches):
        for x in flatten(batches):
            self.f(x)
        return b""


class Text:
    """Lines of text, `str(record)` each (save_as_text)."""

    def __call__(self, batches):
        return ("".join(f"{x}\n" for x in b).encode() for b in batches)


class SampleKeys:
    """Canonical encodings of up to `n` keys of the partition, evenly
    spaced: what the driver picks a sort's split points from."""

    def __init__(self, n):
        self.n = n

    def __call__(self, batches):
        keys = [_native.canonical(k) for b in batches for k, _ in b]
        step = max(1, len(keys) // self.n)
        return _native.encode_batches(keys[::step])


class Pairs:
    """A shuffle's map side without combining: every `(key, value)`."""

    def __call__(self, batches):
        return (_native.encode_keyed(b) for b in batches)


class Combine:
    """A shuffle's map side with combining: values of a key folded in a
    dict by `merge(acc, value)` (`create(value)` starts one), written out
    whenever the dict holds COMBINE_MAX keys, and at the end."""

    def __init__(self, create, merge):
        self.create, self.merge = create, merge

    def __call__(self, batches):
        return _fuse([], self)(batches)


class SortedPairs:
    """A sort's map side: keyed lines with their range bucket first."""

    def __init__(self, splits, ascending):
        self.splits, self.ascending = splits, ascending

    def __call__(self, batches):
        desc = not self.ascending
        return (_native.encode_sorted(b, self.splits, desc) for b in batches)


# Combiner and group functions (named, so they pickle by reference).

def identity(v):
    return v


def keep_first(a, _b):
    return a


class SeqFromZero:
    def __init__(self, zero, seq):
        self.zero, self.seq = zero, seq

    def __call__(self, v):
        return self.seq(copy.deepcopy(self.zero), v)


class ReduceGroup:
    def __init__(self, f):
        self.f = f

    def __call__(self, k, vs):
        return [(k, functools.reduce(self.f, vs))]


def whole_group(k, vs):
    return [(k, vs)]


def key_only(k, _vs):
    return [k]


def join_group(k, vs):
    left = [v for s, v in vs if s == 0]
    right = [v for s, v in vs if s == 1]
    return [(k, (a, b)) for a in left for b in right]


class Segment:
    """One map root: how to read its partitions, the chain after it, and
    (with a shuffle) which shuffle parent it feeds."""

    def __init__(self, reader, ops, parent=0):
        self.reader, self.ops, self.parent = reader, ops, parent


class JobPlan:
    """One job: `segments` with `layout` (partitions of each), an optional
    shuffle (map-side `map_writers` per parent, `reduce_reader`), the
    reduce-side chain `reduce_ops`, and the sink's `writer`."""

    def __init__(self, index, segments, layout, writer, map_writers=None, reduce_reader=None, reduce_ops=()):
        self.index = index
        self.segments = segments
        self.layout = layout
        self.writer = writer
        self.map_writers = map_writers
        self.reduce_reader = reduce_reader
        self.reduce_ops = list(reduce_ops)
        #: The program's main script, which functions pickled by value come from.
        self.source = None

    def __getstate__(self):
        # The compiled stages are the executor's own: never pickled.
        state = dict(self.__dict__)
        state.pop("_compiled", None)
        return state

    def locate(self, partition):
        """The segment of a map task, and the partition within it."""
        starts = self._stages()["starts"]
        seg = bisect.bisect_right(starts, partition) - 1
        if partition < 0 or seg >= len(self.layout) or partition - starts[seg] >= self.layout[seg]:
            raise IndexError(f"partition {partition} is beyond the job's layout {self.layout}")
        return seg, partition - starts[seg]

    def _stages(self):
        """What every task of the plan runs, compiled on first use and kept:
        per segment its reader and its chain with its writer fused in, and
        the reduce side's; so a task does no work proportional to the plan."""
        compiled = self.__dict__.get("_compiled")
        if compiled is None:
            starts = [0]
            for n in self.layout[:-1]:
                starts.append(starts[-1] + n)
            segments = []
            for seg in self.segments:
                writer = self.writer if self.map_writers is None else self.map_writers[seg.parent]
                segments.append((seg.reader, compile_chain(seg.ops, writer)))
            reduce = compile_chain(self.reduce_ops, self.writer) if self.reduce_reader is not None else None
            compiled = self._compiled = {"starts": starts, "segments": segments, "reduce": reduce}
        return compiled

    def run(self, stage, partition, src, is_file):
        """One task's output bytes."""
        stages = self._stages()
        if stage == 1:
            return stages["reduce"](self.reduce_reader(src, is_file))
        reader, run = stages["segments"][self.locate(partition)[0]]
        return run(reader(src, is_file))


# Fusion: a chain compiled into one generated function.

#: The file name of generated code: inside the package, so the executor
#: leaves its frames out of a task's traceback like the package's own.
FUSED_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "<fused>")


class _Missing:
    def __repr__(self):
        return "MISSING"


#: A key not yet in a combiner's dict (None and every other value can be one).
MISSING = _Missing()


def compile_chain(ops, writer):
    """A function from an iterator of input batches to the task's output
    (what `writer` makes of the batches the ops make one after the other):
    each run of fusable operations becomes one loop, and a `Combine`
    writer after such a run is folded into it."""
    stages = []
    run = []
    for op in ops:
        if not isinstance(op, Fusable):
            if run:
                stages.append(_fuse(run, None))
                run = []
            stages.append(op)
        else:
            run.append(op)
    if isinstance(writer, Combine):
        stages.append(_fuse(run, writer))
        writer = None
    elif run:
        stages.append(_fuse(run, None))

    def go(batches):
        for stage in stages:
            batches = stage(batches)
        return batches if writer is None else writer(batches)

    return go


def _fuse(ops, combine):
    """One generated generator function for the fusable `ops`, yielding a
    batch of output records per input batch (like the ops one after the
    other), or, with `combine`, that combiner's output chunks."""
    ns = {"MISSING": MISSING, "encode_keyed": _native.encode_keyed, "_plan": sys.modules[__name__], "count": count_elements}

    def bind(obj):
        name = f"_f{len(ns)}"
        ns[name] = obj
        return name

    # `map(lambda w: (w, 1))` then `reduce_by_key(lambda a, b: a + b)`
    # counts: the loop that makes the words feeds them to C code instead.
    counting = (combine is not None and ops and ops[-1].fuse == "map" and _code_key(ops[-1].f) in PAIR_ONE_KEYS
                and combine.create is identity and _adds(combine.merge) and count_elements is not None)
    if counting:
        body, depth, cur, last_loop = _loops(ops[:-1], bind)
        counting = last_loop is not None
    if not counting:
        body, depth, cur, last_loop = _loops(ops, bind)

    lines = ["def fused(batches):"]
    if combine is None:
        lines += ["    for b in batches:", "        out = []", "        append = out.append"]
        lines += ["    " * d + text for d, text in body]
        lines += ["    " * depth + f"append({cur})", "        yield out"]
    elif counting:
        line, iterable = last_loop
        body = body[:line] + [(body[line][0], f"count(acc, {iterable})")]
        lines += ["    limit = _plan.COMBINE_MAX", "    acc = {}", "    for b in batches:"]
        lines += ["    " * d + text for d, text in body]
        lines += [
            "        if len(acc) >= limit:",
            "            yield encode_keyed(acc.items())",
            "            acc = {}",
            "    yield encode_keyed(acc.items())",
        ]
    else:
        create = None if combine.create is identity else bind(combine.create)
        merge = bind(combine.merge)
        lines += ["    limit = _plan.COMBINE_MAX", "    acc = {}", "    get = acc.get", "    for b in batches:"]
        lines += ["    " * d + text for d, text in body]
        pad = "    " * depth
        lines += [
            pad + f"k, v = {cur}",
            pad + "old = get(k, MISSING)",
            pad + "if old is MISSING:",
            pad + f"    acc[k] = {'v' if create is None else f'{create}(v)'}",
            pad + "else:",
            *_merge_lines(pad + "    ", merge, combine.merge),
            "        if len(acc) >= limit:",
            "            yield encode_keyed(acc.items())",
            "            acc = {}",
            "            get = acc.get",
            "    yield encode_keyed(acc.items())",
        ]
    code = compile("\n".join(lines) + "\n", FUSED_FILE, "exec")
    exec(code, ns)
    fused = ns["fused"]
    fused.source = "\n".join(lines)
    return fused


def _loops(ops, bind):
    """The loops of a fused function over a batch `b` running `ops`, as
    (indent, line) pairs; the indent inside them, the name of the record
    there, and the innermost loop (its line, what it iterates) when no
    line follows it."""
    body = [(2, "for x0 in b:")]
    depth = 3
    cur = "x0"
    last_loop = (0, "b")
    for i, op in enumerate(ops, 1):
        last_loop = None
        nxt = f"x{i}"
        kind = op.fuse
        if kind == "map":
            body.append((depth, f"{nxt} = {bind(op.f)}({cur})"))
        elif kind == "flat_map":
            last_loop = (len(body), f"{bind(op.f)}({cur})")
            body.append((depth, f"for {nxt} in {last_loop[1]}:"))
            depth += 1
        elif kind == "filter":
            body.append((depth, f"if not {bind(op.f)}({cur}):"))
            body.append((depth + 1, "continue"))
            nxt = cur
        elif kind == "key_by":
            body.append((depth, f"{nxt} = ({bind(op.f)}({cur}), {cur})"))
        elif kind == "tag":
            body.append((depth, f"k, v = {cur}"))
            body.append((depth, f"{nxt} = (k, ({bind(op.side)}, v))"))
        elif kind == "as_key":
            body.append((depth, f"{nxt} = ({cur}, None)"))
        else:
            raise ValueError(f"cannot fuse an operation of kind {kind!r}: this is a bug in shoal._plan")
        cur = nxt
    return body, depth, cur, last_loop


#: What a merge function's code is compared on to know it returns `a + b`.
def _code_key(f):
    code = getattr(f, "__code__", None)
    if code is None:
        return None
    # Constants with their types: 1 == True == 1.0, but (w, True) is not (w, 1).
    consts = tuple((type(c), c) for c in code.co_consts)
    return (code.co_code, code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
            code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS), consts, code.co_names, code.co_freevars)


ADD_KEYS = {_code_key(lambda a, b: a + b)}
PAIR_ONE_KEYS = {_code_key(lambda w: (w, 1))}


def _adds(merge):
    """Whether `merge(a, b)` is `a + b`: operator.add or `lambda a, b: a + b`."""
    return merge is operator.add or _code_key(merge) in ADD_KEYS


def _merge_lines(pad, name, merge):
    """The combine of a key seen before: `merge(old, v)`, or `old + v` in
    line when `merge` is `lambda a, b: a + b` (or operator.add), with the
    call again when the addition raises, so the error comes from the
    user's function with its frame."""
    if _adds(merge):
        return [pad + "try:", pad + "    acc[k] = old + v", pad + "except Exception:", pad + f"    acc[k] = {name}(old, v)"]
    return [pad + f"acc[k] = {name}(old, v)"]
