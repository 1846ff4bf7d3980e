#!/usr/bin/env python3
"""The same count without Shoal: word<TAB>count, sorted by word."""
import collections
import sys

counts = collections.Counter()
with open(sys.argv[1]) as f:
    for line in f:
        counts.update(w.lower() for w in line.split())
for word in sorted(counts):
    print(f"{word}\t{counts[word]}")
