"""`Context`: a Python program's connection to the cluster, and the
planner that turns an action into jobs, as the Rust API does:

- a job has at most one shuffle: a shuffle read by another shuffle, or
  by a job that reads other roots too, is materialized first by its own
  job (its partitions stay on the hosts that computed them);
- a `cache()`d dataset is materialized by its own job when first needed;
- `sort_by_key` first runs a job that samples the keys, for the split
  points of its range partitioning.

Each job is a `_plan.JobPlan`, pickled by cloudpickle (user functions by
value) into the session dir, synced to every host with the package
itself, and run by the native driver (`shoal._native.Driver`) through
the same engine as a Rust Dataset program's jobs.
"""

import os
import shutil
import site
import sys
import sysconfig

import cloudpickle

import shoal
from shoal import _environment, _native, _plan
from shoal.dataset import Dataset, _site
from shoal.errors import PlanError, ShoalError

#: Keys sampled per partition for a sort's split points.
SAMPLE_PER_PARTITION = 1000


class Context:
    """The driver of a Shoal program.

    Shoal's flags are read from `sys.argv` (`--cluster FILE`, `--resume`,
    `--quiet`, `--partitions N`, `--sort-buffer BYTES`, `--`; the keyword
    arguments override them); the rest are the program's, `sc.args`.
    Without `--cluster`: `$SHOAL_CLUSTER`, `./cluster.toml`, else this
    machine. Bad flags end the program (exit code 2); as a context
    manager, a failed job ends it with its message and `shoal`'s exit
    code (1), as a Rust Dataset program's `shoal::main` does.

    Each host's Python: `python` (an interpreter for every host) and
    `requirements` (a pip requirements file; `wheels`, a directory of
    wheels to take them from instead of the package index) override the
    cluster file's `[python]` table. Before the first job, every host is
    checked (and its environment built from the requirements, offline,
    once): see `shoal._environment`.
    """

    def __init__(self, cluster=None, partitions=None, quiet=None, resume=None, argv=None,
                 python=None, requirements=None, wheels=None):
        argv = sys.argv[1:] if argv is None else list(argv)
        program = os.path.splitext(os.path.basename(sys.argv[0] or "python"))[0] or "python"
        try:
            self._driver = _native.Driver(argv, program, cluster, partitions, quiet, resume)
        except ShoalError as e:
            # Bad flags or cluster file: said once, with shoal's exit code (2 usage).
            print(f"error: {e}", file=sys.stderr)
            sys.exit(getattr(e, "exit_code", 2))
        self._nodes = 0
        self._jobs = 0
        # Relative paths are the program's, from where it was started.
        self._python = {
            "python": python,
            "requirements": requirements and os.path.abspath(os.fspath(requirements)),
            "wheels": wheels and os.path.abspath(os.fspath(wheels)),
        }
        self._checked = False
        _copy_package(self._driver.package_dir)

    @property
    def args(self):
        """The program's own arguments (Shoal's flags taken out)."""
        return self._driver.args

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None:
            self.stop()
            return False
        if isinstance(exc, ShoalError):
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(getattr(exc, "exit_code", 1))
        return False

    def stop(self):
        """Removes the program run's scratch (run dirs and logs stay in .shoal/runs)."""
        self._driver.finish()

    def _next_node(self):
        self._nodes += 1
        return self._nodes

    def _partitions(self, n):
        return max(1, n or self._driver.partitions or self._driver.slots)

    # Sources.

    def parallelize(self, iterable, n=None):
        """The records of `iterable` (read now), in `n` nearly equal partitions."""
        data = list(iterable)
        n = self._partitions(n)
        parts = [data[len(data) * i // n: len(data) * (i + 1) // n] for i in range(n)]
        return Dataset(self, "source", "parallelize", site=_site(), reader=_plan.BatchReader(),
                       make=lambda d, key: d.memory_parts(key, "parallelize", [_native.encode_batches(p) for p in parts]))

    def range(self, start, stop=None, n=None):
        """The integers `start <= i < stop` (or `0 <= i < start`), in `n` parts."""
        if stop is None:
            start, stop = 0, start
        n = self._partitions(n)
        length = max(0, stop - start)
        specs = [f"{start + length * i // n} {start + length * (i + 1) // n}".encode() for i in range(n)]
        return Dataset(self, "source", "range", site=_site(), reader=_plan.RangeReader(),
                       make=lambda d, key: d.memory_parts(key, "range", specs))

    def text_file(self, path, n=None):
        """The lines of a text file (or of the files in a directory) on
        this machine, without their line ends, cut into `n` partitions."""
        path = os.fspath(path)
        self._driver.check_input(path)
        site = _site()
        return Dataset(self, "source", "text_file", site=site, reader=_plan.TextReader(),
                       make=lambda d, key: d.text_parts(key, f"text_file({path!r}) at {site}", path, n))

    def text_file_on_hosts(self, path):
        """The lines of the file `path` on every host (one partition each)."""
        return Dataset(self, "source", "text_file_on_hosts", site=_site(), reader=_plan.HostTextReader(),
                       make=lambda d, key: d.host_parts(key, path))

    # The planner.

    def _batches(self, raw):
        return _native.read_batches(raw, False)

    def _run(self, node, writer, path=None, sink=None):
        """Runs the job that computes `node` into `writer`; returns the
        merged output (`result`), or None (`materialize`, `text`)."""
        sink = sink or ("text" if path is not None else "result")
        if not self._checked:
            # Before any partition is made: a host left out gets none.
            _environment.provision(self._driver, quiet=self._driver.quiet, **self._python)
            self._checked = True
        self._cache_upstream(node, itself=sink != "materialize")
        paths = _paths(node)
        shuffles = _unique(r for r, _ in paths if r._kind == "shuffle" and r._materialized is None)
        if shuffles and len(paths) > 1:
            for s in shuffles:
                self._materialize(s)
            paths = _paths(node)
            shuffles = []
        if shuffles:
            return self._shuffle_job(node, paths[0][0], paths[0][1], writer, sink, path)
        segments = [self._segment(root, _fns(ops)) for root, ops in paths]
        plan = _plan.JobPlan(self._jobs, segments, self._layout(paths), writer)
        return self._submit(plan, node, [_root_key(r) for r, _ in paths], None, sink, path, [node])

    def _shuffle_job(self, node, shuffle, reduce_ops, writer, sink, path):
        info = shuffle._info
        for parent in shuffle._parents:
            for s in _unique(r for r, _ in _paths(parent) if r._kind == "shuffle" and r._materialized is None):
                self._materialize(s)
        n = self._partitions(info["partitions"])
        map_writers = [info["map_writer"]] * len(shuffle._parents)
        kind = "hash"
        if shuffle._op == "sort_by_key":
            splits = self._split_points(shuffle._parents[0], n)
            map_writers = [_plan.SortedPairs(splits, info["ascending"])]
            n, kind = len(splits) + 1, "range"
        segments, roots, layout_paths = [], [], []
        for i, parent in enumerate(shuffle._parents):
            for root, ops in _paths(parent):
                segments.append(self._segment(root, _fns(ops) + info["pre_ops"][i], parent=i))
                roots.append(_root_key(root))
                layout_paths.append((root, ops))
        plan = _plan.JobPlan(self._jobs, segments, self._layout(layout_paths), writer,
                             map_writers=map_writers, reduce_reader=info["reader"],
                             reduce_ops=_fns(reduce_ops))
        return self._submit(plan, node, roots, (n, kind), sink, path, [node, shuffle])

    def _split_points(self, parent, n):
        raw = self._run(parent, _plan.SampleKeys(SAMPLE_PER_PARTITION))
        keys = sorted(k for b in self._batches(raw) for k in b)
        points = []
        for i in range(1, n):
            if keys:
                k = keys[i * len(keys) // n]
                if not points or points[-1] != k:
                    points.append(k)
        return points

    def _materialize(self, node):
        """Runs `node` once and keeps its partitions on the hosts."""
        self._run(node, _plan.Records(), sink="materialize")
        # The last job run is this node's (the jobs it needed ran before it).
        node._materialized = f"job-{self._jobs - 1}"

    def _cache_upstream(self, node, itself):
        """Materializes the cached datasets `node` reads, upstream first
        (and `node` itself when `itself`)."""
        seen = set()

        def visit(n):
            if n._id in seen or n._materialized is not None:
                return
            seen.add(n._id)
            for p in n._parents:
                visit(p)
            if n._cached and n is not node:
                self._materialize(n)

        visit(node)
        if itself and node._cached and node._materialized is None:
            self._materialize(node)

    def _segment(self, root, fns, parent=0):
        reader = _plan.BatchReader() if root._materialized is not None else root._info["reader"]
        return _plan.Segment(reader, fns, parent)

    def _layout(self, paths):
        layout = []
        for root, _ in paths:
            key = _root_key(root)
            count = self._driver.part_count(key)
            if count is None:
                count = root._info["make"](self._driver, key)
            layout.append(count)
        return layout

    def _submit(self, plan, node, roots, shuffle, sink, path, nodes):
        index = self._jobs
        self._jobs += 1
        rel = os.path.join("plans", f"{index}.pkl")
        full = os.path.join(self._driver.session_dir, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        plan.source = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else None
        with open(full, "wb") as f:
            f.write(_pickle_plan(plan, node))
        return self._driver.run_job(index, roots, rel, shuffle, sink, path and os.path.abspath(path), node._where())


def _paths(node):
    """`(root, [narrow nodes])` for each way from a root up to `node`: a
    root is a source, a materialized node or a shuffle."""
    if node._materialized is not None or node._kind in ("source", "shuffle"):
        return [(node, [])]
    if node._kind == "narrow":
        return [(root, ops + [node]) for root, ops in _paths(node._parents[0])]
    return [p for parent in node._parents for p in _paths(parent)]


def _fns(nodes):
    """The batch functions of a chain of narrow nodes."""
    return [n._info["fn"] for n in nodes]


def _root_key(root):
    return root._materialized or f"src-{root._id}"


def _unique(nodes):
    seen, out = set(), []
    for n in nodes:
        if n._id not in seen:
            seen.add(n._id)
            out.append(n)
    return out


def _pickle_plan(plan, node):
    _register_user_modules()
    try:
        return cloudpickle.dumps(plan, protocol=5)
    except Exception as e:
        raise _unpicklable(node, e) from e


def _register_user_modules():
    """Has cloudpickle send the user's own modules by value: every module
    loaded from a file under the main script's directory or the current
    directory, except the shoal package, installed packages and the
    standard library. cloudpickle pickles other modules' functions by
    reference, and the hosts do not have the user's project files."""
    roots = _user_roots()
    if not roots:
        return
    skip = _library_dirs()
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None)
        # Only Python source: a compiled extension cannot travel by value.
        if name == "__main__" or name in _BY_VALUE or not path or not path.endswith(".py"):
            continue
        path = os.path.realpath(path)
        installed = any(part in ("site-packages", "dist-packages") for part in path.split(os.sep))
        if any(_under(path, r) for r in roots) and not installed and not any(_under(path, d) for d in skip):
            cloudpickle.register_pickle_by_value(mod)
            _BY_VALUE.add(name)


#: Modules already registered with cloudpickle to be pickled by value.
_BY_VALUE = set()


def _user_roots():
    """The main script's directory and the current directory; never `/`,
    under which everything lies."""
    dirs = [os.getcwd()]
    if sys.argv and sys.argv[0] and os.path.isfile(sys.argv[0]):
        dirs.append(os.path.dirname(os.path.abspath(sys.argv[0])))
    return {os.path.realpath(d) for d in dirs} - {os.path.realpath(os.sep)}


def _library_dirs():
    """Where the shoal package, installed packages and the standard library live."""
    dirs = [os.path.dirname(os.path.abspath(shoal.__file__)), os.path.dirname(os.path.abspath(cloudpickle.__file__))]
    dirs += [sysconfig.get_path(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    dirs += list(getattr(site, "getsitepackages", lambda: [])())
    dirs.append(getattr(site, "getusersitepackages", lambda: None)())
    return {os.path.realpath(d) for d in dirs if d}


def _under(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _unpicklable(node, error):
    """A PlanError naming the first function of the plan that cannot be pickled."""
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if n._id in seen:
            continue
        seen.add(n._id)
        fns = [n._info.get("user_fn")] + list(n._info.get("user_fns", []))
        for f in filter(None, fns):
            try:
                cloudpickle.dumps(f)
            except Exception as e:
                name = getattr(f, "__qualname__", repr(f))
                return PlanError(
                    f"{n._where()}: the function {name} cannot be sent to the hosts ({type(e).__name__}: {e}); "
                    "make it use only values that pickle (open files, locks and connections must be made inside the function)"
                )
        stack.extend(n._parents)
    return PlanError(f"{node._where()}: the job cannot be sent to the hosts ({type(error).__name__}: {error})")


def _copy_package(dest):
    """The installed `shoal` package and `cloudpickle`, copied to the
    session dir, which every job syncs to its hosts as `.shoal-python/`."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for mod in (shoal, cloudpickle):
        src = os.path.dirname(os.path.abspath(mod.__file__))
        shutil.copytree(src, os.path.join(dest, os.path.basename(src)), ignore=ignore, dirs_exist_ok=True)
