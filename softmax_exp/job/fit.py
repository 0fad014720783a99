"""One training from a checked :class:`~softmax_exp.config.Config`: data -> model -> tracked run.

:func:`fit` is the whole training as a function: the Hydra entrypoint (softmax_exp.train), a sweep's
jobs, ``reproduce`` and the benchmark all call it; it knows nothing of Hydra.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numba
import numpy as np

from softmax_exp.config import Config, ConfigError
from softmax_exp.config.overrides import run_name
from softmax_exp.data import DataError, load_dataset
from softmax_exp.job.artifacts import write_artifacts
from softmax_exp.job.context import JobContext, Outcome, TrainingDiverged
from softmax_exp.kernels import num_threads
from softmax_exp.learn.hyperparameters import check_hyperparameters
from softmax_exp.learn.model import Preprocessing, Softmax
from softmax_exp.learn.sgd import EvalPoint, TrainHistory, TrainState
from softmax_exp.tracking import TrackedJob
from softmax_exp.util import timing
from softmax_exp.util.atomic import atomic_path, temp_dir
from softmax_exp.util.interrupts import INTERRUPTS

__all__ = ["JobContext", "Outcome", "TrainingDiverged", "fit"]


def fit(cfg: Config, job: JobContext | None = None) -> Outcome:
    """Load the data, train, evaluate, and (``tracking.enabled``) log one MLflow run.

    The run ends FINISHED, FAILED (divergence: reason in the ``failure_reason`` tag; any exception) or
    KILLED (Ctrl-C); it is never left RUNNING. With ``resume`` (tracking on) the earlier runs of the same
    config are looked up first: a KILLED or FAILED run with a checkpoint goes on where it stopped; in a
    sweep a FINISHED one is reused without training. Raises ConfigError (a batch that does not fit the
    data), softmax_exp.data.DataError, TrackingError or JobRunningElsewhere in one line.
    """
    job = job or JobContext()
    job.run_name = job.run_name or run_name(job.overrides, cfg.lr, cfg.reg)
    threads = cfg.num_threads if cfg.num_threads is not None else job.threads
    with num_threads(_cap_threads(threads)) as n_threads:
        tracker = TrackedJob.find(cfg, job) if cfg.tracking.enabled else Untracked()
        if tracker.finished_before is not None:
            return _reuse(tracker)
        with timing.section("data"):
            data = _load_data(cfg)
        model = Softmax(cfg.kernel, Preprocessing.of(data))
        state = tracker.open(data, n_threads)
        with tracker, INTERRUPTS.deferred():  # an exception ends the run FAILED, Ctrl-C KILLED
            with _JobHooks(tracker, cfg, state, job.stop_early) as hooks:
                history = model.train(data.X_train, data.y_train, cfg.train_params(), X_val=data.X_val,
                                      y_val=data.y_val, optimizer=cfg.optimizer.build(),
                                      schedule=cfg.build_schedule(), hooks=hooks,
                                      checkpoint_every=cfg.checkpoint_every, resume_from=state)
            metrics = _final_metrics(cfg, model, history, data)
            if tracker.run_id is not None or job.output_dir is not None:
                with _artifact_folder(job) as folder:
                    with timing.section("pictures"):
                        write_artifacts(folder, cfg, job.run_name, job.overrides, model, history)
                        if job.output_dir is not None:
                            with atomic_path(job.output_dir / "model.npz", sync=False) as tmp:
                                model.save(tmp)  # Softmax.load reads it back
                    tracker.finish(history, metrics, folder, model, data)
    notes = [f"resumed from iteration {state.iteration}" if state is not None else "", history.stopped or ""]
    status = "FAILED" if history.diverged else "PRUNED" if history.stopped else "FINISHED"
    return Outcome(model, history, metrics, tracker.run_id, status, "; ".join(n for n in notes if n),
                   tracker.experiment_id, tracker.model_uri)


class Untracked:
    """What fit does with a training when ``tracking.enabled=false``: nothing (TrackedJob's interface)."""

    finished_before = None
    run_id = experiment_id = model_uri = None

    def open(self, data, n_threads: int) -> None:
        return None

    def on_eval(self, point: EvalPoint, losses: np.ndarray) -> None:
        pass

    def on_checkpoint(self, state: TrainState) -> None:
        pass

    def finish(self, history, metrics, artifacts, model, data) -> None:
        pass

    def __enter__(self) -> Untracked:
        return self

    def __exit__(self, *exc) -> None:
        pass


class _JobHooks:
    """The training hooks of a job (softmax_exp.learn.sgd.TrainingHooks): its tracker gets the evaluations and
    checkpoints, a tqdm bar the progress (``progress``), Ctrl-C / SIGTERM stops it between two steps."""

    def __init__(self, tracker: TrackedJob | Untracked, cfg: Config, state: TrainState | None,
                 stop_early=None) -> None:
        self.tracker = tracker
        self._stop_early = stop_early
        self.bar = (_progress_bar(cfg.num_iters, state.iteration if state is not None else 0)
                    if _show_progress(cfg.progress) else None)

    def on_step(self, iteration: int) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_eval(self, point: EvalPoint, losses: np.ndarray) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{losses[-1]:.4f}", train_acc=f"{point.train_acc:.3f}",
                                 val_acc=f"{point.val_acc:.3f}", refresh=False)
        self.tracker.on_eval(point, losses)

    def on_checkpoint(self, state: TrainState) -> None:
        self.tracker.on_checkpoint(state)

    should_stop = staticmethod(INTERRUPTS.requested)

    def stop_early(self, point: EvalPoint) -> str | None:
        return self._stop_early(point) if self._stop_early is not None else None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> _JobHooks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _load_data(cfg: Config):
    """The dataset, checked against what the config asks of it."""
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
    if cfg.eval_test and history.diverged is None and history.stopped is None and data.X_test.shape[0]:
        metrics["test_acc"] = model.accuracy(data.X_test, data.y_test)
    return metrics


def _artifact_folder(job: JobContext) -> AbstractContextManager[Path]:
    """The job's ``artifacts/`` folder, or a temporary one (removed after the upload) if it has none."""
    if job.output_dir is not None:
        return nullcontext(job.output_dir / "artifacts")
    return temp_dir("artifacts")


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
    return max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))


def _progress_bar(total: int, initial: int = 0):
    from tqdm import tqdm  # 80 ms of imports: only where a bar is shown

    return tqdm(total=total, initial=initial, unit="it", leave=False, mininterval=0.25, dynamic_ncols=True)


def _show_progress(setting: bool | None) -> bool:
    if setting is None:  # on a terminal, not in CI
        return sys.stderr.isatty() and not os.environ.get("CI")
    return setting
