"""The sections beyond the kernels: trainings with and without MLflow tracking, ``make train``, and the
course's grid end to end with where its time goes (softmax_exp.util.timing's sections)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from softmax_exp import tracking
from softmax_exp.bench.measure import Row, median_ms
from softmax_exp.config import compose, to_config
from softmax_exp.data import load_dataset
from softmax_exp.job.context import JobContext
from softmax_exp.job.fit import fit
from softmax_exp.learn.model import Preprocessing, Softmax
from softmax_exp.tracking.logged_model import log_model
from softmax_exp.util import timing


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
        fit(cfg, JobContext(overrides=(f"job={i}",)))
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


# the sweep section's breakdown, in the order a sweep spends it (softmax_exp.util.timing's sections)
BREAKDOWN = ("imports", "composition", "store", "data", "sgd", "evaluation", "tracking", "pictures", "model")


def _run_sweep(overrides: list[str], cwd: str) -> tuple[float, dict[str, float]]:
    """Wall milliseconds of ``python -m softmax_exp.train`` with ``overrides`` (a sweep, basic launcher:
    one process), and its time breakdown in milliseconds (softmax_exp.util.timing; "other" is the rest)."""
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
        params = dataclasses.replace(cfg, eval_every=0, eval_train_rows=None)
        optimizer, schedule = cfg.optimizer.build(cfg.lr, cfg.num_iters)
        Softmax(cfg.kernel, Preprocessing.of(data), cfg.model).train(
            data.X_train, data.y_train, params, optimizer=optimizer, schedule=schedule)

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


