#!/usr/bin/env bash
# Runs the streaming word count (with and without the combiner) and checks
# it against a count made without Shoal.
# usage: run.sh SHOAL_BINARY [shoal run flags]
set -euo pipefail
shoal="$(realpath "$1")"; shift
cd "$(dirname "$0")"
mkdir -p data
[ -s data/corpus.txt ] || python3 ../common/gen_corpus.py "${CORPUS_BYTES:-5000000}" > data/corpus.txt
python3 reference.py data/corpus.txt > data/reference.tsv
check() {
    LC_ALL=C sort out/counts.tsv > data/got.tsv
    LC_ALL=C sort data/reference.tsv > data/want.tsv
    cmp -s data/got.tsv data/want.tsv || { echo "wordcount-streaming ($1): DIFFERS from the reference" >&2; diff data/got.tsv data/want.tsv | head >&2; exit 1; }
}
"$shoal" run job.toml "$@"
check "with combiner"
"$shoal" run job.toml --set 'combine.command=cat' "$@"
check "identity combiner"
echo "wordcount-streaming: $(wc -l < out/counts.tsv) words match the reference, with and without combining"
