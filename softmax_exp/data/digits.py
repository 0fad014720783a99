"""scikit-learn's 8x8 handwritten digits (1797 gray images, 10 classes), available offline.

There is no official test split: the images are shuffled with split_seed, then cut into train, val
and test in that order. Pixels are integers 0..16.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from softmax_exp.data.errors import DataError
from softmax_exp.data.options import DatasetOptions
from softmax_exp.data.preprocess import (
    RawDataset,
    Source,
    SplitRows,
    check_fits,
    dev_rows,
    shuffled,
)

IMAGE_SHAPE = (8, 8, 1)


def open_digits(opts: DatasetOptions) -> Source:
    """Load the digits (a few ms) and describe them by a content hash."""
    pixels, labels = read_digits()
    digest = hashlib.sha256(pixels.tobytes() + labels.tobytes()).hexdigest()
    signature = {"source": "sklearn digits.csv.gz", "sha256": digest}
    return Source(signature, lambda: _split(opts, pixels, labels))


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """(pixels (1797, 64) uint8 in 0..16, labels (1797,) int64), as sklearn's load_digits gives.

    Reads the CSV that load_digits reads straight from the installed package: importing
    sklearn.datasets costs seconds per process, the file a few milliseconds.
    """
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is not None and path.is_file():
        table = np.loadtxt(path, delimiter=",")
        flat, target = table[:, :-1], table[:, -1]
    else:  # a future sklearn layout: take the slow road
        from sklearn.datasets import load_digits

        bunch = load_digits()
        flat, target = bunch.data, bunch.target
    if flat.shape != (1797, 64) or flat.min() < 0 or flat.max() > 16:
        raise DataError(f"sklearn's digits data has shape {flat.shape}, expected (1797, 64)")
    return np.ascontiguousarray(flat.astype(np.uint8)), target.astype(np.int64)


def _split(opts: DatasetOptions, pixels: np.ndarray, labels: np.ndarray) -> RawDataset:
    n_train, n_val, n_test = opts.num_training, opts.num_validation, opts.num_test
    check_fits(
        {"num_training": n_train, "num_validation": n_val, "num_test": n_test},
        len(pixels),
        "digits images",
    )
    order = shuffled(len(pixels), opts.split_seed)
    train = order[:n_train]
    splits = {
        "train": train,
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val : n_train + n_val + n_test],
        "dev": train[dev_rows(n_train, opts.num_dev, opts.split_seed)],
    }
    return RawDataset(
        class_names=tuple(str(d) for d in range(10)),
        image_shape=IMAGE_SHAPE,
        splits={k: SplitRows(pixels, labels, rows) for k, rows in splits.items()},
    )
