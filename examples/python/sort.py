"""Sorts a file of records by their first 10 characters: `python sort.py
INPUT OUTPUT`; the output has the same lines in key order (equal keys in
any order), written to OUTPUT on the driver. `--plain` sorts in plain
Python."""

import sys

import shoal


def plain(src, dest):
    with open(src) as f:
        lines = f.read().splitlines()
    with open(dest, "w") as f:
        f.writelines(line + "\n" for line in sorted(lines, key=lambda line: line[:10]))


def main():
    if "--plain" in sys.argv:
        return plain(*[a for a in sys.argv[1:] if a != "--plain"])
    with shoal.Context() as sc:
        if len(sc.args) != 2:
            sys.exit("usage: sort.py INPUT OUTPUT")
        (sc.text_file(sc.args[0])
           .key_by(lambda line: line[:10])
           .sort_by_key()
           .map(lambda kv: kv[1])
           .save_as_text(sc.args[1]))


if __name__ == "__main__":
    main()
