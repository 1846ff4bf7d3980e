"""Word count as a `shoal.MapReduceJob` class:
`python mr_wordcount.py -i CORPUS -o COUNTS`.

Writes one `word<TAB>count` line per distinct word to COUNTS (words
split on whitespace and lowercased) and prints a one-line summary.
`--stateful` counts with the per-shard form instead (a dict per shard,
then `result()`); `--plain` computes the same file in plain Python, in
this process (the tests compare, after sorting the lines).

    python mr_wordcount.py -i corpus.txt -o counts.tsv
    python mr_wordcount.py --cluster cluster.toml -i corpus.txt -o counts.tsv
"""

import collections
import sys

import shoal


class WordCount(shoal.MapReduceJob):
    def mapper(self, _, line):
        for word in line.lower().split():
            yield word, 1

    def reducer(self, word, counts):
        yield word, sum(counts)


class ShardWordCount(shoal.MapReduceJob):
    """The stateful form: each shard of the words keeps its own counts."""

    stateful = True

    def __init__(self):
        self.counts = collections.Counter()

    def mapper(self, _, line):
        for word in line.lower().split():
            yield word, 1

    def reducer(self, word, count):
        self.counts[word] += count

    def result(self):
        return self.counts.items()


def plain(argv):
    args = dict(zip(argv[::2], argv[1::2]))
    counts = collections.Counter()
    with open(args.get("-i") or args["--input"], encoding="utf-8") as f:
        for line in f:
            counts.update(line.lower().split())
    out = args.get("-o") or args["--output"]
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(f"{w}\t{n}\n" for w, n in counts.items())
    print(f"plain: {len(counts)} distinct words written to {out}")


if __name__ == "__main__":
    if "--plain" in sys.argv:
        plain([a for a in sys.argv[1:] if a != "--plain"])
    elif "--stateful" in sys.argv:
        ShardWordCount().run([a for a in sys.argv[1:] if a != "--stateful"])
    else:
        WordCount().run()
