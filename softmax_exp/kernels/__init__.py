"""The softmax loss kernels, all with the signature ``f(W, X, y, reg, idx=None) -> (loss, dW)``.

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numba

from ._validation import check_finite_result, check_inputs, check_predict_inputs
from .naive import softmax_loss_naive, softmax_loss_naive_unchecked
from .numba_kernels import (
    softmax_loss_numba_fused,
    softmax_loss_numba_fused_unchecked,
    softmax_loss_numba_naive,
    softmax_loss_numba_naive_unchecked,
)
from .predict import count_correct, count_correct_unchecked, predict_labels, predict_labels_unchecked
from .vectorized import softmax_loss_vectorized, softmax_loss_vectorized_unchecked

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


def get_kernel(name: str, checked: bool = True) -> Callable:
    """Return the kernel registered under ``name``; ValueError listing the valid names otherwise.

    ``checked=False`` gives its unchecked twin: y and idx must be intp arrays, labels and indices in
    range, W finite, reg a float >= 0 (what :func:`check_inputs` returns); a non-finite result is
    returned as is instead of being traced to X (:func:`check_finite_result` does that).
    """
    try:
        return (KERNELS if checked else UNCHECKED)[name]
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
]
