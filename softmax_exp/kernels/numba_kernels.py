"""The losses on Numba's parallel backend: a straightforward two-pass kernel and a fused one-pass kernel,
each for the softmax and for the multiclass SVM (one compiled loop each; its ``kind`` argument picks the
per-row loss and score gradient).

Both split the rows into a fixed number of chunks that depends on the number of rows only, never on the
thread count. Each chunk owns its accumulators (no two ``prange`` iterations write one element) and the
chunks are reduced afterwards in a fixed order, so a result is bit-for-bit the same with 1, 2 or 16 threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._blocks import BLOCK, CONTRACT_ONLY, FASTMATH, block_scores, num_chunks
from ._validation import checked_call

# --------------------------------------------------------------------------------------------------------
# numba_naive: pass 1 computes the probabilities row by row, pass 2 forms X^T dS chunk by chunk.
# --------------------------------------------------------------------------------------------------------


SOFTMAX = 0  # the ``kind`` of a loss: cross-entropy of the softmax ...
HINGE = 1  # ... or the multiclass SVM's hinge, margin 1
KINDS = {"softmax": SOFTMAX, "svm": HINGE}


@njit(cache=True)
def _softmax_row(s, yi, shift, n):
    """Row scores s (C,) float64 -> their softmax minus one-hot(yi), over n; returns the row's loss."""
    C = s.shape[0]
    sy = s[yi] - shift
    denom = 0.0
    for j in range(C):
        s[j] = math.exp(s[j] - shift)
        denom += s[j]
    for j in range(C):
        s[j] = s[j] / denom / n
    s[yi] -= 1.0 / n
    return math.log(denom) - sy


@njit(cache=True, fastmath=False)  # explicit: a callee without it inherits the caller's fastmath
def _hinge_row(scores, g, r, yi, C, inv_n):
    """g[r, :C] = the hinge's score gradient over n of the scores[r, :C] (1 / n for each positive margin,
    minus their count / n at yi; g may be scores itself); returns the row's loss, the sum of the positive
    margins, taken in float64 (NaN if a score is)."""
    sy = float(scores[r, yi])
    loss = 0.0
    count = 0
    for j in range(C):
        margin = float(scores[r, j]) - sy + 1.0
        if j != yi and not margin <= 0.0:  # > 0, or NaN
            loss += margin
            count += 1
            g[r, j] = inv_n
        else:
            g[r, j] = 0.0
    g[r, yi] = -count * inv_n
    return loss


@njit(parallel=True, cache=True)
def _naive_impl(W, X, y, reg, idx, kind):
    n = idx.shape[0]
    D, C = W.shape
    dscores = np.empty((n, C), dtype=np.float64)
    row_loss = np.empty(n, dtype=np.float64)
    for k in prange(n):
        i = idx[k]
        shift = -np.inf
        for j in range(C):
            s = 0.0
            for d in range(D):
                s += X[i, d] * W[d, j]
            dscores[k, j] = s
            if s > shift:
                shift = s
        if kind == SOFTMAX:
            row_loss[k] = _softmax_row(dscores[k], y[i], shift, n)
        else:
            row_loss[k] = _hinge_row(dscores, dscores, k, y[i], C, 1.0 / n)

    nchunks = num_chunks(n)
    partial = np.zeros((nchunks, D, C), dtype=np.float64)
    for ch in prange(nchunks):
        for k in range(ch * n // nchunks, (ch + 1) * n // nchunks):
            i = idx[k]
            for d in range(D):
                for j in range(C):
                    partial[ch, d, j] += X[i, d] * dscores[k, j]

    dW = np.empty_like(W)
    for d in prange(D):
        for j in range(C):
            g = 0.0
            for ch in range(nchunks):
                g += partial[ch, d, j]
            dW[d, j] = g + reg * W[d, j]
    loss = 0.0
    for k in range(n):
        loss += row_loss[k]
    return loss / n, dW


# --------------------------------------------------------------------------------------------------------
# numba_fused: one pass over X. Per block of rows: scores, stable softmax, loss, gradient contribution.
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, fastmath=CONTRACT_ONLY)
def _block_gradient(X, rows, g, accT):
    """accT[j] += sum_r g[r, j] * X[rows[r]] for the 8 rows of a block, four classes at a time (then two).

    No loop-carried sum here, so no reassociation: the sum over the 8 rows is written as a tree and kept as
    written, which halves the chain of dependent FMAs (the bottleneck of a left-to-right sum). Each class's
    sum is the same expression however many classes share a pass, so the bits do not depend on the grouping;
    four a pass read each block row from cache half as often as two (the gradient pass ~15% faster).
    """
    D = X.shape[1]
    x0 = X[rows[0]]
    x1 = X[rows[1]]
    x2 = X[rows[2]]
    x3 = X[rows[3]]
    x4 = X[rows[4]]
    x5 = X[rows[5]]
    x6 = X[rows[6]]
    x7 = X[rows[7]]
    Cp = accT.shape[0]
    j = 0
    while j + 4 <= Cp:
        a0 = accT[j]
        a1 = accT[j + 1]
        a2 = accT[j + 2]
        a3 = accT[j + 3]
        g0, g1, g2, g3 = g[0, j], g[1, j], g[2, j], g[3, j]
        g4, g5, g6, g7 = g[4, j], g[5, j], g[6, j], g[7, j]
        h0, h1, h2, h3 = g[0, j + 1], g[1, j + 1], g[2, j + 1], g[3, j + 1]
        h4, h5, h6, h7 = g[4, j + 1], g[5, j + 1], g[6, j + 1], g[7, j + 1]
        k0, k1, k2, k3 = g[0, j + 2], g[1, j + 2], g[2, j + 2], g[3, j + 2]
        k4, k5, k6, k7 = g[4, j + 2], g[5, j + 2], g[6, j + 2], g[7, j + 2]
        m0, m1, m2, m3 = g[0, j + 3], g[1, j + 3], g[2, j + 3], g[3, j + 3]
        m4, m5, m6, m7 = g[4, j + 3], g[5, j + 3], g[6, j + 3], g[7, j + 3]
        for d in range(D):
            v0 = x0[d]
            v1 = x1[d]
            v2 = x2[d]
            v3 = x3[d]
            v4 = x4[d]
            v5 = x5[d]
            v6 = x6[d]
            v7 = x7[d]
            a0[d] += ((g0 * v0 + g1 * v1) + (g2 * v2 + g3 * v3)) + ((g4 * v4 + g5 * v5) + (g6 * v6 + g7 * v7))
            a1[d] += ((h0 * v0 + h1 * v1) + (h2 * v2 + h3 * v3)) + ((h4 * v4 + h5 * v5) + (h6 * v6 + h7 * v7))
            a2[d] += ((k0 * v0 + k1 * v1) + (k2 * v2 + k3 * v3)) + ((k4 * v4 + k5 * v5) + (k6 * v6 + k7 * v7))
            a3[d] += ((m0 * v0 + m1 * v1) + (m2 * v2 + m3 * v3)) + ((m4 * v4 + m5 * v5) + (m6 * v6 + m7 * v7))
        j += 4
    if j < Cp:  # Cp is even: one pair left
        a0 = accT[j]
        a1 = accT[j + 1]
        g0, g1, g2, g3 = g[0, j], g[1, j], g[2, j], g[3, j]
        g4, g5, g6, g7 = g[4, j], g[5, j], g[6, j], g[7, j]
        h0, h1, h2, h3 = g[0, j + 1], g[1, j + 1], g[2, j + 1], g[3, j + 1]
        h4, h5, h6, h7 = g[4, j + 1], g[5, j + 1], g[6, j + 1], g[7, j + 1]
        for d in range(D):
            v0 = x0[d]
            v1 = x1[d]
            v2 = x2[d]
            v3 = x3[d]
            v4 = x4[d]
            v5 = x5[d]
            v6 = x6[d]
            v7 = x7[d]
            a0[d] += ((g0 * v0 + g1 * v1) + (g2 * v2 + g3 * v3)) + ((g4 * v4 + g5 * v5) + (g6 * v6 + g7 * v7))
            a1[d] += ((h0 * v0 + h1 * v1) + (h2 * v2 + h3 * v3)) + ((h4 * v4 + h5 * v5) + (h6 * v6 + h7 * v7))


@njit(cache=True, fastmath=False)  # explicit: a callee without it inherits the caller's fastmath
def _transpose_sum_squares(W, WT):
    """WT[j, d] = W[d, j] (padding classes zero); return sum W[d, j]**2 in float64, in _reg_loss's order.

    Compiled without fastmath, like _reg_loss: the sum is one chain of float64 adds in row-major order, so
    its bits are _reg_loss's. Doing it here reads W once; the transposing stores hide under the adds' latency.
    """
    D, C = W.shape
    s = 0.0
    for d in range(D):
        for j in range(C):
            w = W[d, j]
            WT[j, d] = w
            s += float(w) * float(w)
        for j in range(C, WT.shape[0]):
            WT[j, d] = 0
    return s


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _fused_impl(W, X, y, reg, idx, kind):
    """Returns (data loss, sum of W**2, dW with the L2 gradient): two parallel regions, the chunks and the
    reduction; no zero-filled allocation (each chunk zeroes its own accumulator)."""
    n = idx.shape[0]
    D, C = W.shape
    # W^T padded to an even number of classes (a zero class), so the inner loops work on class pairs.
    Cp = C + (C & 1)
    WT = np.empty((Cp, D), dtype=W.dtype)
    sum_sq = _transpose_sum_squares(W, WT)
    zero = WT[0, 0] - WT[0, 0]  # a zero of the dtype of X, so float32 sums stay float32
    nchunks = num_chunks(n)
    nblocks = (n + BLOCK - 1) // BLOCK  # chunks own whole blocks: only the very last block is short
    acc = np.empty((nchunks, Cp, D), dtype=W.dtype)  # dW^T per chunk, in the dtype of X
    chunk_loss = np.empty(nchunks, dtype=np.float64)
    inv_n = 1.0 / n
    for ch in prange(nchunks):
        accT = acc[ch]
        for j in range(Cp):
            for d in range(D):
                accT[j, d] = zero
        rows = np.empty(BLOCK, dtype=np.intp)
        scores = np.empty((BLOCK, Cp), dtype=W.dtype)
        g = np.zeros((BLOCK, Cp), dtype=W.dtype)
        loss = 0.0
        for blk in range(ch * nblocks // nchunks, (ch + 1) * nblocks // nchunks):
            b0 = blk * BLOCK
            nb = min(BLOCK, n - b0)
            # a short last block repeats its last row with a zero gradient weight: full blocks only below
            for r in range(BLOCK):
                rows[r] = idx[b0 + min(r, nb - 1)]
            block_scores(X, rows, WT, scores, zero)
            # loss and dscores / n for each real row, in float64 (C values per row)
            if kind == SOFTMAX:
                for r in range(nb):  # stable softmax
                    yi = y[rows[r]]
                    shift = float(scores[r, 0])
                    for j in range(1, C):
                        shift = max(shift, float(scores[r, j]))
                    sy = float(scores[r, yi]) - shift
                    denom = 0.0
                    for j in range(C):
                        denom += math.exp(float(scores[r, j]) - shift)
                    loss += math.log(denom) - sy
                    for j in range(C):
                        g[r, j] = math.exp(float(scores[r, j]) - shift) / denom * inv_n
                    g[r, yi] = g[r, yi] - inv_n
            else:
                for r in range(nb):
                    loss += _hinge_row(scores, g, r, y[rows[r]], C, inv_n)
            for r in range(nb, BLOCK):
                for j in range(Cp):
                    g[r, j] = zero
            _block_gradient(X, rows, g, accT)
        chunk_loss[ch] = loss

    dW = np.empty_like(W)
    for d in prange(D):
        for j in range(C):
            t = acc[0, j, d]
            for ch in range(1, nchunks):
                t += acc[ch, j, d]
            dW[d, j] = t + reg * W[d, j]
    loss = 0.0
    for ch in range(nchunks):
        loss += chunk_loss[ch]
    return loss / n, sum_sq, dW


@njit(cache=True)
def _reg_loss(W, reg):
    s = 0.0
    for d in range(W.shape[0]):
        for j in range(W.shape[1]):
            s += float(W[d, j]) * float(W[d, j])
    return 0.5 * reg * s


def _naive_call(W, X, y, reg, idx, kind=SOFTMAX):
    """Run the naive kernel over the rows used (all, or idx) and add the L2 term."""
    rows = np.arange(X.shape[0], dtype=np.intp) if idx is None else idx
    data_loss, dW = _naive_impl(W, X, y, reg, rows, kind)
    return data_loss + _reg_loss(W, reg), dW


def softmax_loss_numba_naive_unchecked(W, X, y, reg, idx=None):
    """:func:`softmax_loss_numba_naive` without the input checks, for callers that checked once (a
    training loop): y (N,) and idx (B,) intp arrays, reg a float. A non-finite result is returned as is."""
    return _naive_call(W, X, y, reg, idx)


def _fused_call(W, X, y, reg, idx, kind=SOFTMAX):
    """Run the fused kernel over the rows used (all, or idx); it returns the L2 term's sum too."""
    rows = np.arange(X.shape[0], dtype=np.intp) if idx is None else idx
    data_loss, sum_sq, dW = _fused_impl(W, X, y, reg, rows, kind)
    return data_loss + 0.5 * reg * sum_sq, dW  # the L2 term as _reg_loss computes it: (0.5 * reg) * sum


def softmax_loss_numba_fused_unchecked(W, X, y, reg, idx=None):
    """:func:`softmax_loss_numba_fused` without the input checks (see
    :func:`softmax_loss_numba_naive_unchecked`)."""
    return _fused_call(W, X, y, reg, idx)


def softmax_loss_numba_naive(W, X, y, reg, idx=None):
    """Softmax loss and gradient with Numba ``prange`` loops over rows, in two passes over X.

    Pass 1 computes every row's scores and probabilities (rows in parallel); pass 2 forms X^T dS with one
    accumulator per chunk of rows. Arithmetic in float64. Same contract as ``softmax_loss_naive``.

    Returns
    -------
    loss : float
    dW : ndarray (D, C), dtype of W
    """
    return checked_call(softmax_loss_numba_naive_unchecked, W, X, y, reg, idx)


def softmax_loss_numba_fused(W, X, y, reg, idx=None):
    """Softmax loss and gradient in one parallel pass over X (or over the rows ``X[idx]``).

    Rows are taken in blocks of a few; for each block the scores, the stable softmax, the loss and the
    gradient contribution are computed while the rows are in cache. Products and accumulators are in the
    dtype of X (float32 is never upcast); the softmax of each row and the loss are in float64.
    With ``idx`` the minibatch rows are read in place: no ``X[idx]`` copy.

    Parameters
    ----------
    W : ndarray (D, C), float32 or float64
    X : ndarray (N, D), same dtype as W
    y : ndarray (N,), int labels in [0, C)
    reg : float >= 0
    idx : ndarray (B,), int, optional -- rows of X to take the loss over

    Returns
    -------
    loss : float
    dW : ndarray (D, C), dtype of W
    """
    return checked_call(softmax_loss_numba_fused_unchecked, W, X, y, reg, idx)


def svm_loss_numba_naive_unchecked(W, X, y, reg, idx=None):
    """:func:`svm_loss_numba_naive` without the input checks (see
    :func:`softmax_loss_numba_naive_unchecked`)."""
    return _naive_call(W, X, y, reg, idx, HINGE)


def svm_loss_numba_fused_unchecked(W, X, y, reg, idx=None):
    """:func:`svm_loss_numba_fused` without the input checks (see
    :func:`softmax_loss_numba_naive_unchecked`)."""
    return _fused_call(W, X, y, reg, idx, HINGE)


def svm_loss_numba_naive(W, X, y, reg, idx=None):
    """Multiclass SVM loss and subgradient with Numba ``prange`` loops over rows, in two passes over X, as
    :func:`softmax_loss_numba_naive` computes the softmax's. Same contract as
    :func:`softmax_exp.kernels.naive.svm_loss_naive`."""
    return checked_call(svm_loss_numba_naive_unchecked, W, X, y, reg, idx)


def svm_loss_numba_fused(W, X, y, reg, idx=None):
    """Multiclass SVM loss and subgradient in one parallel pass over X (or the rows ``X[idx]``, read in
    place), as :func:`softmax_loss_numba_fused` computes the softmax's: products and accumulators in the
    dtype of X, the margins and the loss in float64. Same contract as
    :func:`softmax_exp.kernels.naive.svm_loss_naive`."""
    return checked_call(svm_loss_numba_fused_unchecked, W, X, y, reg, idx)
