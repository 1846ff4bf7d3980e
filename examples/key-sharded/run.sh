#!/usr/bin/env bash
# Runs the sharded job and checks every key's state and its shard.
# usage: run.sh SHOAL_BINARY [shoal run flags]
set -euo pipefail
shoal="$(realpath "$1")"; shift
cd "$(dirname "$0")"
mkdir -p data
python3 - > data/events.tsv <<'PY'
import random
rng = random.Random(5)
for _ in range(50000):
    print(f"{rng.randint(0, 999)}\t{rng.randint(-100, 100)}")
PY
"$shoal" run job.toml "$@"
python3 - <<'PY'
import collections, sys
want = collections.defaultdict(lambda: [0, 0, None])
for line in open("data/events.tsv"):
    k, v = line.split("\t"); v = int(v)
    s = want[k]; s[0] += 1; s[1] += v; s[2] = v if s[2] is None else max(s[2], v)
got = {}
for line in open("out/state.tsv"):
    k, c, t, p, shard = line.rstrip("\n").split("\t")
    if int(shard.split("=")[1]) != int(k) % 5:
        sys.exit(f"key-sharded: key {k} was handled by {shard}, not shard {int(k) % 5}")
    if k in got:
        sys.exit(f"key-sharded: key {k} reached two reducers")
    got[k] = [int(c), int(t), int(p)]
if got != {k: v for k, v in want.items()}:
    sys.exit("key-sharded: per-key state DIFFERS from the reference")
print(f"key-sharded: {len(got)} keys, each on shard key mod 5, state matches the reference")
PY
