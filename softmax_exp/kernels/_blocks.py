"""What the two block kernels share (numba_kernels' fused loss and predict's labels): the fastmath flags,
the fixed chunking of rows, and the score pass over a block of 8 rows. Private to softmax_exp.kernels.

A label that predict gives is the argmax of exactly the scores the fused loss computes, because both call
:func:`block_scores`; the chunk count depends on the row count only, never on the thread count.
"""

from __future__ import annotations

from numba import njit

# Reassociation lets LLVM vectorise the dot products and axpys; contraction lets it use FMA. No nnan/ninf:
# the NaN and inf semantics the validation relies on are kept.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
CONTRACT_ONLY = {"contract"}

# Rows per chunk at least this many, and at most this many chunks: enough chunks to balance two to a few
# dozen threads on a full pass, few enough that the per-chunk (C, D) accumulators stay small next to the
# rows read (a minibatch of 200 rows gets 2 chunks: zeroing and summing more would cost more than it saves).
MIN_ROWS_PER_CHUNK = 100
MAX_CHUNKS = 32

# Rows handled together by the fused kernel: the block of X (8 rows) stays in L1/L2 between the score pass
# and the gradient pass, so X is read from memory once. The gradient loop below is written for 8.
BLOCK = 8


@njit(cache=True)
def num_chunks(n):
    return max(1, min(MAX_CHUNKS, n // MIN_ROWS_PER_CHUNK))


@njit(cache=True, fastmath=FASTMATH)
def block_scores(X, rows, WT, scores, zero):
    """scores[r, j] = X[rows[r]] . WT[j] for the 8 rows of a block, four rows by two classes at a time.

    Eight independent sums per pass over the rows; reassociation lets LLVM vectorise each sum. The rows come
    from memory here and stay in cache (L1/L2) for the gradient pass.
    """
    D = X.shape[1]
    for r in range(0, BLOCK, 4):
        x0 = X[rows[r]]
        x1 = X[rows[r + 1]]
        x2 = X[rows[r + 2]]
        x3 = X[rows[r + 3]]
        for j in range(0, WT.shape[0], 2):
            w0 = WT[j]
            w1 = WT[j + 1]
            s00 = zero
            s01 = zero
            s10 = zero
            s11 = zero
            s20 = zero
            s21 = zero
            s30 = zero
            s31 = zero
            for d in range(D):
                u = w0[d]
                v = w1[d]
                s00 += x0[d] * u
                s01 += x0[d] * v
                s10 += x1[d] * u
                s11 += x1[d] * v
                s20 += x2[d] * u
                s21 += x2[d] * v
                s30 += x3[d] * u
                s31 += x3[d] * v
            scores[r, j] = s00
            scores[r, j + 1] = s01
            scores[r + 1, j] = s10
            scores[r + 1, j + 1] = s11
            scores[r + 2, j] = s20
            scores[r + 2, j + 1] = s21
            scores[r + 3, j] = s30
            scores[r + 3, j + 1] = s31
