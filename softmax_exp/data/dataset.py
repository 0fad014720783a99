"""The Dataset record every loader returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Dataset:
    """Preprocessed splits of one image dataset, ready for a linear classifier.

    X_<split> : (N_split, D) float32 or float64 (per config), C-contiguous, read-only (an np.memmap
        when loaded from the cache). Rows are images flattened in HWC order, minus ``mean_image``,
        then (bias_trick) a last column of ones: D = H*W*channels + 1; or, with a feature stage
        (``features``), the stage's F features of each image, then the ones: D = F + 1.
    y_<split> : (N_split,) int64 in [0, num_classes)
    Splits: train, val, test, and dev (a seeded sample of training rows).
    mean_image : (H*W*channels,) float64, the training mean that was subtracted (zeros if not).
    image_shape : (H, W, channels); ``W[:-1].T.reshape(-1, *image_shape)`` (bias row dropped) gives
        one weight image per class.
    fingerprint : sha256 hex digest of the source files and preprocessing options.
    cache_path : folder of the cache entry, None when not cached.
    source : where the images come from (the dataset's folder, or the library that holds them).
    features : the fitted :class:`~softmax_exp.features.stage.FeatureStage` that made the rows, None for
        the pixels (then ``mean_image`` is what was subtracted; with a stage it is zeros).
    examples : with a stage, the first validation images as they are, (n <= 8, H, W, channels) uint8.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    X_dev: np.ndarray
    y_dev: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    mean_image: np.ndarray
    bias_trick: bool
    fingerprint: str
    cache_path: str | None
    source: str = ""
    features: Any = None
    examples: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        """C, the number of classes."""
        return len(self.class_names)

    @property
    def dim(self) -> int:
        """D, the number of features per row (including the bias column)."""
        return int(self.X_train.shape[1])

    def raw_images(self, split: str, n: int | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """The first ``n`` images of ``split`` (or those at the indices ``rows``) as the source has them,
        (n, H, W, channels) uint8: the preprocessed rows with the mean added back and the bias column
        dropped (exact: every source here has uint8 pixels, and the rows differ from them by float
        rounding only). With a feature stage the rows cannot be turned back into images: the validation
        images kept as ``examples`` (at most 8; ``rows`` is refused)."""
        if self.features is not None:
            if split != "val" or self.examples is None or rows is not None:
                raise ValueError(f"a dataset of {self.features.NAME} features keeps only validation images "
                                 f"(its first ones)")
            return np.array(self.examples[:n])
        X = getattr(self, f"X_{split}")
        X = np.asarray(X[:n] if rows is None else X[np.asarray(rows, dtype=np.int64)], dtype=np.float64)
        pixels = (X[:, :-1] if self.bias_trick else X) + self.mean_image
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(-1, *self.image_shape)

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{s}={getattr(self, 'X_' + s).shape}" for s in ("train", "val", "test", "dev")
        )
        return (
            f"Dataset({self.name!r}, {shapes}, dtype={self.X_train.dtype}, "
            f"classes={self.num_classes}, fingerprint={self.fingerprint[:16]})"
        )
