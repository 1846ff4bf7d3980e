#!/usr/bin/env bash
# Runs the example and checks it against a count made without Shoal.
# usage: run.sh SHOAL_BINARY [shoal run flags, e.g. --cluster cluster.toml]
set -euo pipefail
shoal="$(realpath "$1")"; shift
cd "$(dirname "$0")"
mkdir -p data
[ -s data/corpus.txt ] || python3 ../common/gen_corpus.py "${CORPUS_BYTES:-20000000}" > data/corpus.txt
"$shoal" run job.toml "$@"
python3 reference.py data/corpus.txt > data/reference.tsv
if cmp -s out/wordfreq.tsv data/reference.tsv; then
    echo "ssh-runner: output matches the single-machine reference ($(wc -l < out/wordfreq.tsv) distinct words)"
else
    echo "ssh-runner: output DIFFERS from the reference" >&2
    diff out/wordfreq.tsv data/reference.tsv | head >&2
    exit 1
fi
