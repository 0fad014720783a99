"""One training from a checked :class:`~softmax_exp.config.Config`: data -> model -> tracked run.

:func:`fit` is the whole training as a function: the Hydra entrypoint (softmax_exp.train), a sweep's
jobs, ``reproduce`` and the benchmark all call it; it knows nothing of Hydra.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from softmax_exp import timing
from softmax_exp.atomic import temp_dir
from softmax_exp.config import Config, ConfigError
from softmax_exp.interrupts import INTERRUPTS
from softmax_exp.kernels import num_threads
from softmax_exp.model import Preprocessing, Softmax, TrainHistory, check_hyperparameters
from softmax_exp.overrides import run_name


class TrainingDiverged(RuntimeError):
    """The loss (or W) became NaN or inf; training stopped early."""


@dataclass
class JobContext:
    """Where one training sits: its run name and overrides, where its files go, its sweep if any, and
    the Numba threads its launcher gives it (None: all cores)."""

    run_name: str | None = None
    overrides: list[str] = field(default_factory=list)
    output_dir: Path | None = None
    parent_run_id: str | None = None
    experiment_id: str | None = None
    sweep_id: str | None = None
    job_num: int = 0
    threads: int | None = None
    run_id: str | None = None  # its MLflow run, once it has one (set by the tracked job)


@dataclass
class Outcome:
    """What :func:`fit` produced: the model, its history, final metrics and the MLflow run id.

    A job of a sweep that had FINISHED before is not trained again: its model is None, its history
    empty, its metrics and run are the earlier ones, and ``note`` says so (as it says a resume).
    """

    model: Softmax | None
    history: TrainHistory
    metrics: dict[str, float]
    run_id: str | None
    status: str
    note: str = ""
    experiment_id: str | None = None
    model_uri: str | None = None  # the logged MLflow model


def fit(cfg: Config, job: JobContext | None = None) -> Outcome:
    """Load the data, train, evaluate, and (``tracking.enabled``) log one MLflow run.

    The run ends FINISHED, FAILED (divergence: reason in the ``failure_reason`` tag; any exception) or
    KILLED (Ctrl-C); it is never left RUNNING. With ``resume`` (tracking on) the earlier runs of the same
    config are looked up first: a KILLED or FAILED run with a checkpoint goes on where it stopped; in a
    sweep a FINISHED one is reused without training. Raises ConfigError (a batch that does not fit the
    data), softmax_exp.data.DataError, TrackingError or JobRunningElsewhere in one line.
    """
    from softmax_exp.tracking import TrackedJob

    job = job or JobContext()
    job.run_name = job.run_name or run_name(job.overrides, cfg.lr, cfg.reg)
    threads = cfg.num_threads if cfg.num_threads is not None else job.threads
    with num_threads(_cap_threads(threads)) as n_threads:
        tracked = TrackedJob.find(cfg, job) if cfg.tracking.enabled else None
        if tracked is not None and tracked.finished_before is not None:
            return _reuse(tracked)
        with timing.section("data"):
            data = _load_data(cfg)
        model = Softmax(cfg.kernel, Preprocessing.of(data))
        state = tracked.open(data, n_threads) if tracked is not None else None
        with ExitStack() as stack:
            if tracked is not None:
                stack.enter_context(tracked)  # an exception ends the run FAILED, Ctrl-C KILLED
            stack.enter_context(INTERRUPTS.deferred())
            history = model.train(
                data.X_train, data.y_train, lr=cfg.lr, reg=cfg.reg, num_iters=cfg.num_iters,
                batch_size=cfg.batch_size, seed=cfg.seed, optimizer=cfg.optimizer.build(),
                schedule=cfg.build_schedule(), replace=cfg.model.replace, init_scale=cfg.model.init_scale,
                eval_every=cfg.eval_every, eval_train_rows=cfg.eval_train_rows, X_val=data.X_val,
                y_val=data.y_val,
                on_eval=tracked.on_eval if tracked is not None else None,
                progress=_show_progress(cfg.progress),
                checkpoint_every=cfg.checkpoint_every,
                on_checkpoint=tracked.on_checkpoint if tracked is not None else None,
                resume_from=state, should_stop=INTERRUPTS.requested,
            )
            metrics = _final_metrics(cfg, model, history, data)
            if tracked is not None or job.output_dir is not None:
                folder = _artifact_folder(stack, job)
                from softmax_exp.artifacts import write_artifacts

                with timing.section("pictures"):
                    write_artifacts(folder, cfg, job.run_name, job.overrides, model, history)
                    if job.output_dir is not None:
                        model.save(job.output_dir / "model.npz")  # Softmax.load reads it back
                if tracked is not None:
                    tracked.finish(history, metrics, folder, model, data)
    note = f"resumed from iteration {state.iteration}" if state is not None else ""
    status = "FAILED" if history.diverged else "FINISHED"
    if tracked is None:
        return Outcome(model, history, metrics, None, status, note)
    return Outcome(model, history, metrics, tracked.run.run_id, status, note, tracked.experiment_id,
                   tracked.model_uri)


def _load_data(cfg: Config):
    """The dataset, checked against what the config asks of it."""
    from softmax_exp.data import DataError, load_dataset

    data = load_dataset(cfg.dataset)
    try:  # the one check that needs the data: a batch without replacement must fit the training set
        check_hyperparameters(cfg.lr, cfg.reg, cfg.num_iters, cfg.batch_size, cfg.model.replace,
                              cfg.eval_every, n_train=data.X_train.shape[0])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if data.X_val.shape[0] == 0:
        raise DataError("the validation split is empty; set dataset.num_validation >= 1")
    return data


def _final_metrics(cfg: Config, model: Softmax, history: TrainHistory, data) -> dict[str, float]:
    metrics = {"loss": float(history.loss[-1]) if len(history.loss) else math.nan}
    if history.evals:
        metrics["train_acc"] = history.evals[-1].train_acc
        metrics["val_acc"] = history.evals[-1].val_acc
    if cfg.eval_test and history.diverged is None and data.X_test.shape[0]:
        metrics["test_acc"] = model.accuracy(data.X_test, data.y_test)
    return metrics


def _artifact_folder(stack: ExitStack, job: JobContext) -> Path:
    """The job's ``artifacts/`` folder, or a temporary one (removed after the upload) if it has none."""
    if job.output_dir is not None:
        return job.output_dir / "artifacts"
    return stack.enter_context(temp_dir("artifacts"))


def _reuse(tracked) -> Outcome:
    """The outcome of a job of a sweep that FINISHED before: its run's metrics, nothing trained."""
    run = tracked.finished_before
    keys = ("loss", "train_acc", "val_acc", "test_acc")
    metrics = {k: float(run.data.metrics[k]) for k in keys if k in run.data.metrics}
    return Outcome(None, TrainHistory(np.empty(0)), metrics, run.info.run_id, "FINISHED",
                   f"finished before in run {run.info.run_id}: skipped", tracked.experiment_id,
                   tracked.model_uri)


def _cap_threads(n: int | None) -> int | None:
    if n is None:
        return None
    import numba

    return max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))


def _show_progress(setting: bool | None) -> bool:
    if setting is None:  # on a terminal, not in CI
        return sys.stderr.isatty() and not os.environ.get("CI")
    return setting
