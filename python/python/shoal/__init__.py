"""Shoal for Python: map/reduce over the machines you can ssh into.

    import shoal

    with shoal.Context() as sc:
        counts = (sc.text_file("corpus.txt")
                    .flat_map(lambda line: line.lower().split())
                    .map(lambda w: (w, 1))
                    .reduce_by_key(lambda a, b: a + b)
                    .collect())
"""

from shoal._native import __version__

__all__ = ["__version__"]
