"""How the benchmark times a case and prints a row: medians over repeats, ratios to a reference measured in
the same process, on the same array."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Row:
    label: str
    shape: str
    dtype: str
    ms: float
    bytes_read: float  # bytes of X read by one call
    ref_ms: float  # the row's reference time (read floor, or numpy reference)
    ref_name: str
    note: str = ""

    def format(self) -> str:
        gbs = f"{self.bytes_read / (self.ms * 1e-3) / 1e9:.2f}" if self.ms > 0 and self.bytes_read else "-"
        return (
            f"{self.label:<32} {self.shape:>20} {self.dtype:>8} {self.ms:>10.2f} {gbs:>8} "
            f"{self.ms / self.ref_ms:>8.2f}x {self.ref_name:<14} {self.note}"
        )


HEADER = (
    f"{'case':<32} {'N x D x C':>20} {'dtype':>8} {'median ms':>10} {'GB/s X':>8} "
    f"{'ratio':>9} {'to':<14} note"
)


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of fn() in milliseconds over ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def medians_in_rounds(fns: list[Callable[[], object]], repeats: int, rounds: int = 5) -> list[float]:
    """Median wall time in ms of each fn over ``repeats`` calls, taken in ``rounds`` rounds: each round times
    every fn in turn (one untimed call first), and a fn's time is the median of its round medians.

    A burst of load from another process on this shared machine then slows one round of every case, not all
    the repeats of one case. For calls of tens of ms only: BLAS's and Numba's (OpenMP) thread pools each
    spin for milliseconds after a call, so switching between them often (rounds of 1 ms SGD steps) makes
    both fight for the cores; the untimed first call of a round absorbs one switch.
    """
    per_round = max(1, repeats // rounds)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, t in zip(fns, times, strict=True):
            t.append(median_ms(fn, per_round))
    return [statistics.median(t) for t in times]


def make_problem(n: int, d: int, c: int, dtype, seed: int = 0):
    """A random problem shaped like preprocessed CIFAR-10: X (n, d) centred, bias column; W 0.001*randn."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32).astype(dtype, copy=False) * dtype(60.0)
    X[:, -1] = 1
    W = (rng.standard_normal((d, c)) * 1e-3).astype(dtype)
    y = rng.integers(0, c, n)
    return W, X, y


