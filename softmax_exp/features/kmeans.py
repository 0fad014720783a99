"""Coates, Lee & Ng's single-layer k-means features (AISTATS 2011, "An Analysis of Single-Layer Networks in
Unsupervised Feature Learning"), as their best setting has them and their reference code computes them.

Learnt from the training images only (:meth:`KMeansStage.fit`), seeded:

- ``num_patches`` random ``patch_size`` x ``patch_size`` patches (a patch is a row of p*p*channels values in
  HWC order), each normalised for brightness and contrast: minus its mean, divided by
  ``sqrt(var + contrast_eps)`` (the sample variance, as their MATLAB's ``var``);
- ZCA whitening of the normalised patches: their mean ``patch_mean`` and ``whitening`` = V diag(1 /
  sqrt(d + whitening_eps)) V^T from the eigen-decomposition of their covariance;
- ``num_centroids`` centroids by k-means of the whitened patches (scikit-learn's Lloyd k-means, random
  initial centroids drawn from the patches, ``kmeans_iters`` iterations).

Extracted from any image (:meth:`KMeansStage.extract`), a block of images at a time:

- every patch at ``stride``, normalised and whitened as above (one matrix product for the block);
- the distances z_k of each patch to the centroids, from one matrix product (sgemm) for the block:
  ``z_k = sqrt(|x|^2 + |c_k|^2 - 2 x.c_k)``; the "triangle" activation ``max(0, mean_k(z) - z_k)``;
- sum-pooled over a ``pool_grid`` x ``pool_grid`` grid of the patch positions (the quadrants, for 2):
  ``pool_grid^2 * num_centroids`` features (6400 for their 1600 centroids).

The loaders then standardise each feature by its training mean and ``sqrt(var + 0.01)`` (their code's). The
distance matrix of a block (patches x centroids, in the processor's cache) is the only large intermediate:
the whole set's is never formed. A row's features do not depend on the block it is computed in (the
products' rows are computed alike whatever the block; the pooling is per image), so a served model gives the
training's rows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from softmax_exp.features._batch import num_chunks
from softmax_exp.features.stage import FeatureStage
from softmax_exp.kernels._blocks import FASTMATH

BLOCK_IMAGES = 8  # images whose patches go through one pair of matrix products


class KMeansStage(FeatureStage):
    """k-means features (see the module's doc). ``params`` (``KMeansParams``): num_centroids, patch_size,
    stride, pool_grid, num_patches, contrast_eps, whitening_eps, kmeans_iters, seed. State:
    ``patch_mean`` (d,), ``whitening`` (d, d), ``centroids`` (K, d), then ``mean``, ``std`` (F,)."""

    NAME = "kmeans"
    STD_EPS = 0.01  # their code's sqrt(var + 0.01)
    _block: tuple[dict[str, np.ndarray], _Block] | None = None  # the state it was made of, the extractor

    @property
    def patch_dim(self) -> int:
        """d, the values of one patch."""
        return self.params.patch_size ** 2 * self.image_shape[2]

    @property
    def positions(self) -> tuple[int, int]:
        """The patch positions down and across an image."""
        p, s = self.params.patch_size, self.params.stride
        H, W, _ = self.image_shape
        if H < p or W < p:
            raise ValueError(f"images must be at least one patch ({p} x {p} pixels); got {H} x {W}")
        return (H - p) // s + 1, (W - p) // s + 1

    @property
    def dim(self) -> int:
        rows, cols = self.positions
        grid = self.params.pool_grid
        if grid > min(rows, cols):
            raise ValueError(f"pool_grid {grid} is finer than the {rows} x {cols} patch positions")
        return grid * grid * self.params.num_centroids

    def extractor_state(self) -> dict[str, tuple[int, ...]]:
        d, K = self.patch_dim, self.params.num_centroids
        return {"patch_mean": (d,), "whitening": (d, d), "centroids": (K, d)}

    def fit(self, batches: Iterable[np.ndarray]) -> None:
        """Centroids of ``num_patches`` random patches of the training images (seeded), after their
        brightness and contrast normalisation and ZCA whitening."""
        from sklearn.cluster import KMeans  # 1.3 s of imports: only when centroids are learnt

        p = self.params
        images = np.concatenate([self.check_images(b) for b in batches])
        if len(images) == 0:
            raise ValueError("the kmeans feature stage needs training images to learn its centroids")
        rng = np.random.default_rng([p.seed, 0])
        rows, cols = self.positions
        picks = np.stack([rng.integers(0, len(images), p.num_patches), rng.integers(0, rows, p.num_patches),
                          rng.integers(0, cols, p.num_patches)], axis=1).astype(np.intp)
        patches = np.empty((p.num_patches, self.patch_dim), dtype=np.float32)
        _sampled_patches(images, picks, p.patch_size, p.stride, float(p.contrast_eps), patches)
        patch_mean = patches.mean(axis=0, dtype=np.float64)
        cov = np.cov(patches, rowvar=False, dtype=np.float64)
        eigenvalues, vectors = np.linalg.eigh(cov)
        whitening = (vectors / np.sqrt(np.maximum(eigenvalues, 0) + p.whitening_eps)) @ vectors.T
        white = _whitened(patches, patch_mean, whitening)
        del patches
        kmeans = KMeans(n_clusters=p.num_centroids, init="random", n_init=1, max_iter=p.kmeans_iters, tol=0.0,
                        random_state=int(p.seed), algorithm="lloyd").fit(white)
        self.arrays = {"patch_mean": patch_mean, "whitening": whitening,
                       "centroids": kmeans.cluster_centers_.astype(np.float64)}

    def extract(self, images: np.ndarray) -> np.ndarray:
        """The pooled triangle activations (n, pool_grid^2 * K) float32 of images (n, H, W, channels)
        uint8, BLOCK_IMAGES at a time: one Python thread a Numba thread, each taking every other block with
        serial kernels and a one-thread BLAS (Numba's OpenMP threads and OpenBLAS's, taking turns on the
        cores, spin while the other works: 4.0 ms an image that way here, 2.2 ms this way)."""
        images = self.check_images(images)
        n = len(images)
        out = np.empty((n, self.dim), dtype=np.float32)
        starts = list(range(0, n, BLOCK_IMAGES))
        workers = max(1, min(numba.get_num_threads(), len(starts)))
        if self._block is None or self._block[0] is not self.state():  # made again when the state is new
            self._block = (self.state(), _Block(self))
        block = self._block[1]
        with _blas_controller().limit(limits=1, user_api="blas"):
            if workers == 1:
                block.run(images, starts, out)
            else:
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(lambda w: block.run(images, starts[w::workers], out), range(workers)))
        return out


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's controller, made once (its threadpool_limits costs 3 ms a call beside Numba's
    libraries; a served model's request for one image takes 5)."""
    from threadpoolctl import ThreadpoolController  # 20 ms: only when k-means features are extracted

    return ThreadpoolController()


class _Block:
    """The fitted arrays in float32 for extraction, and :meth:`run`, which extracts the blocks at
    ``starts`` of images into out with buffers of its own (one call a thread)."""

    def __init__(self, stage: KMeansStage):
        state, p = stage.state(), stage.params
        self.p, self.d, self.K = p, stage.patch_dim, p.num_centroids
        self.rows, self.cols = stage.positions
        self.patch_mean = state["patch_mean"].astype(np.float32)
        self.whitening = state["whitening"].astype(np.float32)
        self.centroids_t = np.ascontiguousarray(state["centroids"].T.astype(np.float32))  # (d, K)
        self.centroid_sq = (state["centroids"].astype(np.float32) ** 2).sum(axis=1)
        self.bounds_r = _pool_bounds(self.rows, p.pool_grid)
        self.bounds_c = _pool_bounds(self.cols, p.pool_grid)

    def run(self, images: np.ndarray, starts: list[int], out: np.ndarray) -> None:
        p, per = self.p, self.rows * self.cols
        patches = np.empty((BLOCK_IMAGES * per, self.d), dtype=np.float32)
        white = np.empty_like(patches)
        products = np.empty((BLOCK_IMAGES * per, self.K), dtype=np.float32)
        for start in starts:
            block = np.ascontiguousarray(images[start : start + BLOCK_IMAGES])
            m = len(block) * per
            _dense_patches(block, p.patch_size, p.stride, self.rows, self.cols, float(p.contrast_eps),
                           self.patch_mean, patches[:m])
            np.matmul(patches[:m], self.whitening, out=white[:m])
            np.matmul(white[:m], self.centroids_t, out=products[:m])
            _triangle_pool(products[:m], white[:m], self.centroid_sq, self.rows, self.cols, self.bounds_r,
                           self.bounds_c, out[start : start + len(block)])


def _whitened(patches: np.ndarray, mean: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    """(patches - mean) @ whitening in float32, a block of rows at a time (no float64 copy of the set)."""
    out = np.empty_like(patches)
    mean32, w32 = mean.astype(np.float32), whitening.astype(np.float32)
    for s in range(0, len(patches), 65536):
        np.matmul(patches[s : s + 65536] - mean32, w32, out=out[s : s + 65536])
    return out


def _pool_bounds(positions: int, grid: int) -> np.ndarray:
    """(grid + 1,) intp: pooling region i covers positions bounds[i] <= r < bounds[i + 1]; their code's
    halves at round(positions / 2) (half away from zero: 14 of 27), generalised to ``grid`` parts."""
    return np.array([math.floor(positions * i / grid + 0.5) for i in range(grid + 1)], dtype=np.intp)


@njit(cache=True)
def _image_tables(image, values, sums, squares):
    """For one image (H, W, C) uint8: values (H, W * C) float32, its pixels; sums, squares (H + 1, W + 1)
    float64, the integral images of the pixels summed over the channels and of their squares (whole
    numbers: exact), so a patch's mean and variance take four lookups each."""
    H, W, C = image.shape
    for r in range(H + 1):
        sums[r, 0] = 0.0
        squares[r, 0] = 0.0
    for c in range(W + 1):
        sums[0, c] = 0.0
        squares[0, c] = 0.0
    for r in range(H):
        row_sum = 0.0
        row_sq = 0.0
        for c in range(W):
            for ch in range(C):
                v = float(image[r, c, ch])
                values[r, c * C + ch] = v
                row_sum += v
                row_sq += v * v
            sums[r + 1, c + 1] = sums[r, c + 1] + row_sum
            squares[r + 1, c + 1] = squares[r, c + 1] + row_sq


@njit(cache=True)
def _write_patch(values, sums, squares, r0, c0, p, C, contrast_eps, shift, out_row):
    """out_row (p*p*C,) float32 = the patch at pixel (r0, c0) in HWC order, minus its mean, times
    1 / sqrt(var + contrast_eps) (the sample variance, n - 1, as their MATLAB's var), minus shift (p*p*C,)
    float32 (the whitening's patch mean, or zeros): mean and variance exact from the integral images
    (float64), the values in float32."""
    d = p * p * C
    total = sums[r0 + p, c0 + p] - sums[r0, c0 + p] - sums[r0 + p, c0] + sums[r0, c0]
    total_sq = squares[r0 + p, c0 + p] - squares[r0, c0 + p] - squares[r0 + p, c0] + squares[r0, c0]
    mean = total / d
    var = (total_sq - total * mean) / (d - 1) if d > 1 else 0.0
    mean32 = np.float32(mean)
    scale32 = np.float32(1.0 / math.sqrt(var + contrast_eps))
    width = p * C
    for r in range(p):
        src = values[r0 + r, c0 * C : c0 * C + width]
        for j in range(width):
            out_row[r * width + j] = (src[j] - mean32) * scale32 - shift[r * width + j]


@njit(cache=True, nogil=True)
def _dense_patches(images, p, stride, rows, cols, contrast_eps, shift, out):
    """out (n * rows * cols, d) float32: every patch of every image, row-major by position, normalised,
    minus shift (d,) float32. Serial: :meth:`KMeansStage.extract` runs one a thread."""
    n, H, W, C = images.shape
    per = rows * cols
    for i in range(n):
        values = np.empty((H, W * C), dtype=np.float32)
        sums = np.empty((H + 1, W + 1), dtype=np.float64)
        squares = np.empty((H + 1, W + 1), dtype=np.float64)
        _image_tables(images[i], values, sums, squares)
        for r in range(rows):
            for c in range(cols):
                _write_patch(values, sums, squares, r * stride, c * stride, p, C, contrast_eps, shift,
                             out[i * per + r * cols + c])


@njit(parallel=True, cache=True)
def _sampled_patches(images, picks, p, stride, contrast_eps, out):
    """out (m, d) float32: the patches picks[j] = (image, position row, position column), normalised as
    :func:`_dense_patches` does."""
    m = picks.shape[0]
    _, H, W, C = images.shape
    nchunks = num_chunks(m)
    zeros = np.zeros(p * p * C, dtype=np.float32)
    for ch in prange(nchunks):
        values = np.empty((H, W * C), dtype=np.float32)
        sums = np.empty((H + 1, W + 1), dtype=np.float64)
        squares = np.empty((H + 1, W + 1), dtype=np.float64)
        for j in range(ch * m // nchunks, (ch + 1) * m // nchunks):
            _image_tables(images[picks[j, 0]], values, sums, squares)  # (a few thousand adds a patch)
            _write_patch(values, sums, squares, picks[j, 1] * stride, picks[j, 2] * stride, p, C,
                         contrast_eps, zeros, out[j])


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _triangle_pool(products, white, centroid_sq, rows, cols, bounds_r, bounds_c, out):
    """out (n, grid^2 * K) float32: per image, the sum over each pooling region of its patches'
    max(0, mean_k(z) - z_k), z_k = sqrt(max(0, |x|^2 + |c_k|^2 - 2 x.c_k)), in float32; products
    (n * rows * cols, K) = x.c_k of the whitened patches x, white (n * rows * cols, d). Each image's sums
    in a fixed order: the bits do not depend on the thread count or the block. Serial: one a thread.
    (Three simple loops a patch, not one: so each vectorises, ~2.4x faster here.)"""
    n = out.shape[0]
    K = centroid_sq.shape[0]
    grid = bounds_r.shape[0] - 1
    per = rows * cols
    zero = centroid_sq[0] - centroid_sq[0]  # a float32 zero
    two = zero + 2
    d = white.shape[1]
    for i in range(n):
        acc = np.zeros(grid * grid * K, dtype=np.float32)
        z = np.empty(K, dtype=np.float32)
        for r in range(rows):
            gr = 0
            while r >= bounds_r[gr + 1]:
                gr += 1
            for c in range(cols):
                gc = 0
                while c >= bounds_c[gc + 1]:
                    gc += 1
                row = i * per + r * cols + c
                x2 = zero
                for j in range(d):
                    x2 += white[row, j] * white[row, j]
                xc = products[row]
                for k in range(K):
                    sq = x2 + centroid_sq[k] - two * xc[k]
                    z[k] = np.sqrt(sq if sq > zero else zero)
                total = zero
                for k in range(K):
                    total += z[k]
                mu = total / K
                region = acc[(gr * grid + gc) * K : (gr * grid + gc + 1) * K]
                for k in range(K):
                    a = mu - z[k]
                    region[k] += a if a > zero else zero
        for k in range(grid * grid * K):
            out[i, k] = acc[k]
