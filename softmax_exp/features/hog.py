"""The course's histogram of oriented gradients (CS231n assignment 1, ``features.py``: ``hog_feature``) for a
batch of images, in Numba, equal to the course's code image by image.

Per image, as the course computes it:

- the grey image: ``np.dot(rgb, [0.299, 0.587, 0.144])`` (sic: 0.144, not 0.114) for 3 channels, which
  NumPy's BLAS dot evaluates as ``fma(b, 0.144, fma(g, 0.587, r * 0.299))``; the channel itself for 1;
- gradients by forward differences, ``gx`` zero in the last column and ``gy`` in the last row;
  magnitude ``sqrt(gx**2 + gy**2)``, orientation ``atan2(gy, gx + 1e-15) * (180 / pi) + 90`` degrees,
  which lies in [-90, 270];
- a pixel counts in orientation bin i when ``180 / bins * i <= orientation < 180 / bins * (i + 1)`` and
  ``orientation > 0``: an orientation of exactly 0 (a vertical gradient pointing up, e.g. a horizontal edge
  getting darker downwards) or outside [0, 180) counts in no bin;
- a cell's value for bin i: the mean over the cell's pixels of the magnitudes counting in bin i. The course
  takes it from ``scipy.ndimage.uniform_filter(size=(8, 8))`` sampled at the cell centres, and so does this
  code, to the bit: a running sum down each column, then along each cell-centre row, each started on its
  reflected window, updated ``sum += new - old`` and divided by the cell where it is kept (scipy's order);
- the output: ``(H // cell, W // cell, bins)`` cells raveled with the cell column outermost, then the cell
  row, then the bin (the course's ``.T`` before ``.ravel()``).

Where the course's code fails this generalises it naturally: a non-square cell grid (the course's ``.T``
breaks the assignment), a height or width that is not a multiple of the cell (the course samples one cell too
many when the remainder is >= cell / 2), other cell sizes and bin counts. The image is cut to
``H // cell x W // cell`` whole cells, each the mean over its own pixels. One known divergence: the course's
code given a 2-D uint8 image takes ``np.diff`` in uint8 (0 - 1 wraps to 255); here a 1-channel image's grey
values are its pixel values as float64.

The orientation is only compared with the edges: a gradient farther than ~1e-9 rad from every edge is binned
from its slope, the others by the course's formula with libm's atan2. Its last bits can differ from NumPy's
``arctan2`` (SVML's on CPUs with AVX-512; libm's elsewhere), which changes the bin of an orientation within an
ulp of an edge. For the course's 9 bins no image gradient comes that close (the edges' slopes are
irrational; the vertical ones, 0 and 180 degrees, agree for every grey value). With an edge at 135 degrees
(bins a multiple of 4), a gradient with gx == gy in [1.8013, 1.8021] is 134.99999999999997 degrees here and
135.0 in NumPy with SVML.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

from softmax_exp.features._batch import check_count, check_images, num_chunks

# The course's grey weights (sic: 0.144 for blue; ITU-R 601 has 0.114).
GREY_WEIGHTS = (0.299, 0.587, 0.144)
_W_RED, _W_GREEN, _W_BLUE = GREY_WEIGHTS
_DEG_PER_RAD = 180 / np.pi  # the course's (180 / np.pi), one rounding
# A gradient whose slope is this close to an edge's (times 1 + slope^2: ~1e-9 rad) or steeper than _STEEP
# takes the exact formula (see _orientation_bin).
_SLOPE_MARGIN = 1e-9
_STEEP = 1e6


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (LLVM's llvm.fma.f64: the CPU's FMA, or libm's fma without one)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(d, [d, d, d]), "llvm.fma.f64")
        return builder.call(fn, args)

    return sig, codegen


def hog_dim(image_shape: tuple[int, ...], cell: int = 8, bins: int = 9) -> int:
    """Length of the HOG of one image of shape (H, W) or (H, W, channels): (H // cell) * (W // cell) * bins.

    Raises ValueError (one line) for a shape of another length, cell or bins < 1, or H or W < cell.
    """
    _check_params(cell, bins)
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) not in (2, 3):
        raise ValueError(f"image_shape must be (H, W) or (H, W, channels); got {image_shape!r}")
    H, W = shape[:2]
    _check_size(H, W, cell)
    return (H // cell) * (W // cell) * bins


def hog_features(images: np.ndarray, cell: int = 8, bins: int = 9) -> np.ndarray:
    """The course's HOG of each image.

    Parameters
    ----------
    images : ndarray (n, H, W, channels) uint8, channels 3 (RGB; grey = the course's rgb2gray) or 1 (the
        grey image itself); n >= 0, H and W >= cell
    cell : int >= 1, the side of the square cells in pixels (the course: 8)
    bins : int >= 1, orientation bins over [0, 180) degrees (the course: 9)

    Returns
    -------
    ndarray (n, (H // cell) * (W // cell) * bins) float64: row i is ``hog_feature(images[i])``, the
    per-cell mean gradient magnitude of each orientation bin, cell column outermost, then cell row, then bin.
    For CIFAR-10 (32 x 32 x 3, cell 8, 9 bins): (n, 144).
    """
    _check_params(cell, bins)
    n, H, W, _ = check_images(images).shape
    _check_size(H, W, cell)
    # The bin edges exactly as the course writes them: 180 / orientations * i, in Python floats.
    edges = np.array([180 / bins * i for i in range(bins + 1)], dtype=np.float64)
    out = np.empty((n, (H // cell) * (W // cell) * bins), dtype=np.float64)
    if n:
        slopes = np.tan((edges[1:-1] - 90) * (np.pi / 180))
        _hog_batch(np.ascontiguousarray(images), int(cell), edges, slopes, out)
    return out


def _check_params(cell, bins) -> None:
    check_count("cell", cell)
    check_count("bins", bins)


def _check_size(H: int, W: int, cell: int) -> None:
    if H < cell or W < cell:
        raise ValueError(f"images must be at least one cell ({cell} x {cell} pixels); got {H} x {W}")


@njit(parallel=True, cache=True)
def _hog_batch(images, cell, edges, slopes, out):
    """out[i] = the HOG of images[i] (n, H, W, C) uint8, C 1 or 3; edges (bins + 1,) the bin edges in degrees,
    slopes (bins - 1,) the tangents of the inner edges' gradient angles."""
    n, H, W, _ = images.shape
    bins = edges.shape[0] - 1
    Hc = (H // cell) * cell  # the rows and columns of whole cells
    Wc = (W // cell) * cell
    nchunks = num_chunks(n)
    for ch in prange(nchunks):
        # Scratch of this chunk: grey (one row and column past the cells, for the differences), the
        # magnitude and bin (-1: none) of each pixel, the running column sums, the means at cell-centre rows.
        grey = np.empty((min(H, Hc + 1), min(W, Wc + 1)), dtype=np.float64)
        mag = np.empty((Hc, Wc), dtype=np.float64)
        which = np.empty((Hc, Wc), dtype=np.int32)
        col_sum = np.empty((Wc, bins), dtype=np.float64)
        row_means = np.empty((H // cell, bins, Wc), dtype=np.float64)
        for i in range(ch * n // nchunks, (ch + 1) * n // nchunks):
            _grey(images[i], grey)
            _gradients(grey, H, W, edges, slopes, mag, which)
            _column_means(mag, which, cell, col_sum, row_means)
            _row_means(row_means, cell, out[i])


@njit(cache=True)
def _grey(image, grey):
    """grey (h, w) float64 = the course's rgb2gray of image[:h, :w] (H, W, C) uint8, or its one channel."""
    h, w = grey.shape
    if image.shape[2] == 3:
        for r in range(h):
            for c in range(w):
                red = float(image[r, c, 0])
                green = float(image[r, c, 1])
                blue = float(image[r, c, 2])
                # np.dot's order (OpenBLAS ddot on 3 terms): fused, left to right
                grey[r, c] = _fma(blue, _W_BLUE, _fma(green, _W_GREEN, red * _W_RED))
    else:
        for r in range(h):
            for c in range(w):
                grey[r, c] = float(image[r, c, 0])


@njit(cache=True)
def _gradients(grey, H, W, edges, slopes, mag, which):
    """mag, which (Hc, Wc): each pixel's gradient magnitude and orientation bin (-1: none) in an image of
    H x W pixels whose grey values are grey, as the course computes them (``gx`` zero in column W - 1,
    ``gy`` zero in row H - 1)."""
    Hc, Wc = mag.shape
    for r in range(Hc):
        for c in range(Wc):
            gx = grey[r, c + 1] - grey[r, c] if c < W - 1 else 0.0
            gy = grey[r + 1, c] - grey[r, c] if r < H - 1 else 0.0
            m = math.sqrt(gx * gx + gy * gy)
            mag[r, c] = m
            # A zero magnitude adds zero to any bin: no need for its orientation.
            which[r, c] = _orientation_bin(gx, gy, edges, slopes) if m != 0.0 else -1


@njit(cache=True)
def _orientation_bin(gx, gy, edges, slopes):
    """The bin i of the gradient (gx, gy): edges[i] <= orientation < edges[i + 1] and orientation > 0, with
    the course's orientation ``atan2(gy, gx + 1e-15) * (180 / pi) + 90`` in degrees; -1 for none.

    atan2 costs ~25 ns; most gradients are decided without it, from their slope gy / (gx + 1e-15) against
    the slopes of the edges (tan of their angle), when they are farther from every edge than _SLOPE_MARGIN
    (~1e-9 rad, while the roundings of the course's orientation move it by < 1e-14 rad). The rest, gradients
    on or next to an edge (vertical ones: orientation 0 or 180; horizontal ones when 90 is an edge), take the
    course's formula.
    """
    x = gx + 1e-15
    if x > 0.0:
        t = gy / x
        if abs(t) < _STEEP:  # the angle is inside (-90 + 5.7e-5, 90 - 5.7e-5) degrees: some bin
            n = slopes.shape[0]
            k = 0
            while k < n and slopes[k] <= t:
                k += 1
            lo_clear = k == 0 or t - slopes[k - 1] > _SLOPE_MARGIN * (1.0 + slopes[k - 1] * slopes[k - 1])
            hi_clear = k == n or slopes[k] - t > _SLOPE_MARGIN * (1.0 + slopes[k] * slopes[k])
            if lo_clear and hi_clear:
                return k
    elif -x > abs(gy) / _STEEP:  # pointing left, not nearly vertical: orientation in [180, 270] or [-90, 0]
        return -1
    return _orientation_bin_exact(gx, gy, edges)


@njit(cache=True)
def _orientation_bin_exact(gx, gy, edges):
    """_orientation_bin by the course's formula."""
    bins = edges.shape[0] - 1
    ori = math.atan2(gy, gx + 1e-15) * _DEG_PER_RAD + 90
    if not (ori > 0 and ori < edges[bins]):
        return -1
    k = min(int(ori / edges[1]), bins - 1)  # a guess; the edges decide
    while ori < edges[k]:
        k -= 1
    while ori >= edges[k + 1]:
        k += 1
    return k


@njit(cache=True)
def _column_means(mag, which, cell, col_sum, row_means):
    """row_means[k, b, c] = the mean over rows k * cell ... k * cell + cell - 1 of column c of the magnitudes
    in bin b, as ``uniform_filter1d(size=cell, axis=0)`` computes it at row k * cell + cell // 2: a running
    sum from the first row's reflected window, ``sum += new - old`` a row, divided by cell where it is kept.

    Only the bins of the entering and leaving pixels change (the others add 0 - 0, which leaves any value as
    it is), so a step costs O(1) per column whatever the bin count.
    """
    Hc, Wc = mag.shape
    if cell == 1:  # uniform_filter skips a size-1 axis: each value is the pixel's own
        row_means[:, :, :] = 0.0
        for r in range(Hc):
            for c in range(Wc):
                if which[r, c] >= 0:
                    row_means[r, which[r, c], c] = mag[r, c]
        return
    before = cell // 2  # the window of row t: rows t - before ... t + after (before >= 1: cell >= 2)
    after = cell - before - 1
    col_sum[:, :] = 0.0
    for t in range(cell):
        r = t - before
        if r < 0:
            r = -r - 1  # scipy's 'reflect': d c b a | a b c d
        for c in range(Wc):
            k = which[r, c]
            if k >= 0:
                col_sum[c, k] += mag[r, c]
    for t in range(1, Hc - after):
        new = t + after
        old = t - 1 - before
        if old < 0:
            old = -old - 1
        for c in range(Wc):
            kn = which[new, c]
            ko = which[old, c]
            if kn == ko:
                if kn >= 0:
                    col_sum[c, kn] += mag[new, c] - mag[old, c]
            else:
                if kn >= 0:
                    col_sum[c, kn] += mag[new, c] - 0.0
                if ko >= 0:
                    col_sum[c, ko] += 0.0 - mag[old, c]
        if (t - before) % cell == 0:
            _store_row(col_sum, cell, row_means, (t - before) // cell)


@njit(cache=True)
def _store_row(col_sum, cell, row_means, k):
    Wc, bins = col_sum.shape
    for b in range(bins):
        for c in range(Wc):
            row_means[k, b, c] = col_sum[c, b] / cell


@njit(cache=True)
def _row_means(row_means, cell, out):
    """out ((Wc // cell) * n_rows * bins,) = the means along each cell-centre row of row_means (n_rows, bins,
    Wc) over each cell's columns (``uniform_filter1d(size=cell, axis=1)`` at the cell centres), raveled as
    (cell column, cell row, bin)."""
    n_rows, bins, Wc = row_means.shape
    before = cell // 2
    after = cell - before - 1
    for k in range(n_rows):
        for b in range(bins):
            line = row_means[k, b]
            if cell == 1:
                for c in range(Wc):
                    out[(c * n_rows + k) * bins + b] = line[c]
                continue
            total = 0.0
            for t in range(cell):
                c = t - before
                if c < 0:
                    c = -c - 1
                total += line[c]
            for t in range(1, Wc - after):
                old = t - 1 - before
                if old < 0:
                    old = -old - 1
                total += line[t + after] - line[old]
                if (t - before) % cell == 0:
                    out[((t - before) // cell * n_rows + k) * bins + b] = total / cell
