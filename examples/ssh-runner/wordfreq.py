#!/usr/bin/env python3
"""Counts the words of one partition (stdin) and prints `word<TAB>count`.

Shoal runs this once per partition, on every core of every host. It reads
its settings from the injected params (SHOAL_PARAM_MIN_LENGTH) and reports
progress through $SHOAL_PROGRESS.
"""
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tokenize import words  # noqa: E402  (lib/tokenize.py, synced with the job)

min_length = int(os.environ.get("SHOAL_PARAM_MIN_LENGTH", "1"))
counts = collections.Counter()
for line in sys.stdin:
    counts.update(w for w in words(line) if len(w) >= min_length)
for word, n in sorted(counts.items()):
    print(f"{word}\t{n}")
with open(os.environ.get("SHOAL_PROGRESS", os.devnull), "w") as p:
    p.write("1/1\n")
