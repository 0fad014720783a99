"""The softmax loss kernels, all with the signature ``f(W, X, y, reg, idx=None) -> (loss, dW)``.

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

from .naive import softmax_loss_naive
from .numba_kernels import softmax_loss_numba_fused, softmax_loss_numba_naive
from .vectorized import softmax_loss_vectorized

KERNELS: dict[str, Callable] = {
    "naive": softmax_loss_naive,
    "vectorized": softmax_loss_vectorized,
    "numba_naive": softmax_loss_numba_naive,
    "numba_fused": softmax_loss_numba_fused,
}


def get_kernel(name: str) -> Callable:
    """Return the kernel registered under ``name``; ValueError listing the valid names otherwise."""
    try:
        return KERNELS[name]
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
    "get_kernel",
    "num_threads",
    "set_num_threads",
    "softmax_loss_naive",
    "softmax_loss_numba_fused",
    "softmax_loss_numba_naive",
    "softmax_loss_vectorized",
]
