#!/usr/bin/env python3
"""Combines the partial counts of every partition into one table.

Shoal gives the merge command every partition's output concatenated on
stdin; the result goes to stdout, sorted by count (descending) then word.
"""
import collections
import sys

total = collections.Counter()
for line in sys.stdin:
    word, n = line.rstrip("\n").split("\t")
    total[word] += int(n)
for word, n in sorted(total.items(), key=lambda kv: (-kv[1], kv[0])):
    print(f"{word}\t{n}")
