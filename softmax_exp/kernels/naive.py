"""Softmax loss with explicit loops over rows and classes: the reference the other kernels are tested on."""

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
    with np.errstate(invalid="ignore", over="ignore"):
        return _loss_and_grad(W, X, y, reg, idx)


def _loss_and_grad(W, X, y, reg, idx):
    rows = range(X.shape[0]) if idx is None else idx
    num_train = len(rows)
    num_classes = W.shape[1]
    W64 = W.astype(np.float64)
    dW = np.zeros_like(W64)
    loss = 0.0
    for i in rows:
        x = X[i].astype(np.float64)
        scores = x.dot(W64)
        shift = max(scores[j] for j in range(num_classes))
        denom = 0.0
        for j in range(num_classes):
            denom += math.exp(scores[j] - shift)
        loss += math.log(denom) - (scores[y[i]] - shift)
        for j in range(num_classes):
            p = math.exp(scores[j] - shift) / denom
            dW[:, j] += (p - (j == y[i])) * x
    loss = loss / num_train + 0.5 * reg * float(np.sum(W64 * W64))
    dW = dW / num_train + reg * W64
    return loss, dW.astype(W.dtype, copy=False)
