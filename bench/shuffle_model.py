#!/usr/bin/env python3
"""A model of shuffle time on N hosts: the driver relay against direct fetch.

The two data paths of `driver/run/engine/shuffle.rs`:

  relay   each bucket goes map host -> driver -> reducer host over ssh. The
          driver's one link carries every moved byte twice, once in and
          once out, and the driver decrypts and re-encrypts (and frames)
          every one of them.
  direct  each reducer host fetches its buckets from the map hosts itself,
          over TCP encrypted with Noise (ChaCha20-Poly1305). A host's link
          carries only its own share, and the host pays the encryption of
          what it serves and the decryption of what it fetches.

A shuffle's time is the time of its busiest resource; the table names it.

Assumptions:
  - B shuffle bytes (--bytes), spread evenly: every one of the N hosts maps
    B/N and reduces B/N (uniform keys, as many reducers as maps per host),
    and 1/N of each host's map output is its own reducers' and is never
    moved (`blocks::missing` skips a bucket the reducer's host holds). So
    both paths move M = B(N-1)/N bytes, and each host sends M/N and
    receives M/N.
  - No stragglers, no failures, no retries: every host works for the whole
    shuffle and finishes with the rest.
  - Links are full duplex, in and out each at --links Gb/s, with no
    protocol overhead; the network core is non-blocking, so only the links
    at the hosts and at the driver count.
  - The driver is one more machine with the same link and --cores as a
    host. The relay keeps its link busy both ways at once (fetching the
    next bucket while uploading the last), so its link time is M / link,
    not 2M / link.
  - The reducers' fetch parallelism (several peers at once) is enough to
    saturate a host's link when the CPU allows it.
  - Disks are faster than the network: map output is read and staged
    buckets written at no cost to the shuffle.
  - Per-byte CPU costs are measured on one machine with --bench-cores
    cores and scale linearly with cores (the work is spread over many
    connections):
      --relay-mbps   the driver relay's throughput, CPU bound (default 150
                     MB/s). The ssh cost on the map and reducer hosts is
                     1/N of the driver's each and is left out.
      --direct-mbps  a host's direct fetch throughput with that host both
                     serving and fetching (default 400 MB/s): per byte it
                     fetches, one encryption and one decryption, which is
                     what each cluster host pays since it sends as much as
                     it receives.
    The defaults are round placeholders; bench/data_plane.py measures both
    on the machine it runs on and writes them to bench/data_plane.json.
    --measured FILE, a JSON object with keys relay_mbps and/or direct_mbps
    (other keys ignored), replaces these defaults; a flag given on the
    command line wins over the file.
  - MB is 10^6 bytes, Gb is 10^9 bits, TiB is 2^40 bytes.
"""

import argparse
import json
import re
import sys

UNITS = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
         "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_bytes(text):
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (say 1TiB, 500GB, ...)")
    return float(m.group(1)) * UNITS[m.group(2).upper()]


def parse_list(kind):
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def bound(resources):
    """The time of the busiest resource, and its name with its rate."""
    name, (seconds, rate) = max(resources.items(), key=lambda kv: kv[1][0])
    return seconds, f"{name} ({rate / 1e6:,.0f} MB/s)"


def model(total, hosts, link_gbps, relay_mbps, direct_mbps, cpu_scale):
    link = link_gbps * 1e9 / 8
    moved = total * (hosts - 1) / hosts
    per_host = moved / hosts
    relay_cpu = relay_mbps * 1e6 * cpu_scale
    direct_cpu = direct_mbps * 1e6 * cpu_scale
    relay = {"driver link": (moved / link, link), "driver CPU": (moved / relay_cpu, relay_cpu)}
    direct = {"host link": (per_host / link, link), "host CPU": (per_host / direct_cpu, direct_cpu)}
    relay_s, relay_binds = bound(relay)
    direct_s, direct_binds = bound(direct)
    return {
        "hosts": hosts, "link_gbps": link_gbps, "moved_bytes": moved,
        "relay_s": relay_s, "direct_s": direct_s, "speedup": relay_s / direct_s,
        "relay_binds": relay_binds, "direct_binds": direct_binds,
        "relay_resources_s": {k: v[0] for k, v in relay.items()},
        "direct_resources_s": {k: v[0] for k, v in direct.items()},
    }


def human(seconds):
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 120 * 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def table(rows):
    lines = ["| hosts | link | relay time | direct time | speed-up | what binds relay | what binds direct |",
             "|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r['hosts']} | {r['link_gbps']:g} Gb/s | {human(r['relay_s'])} | "
                     f"{human(r['direct_s'])} | {r['speedup']:.0f}x | {r['relay_binds']} | {r['direct_binds']} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bytes", type=parse_bytes, default=2**40, help="total shuffle bytes (default 1TiB)")
    p.add_argument("--hosts", type=parse_list(int), default=[10, 100, 1000])
    p.add_argument("--links", type=parse_list(float), default=[1.0, 10.0], help="link speeds in Gb/s")
    p.add_argument("--relay-mbps", type=float, help="measured driver relay MB/s (default 150)")
    p.add_argument("--direct-mbps", type=float, help="measured per-host direct fetch MB/s (default 400)")
    p.add_argument("--cores", type=int, default=2, help="cores per host and on the driver")
    p.add_argument("--bench-cores", type=int, default=2, help="cores of the machine the MB/s were measured on")
    p.add_argument("--measured", metavar="FILE", help="JSON with relay_mbps / direct_mbps")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = p.parse_args()

    rates = {"relay_mbps": 150.0, "direct_mbps": 400.0}
    if args.measured:
        with open(args.measured) as f:
            found = json.load(f)
        rates.update({k: float(found[k]) for k in rates if k in found})
    for key in rates:
        if getattr(args, key) is not None:
            rates[key] = getattr(args, key)
    if min(rates.values()) <= 0 or min(args.hosts, default=0) < 2 or min(args.links, default=0) <= 0:
        p.error("rates and links must be positive, and a shuffle needs at least 2 hosts")

    rows = [model(args.bytes, n, g, rates["relay_mbps"], rates["direct_mbps"], args.cores / args.bench_cores)
            for n in args.hosts for g in args.links]
    if args.json:
        json.dump({"bytes": args.bytes, "cores": args.cores, **rates, "rows": rows}, sys.stdout, indent=2)
        print()
    else:
        print(f"{args.bytes / 2**40:g} TiB shuffled; relay {rates['relay_mbps']:g} MB/s and direct "
              f"{rates['direct_mbps']:g} MB/s measured on {args.bench_cores} cores; {args.cores} cores per host\n")
        print(table(rows))


if __name__ == "__main__":
    main()
