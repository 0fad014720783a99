"""The course's hue histogram (CS231n assignment 1, ``features.py``: ``color_histogram_hsv``) for a batch of
images, in Numba, equal to the course's code image by image.

Per image, as the course computes it (``nbin`` bins, ``xmin=0, xmax=255, normalized=True``):

- the hue of each pixel: ``matplotlib.colors.rgb_to_hsv(im / 255) * 255``, i.e. with r, g, b = im / 255,
  ``delta = max - min`` and, where ``delta > 0``, ``h = 4 + (r - g) / delta`` if blue is the maximum, else
  ``2 + (b - r) / delta`` if green is, else ``(g - b) / delta``; then ``(h / 6) % 1 * 255`` (a grey pixel,
  ``delta == 0``, has hue 0);
- the bins: ``np.linspace(0, 255, nbin + 1)``, each closed on the left, the last also on the right
  (``np.histogram``'s);
- each bin's ``density * width``, i.e. ``count / width / total * width``: the fraction of the pixels in the
  bin, up to rounding (a row sums to 1 within a few ulps).

A 1-channel image is taken as grey (r == g == b): every hue is 0 and all the mass is in bin 0, as the course's
code gives for the grey image repeated in three channels.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from softmax_exp.features._batch import check_count, check_images, num_chunks


def hue_histogram(images: np.ndarray, bins: int = 10) -> np.ndarray:
    """The course's normalised hue histogram of each image.

    Parameters
    ----------
    images : ndarray (n, H, W, channels) uint8, channels 3 (RGB) or 1 (grey: all mass in bin 0); n >= 0,
        H and W >= 1
    bins : int >= 1, bins of equal width over the hue range [0, 255] (the course: 10)

    Returns
    -------
    ndarray (n, bins) float64: row i is ``color_histogram_hsv(images[i], nbin=bins)``, the fraction of the
    image's pixels whose hue falls in each bin. For CIFAR-10: (n, 10).
    """
    check_count("bins", bins)
    check_images(images)
    edges = np.linspace(0, 255, int(bins) + 1)  # the course's np.linspace(xmin, xmax, nbin + 1)
    widths = np.diff(edges)
    out = np.empty((images.shape[0], int(bins)), dtype=np.float64)
    if images.shape[0]:
        unit = np.arange(256) / 255  # im / xmax, as the course divides
        _hue_batch(np.ascontiguousarray(images), edges, widths, unit, out)
    return out


@njit(parallel=True, cache=True)
def _hue_batch(images, edges, widths, unit, out):
    """out[i] = the hue histogram of images[i] (n, H, W, C) uint8, C 1 or 3, over edges (bins + 1,)."""
    n = images.shape[0]
    bins = out.shape[1]
    nchunks = num_chunks(n)
    for ch in prange(nchunks):
        counts = np.empty(bins, dtype=np.int64)
        for i in range(ch * n // nchunks, (ch + 1) * n // nchunks):
            _hue_counts(images[i], edges, unit, counts)
            total = 0
            for k in range(bins):
                total += counts[k]
            for k in range(bins):
                # np.histogram's density (n / db / n.sum()), times the width as the course does
                out[i, k] = counts[k] / widths[k] / total * widths[k]


@njit(cache=True)
def _hue_counts(image, edges, unit, counts):
    """counts (bins,) int64 = the number of pixels of image (H, W, C) uint8 whose hue (in [0, 255]) falls in
    each bin of edges, as np.histogram counts them; unit (256,) float64 = arange(256) / 255."""
    H, W, C = image.shape
    bins = counts.shape[0]
    lo = edges[0]
    hi = edges[bins]
    inv_step = bins / (hi - lo)
    counts[:] = 0
    last = C - 1  # a 1-channel image reads its channel three times
    for y in range(H):
        for x in range(W):
            v = _hue(image[y, x, 0], image[y, x, min(1, last)], image[y, x, last], unit) * 255
            if v < lo or v > hi:
                continue  # cannot happen (hue in [0, 1)); np.histogram would drop it
            k = min(int((v - lo) * inv_step), bins - 1)  # a guess; the edges decide
            while k > 0 and v < edges[k]:
                k -= 1
            while k < bins - 1 and v >= edges[k + 1]:
                k += 1
            counts[k] += 1


@njit(cache=True)
def _hue(red, green, blue, unit):
    """matplotlib.colors.rgb_to_hsv's hue in [0, 1) of the pixel (red, green, blue) / 255, in its order.

    The maximum and minimum are taken on the uint8 values (x / 255 is increasing and one-to-one), and
    x / 255 is read from unit; the rest is matplotlib's arithmetic.
    """
    top = max(red, green, blue)
    bottom = min(red, green, blue)
    if top == bottom:
        return 0.0  # delta == 0: grey
    r = unit[red]
    g = unit[green]
    b = unit[blue]
    delta = unit[top] - unit[bottom]
    # matplotlib assigns red, then green, then blue where each is the maximum: the last one wins
    if blue == top:
        h = 4.0 + (r - g) / delta
    elif green == top:
        h = 2.0 + (b - r) / delta
    else:
        h = (g - b) / delta  # in [-1, 1]
    # (h / 6) % 1: h / 6 is in [-1/6, 5/6], so NumPy's float remainder (fmod, then + 1 for a negative
    # rest) is one addition
    h = h / 6.0
    if h < 0.0:
        h += 1.0
    return h
