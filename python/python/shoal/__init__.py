"""Shoal for Python: map/reduce over the machines you can ssh into.

    import shoal

    with shoal.Context() as sc:
        counts = (sc.text_file("corpus.txt")
                    .flat_map(lambda line: line.lower().split())
                    .map(lambda w: (w, 1))
                    .reduce_by_key(lambda a, b: a + b)
                    .collect())

Flags on the command line are Shoal's (`--cluster FILE`, `--resume`,
`--quiet`, `--partitions N`, `--sort-buffer BYTES`); the rest are the
program's, `sc.args`.
"""

from shoal._native import __version__
from shoal.errors import PlanError, ShoalError
from shoal.dataset import Dataset
from shoal.context import Context
from shoal.mapreduce import MapReduceJob

__all__ = ["Context", "Dataset", "MapReduceJob", "PlanError", "ShoalError", "__version__"]
