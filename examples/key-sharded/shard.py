#!/usr/bin/env python3
"""A key-sharded server's work: it owns every key k with k mod R == its
partition, keeps per-key state (count, sum, max) and reports it.

Input arrives sorted by key (numeric), so each key's records are adjacent.
Each output line also says which shard handled the key, to check routing.
"""
import os
import sys

shard = int(os.environ["SHOAL_PARTITION"])
state = {}
for line in sys.stdin:
    key, _, value = line.rstrip("\n").partition("\t")
    count, total, peak = state.get(key, (0, 0, None))
    v = int(value)
    state[key] = (count + 1, total + v, v if peak is None else max(peak, v))
for key in sorted(state, key=int):
    count, total, peak = state[key]
    print(f"{key}\t{count}\t{total}\t{peak}\tshard={shard}")
