"""The loss kernels, all with the signature ``f(W, X, y, reg, idx=None) -> (loss, dW)``: the softmax
(cross-entropy) and the multiclass SVM (hinge, margin 1), four implementations of each (``LOSSES``),
``get_kernel(name, loss="softmax")`` one of them.

Each public kernel checks its arguments (one-line ValueError) and traces a non-finite result back to X.
Each has an unchecked twin, ``get_kernel(name, checked=False)``, computing the same bits without the
checks, for a caller that checked its arguments once (see :func:`check_inputs`) and calls the kernel
thousands of times, such as the training loop.

| name          | how                                                                 |
|---------------|---------------------------------------------------------------------|
| naive         | Python loops over rows and classes, float64: the reference           |
| vectorized    | numpy array operations, no Python loop                               |
| numba_naive   | Numba ``prange`` over rows, two passes over X                        |
| numba_fused   | Numba ``prange`` over row chunks, one pass over X, ``idx`` in place  |

The SVM's loss is ``mean_i sum_{j != y_i} max(0, s_ij - s_iy_i + 1) + 0.5 * reg * sum(W*W)``: the same reg
convention as the softmax's, so one reg means the same on both (the course writes ``reg * sum(W*W)``; its
reg is half of this one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numba

from ._validation import check_finite_result, check_inputs, check_predict_inputs
from .naive import softmax_loss_naive, softmax_loss_naive_unchecked, svm_loss_naive, svm_loss_naive_unchecked
from .numba_kernels import (
    softmax_loss_numba_fused,
    softmax_loss_numba_fused_unchecked,
    softmax_loss_numba_naive,
    softmax_loss_numba_naive_unchecked,
    svm_loss_numba_fused,
    svm_loss_numba_fused_unchecked,
    svm_loss_numba_naive,
    svm_loss_numba_naive_unchecked,
)
from .predict import count_correct, count_correct_unchecked, predict_labels, predict_labels_unchecked
from .vectorized import (
    softmax_loss_vectorized,
    softmax_loss_vectorized_unchecked,
    svm_loss_vectorized,
    svm_loss_vectorized_unchecked,
)

KERNELS: dict[str, Callable] = {
    "naive": softmax_loss_naive,
    "vectorized": softmax_loss_vectorized,
    "numba_naive": softmax_loss_numba_naive,
    "numba_fused": softmax_loss_numba_fused,
}
UNCHECKED: dict[str, Callable] = {
    "naive": softmax_loss_naive_unchecked,
    "vectorized": softmax_loss_vectorized_unchecked,
    "numba_naive": softmax_loss_numba_naive_unchecked,
    "numba_fused": softmax_loss_numba_fused_unchecked,
}
SVM_KERNELS: dict[str, Callable] = {
    "naive": svm_loss_naive,
    "vectorized": svm_loss_vectorized,
    "numba_naive": svm_loss_numba_naive,
    "numba_fused": svm_loss_numba_fused,
}
SVM_UNCHECKED: dict[str, Callable] = {
    "naive": svm_loss_naive_unchecked,
    "vectorized": svm_loss_vectorized_unchecked,
    "numba_naive": svm_loss_numba_naive_unchecked,
    "numba_fused": svm_loss_numba_fused_unchecked,
}
# loss -> (checked kernels, unchecked twins), each by implementation name
LOSSES: dict[str, tuple[dict[str, Callable], dict[str, Callable]]] = {
    "softmax": (KERNELS, UNCHECKED),
    "svm": (SVM_KERNELS, SVM_UNCHECKED),
}


def get_kernel(name: str, checked: bool = True, *, loss: str = "softmax") -> Callable:
    """Return the kernel of ``loss`` (a key of :data:`LOSSES`) registered under ``name``; ValueError
    listing the valid names otherwise.

    ``checked=False`` gives its unchecked twin: y and idx must be intp arrays, labels and indices in
    range, W finite, reg a float >= 0 (what :func:`check_inputs` returns); a non-finite result is
    returned as is instead of being traced to X (:func:`check_finite_result` does that).
    """
    try:
        kernels = LOSSES[loss]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {loss!r}; choose one of: {', '.join(LOSSES)}") from None
    try:
        return kernels[0 if checked else 1][name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown kernel {name!r}; choose one of: {', '.join(KERNELS)}"
        ) from None


def set_num_threads(n: int | None) -> int:
    """Set the Numba thread count (None: leave it as NUMBA_NUM_THREADS made it); return the count in force."""
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
            raise ValueError(
                f"num_threads must be an integer in [1, {numba.config.NUMBA_NUM_THREADS}] "
                f"(NUMBA_NUM_THREADS caps it); got {n!r}"
            )
        numba.set_num_threads(n)
    return numba.get_num_threads()


@contextmanager
def num_threads(n: int | None) -> Iterator[int]:
    """Run the block with ``n`` Numba threads, restoring the previous count after."""
    before = numba.get_num_threads()
    try:
        yield set_num_threads(n)
    finally:
        numba.set_num_threads(before)


__all__ = [
    "KERNELS",
    "LOSSES",
    "SVM_KERNELS",
    "SVM_UNCHECKED",
    "UNCHECKED",
    "check_finite_result",
    "check_inputs",
    "check_predict_inputs",
    "count_correct",
    "count_correct_unchecked",
    "get_kernel",
    "num_threads",
    "predict_labels",
    "predict_labels_unchecked",
    "set_num_threads",
    "softmax_loss_naive",
    "softmax_loss_numba_fused",
    "softmax_loss_numba_naive",
    "softmax_loss_vectorized",
    "svm_loss_naive",
    "svm_loss_numba_fused",
    "svm_loss_numba_naive",
    "svm_loss_vectorized",
]
