"""Benchmark of the softmax kernels: ``python -m softmax_exp.bench``.

Every time is the median over repeats, and every row is also given as a ratio to a reference measured in the
same process, on the same array: for a full pass, the *read floor* is one numpy pass over X
(``X.sum(axis=0)``), the least any loss-and-gradient must do. Ratios, not milliseconds, are what carry from
one run to another on a shared, noisy machine.

Sections (``--sections``):
  kernels    loss + gradient over all of X, per kernel and dtype, vs the read floor
  minibatch  loss + gradient of a minibatch of rows: ``X[idx]`` copy + kernel, vs the fused kernel with idx
  step       one SGD step (sample idx, loss + gradient, update W) of the numpy reference vs the fused kernel
  predict    labels argmax(X @ W) and the count of correct ones over all of X: numpy vs the Numba kernel, vs
             the read floor
  tracking   9 trainings of 1500 iterations with full MLflow tracking vs tracking.enabled=false, on a
             CIFAR-10-shaped training set (random images in the official format) and on digits
  train      ``python -m softmax_exp.train`` on digits, wall time with a warm Numba cache
  sweep      the course's 3 x 3 grid end to end, tracked and untracked, with where its time goes (imports,
             config composition, the MLflow store, data, SGD, evaluation, tracking, pictures, the model);
             CIFAR-10-shaped random images or ``--data DIR``; the same grid on digits
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numba
import numpy as np

from softmax_exp import timing, tracking
from softmax_exp.config import compose, to_config
from softmax_exp.data import load_dataset
from softmax_exp.fit import fit
from softmax_exp.hyperparameters import IDX_BLOCK
from softmax_exp.job_types import JobContext
from softmax_exp.kernels import (
    KERNELS,
    check_inputs,
    count_correct,
    get_kernel,
    predict_labels,
    set_num_threads,
)
from softmax_exp.model import Preprocessing, Softmax
from softmax_exp.optim import SGD
from softmax_exp.tracking.logged_model import log_model

SECTIONS = ("kernels", "minibatch", "step", "predict", "tracking", "train", "sweep")


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


def _sklearn_loss_gradient(c: int):
    """scikit-learn's multinomial loss + gradient (what LogisticRegression's lbfgs calls), or None."""
    try:
        from sklearn._loss.loss import HalfMultinomialLoss
        from sklearn.linear_model._linear_loss import LinearModelLoss
    except ImportError:  # private API: absent or moved in this scikit-learn
        return None
    lml = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=c), fit_intercept=False)

    def loss_grad(W, X, y, reg):
        return lml.loss_gradient(np.ascontiguousarray(W.T), X, y, l2_reg_strength=reg)

    return loss_grad


def _torch_loss_gradient():
    """PyTorch CPU autograd of the same loss (cross_entropy + 0.5 * reg * sum(W^2)), or None if absent."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None

    def loss_grad(W, X, y, reg):
        Xt = torch.from_numpy(X)  # shares memory: no copy of X
        Wt = torch.from_numpy(W).clone().requires_grad_(True)
        loss = F.cross_entropy(Xt @ Wt, torch.from_numpy(y)) + 0.5 * reg * (Wt * Wt).sum()
        loss.backward()
        return float(loss.detach()), Wt.grad.numpy()

    return loss_grad


def bench_kernels(args) -> list[Row]:
    rows = []
    n, d, c = args.shape
    for dtype in args.dtypes:
        dt = np.dtype(dtype).type
        W, X, y = make_problem(n, d, c, dt)
        shape = f"{n}x{d}x{c}"
        floor = median_ms(partial(X.sum, axis=0), args.repeats)
        rows.append(Row("read floor X.sum(axis=0)", shape, dtype, floor, X.nbytes, floor, "read floor"))
        vec_ms = None
        for name in args.kernels:
            kernel = get_kernel(name)
            if name == "naive":  # Python loops: time a slice of the rows, scale to all of them
                m = min(n, args.naive_rows)
                Xs, ys = X[:m], y[:m]
                ms = median_ms(partial(kernel, W, Xs, ys, 0.1), max(1, args.repeats // 3)) * n / m
                note = f"timed on {m} rows, scaled x{n / m:.1f}"
            else:
                reps = max(1, args.repeats // 3) if name == "numba_naive" else args.repeats
                ms = median_ms(partial(kernel, W, X, y, 0.1), reps)
                note = ""
            if name == "vectorized":
                vec_ms = ms
            if name == "numba_fused" and vec_ms is not None:
                note = f"{vec_ms / ms:.2f}x faster than vectorized"
            rows.append(Row(name, shape, dtype, ms, X.nbytes, floor, "read floor", note))
        if args.sklearn and (sk := _sklearn_loss_gradient(c)) is not None:
            yf = y.astype(dt)
            ms = median_ms(partial(sk, W, X, yf, 0.1), args.repeats)
            rows.append(Row("sklearn loss_gradient", shape, dtype, ms, X.nbytes, floor, "read floor"))
        if args.torch and (tl := _torch_loss_gradient()) is not None:
            ms = median_ms(partial(tl, W, X, y, 0.1), args.repeats)
            rows.append(Row("torch autograd (CPU)", shape, dtype, ms, X.nbytes, floor, "read floor"))
        del W, X, y
    return rows


def bench_minibatch(args) -> list[Row]:
    rows = []
    n, d, c = args.shape
    b = args.batch_size
    dtype = args.dtypes[0]
    W, X, y = make_problem(n, d, c, np.dtype(dtype).type)
    idx = np.random.default_rng(1).integers(0, n, b)
    shape = f"{b} of {n}x{d}x{c}"
    vectorized, fused = get_kernel("vectorized"), get_kernel("numba_fused")
    ref = median_ms(lambda: vectorized(W, X[idx], y[idx], 0.1), args.repeats * 20)
    nbytes = b * d * X.itemsize
    rows.append(Row("X[idx] + vectorized", shape, dtype, ref, nbytes, ref, "numpy ref"))
    ms = median_ms(lambda: vectorized(W, X, y, 0.1, idx), args.repeats * 20)
    rows.append(Row("vectorized(idx=)", shape, dtype, ms, nbytes, ref, "numpy ref", "copies X[idx] inside"))
    ms = median_ms(lambda: fused(W, X, y, 0.1, idx), args.repeats * 20)
    rows.append(Row("numba_fused(idx=)", shape, dtype, ms, nbytes, ref, "numpy ref", "no copy"))
    return rows


def bench_step(args) -> list[Row]:
    """One SGD step: sample a minibatch with replacement, loss + gradient, update W.

    The numpy reference draws idx, copies ``X[idx]``, runs the vectorized kernel and does ``W -= lr * dW``.
    The fused row does what ``Softmax.train`` does per step: idx is a row of a block of ``IDX_BLOCK`` draws
    (intp), the unchecked fused kernel (the loop checked its inputs once), and the in-place SGD update of
    :mod:`softmax_exp.optim` (``dW *= lr; W -= dW``).
    """
    n, d, c = args.shape
    b = args.batch_size
    dtype = args.dtypes[0]
    W, X, y = make_problem(n, d, c, np.dtype(dtype).type)
    vectorized = get_kernel("vectorized")
    lr = 1e-7
    rng = np.random.default_rng(2)
    W_ref = W.copy()

    def numpy_step():
        idx = rng.integers(0, n, b)
        _, dW = vectorized(W_ref, X[idx], y[idx], 0.1)
        W_ref[...] -= lr * dW

    W_fused, X, y_fused, reg, _ = check_inputs(W.copy(), X, y, 0.1)  # once, as train does
    fused = get_kernel("numba_fused", checked=False)
    sgd = SGD()
    loop = {"it": 0, "block": None}

    def fused_step():
        it = loop["it"]
        if it % IDX_BLOCK == 0:
            loop["block"] = rng.integers(0, n, size=(IDX_BLOCK, b), dtype=np.intp)
        loop["it"] = it + 1
        _, dW = fused(W_fused, X, y_fused, reg, loop["block"][it % IDX_BLOCK])
        sgd.step(W_fused, dW, lr)

    shape = f"{b} of {n}x{d}x{c}"
    ref = median_ms(numpy_step, args.repeats * 20)
    ms = median_ms(fused_step, args.repeats * 20)
    nbytes = b * d * X.itemsize
    return [
        Row("numpy step (copy+vec)", shape, dtype, ref, nbytes, ref, "numpy step"),
        Row("fused step (idx)", shape, dtype, ms, nbytes, ref, "numpy step",
            f"{ref / ms:.2f}x faster; unchecked kernel, idx block, in-place SGD (as train)"),
    ]


def _numpy_labels(W, X, threadpool_limits=None):
    if threadpool_limits is None:
        return np.argmax(X @ W, axis=1)
    with threadpool_limits(1, user_api="blas"):
        return np.argmax(X @ W, axis=1)


def bench_predict(args) -> list[Row]:
    """Evaluation over all of X: ``np.argmax(X @ W, axis=1)`` (with BLAS's threads, and on one BLAS thread as
    the training loop runs it next to Numba's threads) against the Numba labels and count kernels."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it the 1-BLAS-thread row is left out
        threadpool_limits = None
    rows = []
    n, d, c = args.shape
    for dtype in args.dtypes:
        W, X, y = make_problem(n, d, c, np.dtype(dtype).type)
        shape = f"{n}x{d}x{c}"
        cases = {
            "read floor X.sum(axis=0)": partial(X.sum, axis=0),
            "numpy argmax(X @ W)": partial(_numpy_labels, W, X),
        }
        if threadpool_limits is not None:
            cases["numpy argmax(X @ W), 1 BLAS"] = partial(_numpy_labels, W, X, threadpool_limits)
        cases["predict_labels"] = partial(predict_labels, W, X)
        cases["count_correct"] = partial(count_correct, W, X, y)
        times = dict(zip(cases, medians_in_rounds(list(cases.values()), args.repeats), strict=True))
        floor = times["read floor X.sum(axis=0)"]
        notes = {"numpy argmax(X @ W)": "BLAS threads as set",
                 "numpy argmax(X @ W), 1 BLAS": "one BLAS thread, as beside Numba's threads"}
        for label, ms in times.items():
            rows.append(Row(label, shape, dtype, ms, X.nbytes, floor, "read floor", notes.get(label, "")))
        del W, X, y
    return rows


def _write_cifar_shaped(root, n_train: int = 50000, n_test: int = 10000, seed: int = 0) -> None:
    """Random uint8 images in the official CIFAR-10 python layout (5 training batches, test_batch, meta)."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship",
             b"truck"]

    def dump(obj, name):
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    per = n_train // 5
    for i in range(5):
        dump({b"batch_label": b"training batch", b"labels": rng.integers(0, 10, per).tolist(),
              b"data": rng.integers(0, 256, (per, 3072), dtype=np.uint8), b"filenames": []},
             f"data_batch_{i + 1}")
    dump({b"batch_label": b"testing batch", b"labels": rng.integers(0, 10, n_test).tolist(),
          b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8), b"filenames": []}, "test_batch")
    dump({b"label_names": names, b"num_cases_per_batch": per, b"num_vis": 3072}, "batches.meta")


def _time_trainings(overrides: list[str], runs: int) -> float:
    """Seconds for ``runs`` trainings composed from conf/ with ``overrides``, in this process."""
    cfg = to_config(compose(overrides))
    t0 = time.perf_counter()
    for i in range(runs):
        fit(cfg, JobContext(run_name=f"job={i}"))
    return time.perf_counter() - t0


def _model_logging_ms(overrides: list[str], uri: str, repeats: int = 5) -> float:
    """Median milliseconds of logging a trained model as an MLflow model into a run of the store ``uri``
    (what every tracked training does at its end), after one call that pays the imports."""
    cfg = to_config(compose([*overrides, "tracking.enabled=false", "num_iters=10"]))
    model = fit(cfg).model
    images = load_dataset(cfg.dataset).raw_images("val", 3)
    run = tracking.Run.start(uri, "model-logging", "r")
    ms = median_ms(lambda: log_model(uri, run.run_id, model, images), repeats)
    run.end()
    return ms


def bench_tracking(args) -> list[Row]:
    """9 trainings of 1500 iterations, tracked (SQLite store, every metric and artifact) vs untracked.

    One warm-up training first pays numba's compilation and the data's cache. Importing MLflow and
    creating a new SQLite store (MLflow runs its schema migrations) are paid once per process and once per
    store: they get a row of their own and are included in the second ratio of the tracked row's note.
    """
    rows = []
    with tempfile.TemporaryDirectory(prefix="softmax_exp_bench_") as tmp:
        cases = [("digits", ["dataset=digits"])]
        if not args.tracking_digits_only:
            _write_cifar_shaped(tmp + "/cifar")
            cases.insert(0, ("cifar10-shaped", ["dataset=cifar10", f"dataset.root={tmp}/cifar",
                                                f"dataset.cache_dir={tmp}/cache", "dataset.md5=null"]))
        for name, data in cases:
            common = [*data, f"num_iters={args.tracking_iters}", "eval_every=500", "progress=false",
                      "lr=1e-7" if name != "digits" else "lr=3e-3",
                      "reg=2.5e4" if name != "digits" else "reg=1e-2"]
            uri = f"sqlite:///{tmp}/{name}.db"
            off = [*common, "tracking.enabled=false"]
            on = [*common, "tracking.enabled=true", f"tracking.uri={uri}"]
            _time_trainings(off, 1)  # warm-up: numba, data cache
            untracked = _time_trainings(off, args.tracking_runs) * 1e3
            t0 = time.perf_counter()
            tracking.get_or_create_experiment(tracking.get_client(uri), name)
            setup = (time.perf_counter() - t0) * 1e3
            tracked = _time_trainings(on, args.tracking_runs) * 1e3
            shape = f"{args.tracking_runs} x {args.tracking_iters} it"
            rows.append(Row(f"untracked ({name})", shape, "float32", untracked, 0, untracked, "untracked"))
            rows.append(Row(f"MLflow tracked ({name})", shape, "float32", tracked, 0, untracked, "untracked",
                            f"{(tracked + setup) / untracked:.2f}x with the store's set-up"))
            rows.append(Row("  import mlflow + new store", "once", "", setup, 0, untracked, "untracked"))
            per_run = tracked / args.tracking_runs
            model_ms = _model_logging_ms(common, uri)
            rows.append(Row("  of which: the MLflow model", "per run", "", model_ms, 0, per_run,
                            "a tracked run", "pyfunc model + model.npz + bundled code, into the same store"))
    return rows


def bench_train_cli(args) -> list[Row]:
    """``python -m softmax_exp.train`` on digits as ``make train`` runs it, the second of two runs."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="softmax_exp_bench_") as tmp:
        for label, extra in (("untracked", ["tracking.enabled=false"]),
                             ("tracked", [f"tracking.uri=sqlite:///{tmp}/m.db"])):
            cmd = [sys.executable, "-m", "softmax_exp.train", f"hydra.run.dir={tmp}/out", *extra]
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                times.append((time.perf_counter() - t0) * 1e3)
            rows.append(Row(f"make train ({label})", "digits", "float32", times[-1], 0, times[-1], "itself",
                            f"first run {times[0] / 1e3:.1f} s"))
    return rows


# the sweep section's breakdown, in the order a sweep spends it (softmax_exp.timing's sections)
BREAKDOWN = ("imports", "composition", "store", "data", "sgd", "evaluation", "tracking", "pictures", "model")


def _run_sweep(overrides: list[str], cwd: str) -> tuple[float, dict[str, float]]:
    """Wall milliseconds of ``python -m softmax_exp.train`` with ``overrides`` (a sweep, basic launcher:
    one process), and its time breakdown in milliseconds (softmax_exp.timing; "other" is the rest)."""
    timings = f"{cwd}/timings.json"
    env = {**os.environ, "CI": "true", timing.ENV: timings}
    t0 = time.time()
    env[timing.LAUNCHED_ENV] = repr(t0)
    proc = subprocess.run([sys.executable, "-m", "softmax_exp.train", *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True)
    wall = (time.time() - t0) * 1e3
    if proc.returncode != 0:
        raise RuntimeError(f"the sweep failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    with open(timings) as f:
        parts = {k: v * 1e3 for k, v in json.load(f).items()}
    parts["other"] = wall - sum(parts.values())
    return wall, parts


def _sweep_rows(label: str, shape: str, wall: float, parts: dict[str, float], ref: float,
                ref_name: str, note: str = "") -> list[Row]:
    rows = [Row(label, shape, "float32", wall, 0, ref, ref_name, note)]
    for key in (*BREAKDOWN, "other"):
        if parts.get(key, 0) > 0.5:
            rows.append(Row(f"  {key}", "", "", parts[key], 0, wall, "its sweep"))
    return rows


def _sgd_only_ms(overrides: list[str], runs: int) -> float:
    """Milliseconds of the sweep's trainings alone, in this process: Softmax.train with the config's
    hyperparameters on its data, no tracking, no intermediate evaluation (one untimed run first)."""
    cfg = to_config(compose([*overrides, "tracking.enabled=false"]))
    data = load_dataset(cfg.dataset)

    def train() -> None:
        params = dataclasses.replace(cfg.train_params(), eval_every=0, eval_train_rows=None)
        Softmax(cfg.kernel, Preprocessing.of(data)).train(
            data.X_train, data.y_train, params, optimizer=cfg.optimizer.build(),
            schedule=cfg.build_schedule())

    train()
    t0 = time.perf_counter()
    for _ in range(runs):
        train()
    return (time.perf_counter() - t0) * 1e3


def bench_sweep(args) -> list[Row]:
    """The course's grid end to end (``+experiment=cs231n_grid``: 3 x 3 jobs of 700 iterations, batch 200),
    as a user runs it, on CIFAR-10-shaped random images (or ``--data DIR``, a real copy): into a new
    MLflow store (cold: numba and the data cache are warm, the store is not), then into that existing store
    (``resume=false``, so every job trains again), then untracked; each with its time breakdown. Then the
    same grid on digits with 1500 iterations, tracked and untracked, and the grid's trainings alone."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="softmax_exp_bench_") as tmp:
        if args.data:
            data = [f"dataset.root={os.path.abspath(args.data)}"]
            what = "CIFAR-10"
        else:
            _write_cifar_shaped(tmp + "/cifar")
            data = [f"dataset.root={tmp}/cifar", "dataset.md5=null"]
            what = "CIFAR-10-shaped"
        grid = ["+experiment=cs231n_grid", *data, f"dataset.cache_dir={tmp}/cache", "progress=false"]
        store = f"tracking.uri=sqlite:///{tmp}/mlflow.db"
        _run_sweep([*grid, "tracking.enabled=false", f"hydra.sweep.dir={tmp}/warm"], tmp)  # numba, cache
        new_wall, new_parts = _run_sweep([*grid, store, f"hydra.sweep.dir={tmp}/new"], tmp)
        tracked, tracked_parts = _run_sweep([*grid, store, "resume=false", f"hydra.sweep.dir={tmp}/t"], tmp)
        untracked, untracked_parts = _run_sweep([*grid, "tracking.enabled=false", f"hydra.sweep.dir={tmp}/u"],
                                                tmp)
        sgd = _sgd_only_ms([*grid], 9)
        shape = "9 jobs x 700 it"
        rows += _sweep_rows(f"grid, tracked ({what})", shape, tracked, tracked_parts, untracked, "untracked",
                            f"into an existing store; {new_wall / 1e3:.1f} s into a new one")
        rows += _sweep_rows(f"grid, untracked ({what})", shape, untracked, untracked_parts, untracked,
                            "untracked")
        rows.append(Row("grid's 9 trainings alone", shape, "float32", sgd, 0, untracked, "untracked",
                        "Softmax.train in one process: no tracking, no intermediate evaluation"))
        digits = ["+experiment=cs231n_grid", "dataset=digits", "num_iters=1500", "progress=false"]
        _run_sweep([*digits, store, f"hydra.sweep.dir={tmp}/dwarm"], tmp)
        d_tracked, d_parts = _run_sweep([*digits, store, "resume=false", f"hydra.sweep.dir={tmp}/dt"], tmp)
        d_untracked, d_untracked_parts = _run_sweep([*digits, "tracking.enabled=false",
                                                     f"hydra.sweep.dir={tmp}/du"], tmp)
        rows += _sweep_rows("digits grid, tracked", "9 jobs x 1500 it", d_tracked, d_parts, d_untracked,
                            "untracked")
        rows += _sweep_rows("digits grid, untracked", "9 jobs x 1500 it", d_untracked, d_untracked_parts,
                            d_untracked, "untracked")
    return rows


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}, "
        f"numpy {np.__version__}, "
        f"numba {numba.__version__} ({numba.get_num_threads()} threads)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m softmax_exp.bench",
        description="Time the softmax kernels; print ratios to references measured in the same run.",
    )
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    parser.add_argument(
        "--shape", nargs=3, type=int, default=[49000, 3073, 10], metavar=("N", "D", "C"),
        help="rows, features (with the bias column), classes (default: CIFAR-10 as in the course)",
    )
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per case (median taken)")
    parser.add_argument(
        "--threads", type=int, default=None, help="numba threads (default: NUMBA_NUM_THREADS)"
    )
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--naive-rows", type=int, default=1000, help="rows the naive loop kernel is timed on")
    parser.add_argument("--tracking-runs", type=int, default=9, help="trainings per tracking case")
    parser.add_argument("--tracking-iters", type=int, default=1500, help="iterations per training")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="the sweep section on this CIFAR-10 copy (cifar-10-batches-py/ or the archive) "
                             "instead of random images of its shape")
    parser.add_argument("--tracking-digits-only", action="store_true",
                        help="skip the CIFAR-10-shaped tracking case (it writes ~1 GB to a temp folder)")
    parser.add_argument("--no-sklearn", dest="sklearn", action="store_false", help="skip scikit-learn's row")
    parser.add_argument(
        "--no-torch", dest="torch", action="store_false",
        help="skip PyTorch's row (shown only when torch is installed: pip install -e '.[torch]')",
    )
    args = parser.parse_args(argv)
    if min(args.repeats, args.batch_size, args.tracking_runs, args.tracking_iters, *args.shape) < 1:
        parser.error("--repeats, --batch-size, --tracking-runs, --tracking-iters and every --shape value "
                     "must be >= 1")
    try:
        set_num_threads(args.threads)
    except ValueError as e:
        parser.error(str(e))

    print(machine_line())
    print(HEADER)
    print("-" * len(HEADER))
    runners = {"kernels": bench_kernels, "minibatch": bench_minibatch, "step": bench_step,
               "sweep": bench_sweep,
               "predict": bench_predict, "tracking": bench_tracking, "train": bench_train_cli}
    for section in args.sections:
        for row in runners[section](args):
            print(row.format(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
