"""Tick values and labels for the pictures' axes: pure helpers, tested on their own."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def nice_ticks(lo: float, hi: float, max_intervals: int = 5, min_step: float = 0.0) -> np.ndarray:
    """Round tick values covering [lo, hi]: the multiples of a step 1, 2 or 5 x 10^k (>= ``min_step``; 1 for
    iteration numbers), the smallest such step that needs at most ``max_intervals`` intervals, from the last
    multiple <= lo to the first >= hi.

    ``nice_ticks(0, 8.3)`` is [0, 2, 4, 6, 8, 10]; ``nice_ticks(0, 699, 8)`` is [0, 100, ..., 700].
    Returns (k,) float64, k >= 2, rounded so that 0.1 * 3 prints as 0.3.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"nice_ticks needs finite bounds, got lo={lo}, hi={hi}")
    if max_intervals < 1:
        raise ValueError(f"max_intervals must be >= 1, got {max_intervals}")
    lo, hi = min(lo, hi), max(lo, hi)
    if hi == lo:  # one value: an interval around it
        lo, hi = (0.0, 1.0) if lo == 0 else (lo - abs(lo) / 2, hi + abs(hi) / 2)
    exponent = math.floor(math.log10((hi - lo) / max_intervals))
    while True:
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**exponent
            if step < min_step:
                continue
            # the tolerance keeps 0.3 / 0.1 = 2.9999999999999996 from counting as an extra interval
            k0, k1 = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
            if k1 - k0 <= max_intervals:
                ticks = np.arange(k0, k1 + 1, dtype=np.float64) * step
                return np.round(ticks, max(0, -exponent)) + 0.0  # + 0.0: no "-0"
        exponent += 1


def log_ticks(lo: float, hi: float, max_ticks: int = 8) -> np.ndarray:
    """Round tick values for a log axis covering [lo, hi] (0 < lo <= hi): powers of ten, every decade or
    every k-th so at most ``max_ticks``; over at most 3 decades also 2 and 5 times a power of ten.
    From the last tick <= lo to the first >= hi. Returns (k,) float64, k >= 2."""
    if not (0 < lo <= hi < math.inf):
        raise ValueError(f"log_ticks needs 0 < lo <= hi < inf, got lo={lo}, hi={hi}")
    d0, d1 = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    d1 = max(d1, d0 + 1)
    if d1 - d0 <= 3:
        # float("5e-07") is the double nearest 5e-07; 5 * 10.0**-7 is not always
        ticks = [float(f"{m}e{d}") for d in range(d0, d1) for m in (1, 2, 5)] + [float(f"1e{d1}")]
        ticks = np.array(ticks)
        first = np.nonzero(ticks <= lo * (1 + 1e-9))[0][-1]
        last = np.nonzero(ticks >= hi * (1 - 1e-9))[0][0]
        return ticks[first:last + 1]
    every = math.ceil((d1 - d0) / max(1, max_ticks - 1))
    d0, d1 = every * math.floor(d0 / every), every * math.ceil(d1 / every)
    return np.array([float(f"1e{d}") for d in range(d0, d1 + 1, every)])



def format_values(values: Sequence[float]) -> list[str]:
    """Tick labels for hyperparameter values: 3 significant digits (``1e-07``, ``5e-07``, ``2.5e+04``,
    ``0.001``), more where two distinct values would otherwise print alike."""
    values = [float(v) for v in values]
    for digits in range(3, 18):
        labels = [f"{v:.{digits}g}" for v in values]
        if len(set(labels)) == len(set(values)):
            return labels
    return labels


def tick_label(v: float) -> str:
    """An axis tick: plain for 0.001 .. 999999, else ``1e+20`` style."""
    if v == 0 or 1e-3 <= abs(v) < 1e6:
        return f"{v:.6g}"
    return f"{v:.3g}"

