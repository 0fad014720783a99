"""The losses with numpy array operations only, no Python loop: the softmax and the multiclass SVM."""

from __future__ import annotations

import numpy as np

from ._validation import checked_call


def softmax_loss_vectorized(W, X, y, reg, idx=None):
    """Softmax loss and gradient as a handful of numpy array operations (BLAS for the two products).

    Same contract as :func:`softmax_exp.kernels.naive.softmax_loss_naive`. The work is done in the dtype
    of X (float32 stays float32); the loss is summed in float64. With ``idx``, the rows X[idx] are copied,
    which is what a numpy minibatch step does.

    Returns
    -------
    loss : float
    dW : ndarray (D, C), dtype of W
    """
    return checked_call(softmax_loss_vectorized_unchecked, W, X, y, reg, idx)


def softmax_loss_vectorized_unchecked(W, X, y, reg, idx=None):
    """:func:`softmax_loss_vectorized` without the input checks, for callers that checked once
    (a training loop): y (N,) and idx (B,) intp, reg a float. A non-finite result is returned as is."""
    return _on_rows(_loss_and_grad, W, X, y, reg, idx)


def _on_rows(loss_and_grad, W, X, y, reg, idx):
    """``loss_and_grad(W, X, y, reg)`` over the rows X[idx] (copied, as a numpy minibatch step does) or all,
    a non-finite result returned as is."""
    if idx is not None:
        X, y = X[idx], y[idx]
    with np.errstate(invalid="ignore", over="ignore"):
        return loss_and_grad(W, X, y, reg)


def _loss_and_grad(W, X, y, reg):
    num_train = X.shape[0]
    scores = X @ W
    scores -= scores.max(axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    sum_exp = exp_scores.sum(axis=1, keepdims=True)
    rows = np.arange(num_train)
    log_sum = np.log(sum_exp[:, 0], dtype=np.float64)
    loss = float(np.sum(log_sum - scores[rows, y], dtype=np.float64)) / num_train
    loss += 0.5 * reg * float(np.sum(W * W, dtype=np.float64))
    dscores = exp_scores / sum_exp
    dscores[rows, y] -= 1
    dscores /= num_train
    dW = X.T @ dscores
    dW += W.dtype.type(reg) * W
    return loss, dW


def svm_loss_vectorized(W, X, y, reg, idx=None):
    """Multiclass SVM loss and subgradient as a handful of numpy array operations (BLAS for the two
    products). Same contract as :func:`softmax_exp.kernels.naive.svm_loss_naive`; the work is in the dtype
    of X, the loss summed in float64; with ``idx`` the rows X[idx] are copied."""
    return checked_call(svm_loss_vectorized_unchecked, W, X, y, reg, idx)


def svm_loss_vectorized_unchecked(W, X, y, reg, idx=None):
    """:func:`svm_loss_vectorized` without the input checks (see
    :func:`softmax_loss_vectorized_unchecked`)."""
    return _on_rows(_svm_loss_and_grad, W, X, y, reg, idx)


def _svm_loss_and_grad(W, X, y, reg):
    num_train = X.shape[0]
    scores = X @ W
    rows = np.arange(num_train)
    margins = scores - scores[rows, y][:, None]
    margins += 1  # the margin delta
    margins[rows, y] = 0
    np.maximum(margins, 0, out=margins)
    loss = float(np.sum(margins, dtype=np.float64)) / num_train
    loss += 0.5 * reg * float(np.sum(W * W, dtype=np.float64))
    dscores = (margins > 0).astype(X.dtype)
    dscores[rows, y] = -dscores.sum(axis=1)
    dscores /= num_train
    dW = X.T @ dscores
    dW += W.dtype.type(reg) * W
    return loss, dW
