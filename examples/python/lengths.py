"""Word lengths: `python lengths.py CORPUS` prints how many words of each
length the corpus holds, one `length<TAB>count` line per length.

The functions come from the sibling module `helpers.py`, to show that a
program's own modules reach the hosts with it. `--plain` computes the
same in plain Python, in this process (the tests compare).
"""

import collections
import sys

import shoal
from helpers import by_length, words


def report(counts):
    return "\n".join(f"{n}\t{c}" for n, c in sorted(counts))


def plain(corpus):
    counts = collections.Counter()
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            counts.update(n for n, _ in map(by_length, words(line.rstrip("\n"))))
    print(report(counts.items()))


def main():
    if "--plain" in sys.argv:
        return plain([a for a in sys.argv[1:] if a != "--plain"][0])
    with shoal.Context() as sc:
        if not sc.args:
            sys.exit("usage: lengths.py CORPUS")
        counts = sc.text_file(sc.args[0]).flat_map(words).map(by_length).reduce_by_key(lambda a, b: a + b)
        print(report(counts.collect()))


if __name__ == "__main__":
    main()
