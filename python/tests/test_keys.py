"""The canonical key encoding seen from Python: `shoal._native.encode_key`.

Run by `crates/shoal/tests/it/python_keys.rs` with the test venv's
python (or by hand: `python python/tests/test_keys.py`; also a pytest
file). With the argument `hashes` it prints, instead, the FNV-1a 64 hash
the agent routes by for a few keys, and `hash("a")`, one per line: the
Rust test runs that in two processes with different PYTHONHASHSEED and
checks the routing hashes agree (with each other and with Rust's) while
Python's own `hash` does not.
"""

import collections
import decimal
import enum
import random
import sys
import unittest

from shoal._native import encode_key

# The keys the issue names: they must route the same on every host and run.
ROUTED = [1, "a", (1, "a"), b"x", 1.0]


def fnv1a64(data):
    """`shoal_core::partitioner::stable_hash`, in Python."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def same_order(test, values):
    """Sorting by encoding gives Python's sort (both stable, so equal keys
    keep their input order in both)."""
    want = sorted(values)
    got = sorted(values, key=encode_key)
    test.assertEqual([repr(v) for v in got], [repr(v) for v in want])


class Color(enum.IntEnum):
    RED = 1


Point = collections.namedtuple("Point", "x y")


class Word(str):
    pass


class EqualKeysEncodeEqual(unittest.TestCase):
    def test_one_true_and_one_point_zero(self):
        self.assertEqual(encode_key(1), encode_key(1.0))
        self.assertEqual(encode_key(1), encode_key(True))
        self.assertEqual(encode_key(0), encode_key(-0.0))
        self.assertEqual(encode_key(0), encode_key(False))
        self.assertNotEqual(encode_key(1), encode_key("1"))
        self.assertNotEqual(encode_key("a"), encode_key(b"a"))

    def test_large_and_negative_numbers(self):
        self.assertEqual(encode_key(2**64), encode_key(float(2**64)))
        self.assertEqual(encode_key(-(2**100)), encode_key(-float(2**100)))
        self.assertNotEqual(encode_key(2**64 + 1), encode_key(float(2**64)))
        self.assertNotEqual(encode_key(2**300), encode_key(2**300 + 1))

    def test_containers_and_subclasses(self):
        self.assertEqual(encode_key((1, "a")), encode_key((1.0, "a")))
        self.assertEqual(encode_key(((True,), None)), encode_key(((1,), None)))
        self.assertEqual(encode_key(frozenset({1, 2, "z"})), encode_key(frozenset({"z", 2.0, 1})))
        self.assertEqual(encode_key(Color.RED), encode_key(1))
        self.assertEqual(encode_key(Point(1, "y")), encode_key((1, "y")))
        self.assertEqual(encode_key(Word("w")), encode_key("w"))
        self.assertEqual(encode_key(float("nan")), encode_key(-float("nan")))


class ByteOrderIsPythonOrder(unittest.TestCase):
    def test_mixed_ints_and_floats(self):
        rng = random.Random(18)
        values = [0, -0.0, 1, 1.0, True, 1.5, 2, -1, -1.5, 1e19, 2**64, -(2**70),
                  float("inf"), float("-inf"), 5e-324, -5e-324, 2**53 + 1, float(2**53)]
        for _ in range(400):
            kind = rng.randrange(5)
            if kind == 0:
                values.append(rng.randint(-1000, 1000))
            elif kind == 1:
                values.append(rng.randint(-(2**200), 2**200))
            elif kind == 2:
                values.append(rng.uniform(-1e6, 1e6))
            elif kind == 3:
                values.append(rng.randint(-64, 64) / 8)
            else:
                values.append(rng.choice([-1, 1]) * rng.random() * 2.0 ** rng.randint(-1070, 1020))
        same_order(self, values)

    def test_strings_and_tuples_of_strings(self):
        rng = random.Random(7)
        alphabet = ["a", "b", "\0", "\x01", "\t", "\n", "\xe9", "\uffff", "\U0001f600", "\ud800"]
        words = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(4))) for _ in range(200)]
        same_order(self, words)
        tuples = [tuple(rng.choice(words[:12]) for _ in range(rng.randrange(4))) for _ in range(200)]
        same_order(self, tuples)

    def test_bytes_and_tuples_of_numbers_and_bytes(self):
        rng = random.Random(5)
        blobs = [bytes(rng.choice([0, 1, 9, 10, 11, 12, 255]) for _ in range(rng.randrange(4))) for _ in range(200)]
        same_order(self, blobs)
        pairs = [(rng.choice([1, 1.0, 2, -0.5]), rng.choice(blobs[:6])) for _ in range(200)]
        same_order(self, pairs)


class RefusedKeys(unittest.TestCase):
    def refused(self, key, error, message):
        with self.assertRaises(error) as caught:
            encode_key(key)
        self.assertEqual(str(caught.exception), message)

    def test_unsupported_types_say_which_and_what_to_do(self):
        allowed = "keys must be None, bool, int, float, str, bytes, or tuples/frozensets of these"
        self.refused([1], TypeError,
                     "a key of type `list` cannot be used to route records: " + allowed
                     + " (a list key can be turned into a tuple)")
        self.refused((1, {2}), TypeError,
                     "a key that holds a `set` in a tuple or frozenset cannot be used to route records: " + allowed
                     + " (a set key can be turned into a frozenset)")
        self.refused({"a": 1}, TypeError,
                     "a key of type `dict` cannot be used to route records: " + allowed
                     + " (a dict key can be turned into a tuple of its sorted items)")
        self.refused(object(), TypeError, "a key of type `object` cannot be used to route records: " + allowed)
        # Hashable and equal to an int, but with no canonical form: refused, never routed by hash().
        self.refused(decimal.Decimal(1), TypeError,
                     "a key of type `decimal.Decimal` cannot be used to route records: " + allowed)

    def test_limits(self):
        self.assertEqual(len(encode_key(2**15999)), len(encode_key(-(2**15999))))
        self.refused(2**16000, OverflowError,
                     "an integer of 16001 bits in a key is too large to route records: integers in keys may have "
                     "at most 16000 bits (about 4800 decimal digits); turn it into a str or hash it first")
        deep = None
        for _ in range(64):
            deep = (deep,)
        encode_key(deep)
        self.refused((deep,), ValueError,
                     "a key with tuples or frozensets nested more than 64 deep cannot be used to route records: "
                     "flatten it")


def print_hashes():
    for key in ROUTED:
        print(f"{fnv1a64(encode_key(key)):016x}")
    print(f"hash('a') {hash('a')}")


if __name__ == "__main__":
    if sys.argv[1:] == ["hashes"]:
        print_hashes()
    else:
        unittest.main(verbosity=2)
