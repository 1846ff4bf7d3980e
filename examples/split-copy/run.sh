#!/usr/bin/env bash
# push --split, a job over the pushed chunks that re-sends nothing, then
# pull --combine; checks the sums and that the pulled chunks rebuild the file.
# usage: run.sh SHOAL_BINARY [--cluster cluster.toml]
set -euo pipefail
shoal="$(realpath "$1")"; shift
cd "$(dirname "$0")"
mkdir -p data
python3 - "${RECORDS:-200000}" > data/records.tsv <<'PY'
import random, sys
rng = random.Random(99)
for i in range(int(sys.argv[1])):
    print(f"{i}\t{rng.randint(0, 1000)}")
PY
"$shoal" push data/records.tsv --to data --split "$@"
"$shoal" run job.toml --json "$@" > data/summary.json
sent=$(python3 -c 'import json; print(json.load(open("data/summary.json"))["input_bytes_sent"])')
[ "$sent" = 0 ] || { echo "split-copy: the job re-sent $sent input bytes" >&2; exit 1; }
want=$(awk -F'\t' '{ s += $2; n++ } END { printf "%d\t%d\n", n, s }' data/records.tsv)
got=$(awk -F'\t' '{ n += $1; s += $2 } END { printf "%d\t%d\n", n, s }' out/sums.tsv)
[ "$got" = "$want" ] || { echo "split-copy: sums differ: got $got, want $want" >&2; exit 1; }
rm -rf data/pulled
"$shoal" pull data/records.tsv --to data/pulled --combine data/combined.tsv "$@"
cmp data/combined.tsv data/records.tsv
echo "split-copy: $(wc -l < out/sums.tsv) partitions, no input re-sent, sums match, pulled chunks rebuild the file"
