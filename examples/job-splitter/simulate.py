#!/usr/bin/env python3
"""One job of a parameter sweep: a seeded random walk with drift RATE.

usage: simulate.py RATE
Reads STEPS and the run's seed from the injected params
(SHOAL_PARAM_STEPS, SHOAL_SEED), reports progress to $SHOAL_PROGRESS, and
prints one CSV row (with a header, which Shoal's csv merge keeps once).
"""
import os
import random
import sys

rate = float(sys.argv[1])
steps = int(os.environ.get("SHOAL_PARAM_STEPS", "20000"))
seed = int(os.environ.get("SHOAL_SEED", "0"))
rng = random.Random(f"{seed}:{rate}")
progress = os.environ.get("SHOAL_PROGRESS", os.devnull)
pos, total, total_sq = 0.0, 0.0, 0.0
for i in range(steps):
    pos += rate + rng.gauss(0.0, 1.0)
    total += pos
    total_sq += pos * pos
    if i % 5000 == 0:
        with open(progress, "w") as p:
            p.write(f"{i}/{steps}\n")
mean = total / steps
var = max(total_sq / steps - mean * mean, 0.0)
print("rate,steps,mean,stddev")
print(f"{rate},{steps},{mean:.6f},{var ** 0.5:.6f}")
