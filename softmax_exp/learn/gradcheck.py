"""Numerical gradient checks for the loss kernels (the softmax's and the SVM's).

``python -m softmax_exp.learn.gradcheck`` (``make gradcheck``) prints one row per loss and kernel and exits
non-zero when any kernel's analytic gradient disagrees with the centred-difference gradient by more than the
tolerance (float64).

The SVM's loss has kinks: a margin ``s_j - s_y + 1`` at 0, where its gradient jumps. A centred difference
whose step crosses one measures neither side's gradient, so a perfect analytic gradient can disagree there
(the course's inline question). The check finds the margins within the stencil's reach of 0, counts them,
and leaves the coordinates whose differences cross one out of the error; every other coordinate (nearly
all of them) is held to the tolerance, so a wrong gradient is still seen.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

import numpy as np

from softmax_exp.kernels import KERNELS, LOSSES, get_kernel
from softmax_exp.util.cli import OneLineParser

TOLERANCE = 1e-7


def rel_error(x, y) -> float:
    """Largest relative error max(|x - y| / max(1e-8, |x| + |y|)) between two arrays (or scalars)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def _centred_difference(f: Callable[[np.ndarray], float], x: np.ndarray, ix, h: float, order: int) -> float:
    """d f / d x[ix] by centred differences of the given order (2: two points, 4: four points)."""
    old = x[ix]

    def at(step: float) -> float:
        x[ix] = old + step
        return f(x)

    try:
        if order == 2:
            return (at(h) - at(-h)) / (2 * h)
        if order == 4:
            return (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h)
        raise ValueError(f"order must be 2 or 4; got {order!r}")
    finally:
        x[ix] = old


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5, order: int = 2
) -> np.ndarray:
    """Centred-difference gradient of the scalar function f at x, one coordinate at a time.

    Parameters
    ----------
    f : callable taking an array shaped like x and returning a float
    x : ndarray, float64 -- perturbed in place, each coordinate restored afterwards
    h : step
    order : 2 (f(x+h) - f(x-h)) / 2h, error O(h^2); or 4, the four-point stencil, error O(h^4), which
        allows a larger h and so less round-off: what a 1e-7 tolerance in float64 needs

    Returns
    -------
    grad : ndarray shaped like x, float64
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        grad[ix] = _centred_difference(f, x, ix, h, order)
    return grad


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    seed: int | np.random.Generator | None = 0,
    order: int = 2,
) -> np.ndarray:
    """Compare ``analytic_grad`` with centred differences at ``num_checks`` random coordinates of x.

    Parameters
    ----------
    f : callable taking an array shaped like x and returning a float
    x : ndarray, float64 -- perturbed in place and restored
    analytic_grad : ndarray shaped like x
    num_checks : coordinates to check, drawn with a numpy Generator seeded by ``seed``
    h : step
    seed : seed (or Generator) of the coordinates drawn
    order : order of the centred difference, 2 or 4 (see :func:`eval_numerical_gradient`)

    Returns
    -------
    rel_errors : ndarray (num_checks,), float64 -- relative error at each checked coordinate
    """
    rng = np.random.default_rng(seed)
    errors = np.empty(num_checks, dtype=np.float64)
    for k in range(num_checks):
        ix = tuple(int(rng.integers(n)) for n in x.shape)
        errors[k] = rel_error(_centred_difference(f, x, ix, h, order), analytic_grad[ix])
    return errors


def kink_coordinates(W: np.ndarray, X: np.ndarray, y: np.ndarray, reach: float) -> tuple[int, np.ndarray]:
    """Where the SVM's centred differences may cross a kink: moving W[d, k] by up to ``reach`` moves the
    margin m_ij = s_ij - s_iy_i + 1 by up to reach * |X[i, d]| when k is j or y_i.

    Returns the number of margins (j != y_i) within reach * max_d |X[i, d]| of 0, and a bool mask shaped
    like W of the coordinates whose differences can cross one of them.
    """
    scores = X @ W
    rows = np.arange(X.shape[0])
    margins = scores - scores[rows, y][:, None] + 1.0
    margins[rows, y] = np.inf  # not a margin
    mask = np.zeros(W.shape, dtype=bool)
    near = np.abs(margins) < reach * np.abs(X).max(axis=1, keepdims=True)
    for i, j in zip(*np.nonzero(near), strict=True):
        crosses = np.abs(margins[i, j]) < reach * np.abs(X[i])
        mask[crosses, j] = True
        mask[crosses, y[i]] = True
    return int(near.sum()), mask


def expected_sanity_loss(loss: str, num_classes: int) -> float:
    """The loss of a W near 0: log(C) for the softmax (uniform probabilities), C - 1 for the SVM (every
    margin 1)."""
    return math.log(num_classes) if loss == "softmax" else float(num_classes - 1)


def check_kernel(name: str, loss: str = "softmax", num_train: int = 60, dim: int = 40, num_classes: int = 10,
                 seed: int = 0) -> dict:
    """Check one kernel on a small random float64 problem against the numerical gradient and the naive kernel.

    Returns a dict with ``sanity_loss`` (loss for W ~ 1e-4) and ``expected`` (what it should be close to:
    log(C) for the softmax, C - 1 for the SVM), ``grad_err_reg0`` / ``grad_err_reg`` (max relative error
    vs the full numerical gradient, reg = 0 and reg = 0.5, over the coordinates whose differences cross no
    kink), ``kinks`` and ``skipped`` (the SVM's margins within the stencil's reach of 0 and the coordinates
    left out for them; 0 for the softmax), ``loss_diff`` and ``grad_diff`` (relative differences vs the
    naive kernel).
    """
    kernel = get_kernel(name, loss=loss)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_train, dim))
    y = rng.integers(0, num_classes, num_train)
    W_small = rng.standard_normal((dim, num_classes)) * 1e-4
    sanity_loss, _ = kernel(W_small, X, y, 0.0)
    W = rng.standard_normal((dim, num_classes)) * 0.1
    h = 1e-3
    kinks, skip = kink_coordinates(W, X, y, 2 * h) if loss == "svm" else (0, np.zeros(W.shape, dtype=bool))
    row = {"loss": loss, "kernel": name, "sanity_loss": sanity_loss,
           "expected": expected_sanity_loss(loss, num_classes), "kinks": kinks, "skipped": int(skip.sum())}
    for key, reg in (("grad_err_reg0", 0.0), ("grad_err_reg", 0.5)):
        _, dW = kernel(W, X, y, reg)
        numeric = eval_numerical_gradient(
            lambda w, reg=reg: kernel(w, X, y, reg)[0], W.copy(), h=h, order=4
        )
        row[key] = rel_error(dW[~skip], numeric[~skip])
    loss_value, dW = kernel(W, X, y, 0.5)
    ref_loss, ref_dW = get_kernel("naive", loss=loss)(W, X, y, 0.5)
    row["loss_diff"] = rel_error(loss_value, ref_loss)
    row["grad_diff"] = rel_error(dW, ref_dW)
    return row


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, e.g. 1e-7; got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m softmax_exp.learn.gradcheck",
        description="Check every kernel's analytic gradient against centred differences (float64).",
    )
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the random problem (>= 0)")
    parser.add_argument("--tolerance", type=_positive_float, default=TOLERANCE,
                        help=f"largest relative gradient error allowed (> 0; default {TOLERANCE:g})")
    args = parser.parse_args(argv)

    header = (
        f"{'loss':<8} {'kernel':<12} {'sanity loss':>11} {'expected':>9} {'grad err reg=0':>15} "
        f"{'grad err reg>0':>15} {'kinks':>5} {'skipped':>7} {'loss vs naive':>14} {'grad vs naive':>14}"
        "  status"
    )
    print(header)
    print("-" * len(header))
    failed = []
    for loss in args.losses:
        for name in args.kernels:
            r = check_kernel(name, loss, seed=args.seed)
            worst = max(r["grad_err_reg0"], r["grad_err_reg"])
            ok = worst <= args.tolerance and abs(r["sanity_loss"] - r["expected"]) < 0.05
            if not ok:
                failed.append(f"{loss} {name}")
            print(
                f"{loss:<8} {name:<12} {r['sanity_loss']:>11.6f} {r['expected']:>9.6f} "
                f"{r['grad_err_reg0']:>15.2e} {r['grad_err_reg']:>15.2e} {r['kinks']:>5} {r['skipped']:>7} "
                f"{r['loss_diff']:>14.2e} {r['grad_diff']:>14.2e}  {'ok' if ok else 'FAIL'}"
            )
    if failed:
        print(
            f"gradient check failed for {', '.join(failed)} (tolerance {args.tolerance:g})",
            file=sys.stderr,
        )
        return 1
    checked = len(args.kernels) * len(args.losses)
    print(f"all {checked} kernels pass (relative error <= {args.tolerance:g}, float64); kinks: the SVM's "
          f"margins within the step of 0, skipped: the coordinates whose differences cross one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
