#!/usr/bin/env python3
"""The same count on one machine without Shoal, to check the result."""
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tokenize import words  # noqa: E402

min_length = int(sys.argv[2]) if len(sys.argv) > 2 else 1
total = collections.Counter()
with open(sys.argv[1]) as f:
    for line in f:
        total.update(w for w in words(line) if len(w) >= min_length)
for word, n in sorted(total.items(), key=lambda kv: (-kv[1], kv[0])):
    print(f"{word}\t{n}")
