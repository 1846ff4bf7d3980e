#!/usr/bin/env python3
"""Hadoop Streaming mapper: one `word<TAB>1` line per word of stdin."""
import sys

for line in sys.stdin:
    for word in line.split():
        print(f"{word.lower()}\t1")
