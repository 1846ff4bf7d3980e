#!/usr/bin/env python3
"""Writes deterministic sort input: 100-byte records, each a 10-byte random
printable key, an 89-byte random printable payload and a newline (the
shape of the classic sort benchmark's records, as text so that GNU sort,
Spark's textFile and Shoal all read them as lines).

usage: gen_records.py BYTES SEED > records.txt   (BYTES rounded up to 100)

Printable means ASCII 33..126: no spaces or tabs, so no tool splits a
record into fields and byte order (LC_ALL=C) is the only order.
"""
import random
import sys

RECORD = 100
CHUNK = 1 << 16  # records generated per step


def main():
    size, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    printable = bytes(range(33, 127))
    # Map every byte value onto the 94 printable ones (not perfectly uniform,
    # which no system here cares about, but fast: one C-level translate).
    table = bytes(printable[b % len(printable)] for b in range(256))
    left = -(-size // RECORD)
    out = sys.stdout.buffer
    while left:
        n = min(left, CHUNK)
        block = bytearray(rng.randbytes(n * RECORD).translate(table))
        block[RECORD - 1 :: RECORD] = b"\n" * n
        out.write(block)
        left -= n


if __name__ == "__main__":
    main()
