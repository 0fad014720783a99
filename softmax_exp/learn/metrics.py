"""Per-class results of a classifier on one split: the confusion matrix and what is read off it.

``confusion[i, j]`` counts the rows of true class i predicted as class j (scikit-learn's
``confusion_matrix`` convention); the diagonal is what was right. Per-class accuracy is the recall of each
class, ``confusion[i, i] / confusion[i].sum()``: what the course's single accuracy averages over the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts: ``[i, j]`` = rows of true class i predicted j. y_true, y_pred: (N,) labels in
    [0, C); ValueError (naming the argument) for other shapes or labels."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must be (N,) label arrays of one length; got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} must hold integer labels in [0, {num_classes}); got {y.dtype} in "
                             f"[{y.min()}, {y.max()}]")
    flat = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """(C,) float64: the fraction of each true class predicted right (its recall); NaN for a class with
    no rows in the split."""
    confusion = np.asarray(confusion)
    counts = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.diag(confusion) / np.maximum(counts, 1), np.nan).astype(np.float64)


def normalized_by_true_class(confusion: np.ndarray) -> np.ndarray:
    """(C, C) float64: each row divided by its count, so a row sums to 1 (a class with no rows: zeros).
    Row i is where the images of class i went."""
    confusion = np.asarray(confusion, dtype=np.float64)
    counts = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, counts, out=np.zeros_like(confusion), where=counts > 0)


def most_confused(confusion: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells, largest first (ties: by true then predicted class), as
    (true class, predicted class, count); cells of count 0 left out."""
    confusion = np.asarray(confusion)
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    i, j = np.nonzero(off)
    order = sorted(zip(i.tolist(), j.tolist(), strict=True), key=lambda ij: (-off[ij], ij))
    return [(a, b, int(off[a, b])) for a, b in order[:k]]


@dataclass(frozen=True)
class SplitResult:
    """A classifier's labels on one split: y_true, y_pred (N,) int64; confusion (C, C) int64."""

    y_true: np.ndarray
    y_pred: np.ndarray
    confusion: np.ndarray

    @classmethod
    def of(cls, y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> SplitResult:
        return cls(np.asarray(y_true), np.asarray(y_pred), confusion_matrix(y_true, y_pred, num_classes))

    @property
    def accuracy(self) -> float:
        """The fraction of rows predicted right (NaN for none)."""
        n = int(self.confusion.sum())
        return float(np.trace(self.confusion) / n) if n else float("nan")

    @property
    def per_class(self) -> np.ndarray:
        """(C,) float64, see :func:`per_class_accuracy`."""
        return per_class_accuracy(self.confusion)
