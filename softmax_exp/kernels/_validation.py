"""Input checks shared by every kernel's public function.

The checks here are cheap: shapes, dtypes, the labels and W. X is never scanned up front (that would cost
one full read of X, as much as the fused kernel itself); instead a non-finite result is traced back to X or W
by :func:`check_finite_result` before it is returned.
"""

from __future__ import annotations

import math

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_inputs(W, X, y, reg, idx=None):
    """Validate kernel arguments and return them in canonical form.

    Parameters
    ----------
    W : ndarray (D, C), float32 or float64
    X : ndarray (N, D), same dtype as W
    y : ndarray (N,), integers in [0, C)
    reg : float, finite and >= 0
    idx : ndarray (B,), optional integers in [0, N): rows of X the loss is taken over

    Returns
    -------
    (W, X, y, reg, idx) with y and idx as intp arrays (small; copied only when not already intp)
    and reg as a Python float. X and W are never copied or cast.
    """
    N, C = _check_weights_and_rows(W, X)
    y = _check_label_array(y, N)
    try:
        reg = float(reg)
    except (TypeError, ValueError):
        raise ValueError(f"reg must be a real number; got {reg!r}") from None
    if not math.isfinite(reg) or reg < 0:
        raise ValueError(f"reg must be finite and >= 0; got {reg}")
    _check_w_finite(W)
    idx = _check_idx(idx, N)
    _check_label_range(y, C, idx)
    return W, X, y, reg, idx


def check_predict_inputs(W, X, y=None, idx=None):
    """Validate the arguments of a prediction (labels, or the count of correct ones when y is given).

    Parameters
    ----------
    W : ndarray (D, C), float32 or float64, finite
    X : ndarray (N, D), same dtype as W (not scanned: NaN in X gives a label, as np.argmax does)
    y : ndarray (N,), optional integers in [0, C)
    idx : ndarray (B,), optional integers in [0, N): the rows of X to predict

    Returns
    -------
    (W, X, y, idx) with y and idx as intp arrays or None. X and W are never copied or cast.
    """
    N, C = _check_weights_and_rows(W, X)
    if y is not None:
        y = _check_label_array(y, N)
    _check_w_finite(W)
    idx = _check_idx(idx, N)
    if y is not None:
        _check_label_range(y, C, idx)
    return W, X, y, idx


def _check_weights_and_rows(W, X) -> tuple[int, int]:
    """X (N, D) and W (D, C): 2-D, one float dtype, matching D, non-empty. Returns (N, C)."""
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        raise ValueError(f"X must be a 2-D numpy array (N, D); got {_describe(X)}")
    if not isinstance(W, np.ndarray) or W.ndim != 2:
        raise ValueError(f"W must be a 2-D numpy array (D, C); got {_describe(W)}")
    if X.dtype not in FLOAT_DTYPES:
        raise ValueError(f"X must be float32 or float64; got dtype {X.dtype}")
    if W.dtype != X.dtype:
        raise ValueError(
            f"W and X must have the same dtype; got W {W.dtype} and X {X.dtype} "
            f"(cast W, e.g. W.astype(X.dtype): X is never cast silently)"
        )
    N, D = X.shape
    if W.shape[0] != D:
        raise ValueError(f"W must have shape (D, C) with D = X.shape[1] = {D}; got W shape {W.shape}")
    C = W.shape[1]
    if C < 1 or N < 1:
        raise ValueError(f"X and W must be non-empty; got X shape {X.shape}, W shape {W.shape}")
    return N, C


def _check_label_array(y, N: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != N:
        raise ValueError(f"y must be 1-D of length N = {N}; got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class labels; got dtype {y.dtype}")
    return y.astype(np.intp, copy=False)


def _check_w_finite(W) -> None:
    if not np.isfinite(W).all():
        raise ValueError("W contains NaN or inf; reinitialise W (a diverged training gives this)")


def _check_idx(idx, N: int):
    if idx is None:
        return None
    idx = np.asarray(idx)
    if idx.ndim != 1 or idx.shape[0] < 1:
        raise ValueError(f"idx must be a non-empty 1-D array of row indices; got shape {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx must hold integer row indices; got dtype {idx.dtype}")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= N:
        bad = lo if lo < 0 else hi
        raise ValueError(f"idx must be in [0, N) = [0, {N}); found index {bad}")
    return idx.astype(np.intp, copy=False)


def _check_label_range(y, C: int, idx) -> None:
    # only the labels used are checked: a minibatch step looks at B labels, not N
    used = y if idx is None else y[idx]
    lo, hi = int(used.min()), int(used.max())
    if lo < 0 or hi >= C:
        bad = lo if lo < 0 else hi
        raise ValueError(f"y must be in [0, C) = [0, {C}); found label {bad}")


def checked_call(unchecked, W, X, y, reg, idx=None):
    """What every public kernel does around its unchecked twin: check the inputs, run, and trace a
    non-finite result back to the rows of X used."""
    W, X, y, reg, idx = check_inputs(W, X, y, reg, idx)
    loss, dW = unchecked(W, X, y, reg, idx)
    check_finite_result(loss, dW, X, idx)
    return loss, dW


def check_finite_result(loss, dW, X, idx=None):
    """Raise ValueError naming X when a non-finite result comes from NaN or inf in the rows used.

    Called after the kernel ran, so the common (finite) path costs only a check of dW (D x C).
    W was checked before the kernel ran. A non-finite result from finite inputs (scores beyond the
    dtype's range) is returned as is.
    """
    if math.isfinite(loss) and np.isfinite(dW).all():
        return
    used = None if idx is None else np.unique(idx)
    bad = np.argwhere(~np.isfinite(X if used is None else X[used]))
    if bad.size:
        row = int(bad[0, 0]) if used is None else int(used[bad[0, 0]])
        raise ValueError(
            f"X contains NaN or inf (first at row {row}, column {int(bad[0, 1])}); "
            "clean or impute the data"
        )


def _describe(a) -> str:
    if isinstance(a, np.ndarray):
        return f"ndarray with shape {a.shape}"
    return type(a).__name__
