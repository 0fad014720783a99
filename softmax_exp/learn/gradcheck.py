"""Numerical gradient checks for the softmax kernels.

``python -m softmax_exp.learn.gradcheck`` (``make gradcheck``) prints one row per kernel and exits non-zero
when any kernel's analytic gradient disagrees with the centred-difference gradient by more than the
tolerance (float64).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

import numpy as np

from softmax_exp.kernels import KERNELS, get_kernel
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


def check_kernel(name: str, num_train: int = 60, dim: int = 40, num_classes: int = 10, seed: int = 0) -> dict:
    """Check one kernel on a small random float64 problem against the numerical gradient and the naive kernel.

    Returns a dict with ``sanity_loss`` (loss for W ~ 1e-4, should be close to log(C)), ``log_c``,
    ``grad_err_reg0`` / ``grad_err_reg`` (max relative error vs the full numerical gradient, reg = 0 and
    reg = 0.5), ``loss_diff`` and ``grad_diff`` (relative differences vs the naive kernel).
    """
    kernel = get_kernel(name)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_train, dim))
    y = rng.integers(0, num_classes, num_train)
    W_small = rng.standard_normal((dim, num_classes)) * 1e-4
    sanity_loss, _ = kernel(W_small, X, y, 0.0)
    W = rng.standard_normal((dim, num_classes)) * 0.1
    row = {"kernel": name, "sanity_loss": sanity_loss, "log_c": math.log(num_classes)}
    for key, reg in (("grad_err_reg0", 0.0), ("grad_err_reg", 0.5)):
        _, dW = kernel(W, X, y, reg)
        numeric = eval_numerical_gradient(
            lambda w, reg=reg: kernel(w, X, y, reg)[0], W.copy(), h=1e-3, order=4
        )
        row[key] = rel_error(dW, numeric)
    loss, dW = kernel(W, X, y, 0.5)
    ref_loss, ref_dW = get_kernel("naive")(W, X, y, 0.5)
    row["loss_diff"] = rel_error(loss, ref_loss)
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
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the random problem (>= 0)")
    parser.add_argument("--tolerance", type=_positive_float, default=TOLERANCE,
                        help=f"largest relative gradient error allowed (> 0; default {TOLERANCE:g})")
    args = parser.parse_args(argv)

    header = (
        f"{'kernel':<12} {'sanity loss':>11} {'log(C)':>8} {'grad err reg=0':>15} "
        f"{'grad err reg>0':>15} {'loss vs naive':>14} {'grad vs naive':>14}  status"
    )
    print(header)
    print("-" * len(header))
    failed = []
    for name in args.kernels:
        r = check_kernel(name, seed=args.seed)
        worst = max(r["grad_err_reg0"], r["grad_err_reg"])
        ok = worst <= args.tolerance and abs(r["sanity_loss"] - r["log_c"]) < 0.05
        if not ok:
            failed.append(name)
        print(
            f"{name:<12} {r['sanity_loss']:>11.6f} {r['log_c']:>8.6f} {r['grad_err_reg0']:>15.2e} "
            f"{r['grad_err_reg']:>15.2e} {r['loss_diff']:>14.2e} {r['grad_diff']:>14.2e}  "
            f"{'ok' if ok else 'FAIL'}"
        )
    if failed:
        print(
            f"gradient check failed for {', '.join(failed)} (tolerance {args.tolerance:g})",
            file=sys.stderr,
        )
        return 1
    print(f"all {len(args.kernels)} kernels pass (relative error <= {args.tolerance:g}, float64)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
