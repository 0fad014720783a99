"""The course's preprocessing: pick split rows, subtract the training mean image, append ones.

Sources hand over uint8 pixel pools with rows flattened in HWC order. Everything here works in
chunks of rows, so preparing CIFAR-10 never holds a float64 copy of the training set: the mean is
summed chunk by chunk (exact, the pixels are integers) and each output chunk is computed in float64
and then cast.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from softmax_exp.data.errors import DataError

SPLITS = ("train", "val", "test", "dev")
CHUNK_ROWS = 2048
_SHUFFLE_STREAM, _DEV_STREAM = 0, 1

Allocate = Callable[[str, tuple[int, ...], np.dtype], np.ndarray]


@dataclass(frozen=True)
class SplitRows:
    """The rows of one split: ``pixels[rows]`` with labels ``labels[rows]``.

    pixels : (M, P) uint8 pool, P = H*W*channels in HWC order
    labels : (M,) int64 pool labels in [0, C)
    rows : (n,) int64 indices into the pool
    """

    pixels: np.ndarray
    labels: np.ndarray
    rows: np.ndarray


@dataclass(frozen=True)
class RawDataset:
    """What a source reads: class names, image shape (H, W, channels) and one SplitRows per
    split."""

    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    splits: dict[str, SplitRows]


@dataclass(frozen=True)
class Source:
    """A located dataset: ``signature`` identifies the source files cheaply (JSON-able, goes into
    the
    fingerprint); ``read()`` loads and checks them (only called on a cache miss)."""

    signature: dict[str, Any]
    read: Callable[[], RawDataset]


def check_class_names(names: Sequence[object], where: str, kind: str, fix: str) -> tuple[str, ...]:
    """The class names of a source as str, checked: each a non-empty printable string (bytes must be UTF-8;
    a str from a file name must encode to UTF-8, i.e. hold no undecodable bytes), no name twice, at least
    2 names (with one, every label is 0 and the loss is 0 whatever W is). Raises DataError
    ``"<where>...; <fix>"`` in one line; ``kind`` says what a name is ("class", "class folder")."""
    decoded = []
    for i, name in enumerate(names):
        if not isinstance(name, (bytes, str)):
            raise DataError(f"{where}: {kind} name #{i} is a {type(name).__name__}, not a string; {fix}")
        try:  # a str from a file name carries its undecodable bytes as surrogates: fsencode restores them
            text = (name if isinstance(name, bytes) else os.fsencode(name)).decode("utf-8")
        except UnicodeError:
            raise DataError(f"{where}: {kind} name #{i} {name!r:.60} is not valid UTF-8; {fix}") from None
        if not text.strip() or not text.isprintable():
            raise DataError(f"{where}: {kind} name #{i} {text!r:.60} is empty or holds control "
                            f"characters; {fix}")
        decoded.append(text)
    twice = [n for n, count in Counter(decoded).items() if count > 1]
    if twice:
        raise DataError(f"{where} lists the {kind} name {twice[0]!r} twice; {fix}")
    if len(decoded) < 2:
        only = f"one {kind} ({decoded[0]})" if decoded else f"no {kind}"
        raise DataError(f"{where} has {only}; a classifier needs at least 2 classes: {fix}")
    return tuple(decoded)


def shuffled(n: int, split_seed: int) -> np.ndarray:
    """(n,) int64 permutation of range(n), fixed by split_seed."""
    return np.random.default_rng([split_seed, _SHUFFLE_STREAM]).permutation(n).astype(np.int64)


def dev_rows(num_training: int, num_dev: int, split_seed: int) -> np.ndarray:
    """(num_dev,) int64 positions in the training split, sampled without replacement (the course's
    dev set)."""
    if num_dev > num_training:
        raise DataError(
            f"dataset.num_dev ({num_dev}) exceeds dataset.num_training ({num_training}); "
            "the dev set is sampled from the training rows, lower num_dev"
        )
    rng = np.random.default_rng([split_seed, _DEV_STREAM])
    return rng.choice(num_training, num_dev, replace=False).astype(np.int64)


def check_fits(sizes: dict[str, int], available: int, pool: str) -> None:
    """Raise DataError unless the split sizes (option name -> rows) fit in ``available`` rows."""
    total = sum(sizes.values())
    if total > available:
        terms = " + ".join(f"dataset.{k} ({n})" for k, n in sizes.items())
        raise DataError(f"{terms} = {total} exceeds the {available} {pool}; lower the split sizes")


def mean_image(split: SplitRows) -> np.ndarray:
    """(P,) float64 mean of the split's pixel rows."""
    total = np.zeros(split.pixels.shape[1], dtype=np.float64)
    for start in range(0, len(split.rows), CHUNK_ROWS):
        total += split.pixels[split.rows[start : start + CHUNK_ROWS]].sum(axis=0, dtype=np.float64)
    return total / max(len(split.rows), 1)


def mirrored(rows: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Rows (n, P) of images flattened in HWC order, each image mirrored left to right."""
    return rows.reshape(len(rows), *image_shape)[:, :, ::-1, :].reshape(len(rows), -1)


def write_features(split: SplitRows, mean: np.ndarray, bias_trick: bool, out: np.ndarray,
                   mirror_shape: tuple[int, int, int] | None = None) -> None:
    """Fill ``out`` (n, P) or (n, P + 1) with ``pixels[rows] - mean`` and, with the bias trick,
    ones. With ``mirror_shape`` (H, W, channels) each image is mirrored left to right first.

    The difference is taken in float64 and cast to out.dtype, as the course does before any cast.
    """
    P = split.pixels.shape[1]
    for start in range(0, len(split.rows), CHUNK_ROWS):
        block = split.pixels[split.rows[start : start + CHUNK_ROWS]]
        if mirror_shape is not None:
            block = mirrored(block, mirror_shape)
        block = block.astype(np.float64)
        block -= mean
        stop = start + len(block)
        out[start:stop, :P] = block
        if bias_trick:
            out[start:stop, P] = 1.0


def allocate_in_memory(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Allocator for build_arrays that keeps everything in RAM."""
    return np.empty(shape, dtype=dtype)


def build_arrays(
    raw: RawDataset,
    dtype: np.dtype,
    subtract_mean: bool,
    bias_trick: bool,
    allocate: Allocate = allocate_in_memory,
    hflip: bool = False,
) -> dict[str, np.ndarray]:
    """Preprocess every split.

    Returns ``X_<split>`` (n, D) of ``dtype`` with D = P (+1 with the bias trick), ``y_<split>``
    (n,) int64 for split in SPLITS, and ``mean_image`` (P,) float64 (zeros when subtract_mean is
    false). X arrays come from ``allocate(name, shape, dtype)`` (e.g. a memory map in a cache
    entry).

    With ``hflip`` the training split is augmented: its n images, then the same n mirrored left to
    right (2n rows, labels repeated), and the mean image is that of all 2n. Validation, test and dev
    rows are the images as they are.
    """
    P = raw.splits["train"].pixels.shape[1]
    if subtract_mean:
        mean = mean_image(raw.splits["train"])
        if hflip:  # the mean of the images and their mirrors (exact: the pixel sums are integers)
            mean = (mean + mirrored(mean[None, :], raw.image_shape)[0]) / 2
    else:
        mean = np.zeros(P, dtype=np.float64)
    arrays: dict[str, np.ndarray] = {"mean_image": mean}
    for name in SPLITS:
        split = raw.splits[name]
        copies = 2 if hflip and name == "train" else 1
        n = len(split.rows)
        X = allocate(f"X_{name}", (copies * n, P + int(bias_trick)), np.dtype(dtype))
        write_features(split, mean, bias_trick, X[:n])
        if copies == 2:
            write_features(split, mean, bias_trick, X[n:], mirror_shape=raw.image_shape)
        arrays[f"X_{name}"] = X
        arrays[f"y_{name}"] = np.tile(split.labels[split.rows].astype(np.int64), copies)
    return arrays
