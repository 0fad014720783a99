"""The rows of a feature stage: the stage fitted on the training images only, then every split's images
turned into rows, a chunk at a time, with a progress bar on a terminal.

Sources hand over uint8 pixel pools (rows flattened in HWC order); here they become images (n, H, W, channels)
for the stage, and its rows (n, F) float64 are cast to the dataset's dtype with, under the bias trick, a
last column of ones, the way :func:`softmax_exp.data.preprocess.build_arrays` writes the pixels' rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from softmax_exp.data.preprocess import CHUNK_ROWS, SPLITS, Allocate, RawDataset, SplitRows, mirrored
from softmax_exp.features.stage import FeatureStage

EXAMPLE_IMAGES = 8  # validation images kept raw beside the rows: a logged model's input example
STATE_PREFIX = "features_"  # the stage's fitted arrays among a cache entry's arrays


def _images(split: SplitRows, image_shape: tuple[int, int, int],
            mirror: bool = False) -> Iterator[np.ndarray]:
    """The split's images in chunks (n, H, W, channels) uint8, each mirrored left to right if asked."""
    for start in range(0, len(split.rows), CHUNK_ROWS):
        block = split.pixels[split.rows[start : start + CHUNK_ROWS]]
        if mirror:
            block = mirrored(block, image_shape)
        yield block.reshape(len(block), *image_shape)


def _fitting(batches: Iterator[np.ndarray], bar: Any, name: str) -> Iterator[np.ndarray]:
    """The batches, then the bar's description says the stage is fitting on them."""
    yield from batches
    bar.set_description(f"features {name}: fitting on the training images")


def build_feature_arrays(raw: RawDataset, stage: FeatureStage, dtype: np.dtype, bias_trick: bool,
                         allocate: Allocate, hflip: bool = False, progress: bool | None = None,
                         ) -> dict[str, np.ndarray]:
    """Fit ``stage`` on the training images (and their mirrors with ``hflip``) and write every split's rows.

    The training images are extracted once: their raw features go into X_train (cast to ``dtype``) while
    their float64 sums accumulate; the training mean and variance (a second pass over X_train) set the
    stage's standardisation, which a third pass applies in place, as :meth:`FeatureStage.transform` does
    to the other splits' images.

    Returns ``X_<split>`` (n, F [+ 1]) of ``dtype`` (from ``allocate``), ``y_<split>`` (n,) int64,
    ``mean_image`` (P,) float64 zeros (no mean image is subtracted), the stage's state as
    ``features_<name>`` float64 arrays, and ``examples_val`` (up to EXAMPLE_IMAGES, H, W, channels) uint8,
    the first validation images as they are. ``progress``: a tqdm bar with the images done and an ETA
    (None: on a terminal only).
    """
    from tqdm import tqdm

    shape, dtype = raw.image_shape, np.dtype(dtype)
    mirrors = [False, True] if hflip else [False]
    rows = {s: len(raw.splits[s].rows) * (len(mirrors) if s == "train" else 1) for s in SPLITS}
    fits = stage.learns_from_images()
    total = sum(rows.values()) + (rows["train"] if fits else 0)
    with tqdm(total=total, unit="img", desc=f"features {stage.NAME}", leave=False,
              disable=None if progress is None else not progress) as bar:
        def counted(batches: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
            for b in batches:
                yield b
                bar.update(len(b))

        train = raw.splits["train"]
        if fits:  # the bar counts the images read for the fit, then says it is fitting (k-means: a minute)
            training = (b for m in mirrors for b in counted(_images(train, shape, m)))
            stage.fit(_fitting(training, bar, stage.NAME))
            bar.set_description(f"features {stage.NAME}")
        else:
            stage.fit([])
        arrays: dict[str, np.ndarray] = {"mean_image": np.zeros(int(np.prod(shape)), dtype=np.float64)}
        F = stage.dim
        for name in SPLITS:
            split = raw.splits[name]
            copies = mirrors if name == "train" else [False]
            X = allocate(f"X_{name}", (rows[name], F + int(bias_trick)), dtype)
            if bias_trick:
                X[:, F] = 1.0
            blocks = (b for m in copies for b in counted(_images(split, shape, m)))
            if name == "train":
                _write_and_standardize(stage, blocks, X[:, :F], dtype)
            else:
                start = 0
                for block in blocks:
                    X[start : start + len(block), :F] = stage.transform(block, dtype)
                    start += len(block)
            arrays[f"X_{name}"] = X
            arrays[f"y_{name}"] = np.tile(split.labels[split.rows].astype(np.int64), len(copies))
    val = raw.splits["val"]
    arrays["examples_val"] = val.pixels[val.rows[:EXAMPLE_IMAGES]].reshape(-1, *shape).copy()
    arrays.update({STATE_PREFIX + k: v for k, v in stage.state().items()})
    return arrays


def _write_and_standardize(stage: FeatureStage, blocks: Iterator[np.ndarray], X: np.ndarray,
                           dtype: np.dtype) -> None:
    """The training rows: raw features into X (n, F) of ``dtype``, their mean and variance (float64, from
    the values as cast), then X standardised in place, a chunk of rows at a time."""
    n, F = X.shape
    total = np.zeros(F, dtype=np.float64)
    start = 0
    for block in blocks:
        raw = stage.extract(block).astype(dtype, copy=False)
        X[start : start + len(raw)] = raw
        total += raw.sum(axis=0, dtype=np.float64)
        start += len(raw)
    mean = total / max(n, 1)
    squares = np.zeros(F, dtype=np.float64)
    for s in range(0, n, CHUNK_ROWS):
        centred = X[s : s + CHUNK_ROWS].astype(np.float64) - mean
        squares += np.einsum("ij,ij->j", centred, centred)
    stage.set_standardization(mean, squares / max(n, 1))
    for s in range(0, n, CHUNK_ROWS):
        X[s : s + CHUNK_ROWS] = stage.standardized(X[s : s + CHUNK_ROWS], dtype)
