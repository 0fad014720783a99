"""The rows of a feature stage: the stage fitted on the training images only, then every split's images
turned into rows, a chunk at a time, with a progress bar on a terminal.

Sources hand over uint8 pixel pools (rows flattened in HWC order); here they become images (n, H, W, channels)
for the stage, and its rows (n, F) float64 are cast to the dataset's dtype with, under the bias trick, a
last column of ones, the way :func:`softmax_exp.data.preprocess.build_arrays` writes the pixels' rows.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def build_feature_arrays(raw: RawDataset, stage: FeatureStage, dtype: np.dtype, bias_trick: bool,
                         allocate: Allocate, hflip: bool = False, progress: bool | None = None,
                         ) -> dict[str, np.ndarray]:
    """Fit ``stage`` on the training images (and their mirrors with ``hflip``) and write every split's rows.

    Returns ``X_<split>`` (n, F [+ 1]) of ``dtype`` (from ``allocate``), ``y_<split>`` (n,) int64,
    ``mean_image`` (P,) float64 zeros (no mean image is subtracted), the stage's state as
    ``features_<name>`` float64 arrays, and ``examples_val`` (up to EXAMPLE_IMAGES, H, W, channels) uint8,
    the first validation images as they are. ``progress``: a tqdm bar (None: on a terminal only).
    """
    from tqdm import tqdm

    shape = raw.image_shape
    mirrors = [False, True] if hflip else [False]
    rows = {s: len(raw.splits[s].rows) * (len(mirrors) if s == "train" else 1) for s in SPLITS}
    total = rows["train"] + sum(rows.values())  # the training images are read to fit, then to transform
    with tqdm(total=total, unit="img", desc=f"features {stage.NAME}", leave=False,
              disable=None if progress is None else not progress) as bar:
        def counted(batches: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
            for b in batches:
                yield b
                bar.update(len(b))

        train = raw.splits["train"]
        stage.fit(b for m in mirrors for b in counted(_images(train, shape, m)))
        arrays: dict[str, np.ndarray] = {"mean_image": np.zeros(int(np.prod(shape)), dtype=np.float64)}
        for name in SPLITS:
            split = raw.splits[name]
            copies = mirrors if name == "train" else [False]
            n = len(split.rows)
            X = allocate(f"X_{name}", (len(copies) * n, stage.dim + int(bias_trick)), np.dtype(dtype))
            start = 0
            for m in copies:
                for block in counted(_images(split, shape, m)):
                    stop = start + len(block)
                    X[start:stop, : stage.dim] = stage.transform(block)
                    if bias_trick:
                        X[start:stop, stage.dim] = 1.0
                    start = stop
            arrays[f"X_{name}"] = X
            arrays[f"y_{name}"] = np.tile(split.labels[split.rows].astype(np.int64), len(copies))
    val = raw.splits["val"]
    arrays["examples_val"] = val.pixels[val.rows[:EXAMPLE_IMAGES]].reshape(-1, *shape).copy()
    arrays.update({STATE_PREFIX + k: v for k, v in stage.state().items()})
    return arrays
