#!/usr/bin/env python3
"""Writes a deterministic text corpus with Zipf-distributed words.

usage: gen_corpus.py BYTES [SEED] > corpus.txt
"""
import random
import sys


def main():
    size = int(sys.argv[1])
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 42
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)] + ["the", "a", "of", "Shoal", "fish", "sea"]
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    out = sys.stdout
    written = 0
    while written < size:
        words = rng.choices(vocab, weights, k=rng.randint(5, 15))
        line = " ".join(words) + "\n"
        out.write(line)
        written += len(line)


if __name__ == "__main__":
    main()
