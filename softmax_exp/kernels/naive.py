"""The losses with explicit loops over rows and classes, in float64: the references the other kernels are
tested on (the softmax, and the multiclass SVM of margin 1)."""

from __future__ import annotations

import math

import numpy as np

from ._validation import checked_call


def softmax_loss_naive(W, X, y, reg, idx=None):
    """Softmax loss and gradient, computed one row and one class at a time.

    L = mean_i(-log softmax(X_i W)[y_i]) + 0.5 * reg * sum(W * W), so dW includes reg * W.
    The arithmetic is done in float64 whatever the input dtype, which makes this the accurate reference.

    Parameters
    ----------
    W : ndarray (D, C), float32 or float64 -- weights
    X : ndarray (N, D), same dtype as W -- one example per row
    y : ndarray (N,), int -- labels in [0, C)
    reg : float >= 0 -- L2 regularisation strength
    idx : ndarray (B,), int, optional -- take the loss over rows X[idx] only

    Returns
    -------
    loss : float
    dW : ndarray (D, C), dtype of W
    """
    return checked_call(softmax_loss_naive_unchecked, W, X, y, reg, idx)


def softmax_loss_naive_unchecked(W, X, y, reg, idx=None):
    """:func:`softmax_loss_naive` without the input checks (see ``softmax_loss_vectorized_unchecked``)."""
    return _row_by_row(W, X, y, reg, idx, _softmax_row)


def _row_by_row(W, X, y, reg, idx, row):
    """The loss over the rows (all, or idx), one row at a time in float64: ``row(x, scores, label, dW)``
    adds the row's gradient to dW and returns its loss; then the mean and the L2 term."""
    rows = range(X.shape[0]) if idx is None else idx
    num_train = len(rows)
    W64 = W.astype(np.float64)
    dW = np.zeros_like(W64)
    loss = 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for i in rows:
            x = X[i].astype(np.float64)
            loss += row(x, x.dot(W64), y[i], dW)
        loss = loss / num_train + 0.5 * reg * float(np.sum(W64 * W64))
        dW = dW / num_train + reg * W64
    return loss, dW.astype(W.dtype, copy=False)


def _softmax_row(x, scores, label, dW):
    """One row's cross-entropy of the row-max-shifted softmax; its gradient (p - onehot) x added to dW."""
    num_classes = scores.shape[0]
    shift = max(scores[j] for j in range(num_classes))
    denom = 0.0
    for j in range(num_classes):
        denom += math.exp(scores[j] - shift)
    for j in range(num_classes):
        p = math.exp(scores[j] - shift) / denom
        dW[:, j] += (p - (j == label)) * x
    return math.log(denom) - (scores[label] - shift)


MARGIN = 1.0  # the SVM's delta: the score of the right class must beat every other by this much


def svm_loss_naive(W, X, y, reg, idx=None):
    """Multiclass SVM (hinge) loss and its subgradient, one row and one class at a time.

    L = mean_i sum_{j != y_i} max(0, s_ij - s_iy_i + 1) + 0.5 * reg * sum(W * W), s_i = X_i W, so dW
    includes reg * W. (The course writes reg * sum(W * W): its reg is half of this one.) A margin counts
    in the subgradient when it is > 0: it adds X_i to column j and takes it from column y_i. The arithmetic
    is float64 whatever the input dtype. Same arguments and returns as :func:`softmax_loss_naive`.
    """
    return checked_call(svm_loss_naive_unchecked, W, X, y, reg, idx)


def svm_loss_naive_unchecked(W, X, y, reg, idx=None):
    """:func:`svm_loss_naive` without the input checks (see ``softmax_loss_vectorized_unchecked``)."""
    return _row_by_row(W, X, y, reg, idx, _hinge_row)


def _hinge_row(x, scores, label, dW):
    """One row's hinge loss; x added to the column of each positive margin and taken from the label's."""
    loss = 0.0
    correct = scores[label]
    for j in range(scores.shape[0]):
        if j == label:
            continue
        margin = scores[j] - correct + MARGIN
        if not margin <= 0:  # > 0, or NaN: a NaN reaches the loss and is traced to X
            loss += margin
            dW[:, j] += x
            dW[:, label] -= x
    return loss
