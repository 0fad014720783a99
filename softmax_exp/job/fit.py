"""One training from a checked :class:`~softmax_exp.config.schema.Config`: data -> model -> tracked run.

:func:`fit` is the whole training as a function: the Hydra entrypoint (softmax_exp.train), a sweep's
jobs, ``reproduce`` and the benchmark all call it; it knows nothing of Hydra. :class:`Training` is the
same as an object, for a caller that must say which run a training that raised had (a sweep's job).

The config is read here once and handed on in parts: the dataset's settings to the loader, the
hyperparameters and the model's settings to the classifier, the optimizer built once, and what the store
is to record as a :class:`~softmax_exp.tracking.job.RunSpec`.
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
from softmax_exp.config.fingerprints import config_fingerprint, result_config
from softmax_exp.config.overrides import run_name
from softmax_exp.data import DataError, Dataset, load_dataset
from softmax_exp.job.artifacts import write_artifacts
from softmax_exp.job.context import JobContext, Outcome, TrainingDiverged
from softmax_exp.kernels import num_threads
from softmax_exp.learn.metrics import SplitResult
from softmax_exp.learn.model import LinearClassifier, Preprocessing
from softmax_exp.learn.sgd import EvalPoint, TrainHistory, TrainState
from softmax_exp.tracking.job import RunSpec, TrackedJob, per_class_metrics
from softmax_exp.tracking.tags import JOB_NUM_TAG, SWEEP_ID_TAG
from softmax_exp.util import timing
from softmax_exp.util.atomic import atomic_path, temp_dir
from softmax_exp.util.interrupts import INTERRUPTS

__all__ = ["JobContext", "Outcome", "Training", "TrainingDiverged", "fit"]


def fit(cfg: Config, job: JobContext | None = None) -> Outcome:
    """Load the data, train, evaluate, and (``tracking.enabled``) log one MLflow run: see
    :meth:`Training.run`."""
    return Training(cfg, job).run()


class Training:
    """One training job: ``Training(cfg, job).run()``. While it runs, :attr:`run_id` and :attr:`run_name`
    say where its MLflow run is (a sweep's job records them when the training raises)."""

    def __init__(self, cfg: Config, job: JobContext | None = None) -> None:
        self.cfg = cfg
        self.job = job if job is not None else JobContext()
        self.tracker: TrackedJob | Untracked = Untracked()
        self._name = run_name(self.job.overrides, cfg.lr, cfg.reg, self.job.name_keys)

    @property
    def run_id(self) -> str | None:
        return self.tracker.run_id

    @property
    def run_name(self) -> str:
        return self.tracker.run_name or self._name

    def run(self) -> Outcome:
        """Load the data, train, evaluate, and (``tracking.enabled``) log one MLflow run.

        The run ends FINISHED, FAILED (divergence: reason in the ``failure_reason`` tag; any exception) or
        KILLED (Ctrl-C); it is never left RUNNING. With ``resume`` (tracking on) the earlier runs of the
        same config are looked up first: a KILLED or FAILED run with a checkpoint goes on where it stopped;
        in a sweep a FINISHED one is reused without training. Raises ConfigError (a batch that does not
        fit the data), softmax_exp.data.DataError, TrackingError or JobRunningElsewhere in one line.
        """
        cfg, job = self.cfg, self.job
        threads = cfg.num_threads if cfg.num_threads is not None else job.threads
        with num_threads(_cap_threads(threads)) as n_threads:
            if cfg.tracking.enabled:
                self.tracker = TrackedJob.find(self._run_spec())
            if self.tracker.finished_before is not None:
                return self._reuse()
            with timing.section("data"):
                data = load_dataset(cfg.dataset, cfg.features, progress=_show_progress(cfg.progress))
            if data.X_val.shape[0] == 0:
                raise DataError("the validation split is empty; set dataset.num_validation >= 1")
            model = cfg.model.build(cfg.kernel, Preprocessing.of(data))
            optimizer, schedule = cfg.optimizer.build(cfg.lr, cfg.num_iters)
            try:  # the one check that needs the data, before any run is made
                training = model.training(data.X_train, data.y_train, cfg, X_val=data.X_val, y_val=data.y_val,
                                          optimizer=optimizer, schedule=schedule,
                                          checkpoint_every=cfg.checkpoint_every)
            except ValueError as e:
                raise ConfigError(str(e)) from None
            state = self.tracker.open(data, n_threads)
            with self.tracker, INTERRUPTS.deferred():  # an exception ends the run FAILED, Ctrl-C KILLED
                with _JobHooks(self.tracker, cfg, state, job.stop_early) as hooks:
                    history = training.run(hooks, resume_from=state)
                metrics, results = _final_metrics(cfg, model, history, data)
                self._leave_files(model, history, metrics, data, results)
        notes = [f"resumed from iteration {state.iteration}" if state is not None else "",
                 history.stopped or ""]
        status = "FAILED" if history.diverged else "PRUNED" if history.stopped else "FINISHED"
        return Outcome(model, history, metrics, self.run_id, status, "; ".join(n for n in notes if n),
                       self.tracker.experiment_id, self.tracker.model_uri, self.tracker.run_name)

    def _run_spec(self) -> RunSpec:
        """What the store is to record of this training (see RunSpec)."""
        cfg, job = self.cfg, self.job
        sweep = job.sweep
        tags = {SWEEP_ID_TAG: sweep.sweep_id, JOB_NUM_TAG: sweep.job_num} if sweep and sweep.sweep_id else {}
        return RunSpec(cfg.tracking, config_fingerprint(cfg), self._name, result_config(cfg), cfg.num_iters,
                       cfg.optimizer.name, cfg.resume, cfg.checkpoint_min_seconds,
                       sweep.parent_run_id if sweep else None, sweep.experiment_id if sweep else None,
                       {**tags, **job.tags})

    def _leave_files(self, model: LinearClassifier, history: TrainHistory, metrics: dict[str, float],
                     data: Dataset, results: dict[str, SplitResult]) -> None:
        """The job's files (its folder's artifacts/ and model.npz) and, tracked, its run's end."""
        cfg, job = self.cfg, self.job
        if self.tracker.run_id is None and job.output_dir is None:
            return
        with _artifact_folder(job) as folder:
            with timing.section("pictures"):
                write_artifacts(folder, cfg, self.run_name, job.overrides, model, history, results.get("val"),
                                data)
                if job.output_dir is not None:
                    with atomic_path(job.output_dir / "model.npz", sync=False) as tmp:
                        model.save(tmp)  # LinearClassifier.load reads it back
            self.tracker.finish(history, metrics, folder, model, data, run_note(cfg, metrics, history))

    def _reuse(self) -> Outcome:
        """The outcome of a job of a sweep that FINISHED before: its run's metrics, nothing trained."""
        tracked = self.tracker
        run = tracked.finished_before
        keys = ("loss", "train_acc", "val_acc", "test_acc")
        metrics = {k: float(run.data.metrics[k]) for k in keys if k in run.data.metrics}
        return Outcome(None, TrainHistory(np.empty(0)), metrics, run.info.run_id, "FINISHED",
                       f"finished before in run {run.info.run_id}: skipped", tracked.experiment_id,
                       tracked.model_uri, tracked.run_name)


def run_note(cfg: Config, metrics: dict[str, float], history: TrainHistory) -> str:
    """A run's one-line description (MLflow's note): what was trained and what it reached."""
    opt = cfg.optimizer
    on = cfg.dataset.name + ("" if cfg.features.name == "pixels" else f" {cfg.features.name} features")
    what = (f"{cfg.model.name} on {on}, {opt.name}{'' if opt.schedule == 'none' else ' + ' + opt.schedule} "
            f"lr={cfg.lr:g} reg={cfg.reg:g}, {len(history.loss)} iterations of batch {cfg.batch_size}")
    if history.diverged:
        return f"{what}: diverged ({history.diverged})"
    reached = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("val_acc", "train_acc", "test_acc") if k in metrics)
    if history.stopped:
        return f"{what}: {history.stopped}, {reached} so far"
    return f"{what}: {reached}"


class Untracked:
    """What a training does with its run when ``tracking.enabled=false``: nothing (TrackedJob's
    interface)."""

    finished_before = None
    run_id = run_name = experiment_id = model_uri = None

    def open(self, data, n_threads: int) -> None:
        return None

    def on_eval(self, point: EvalPoint, losses: np.ndarray) -> None:
        pass

    def on_checkpoint(self, state: TrainState) -> None:
        pass

    def finish(self, history, metrics, artifacts, model, data, note) -> None:
        pass

    def __enter__(self) -> Untracked:
        return self

    def __exit__(self, *exc) -> None:
        pass


class _JobHooks:
    """The training hooks of a job (softmax_exp.learn.sgd.TrainingHooks): its tracker gets the evaluations
    and checkpoints, a tqdm bar the progress (``progress``), Ctrl-C / SIGTERM stops it between two steps."""

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


def _final_metrics(cfg: Config, model: LinearClassifier, history: TrainHistory,
                   data: Dataset) -> tuple[dict[str, float], dict[str, SplitResult]]:
    """The final loss and accuracies, and for a training that ran to its end the labels it gives the
    validation split (and the test split with ``eval_test``): their per-class accuracies as metrics
    ``val_acc/<class>`` (``test_acc/<class>``)."""
    metrics = {"loss": float(history.loss[-1]) if len(history.loss) else math.nan}
    if history.evals:
        metrics["train_acc"] = history.evals[-1].train_acc
        metrics["val_acc"] = history.evals[-1].val_acc
    results: dict[str, SplitResult] = {}
    if history.diverged is not None or history.stopped is not None:
        return metrics, results  # no final evaluation: a pruned trial's accuracies are partial
    C = data.num_classes
    results["val"] = SplitResult.of(data.y_val, model.predict(data.X_val), C)
    if cfg.eval_test and data.X_test.shape[0]:
        results["test"] = SplitResult.of(data.y_test, model.predict(data.X_test), C)
        metrics["test_acc"] = results["test"].accuracy
    for split, result in results.items():
        metrics.update(per_class_metrics(f"{split}_acc", data.class_names, result.per_class))
    return metrics, results


def _artifact_folder(job: JobContext) -> AbstractContextManager[Path]:
    """The job's ``artifacts/`` folder, or a temporary one (removed after the upload) if it has none."""
    if job.output_dir is not None:
        return nullcontext(job.output_dir / "artifacts")
    return temp_dir("artifacts")


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
