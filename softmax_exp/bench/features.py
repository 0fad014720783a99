"""The features section: the course's HOG and hue histogram over all 60000 CIFAR-10 images (``--data DIR``:
the real ones; else random images of that shape), against one read of the pixels."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np

from softmax_exp.bench.measure import Row, median_ms, medians_in_rounds
from softmax_exp.data.cifar10 import load_batch
from softmax_exp.features.color_histogram import hue_histogram
from softmax_exp.features.hog import hog_features
from softmax_exp.features.kmeans import BLOCK_IMAGES
from softmax_exp.features.settings import HogColorParams, KMeansParams
from softmax_exp.learn.model import Preprocessing, Softmax


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
    for a training (every image extracted once, the rows standardised), each against
    ``images.max()`` (one read of the pixels); the note gives images/s."""
    images, what = _cifar_images(args.data, args.feature_images)
    n = len(images)
    stage = HogColorParams().build(images.shape[1:])

    def as_training() -> None:  # what the loaders do: extract once, in float32, then standardise
        stage.fit([])
        raw = np.concatenate([stage.extract(images[i : i + 2048]) for i in range(0, n, 2048)])
        raw = raw.astype(np.float32)
        stage.set_standardization(raw.mean(axis=0, dtype=np.float64), raw.var(axis=0, dtype=np.float64))
        stage.standardized(raw, np.dtype(np.float32))

    cases = {
        "read floor images.max()": images.max,  # numpy's fastest pass over uint8: ~10 GB/s here
        "hog_features (8x8, 9 bins)": partial(hog_features, images, 8, 9),
        "hue_histogram (10 bins)": partial(hue_histogram, images, 10),
        "hog_color stage, as a training": as_training,
    }
    times = dict(zip(cases, medians_in_rounds(list(cases.values()), max(3, args.repeats // 2), rounds=3),
                     strict=True))
    floor = times["read floor images.max()"]
    shape = f"{n}x32x32x3 {what}"
    rows = []
    for label, ms in times.items():
        note = "" if label.startswith("read") else f"{n / (ms / 1e3):,.0f} images/s, {ms / 1e3:.2f} s"
        rows.append(Row(label, shape, "uint8", ms, images.nbytes, floor, "pixel read", note))
    return rows


def bench_kmeans(args) -> list[Row]:
    """The k-means features (1600 centroids): the fit on 49000 training images (400000 patches, once), the
    extraction of ``--kmeans-images`` images against an sgemm of the same arithmetic (both products a patch:
    whitening and distances) timed in the same process, and a saved model's prediction of 1 and of 100 raw
    images (the pyfunc model's path: features, then scores)."""
    images, what = _cifar_images(args.data, 60000)
    stage = KMeansParams().build(images.shape[1:])
    t0 = time.perf_counter()
    stage.fit([images[:49000]])
    fit_s = time.perf_counter() - t0
    n = min(args.kmeans_images, len(images))
    subset = images[:n]
    rows, cols = stage.positions
    d, K = stage.patch_dim, stage.params.num_centroids
    per_block = BLOCK_IMAGES * rows * cols
    rng = np.random.default_rng(1)
    a = rng.standard_normal((per_block, d), dtype=np.float32)
    b = rng.standard_normal((d, K), dtype=np.float32)
    out = np.empty((per_block, K), dtype=np.float32)
    flops = n * rows * cols * (2 * d * d + 2 * d * K)
    calls = flops / (2 * per_block * d * K)

    def sgemm_same_flops() -> None:
        for _ in range(int(round(calls))):
            np.matmul(a, b, out=out)

    stage.extract(subset[:BLOCK_IMAGES])  # compiled
    extract_ms, sgemm_ms = medians_in_rounds([partial(stage.extract, subset), sgemm_same_flops],
                                             max(1, args.repeats // 3), rounds=3)
    shape = f"{n}x32x32x3 {what}"
    gflops = flops / (sgemm_ms / 1e3) / 1e9
    rows_out = [
        Row("sgemm of the same FLOPs", shape, "float32", sgemm_ms, 0, sgemm_ms, "its sgemm",
            f"{flops / 1e12:.2f} TFLOP, {gflops:.0f} GFLOP/s"),
        Row("kmeans extraction (K=1600)", shape, "float32", extract_ms, 0, sgemm_ms,
            "its sgemm", f"{n / (extract_ms / 1e3):,.0f} images/s; 60000 images: "
                               f"{60000 / n * extract_ms / 1e3:.0f} s"),
        Row("kmeans fit (400000 patches)", "49000x32x32x3", "float32", fit_s * 1e3, 0, fit_s * 1e3,
            "itself", f"{stage.params.kmeans_iters} Lloyd iterations"),
    ]
    rng_labels = np.random.default_rng(2)
    stage.set_standardization(np.zeros(stage.dim), np.ones(stage.dim))
    model = Softmax("numba_fused", Preprocessing(np.zeros(3072), True, tuple(map(str, range(10))),
                                                 (32, 32, 3), stage))
    model.W = (rng_labels.standard_normal((stage.dim + 1, 10)) * 1e-3).astype(np.float32)
    for count in (1, 100):
        batch = subset[:count]
        model.predict_images(batch)
        ms = median_ms(partial(model.predict_images, batch), max(3, args.repeats))
        rows_out.append(Row(f"predict {count} raw image{'s' * (count > 1)}", f"{count}x32x32x3", "uint8", ms,
                            0, ms, "itself", f"{ms / count:.2f} ms an image"))
    return rows_out
