"""Shared by the per-partition script and the reference: one tokenizer."""


def words(line):
    return [w.lower() for w in line.split()]
