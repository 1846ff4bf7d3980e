"""The pure parts of the Python check: a host's report lines, the
mismatch table, and the garbage collection of old environments on a
host. Run by `cargo test` (crates/shoal/tests/it/python_env.rs) with the
test venv's Python: `python python/tests/test_environment.py`.
"""

import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "shoal"))
import _hostenv  # noqa: E402  (the host script, as a host runs it: standard library only)

from shoal import _environment  # noqa: E402

DRIVER = {"python": "3.11.7", "platform": "linux-x86_64", "shoal": "0.1.0", "cloudpickle": "3.1.1", "requirements": "abc123"}


def host(name, **changes):
    r = dict(DRIVER, host=name, interpreter="/x/bin/python")
    r.update(changes)
    return r


class Reports(unittest.TestCase):
    def test_a_missing_interpreter_is_named_with_its_host(self):
        r = _environment.parse("shoal-no-python\th3\t/opt/py/bin/python3")
        self.assertEqual(r["host"], "h3")
        self.assertEqual(r["error"], "there is no Python interpreter '/opt/py/bin/python3' on it (not found on its PATH)")

    def test_an_interpreter_that_cannot_run_the_check_is_named_with_its_output(self):
        r = _environment.parse("shoal-crashed\th2\tpython2\tUnknown option: -I usage: ...")
        self.assertEqual(r["host"], "h2")
        self.assertIn("python2 could not run Shoal's check of it (which needs Python 3.6 or newer): Unknown option: -I", r["error"])

    def test_a_json_report_is_read_as_is(self):
        self.assertEqual(_environment.parse(json.dumps(host("h1"))), host("h1"))


class Mismatch(unittest.TestCase):
    def test_only_major_minor_of_python_matters(self):
        self.assertEqual(_environment.differs(host("h1", python="3.11.2"), DRIVER), [])
        self.assertEqual(_environment.differs(host("h1", python="3.12.1"), DRIVER), ["python"])

    def test_every_differing_column_is_named(self):
        r = host("h2", cloudpickle="2.2.0", requirements=None)
        self.assertEqual(_environment.differs(r, DRIVER), ["cloudpickle", "requirements"])

    def test_a_host_of_another_python_or_platform_counts_only_that(self):
        # Nothing is imported or built there: the rest was not measured.
        r = host("h2", python="3.12.1", shoal=None, cloudpickle=None, requirements=None)
        self.assertEqual(_environment.differs(r, DRIVER), ["python"])
        r = host("h2", platform="linux-aarch64", shoal=None)
        self.assertEqual(_environment.differs(r, DRIVER), ["platform"])
        err = str(_environment.mismatch([r], DRIVER, [r]))
        self.assertEqual(err.splitlines()[3].split(), ["h2", "3.11.7", "linux-aarch64", "*", "?", "?", "?"])
        self.assertEqual(err.split("to fix:\n")[1].count("\n  - "), 0, "one fix, for the platform: " + err)

    def test_the_table_shows_every_host_marks_the_difference_and_says_how_to_fix_it(self):
        reports = [host("h1"), host("h2", python="3.12.1"), {"host": "h3", "error": "no python"}]
        err = _environment.mismatch(reports, DRIVER, [reports[1]])
        text = str(err)
        self.assertEqual(err.exit_code, 2)
        lines = text.splitlines()
        self.assertEqual(lines[0], "the hosts' Python differs from this driver's (* marks what differs):")
        self.assertEqual(lines[1].split(), ["host", "python", "platform", "shoal", "cloudpickle", "requirements"])
        self.assertEqual(lines[2].split(), ["(this", "driver)", "3.11.7", "linux-x86_64", "0.1.0", "3.1.1", "abc123"])
        self.assertEqual(lines[3].split(), ["h1", "3.11.7", "linux-x86_64", "0.1.0", "3.1.1", "abc123"])
        # Not measured there: another Python imports and builds nothing.
        self.assertEqual(lines[4].split(), ["h2", "3.12.1", "*", "linux-x86_64", "?", "?", "?"])
        self.assertEqual(lines[5].split(), ["h3", "(cannot", "run", "tasks:", "no", "python)"])
        self.assertIn("give h2 an interpreter of that version", text)
        self.assertIn('python_on = { h2 = "/path/to/python3.11" }', text)
        self.assertNotIn("platform", text.split("to fix:")[1])


class Garbage(unittest.TestCase):
    def make(self, root, name, age, complete=True):
        path = os.path.join(root, name)
        os.makedirs(os.path.join(path, "bin"))
        stamp = os.path.join(path, _hostenv.COMPLETE) if complete else path
        if complete:
            open(stamp, "w").close()
        when = time.time() - age
        os.utime(stamp, (when, when))

    def test_old_environments_beyond_the_kept_ones_go_and_recent_or_current_ones_stay(self):
        day = 24 * 3600
        with tempfile.TemporaryDirectory() as root:
            self.make(root, "current", 30 * day)
            for i, age in enumerate([1, 2, 3]):
                self.make(root, f"recent{i}", age * day)
            self.make(root, "old-incomplete", 20 * day, complete=False)
            self.make(root, "old1", 40 * day)
            self.make(root, "fresh-extra", 60)
            _hostenv.collect_garbage(root, keep="current")
            left = sorted(n for n in os.listdir(root) if not n.endswith(".lock"))
            # Kept: the current one, the 3 most recently used others (KEEP in all), and
            # any other used within STALE_SECONDS (a program may be using it now).
            self.assertEqual(left, ["current", "fresh-extra", "recent0", "recent1", "recent2"])

    def test_an_environment_being_built_is_not_removed(self):
        import fcntl

        with tempfile.TemporaryDirectory() as root:
            for i in range(_hostenv.KEEP + 2):
                self.make(root, f"env{i}", 30 * 24 * 3600 + i)
            with open(os.path.join(root, "env5.lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                _hostenv.collect_garbage(root, keep="none")
            left = sorted(n for n in os.listdir(root) if not n.endswith(".lock"))
            self.assertEqual(left, ["env0", "env1", "env2", "env5"])


if __name__ == "__main__":
    unittest.main()
