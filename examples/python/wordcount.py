"""Word count: `python wordcount.py CORPUS [OUT]`.

Prints the number of distinct words, the total, and the ten most
frequent; with OUT, also writes every `word<TAB>count` line there,
sorted by word. Words are split on whitespace and lowercased. `--plain`
computes the same in plain Python, in this process (the tests compare).

    python wordcount.py corpus.txt                         # this machine
    python wordcount.py --cluster cluster.toml corpus.txt  # a cluster
"""

import collections
import sys

import shoal


def report(counts):
    top = sorted(counts, key=lambda wc: (-wc[1], wc[0]))
    lines = [f"{len(counts)} distinct words, {sum(n for _, n in counts)} in all"]
    lines += [f"{n}\t{w}" for w, n in top[:10]]
    return "\n".join(lines)


def count_partition(lines):
    """Counts one partition's words in a dict: one record per distinct word."""
    counts = collections.Counter()
    for line in lines:
        counts.update(line.lower().split())
    return counts.items()


def plain(corpus, out):
    with open(corpus, encoding="utf-8") as f:
        counts = count_partition(line.rstrip("\n") for line in f)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.writelines(f"{w}\t{n}\n" for w, n in sorted(counts))
    print(report(list(counts)))


def main():
    if "--plain" in sys.argv:
        args = [a for a in sys.argv[1:] if a != "--plain"]
        return plain(args[0], args[1] if len(args) > 1 else None)
    with shoal.Context() as sc:
        if not sc.args:
            sys.exit("usage: wordcount.py CORPUS [OUT]")
        counts = sc.text_file(sc.args[0]).map_partitions(count_partition).reduce_by_key(lambda a, b: a + b)
        if len(sc.args) > 1:
            counts.sort_by_key().map(lambda wc: f"{wc[0]}\t{wc[1]}").save_as_text(sc.args[1])
        print(report(counts.collect()))


if __name__ == "__main__":
    main()
