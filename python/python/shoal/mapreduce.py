"""`MapReduceJob`: the class form of a key-sharded map/reduce job, run on
the Dataset API (and so on the same engine as any Shoal program).

    class WordCount(shoal.MapReduceJob):
        def mapper(self, key, line):
            for word in line.split():
                yield word, 1

        def reducer(self, word, counts):
            yield word, sum(counts)

    if __name__ == "__main__":
        WordCount().run()      # python job.py -i corpus.txt -o counts.tsv

The job is `text_file(inputs)` -> `flat_map(mapper)` -> a hash shuffle
on the key -> the reducer -> `save_as_text` of `key<TAB>value` lines.
The mapper's `key` is always None: the input is raw lines, which carry
no key (mrjob's convention; the engine does not tell a task where its
lines start in the file). A job without `reducer` writes the mapper's
pairs as they are.

Two forms of reducer, told apart by the class attribute `stateful`:

- `stateful = False` (the default): `reducer(self, key, values)` is
  called once per key with an iterator of all its values, and yields
  `(key, value)` results.
- `stateful = True`: each reduce partition (a shard of the keys) gets
  its own copy of the job; `reducer(self, key, value)` is called once per
  pair, keeping whatever it needs in `self`, and then `result(self)`
  yields the shard's `(key, value)` results.

The job object travels to the hosts by value (cloudpickle), with the
attributes `__init__` gave it.
"""

import argparse
import copy
import os
import sys

from shoal.context import Context


class MapReduceJob:
    #: True for the per-shard form: `reducer(self, key, value)` per pair, then `result(self)`.
    stateful = False
    #: Reduce partitions (shards); None: `--partitions`, else one per worker slot.
    partitions = None
    #: Each host's interpreter and a requirements file (and wheel
    #: directory), as `shoal.Context(python=, requirements=, wheels=)`.
    python = None
    requirements = None
    wheels = None

    def mapper(self, key, line):
        """Yields `(key, value)` pairs for one input line (`key` is None)."""
        raise NotImplementedError

    def reducer(self, key, values):
        """Yields `(key, value)` results (see the module's doc for the stateful form)."""
        raise NotImplementedError

    def result(self):
        """The stateful form's results for its shard, after every `reducer` call."""
        raise NotImplementedError

    def run(self, argv=None):
        """Runs the job with the command line's `-i/--input PATH`
        (repeatable), `-o/--output PATH` and Shoal's flags (`--cluster`,
        `--resume`, `--quiet`, `--partitions N`, ...), and prints a
        one-line summary. Usage errors end the program with code 2."""
        name = type(self).__name__
        problem = self._problem()
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            sys.exit(2)
        with Context(argv=argv, python=self.python, requirements=self.requirements, wheels=self.wheels) as sc:
            opts = _options(name, sc.args)
            inputs = [sc.text_file(path) for path in opts.input]
            lines = inputs[0].union(*inputs[1:]) if len(inputs) > 1 else inputs[0]
            self._build(lines).map(_tab_line).save_as_text(opts.output)
            with open(opts.output, "rb") as f:
                written = sum(1 for _ in f)
            print(f"{name}: {written} records from {', '.join(opts.input)} written to {opts.output}")

    def _defines(self, method):
        return getattr(type(self), method) is not getattr(MapReduceJob, method)

    def _problem(self):
        """What makes this class unable to run, as a sentence, or None."""
        name = type(self).__name__
        if not self._defines("mapper"):
            return (f"the job {name} has no mapper; define `def mapper(self, key, line)` in the class, "
                    "yielding (key, value) pairs for each input line")
        if self.stateful and not (self._defines("reducer") and self._defines("result")):
            return (f"the job {name} sets stateful = True but does not define both `reducer(self, key, value)` "
                    "and `result(self)`; define them, or drop stateful for `reducer(self, key, values)`")
        return None

    def _build(self, lines):
        pairs = lines.flat_map(_Mapper(self))
        if not self._defines("reducer"):
            return pairs
        groups = pairs.group_by_key(self.partitions)
        if self.stateful:
            return groups.map_partitions(_Shard(self))
        return groups.flat_map(_Reducer(self))


def _options(name, args):
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else name
    parser = argparse.ArgumentParser(prog=prog, description=f"Runs the map/reduce job {name} on Shoal.")
    parser.add_argument("-i", "--input", action="append", required=True, metavar="PATH",
                        help="a text file or a directory of them (repeatable)")
    parser.add_argument("-o", "--output", required=True, metavar="PATH", help="the file the key<TAB>value lines go to")
    opts = parser.parse_args(args)
    for path in opts.input:
        if not os.path.exists(path):
            parser.error(f"the input {path} does not exist; give an existing file or directory to -i/--input")
    return opts


def _tab_line(pair):
    key, value = pair
    return f"{key}\t{value}"


class _Mapper:
    def __init__(self, job):
        self.job = job

    def __call__(self, line):
        return self.job.mapper(None, line)


class _Reducer:
    def __init__(self, job):
        self.job = job

    def __call__(self, group):
        key, values = group
        return self.job.reducer(key, iter(values))


class _Shard:
    """One reduce partition through its own copy of the job (so state
    never leaks between shards, nor between retries of one)."""

    def __init__(self, job):
        self.job = job

    def __call__(self, groups):
        job = copy.deepcopy(self.job)
        for key, values in groups:
            for value in values:
                job.reducer(key, value)
        return job.result() or ()
