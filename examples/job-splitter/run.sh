#!/usr/bin/env bash
# Runs the sweep and checks it against the same jobs run one by one here.
# usage: run.sh SHOAL_BINARY [shoal run flags]
set -euo pipefail
shoal="$(realpath "$1")"; shift
cd "$(dirname "$0")"
"$shoal" run job.toml "$@"
mkdir -p data
{
    echo "rate,steps,mean,stddev"
    for rate in $(python3 -c 'import tomllib; print(" ".join(tomllib.load(open("job.toml","rb"))["input"]["args"]))'); do
        SHOAL_PARAM_STEPS=20000 SHOAL_SEED=1234 python3 simulate.py "$rate" | tail -n 1
    done
} > data/reference.csv
if cmp -s out/sweep.csv data/reference.csv; then
    echo "job-splitter: $(($(wc -l < out/sweep.csv) - 1)) results match the one-by-one reference"
else
    echo "job-splitter: results DIFFER from the reference" >&2
    diff out/sweep.csv data/reference.csv | head >&2
    exit 1
fi
