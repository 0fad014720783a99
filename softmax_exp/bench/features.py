"""The features section: the course's HOG and hue histogram over all 60000 CIFAR-10 images (``--data DIR``:
the real ones; else random images of that shape), against one read of the pixels."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from softmax_exp.bench.measure import Row, medians_in_rounds
from softmax_exp.data.cifar10 import load_batch
from softmax_exp.features.color_histogram import hue_histogram
from softmax_exp.features.hog import hog_features
from softmax_exp.features.settings import HogColorParams


def _cifar_images(data: str | None, n: int) -> tuple[np.ndarray, str]:
    """The first ``n`` of the 60000 images (n, 32, 32, 3) uint8 of the batches under ``data``, or n random
    ones."""
    if data is not None:
        folder = Path(data) / "cifar-10-batches-py"
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        pixels = np.concatenate([load_batch(folder / name, 10)[0] for name in names])[:n]
        return pixels.reshape(-1, 32, 32, 3), "CIFAR-10"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), "random"


def bench_features(args) -> list[Row]:
    """HOG (8x8 cells, 9 bins), the 10-bin hue histogram, and both as the ``hog_color`` stage computes them
    for a training (fit on 49 in 60 of the images, then every one transformed), each against
    ``images.max()`` (one read of the pixels); the note gives images/s."""
    images, what = _cifar_images(args.data, args.feature_images)
    n = len(images)
    n_fit = n * 49 // 60  # the training split's share, as CIFAR-10's 49000 of 60000
    stage = HogColorParams().build(images.shape[1:])

    def as_training() -> None:
        stage.fit(images[i : min(i + 2048, n_fit)] for i in range(0, n_fit, 2048))
        for i in range(0, n, 2048):
            stage.transform(images[i : i + 2048])

    cases = {
        "read floor images.max()": images.max,  # numpy's fastest pass over uint8: ~10 GB/s here
        "hog_features (8x8, 9 bins)": partial(hog_features, images, 8, 9),
        "hue_histogram (10 bins)": partial(hue_histogram, images, 10),
        "hog_color stage, fit + transform": as_training,
    }
    times = dict(zip(cases, medians_in_rounds(list(cases.values()), max(3, args.repeats // 2), rounds=3),
                     strict=True))
    floor = times["read floor images.max()"]
    shape = f"{n}x32x32x3 {what}"
    rows = []
    for label, ms in times.items():
        done = n + n_fit if label.startswith("hog_color") else n
        note = "" if label.startswith("read") else f"{done / (ms / 1e3):,.0f} images/s, {ms / 1e3:.2f} s"
        rows.append(Row(label, shape, "uint8", ms, images.nbytes, floor, "pixel read", note))
    return rows
