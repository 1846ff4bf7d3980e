"""A parameter sweep: `python sweep.py OUT.csv [SAMPLES]`.

Runs a small seeded simulation (a single-server queue: mean wait of
SAMPLES customers) for every point of a grid of arrival and service
rates, one task per point, and compiles the results into OUT.csv sorted
by the parameters; prints the point with the shortest wait. Each point
seeds its own random generator from its parameters, so the answer is the
same however the points are spread over hosts. `--plain` computes the
same in plain Python, in this process (the tests compare).
"""

import csv
import random
import sys

import shoal

ARRIVALS = [0.5, 0.6, 0.7, 0.8, 0.9]
SERVICES = [1.0, 1.2, 1.5, 2.0]


def grid():
    return [(a, s) for a in ARRIVALS for s in SERVICES]


def simulate(point, samples):
    """Mean wait in a single-server queue (Lindley's recursion)."""
    arrival, service = point
    rng = random.Random(f"{arrival}/{service}")
    wait = total = 0.0
    for _ in range(samples):
        wait = max(0.0, wait + rng.expovariate(service) - rng.expovariate(arrival))
        total += wait
    return {"arrival": arrival, "service": service, "mean_wait": round(total / samples, 9)}


def report(rows, out):
    rows = sorted(rows, key=lambda r: (r["arrival"], r["service"]))
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["arrival", "service", "mean_wait"])
        w.writeheader()
        w.writerows(rows)
    best = min(rows, key=lambda r: (r["mean_wait"], r["arrival"], r["service"]))
    print(f"{len(rows)} points; shortest wait {best['mean_wait']} at arrival {best['arrival']}, service {best['service']}")


def main():
    if "--plain" in sys.argv:
        args = [a for a in sys.argv[1:] if a != "--plain"]
        samples = int(args[1]) if len(args) > 1 else 20000
        return report([simulate(p, samples) for p in grid()], args[0])
    with shoal.Context() as sc:
        if not sc.args:
            sys.exit("usage: sweep.py OUT.csv [SAMPLES]")
        samples = int(sc.args[1]) if len(sc.args) > 1 else 20000
        points = grid()
        rows = sc.parallelize(points, len(points)).map(lambda p: simulate(p, samples)).collect()
        report(rows, sc.args[0])


if __name__ == "__main__":
    main()
