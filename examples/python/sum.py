"""Sums: `python sum.py N [PARTITIONS]` adds 1..N doubled (reduce), counts
a range, and folds the squares; `--plain` computes the same in plain
Python."""

import sys

import shoal


def plain(n):
    print(f"sum {sum(2 * x for x in range(1, n + 1))}")
    print(f"count {len(range(1, n + 1))}")
    print(f"squares {sum(x * x for x in range(n))}")


def main():
    if "--plain" in sys.argv:
        return plain(int([a for a in sys.argv[1:] if a != "--plain"][0]))
    with shoal.Context() as sc:
        n = int(sc.args[0]) if sc.args else 1_000_000
        parts = int(sc.args[1]) if len(sc.args) > 1 else 8
        print(f"sum {sc.parallelize(range(1, n + 1), parts).map(lambda x: 2 * x).reduce(lambda a, b: a + b)}")
        print(f"count {sc.range(1, n + 1, parts).count()}")
        print(f"squares {sc.range(n, n=parts).map(lambda x: x * x).fold(0, lambda a, b: a + b)}")


if __name__ == "__main__":
    main()
