"""Image datasets for the softmax classifier: digits, CIFAR-10 and image folders.

``load_dataset(cfg.dataset)`` returns a :class:`Dataset` of preprocessed, read-only arrays; every
bad input raises :class:`DataError`. ``python -m softmax_exp.data info|download`` is the command
line.
"""

from softmax_exp.data.dataset import Dataset
from softmax_exp.data.errors import DataError
from softmax_exp.data.load import check_dataset, load_dataset

__all__ = ["Dataset", "DataError", "check_dataset", "load_dataset"]
