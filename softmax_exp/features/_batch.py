"""What the feature kernels share (hog, color_histogram): the check of a batch of images and of a count
setting, and the fixed chunking of images over Numba's threads. Private to softmax_exp.features."""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_CHUNKS = 64  # images are split into at most this many chunks; each owns its scratch buffers


def check_count(name: str, value) -> None:
    """ValueError (one line) unless ``value`` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")


def check_images(images) -> np.ndarray:
    """``images`` once they are known to be (n, H, W, 1 or 3) uint8, H and W >= 1; ValueError (one line)
    naming what is wrong otherwise."""
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        got = f"{images.ndim}-D array of shape {images.shape}" if isinstance(images, np.ndarray) else \
            type(images).__name__
        raise ValueError(f"images must be a 4-D numpy array (n, H, W, channels); got {got}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8; got dtype {images.dtype}")
    if images.shape[3] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels (last axis); got {images.shape[3]}")
    if images.shape[1] < 1 or images.shape[2] < 1:
        raise ValueError(f"images must have at least one pixel; got {images.shape[1]} x {images.shape[2]}")
    return images


@njit(cache=True)
def num_chunks(n):
    """Chunks of images: a function of n only (each image is computed by exactly one chunk anyway, so the
    result never depends on the thread count)."""
    return max(1, min(MAX_CHUNKS, n))
