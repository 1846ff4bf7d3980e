#!/usr/bin/env python3
"""Hadoop Streaming reducer (also the combiner): sums the counts of each
key. Its input is sorted by key, so each key's lines arrive together."""
import sys

current, total = None, 0
for line in sys.stdin:
    word, _, count = line.rstrip("\n").partition("\t")
    if word != current:
        if current is not None:
            print(f"{current}\t{total}")
        current, total = word, 0
    total += int(count)
if current is not None:
    print(f"{current}\t{total}")
print(f"reporter:counter:wordcount,distinct_words_out,1", file=sys.stderr)
