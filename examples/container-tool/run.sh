#!/usr/bin/env bash
# Builds the tool image FROM scratch (a static busybox, no registry),
# saves it as an archive, runs the job, and checks the totals.
# usage: run.sh SHOAL_BINARY [shoal run flags]
set -euo pipefail
shoal="$(realpath "$1")"; shift
cd "$(dirname "$0")"
mkdir -p data images build/rootfs/bin
cp /bin/busybox build/rootfs/bin/busybox
for t in sh awk wc cat; do ln -sf busybox "build/rootfs/bin/$t"; done
printf 'FROM scratch\nCOPY rootfs/ /\n' > build/Dockerfile
docker build -q -t shoal-example-tool:1 build >/dev/null
docker save -o images/tool.tar shoal-example-tool:1
python3 -c 'import random; r = random.Random(3); print("\n".join("".join(r.choice("ACGT") for _ in range(r.randint(50, 150))) for _ in range(20000)))' > data/reads.txt
"$shoal" run job.toml "$@"
want="$(wc -l -c < data/reads.txt | awk '{ print $1 "\t" $2 }')"
got="$(cat out/totals.tsv)"
[ "$got" = "$want" ] || { echo "container-tool: got $got, want $want" >&2; exit 1; }
echo "container-tool: totals match ($got)"
