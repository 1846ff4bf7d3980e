"""k-means, iterative: `python kmeans.py POINTS K ITERATIONS`. Points are
integer coordinates made from a hash of their index, and centers integer
means, so the result is exact and the same on any number of hosts; the
points are computed once and cached on the hosts. `--plain` runs the
same steps in plain Python."""

import sys

import shoal

MASK = (1 << 64) - 1


def point(i):
    z = (i + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    z ^= z >> 31
    # Four clusters around (+-500, +-500), spread +-200.
    cx, cy = (-500 if z & 1 == 0 else 500), (-500 if z & 2 == 0 else 500)
    return cx + (z >> 8) % 401 - 200, cy + (z >> 24) % 401 - 200


def closest(p, centers):
    return min(range(len(centers)), key=lambda i: ((p[0] - centers[i][0]) ** 2 + (p[1] - centers[i][1]) ** 2, i))


def add(a, b):
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def step(sums, centers):
    return [(sums[i][0] // sums[i][2], sums[i][1] // sums[i][2]) if i in sums else centers[i] for i in range(len(centers))]


def run(n, k, iterations, sums_of):
    centers = [point(i) for i in range(k)]
    for s in range(iterations):
        following = step(sums_of(centers), centers)
        print(f"step {s}: {following}", file=sys.stderr)
        if following == centers:
            break
        centers = following
    print("centers", centers)


def plain(n, k, iterations):
    points = [point(i) for i in range(n)]

    def sums_of(centers):
        sums = {}
        for p in points:
            c = closest(p, centers)
            sums[c] = add(sums.get(c, (0, 0, 0)), (p[0], p[1], 1))
        return sums

    run(n, k, iterations, sums_of)


def main():
    args = [a for a in sys.argv[1:] if a != "--plain"]
    if "--plain" in sys.argv:
        return plain(*[int(a) for a in args])
    with shoal.Context() as sc:
        n, k, iterations = ([int(a) for a in sc.args] + [100_000, 4, 10][len(sc.args):])[:3]
        points = sc.range(n, n=8).map(point).cache()

        def sums_of(centers):
            pairs = points.map(lambda p: (closest(p, centers), (p[0], p[1], 1)))
            return dict(pairs.reduce_by_key(add).collect())

        run(n, k, iterations, sums_of)


if __name__ == "__main__":
    main()
