"""Predicted labels ``argmax_j X[i] . W[:, j]`` and the count of correct ones, in one parallel pass over X.

The scores are made by the fused loss kernel's score pass (``block_scores``: blocks of 8 rows, four rows by
two classes at a time, products and sums in the dtype of X), so a label is the argmax of exactly the scores
the loss kernel computes, and no (N, C) array of scores is ever formed. The rows are split into chunks fixed
by the row count; a label depends on its row only, so the result is the same with any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._blocks import BLOCK, FASTMATH, block_scores, num_chunks
from ._validation import check_predict_inputs


@njit(cache=True)
def _padded_transpose(W):
    """W^T (Cp, D) padded with a zero class to an even class count, as ``block_scores`` takes it."""
    D, C = W.shape
    WT = np.zeros((C + (C & 1), D), dtype=W.dtype)
    for j in range(C):
        for d in range(D):
            WT[j, d] = W[d, j]
    return WT


@njit(cache=True)
def _argmax(scores, r, C):
    """Index of the first maximum of scores[r, :C]; a NaN counts as the maximum, as in np.argmax."""
    best = scores[r, 0]
    k = 0
    if best != best:
        return 0
    for j in range(1, C):
        s = scores[r, j]
        if s > best:
            best = s
            k = j
        elif s != s:
            return j
    return k


@njit(cache=True)
def _fill_rows(rows, idx, b0, nb):
    """The X rows of the block starting at position b0 (idx[b0 + r], or b0 + r when idx is None); a short
    block repeats its last row, so the score pass always works on full blocks."""
    for r in range(BLOCK):
        k = b0 + min(r, nb - 1)
        rows[r] = k if idx is None else idx[k]


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _labels_impl(W, X, idx, labels):
    n = labels.shape[0]
    C = W.shape[1]
    WT = _padded_transpose(W)
    zero = WT[0, 0] - WT[0, 0]  # a zero of the dtype of X, so float32 sums stay float32
    nchunks = num_chunks(n)
    nblocks = (n + BLOCK - 1) // BLOCK
    for ch in prange(nchunks):
        rows = np.empty(BLOCK, dtype=np.intp)
        scores = np.empty((BLOCK, WT.shape[0]), dtype=W.dtype)
        for blk in range(ch * nblocks // nchunks, (ch + 1) * nblocks // nchunks):
            b0 = blk * BLOCK
            nb = min(BLOCK, n - b0)
            _fill_rows(rows, idx, b0, nb)
            block_scores(X, rows, WT, scores, zero)
            for r in range(nb):
                labels[b0 + r] = _argmax(scores, r, C)


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _count_impl(W, X, y, idx, n):
    C = W.shape[1]
    WT = _padded_transpose(W)
    zero = WT[0, 0] - WT[0, 0]
    nchunks = num_chunks(n)
    nblocks = (n + BLOCK - 1) // BLOCK
    counts = np.empty(nchunks, dtype=np.int64)
    for ch in prange(nchunks):
        rows = np.empty(BLOCK, dtype=np.intp)
        scores = np.empty((BLOCK, WT.shape[0]), dtype=W.dtype)
        hits = 0
        for blk in range(ch * nblocks // nchunks, (ch + 1) * nblocks // nchunks):
            b0 = blk * BLOCK
            nb = min(BLOCK, n - b0)
            _fill_rows(rows, idx, b0, nb)
            block_scores(X, rows, WT, scores, zero)
            for r in range(nb):
                if _argmax(scores, r, C) == y[rows[r]]:
                    hits += 1
        counts[ch] = hits
    return counts.sum()


def predict_labels_unchecked(W: np.ndarray, X: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
    """:func:`predict_labels` without the input checks, for a caller that checked once with
    :func:`check_predict_inputs` (idx an intp array or None, W finite)."""
    labels = np.empty(X.shape[0] if idx is None else idx.shape[0], dtype=np.int64)
    _labels_impl(W, X, idx, labels)
    return labels


def count_correct_unchecked(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, idx: np.ndarray | None = None
) -> int:
    """:func:`count_correct` without the input checks (y and idx intp arrays, see
    :func:`predict_labels_unchecked`)."""
    return int(_count_impl(W, X, y, idx, X.shape[0] if idx is None else idx.shape[0]))


def predict_labels(W: np.ndarray, X: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
    """Predicted class of each row: ``argmax(X @ W, axis=1)`` (first maximum on ties) in one pass over X.

    Parameters
    ----------
    W : ndarray (D, C), float32 or float64, finite
    X : ndarray (N, D), same dtype as W; read in place (a read-only memory map works)
    idx : ndarray (B,), int, optional -- predict only the rows ``X[idx]``, without copying them

    Returns
    -------
    labels : ndarray (N,) or (B,), int64
    """
    W, X, _, idx = check_predict_inputs(W, X, None, idx)
    return predict_labels_unchecked(W, X, idx)


def count_correct(W: np.ndarray, X: np.ndarray, y: np.ndarray, idx: np.ndarray | None = None) -> int:
    """Number of rows whose predicted class (see :func:`predict_labels`) equals the label y; the accuracy is
    this over N (or over B with idx). No label array is formed.

    Parameters
    ----------
    W : ndarray (D, C), float32 or float64, finite
    X : ndarray (N, D), same dtype as W
    y : ndarray (N,), int labels in [0, C)
    idx : ndarray (B,), int, optional -- count over the rows ``X[idx]`` only
    """
    W, X, y, idx = check_predict_inputs(W, X, y, idx)
    return count_correct_unchecked(W, X, y, idx)
