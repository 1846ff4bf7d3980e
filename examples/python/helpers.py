"""Functions that `lengths.py` imports: they live in the user's own
module, not in the main script, and still reach the hosts (the driver
has cloudpickle send the program's own modules by value)."""

import re

WORD = re.compile(r"[a-z0-9']+")


def words(line):
    """The words of a line, lowercased."""
    return WORD.findall(line.lower())


def by_length(word):
    """`(length, 1)`: one word of that length."""
    return (len(word), 1)
