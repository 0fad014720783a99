"""Re-run a logged training and say whether it gives the same result.

``python -m softmax_exp.reproduce RUN_ID [--tracking-uri URI]``:

The run's resolved ``config.yaml`` artifact is trained again (untracked) with the logged kernel and Numba
thread count; every iteration's loss is compared with the run's ``loss.npy``, the final train_acc, val_acc
(and test_acc) with the logged ones, and W with the run's logged model, bit for bit. Exit status 0 when
everything matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np
import yaml

from softmax_exp import tracking
from softmax_exp.config import to_config
from softmax_exp.data import load_dataset
from softmax_exp.job.context import JobContext
from softmax_exp.job.fit import fit
from softmax_exp.learn.model import LinearClassifier
from softmax_exp.tracking.logged_model import load_classifier
from softmax_exp.tracking.store import sqlite_path
from softmax_exp.util.atomic import temp_dir

COMPARED = ("train_acc", "val_acc", "test_acc")


@dataclass(frozen=True)
class Comparison:
    """One compared quantity: its logged and reproduced values and whether they are identical."""

    name: str
    logged: float | str
    reproduced: float | str
    match: bool


class NoModel(Exception):
    """The run has no model to compare W with (a pruned trial)."""


def reproduce(run_id: str, tracking_uri: str | None = None) -> list[Comparison]:
    """Train the run ``run_id`` of the store ``tracking_uri`` again; compare metrics and W."""
    uri = tracking.resolve_tracking_uri(tracking_uri or tracking.default_uri())
    path = sqlite_path(uri)
    if path is not None and not path.is_file():  # (opening it would make an empty store)
        raise FileNotFoundError(f"there is no MLflow store at {path}; give --tracking-uri sqlite:///PATH")
    client = tracking.get_client(uri)
    run = client.get_run(run_id)
    with temp_dir("reproduce") as tmp:
        config_path = client.download_artifacts(run_id, "config.yaml", str(tmp))
        try:  # every iteration's loss (runs logged before loss.npy have the loss metric at every step)
            logged_loss = np.load(client.download_artifacts(run_id, "loss.npy", str(tmp)), allow_pickle=False)
        except Exception:
            logged_loss = None
        model_uri = run.data.tags.get(tracking.tags.MODEL_URI_TAG)
        logged_W = None  # a run that diverged has no model: its W was not finite
        if model_uri:  # the run's logged MLflow model
            logged_W = load_classifier(uri, model_uri).W
        elif any(f.path == "model.npz" for f in client.list_artifacts(run_id)):  # logged before models were
            logged_W = LinearClassifier.load(client.download_artifacts(run_id, "model.npz", str(tmp))).W
        elif stopped := run.data.tags.get(tracking.tags.STOPPED_TAG):
            raise NoModel(f"run {run_id} is a trial its search stopped early ({stopped}): a pruned trial "
                          f"has no model to compare; reproduce a finished trial of the search")
        elif run.info.status != "FAILED":
            raise ValueError(f"run {run_id} has neither a logged model nor a model.npz artifact")
        with open(config_path) as f:
            logged = yaml.safe_load(f)
    # trained untracked, without resume or checkpoints, quietly; runs logged before a key existed lack it
    # (model.name: the softmax, the only model then; very early runs logged it as "softmax" too)
    logged.update(progress=False, resume=False, checkpoint_every=0)
    logged.setdefault("tracking", {})["enabled"] = False
    threads = run.data.tags.get(tracking.tags.THREADS_TAG)
    if threads and threads.isdigit():
        logged["num_threads"] = int(threads)
    cfg = to_config(logged)
    outcome = fit(cfg, JobContext())

    rows = [_compare_loss(run, logged_loss, outcome.history.loss)]
    for name in COMPARED:
        logged = run.data.metrics.get(name)
        mine = outcome.metrics.get(name)
        if logged is None and mine is None:
            continue
        rows.append(Comparison(name, _num(logged), _num(mine), _same(logged, mine)))
    if logged_W is None:  # the run failed without a model: it must fail again, at the same point
        logged_reason = run.data.tags.get(tracking.tags.FAILURE_TAG) or "failed, no model"
        mine = outcome.history.diverged
        rows.append(Comparison("diverged", logged_reason, mine or "did not diverge",
                               mine is not None and (mine == logged_reason or mine in logged_reason)))
    else:
        same_W = logged_W.shape == outcome.model.W.shape and np.array_equal(logged_W, outcome.model.W)
        diff = "identical" if same_W else _w_difference(logged_W, outcome.model.W)
        rows.append(Comparison("W", model_uri or "model.npz", diff, same_W))
    fingerprint = run.data.tags.get(tracking.tags.DATASET_TAG, "")
    if fingerprint:
        now = load_dataset(cfg.dataset, cfg.features).fingerprint
        rows.append(Comparison("dataset_fingerprint", fingerprint[:16], now[:16], now == fingerprint))
    return rows


def _compare_loss(run, logged: np.ndarray | None, mine: np.ndarray) -> Comparison:
    """The whole loss history against loss.npy, bit for bit; for an older run, the last loss metric."""
    if logged is None:
        last = run.data.metrics.get("loss")
        mine_last = float(mine[-1]) if len(mine) else None
        return Comparison("loss", _num(last), _num(mine_last), _same(last, mine_last))
    same = logged.shape == mine.shape and np.array_equal(logged, mine, equal_nan=True)
    diff = "identical" if same else _w_difference(logged, np.asarray(mine, dtype=np.float64))
    return Comparison("loss history", f"loss.npy ({len(logged)} iterations)", diff, same)


def main(argv: list[str] | None = None) -> int:
    """Command line: print one line per compared quantity and a verdict; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m softmax_exp.reproduce", description=__doc__)
    parser.add_argument("run_id", help="the MLflow run to reproduce")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: the project's sqlite:///<root>/mlflow.db)")
    args = parser.parse_args(argv)
    try:
        rows = reproduce(args.run_id, args.tracking_uri)
    except NoModel as e:
        print(f"error: cannot reproduce: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a missing run or artifact, a bad config: one line, not a traceback
        message = " ".join(str(e).split())  # a YAML error spans lines
        print(f"error: cannot reproduce run {args.run_id}: {type(e).__name__}: {message}", file=sys.stderr)
        return 2
    for r in rows:
        print(f"{r.name:20s} logged {_show(r.logged):>24s}  reproduced {_show(r.reproduced):>24s}  "
              f"{'match' if r.match else 'MISMATCH'}")
    ok = all(r.match for r in rows)
    print("reproduced: identical" if ok else "NOT reproduced: see MISMATCH above")
    return 0 if ok else 1


def _num(v) -> float | str:
    return "-" if v is None else float(v)


def _same(a, b) -> bool:
    if a is None or b is None:
        return False
    a, b = float(a), float(b)
    if abs(a) == sys.float_info.max:  # MLflow stores +-inf as the largest double
        a = math.copysign(math.inf, a)
    return a == b or (math.isnan(a) and math.isnan(b))


def _show(v) -> str:
    return v if isinstance(v, str) else repr(v)


def _w_difference(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"shape {b.shape} != {a.shape}"
    return f"max |diff| {float(np.max(np.abs(a.astype(np.float64) - b))):.3g}"


if __name__ == "__main__":
    sys.exit(main())
