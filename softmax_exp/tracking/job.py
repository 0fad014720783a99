"""The MLflow side of one training: its run found, reused, reopened or started; its metrics, checkpoints
and artifacts sent; its end.

It is handed a :class:`RunSpec` (what to record, worked out by the job layer from the config: no config
or Hydra here). :meth:`TrackedJob.find` looks the job up in the store before any data is loaded (with
``resume``: its earlier runs, see :mod:`softmax_exp.tracking.resume`). In a sweep, a job that FINISHED
before is reused as it is (:attr:`TrackedJob.finished_before`). Otherwise :meth:`TrackedJob.open` goes on
with the stopped run of the job from its checkpoint, or starts a new run; the training then feeds it
through :meth:`on_eval` and :meth:`on_checkpoint`, and :meth:`finish` sends the last metrics and the
artifacts and ends it. As a context manager the job's run ends FAILED on an exception and KILLED on
Ctrl-C: never RUNNING.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softmax_exp.learn.checkpoint import checkpoint_name, load_resumable_checkpoint, save_checkpoint
from softmax_exp.tracking import mlflow_internals, resume
from softmax_exp.tracking.logged_model import log_model
from softmax_exp.tracking.provenance import environment_tags, git_state
from softmax_exp.tracking.run import Run, unique_run_name
from softmax_exp.tracking.settings import TrackingConfig
from softmax_exp.tracking.store import Store
from softmax_exp.tracking.tags import (
    ATTEMPT_TAG,
    CHECKPOINT_TAG,
    DATASET_TAG,
    FAILURE_TAG,
    FINGERPRINT_TAG,
    GIT_COMMIT_TAG,
    MODEL_URI_TAG,
    NOTE_TAG,
    RESUMED_TAG,
    STOPPED_TAG,
    THREADS_TAG,
)
from softmax_exp.util import timing
from softmax_exp.util.atomic import temp_dir

if TYPE_CHECKING:
    from softmax_exp.data import Dataset
    from softmax_exp.learn.model import LinearClassifier
    from softmax_exp.learn.sgd import EvalPoint, TrainHistory, TrainState


@dataclass(frozen=True)
class RunSpec:
    """What the store is to record of one training, worked out from its config by the job layer.

    settings : the tracking settings (store, experiment, artifact root, liveness, metric windows)
    fingerprint : the config's fingerprint (softmax_exp.config.fingerprints): finds its earlier runs
    name : the run's name (outside a sweep, suffixed ``#2``, ... when the experiment has it already)
    params : what can change the result, as dotted keys (the data's sizes are added)
    resume : look for earlier runs of the same config (reuse, go on from a checkpoint)
    num_iters, optimizer : what a checkpoint must belong to (its iteration, its optimizer's state)
    checkpoint_min_seconds : no checkpoint sooner than this after the start or the last one
    parent_run_id, experiment_id : a sweep's parent run and its experiment (None: a single training)
    tags : more tags on a run it starts (the sweep's id and the job's number, a trial's number)
    """

    settings: TrackingConfig
    fingerprint: str
    name: str
    params: Mapping[str, Any]
    num_iters: int
    optimizer: str
    resume: bool = True
    checkpoint_min_seconds: float = 10.0
    parent_run_id: str | None = None
    experiment_id: str | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)


class TrackedJob:
    """One training's MLflow run, from lookup to end (see the module's doc)."""

    def __init__(self, spec: RunSpec, store: Store, experiment_id: str, earlier: resume.Earlier) -> None:
        self.spec, self.store, self.uri = spec, store, store.uri
        self.experiment_id, self.earlier = experiment_id, earlier
        self.run: Run | None = None
        self.run_name = spec.name  # as the store has it, once it is known
        self.log: _MetricLog | None = None
        self.model_uri: str | None = None  # the run's logged MLflow model
        self.params: dict[str, Any] | None = None  # the run's params (None: a reopened run, ask the run)
        self._checkpointed_at = time.monotonic()
        if self.finished_before is not None:  # reused as it is: its name and model
            self.run_name = self.finished_before.info.run_name
            self.model_uri = self.finished_before.data.tags.get(MODEL_URI_TAG)

    @classmethod
    @timing.timed("tracking")
    def find(cls, spec: RunSpec) -> TrackedJob:
        """Find the store (failing fast if a server does not answer), the experiment, and with ``resume``
        the earlier runs of this job. Loads no data."""
        store = Store.open(spec.settings, spec.experiment_id)
        exp_id = store.experiment_id
        stale_s = 60.0 * spec.settings.stale_after_min
        earlier = (resume.earlier_runs(store.client, exp_id, spec.fingerprint, spec.parent_run_id, stale_s)
                   if spec.resume else resume.Earlier())
        return cls(spec, store, exp_id, earlier)

    @property
    def run_id(self) -> str | None:
        """The job's MLflow run, once :meth:`open` has started or reopened it."""
        return self.run.run_id if self.run is not None else None

    @property
    def finished_before(self):
        """In a sweep, the FINISHED run of this job (an mlflow Run) to reuse, not train; else None."""
        return self.earlier.finished if self.spec.parent_run_id else None

    @timing.timed("tracking")
    def open(self, data: Dataset, n_threads: int) -> TrainState | None:
        """Go on with the stopped run of this job from its checkpoint if there is one (returning the state
        to resume from), else start a new run (in a sweep, the job's other unfinished runs are then
        replaced by it) and return None."""
        unfinished = list(self.earlier.unfinished)
        old = self.earlier.resumable
        if old is not None:
            try:
                _check_same_code_and_data(old, data)
                state = self._download_checkpoint(old, data)
            except ValueError as e:
                print(f"warning: {e}; training from the start", file=sys.stderr, flush=True)
                unfinished.append(old)
            else:
                attempt = int(old.data.tags.get(ATTEMPT_TAG, "1")) + 1
                tags = {RESUMED_TAG: state.iteration, ATTEMPT_TAG: attempt, THREADS_TAG: n_threads}
                self.run = Run.reopen(self.uri, old.info.run_id, tags)
                self.run_name = old.info.run_name
                if FAILURE_TAG in old.data.tags:  # why it stopped last time: no longer true
                    self.run.client.delete_tag(self.run.run_id, FAILURE_TAG)
                self._keep_only_checkpoint(old.data.tags[CHECKPOINT_TAG])  # one a kill left untagged
                self.log = _MetricLog.resuming(self.run, self.spec.settings.log_every)
                return state
        self.run = self._start(data, n_threads)
        if self.spec.parent_run_id and unfinished:
            resume.supersede(self.run.client, unfinished, self.run.run_id)
        self.log = _MetricLog(self.run, self.spec.settings.log_every)
        return None

    @timing.timed("tracking")
    def on_eval(self, point: EvalPoint, losses: np.ndarray) -> None:
        """LinearClassifier.train's on_eval: the losses so far and the accuracies at this evaluation."""
        self.log.on_eval(point, losses)

    @timing.timed("tracking")
    def on_checkpoint(self, state: TrainState) -> None:
        """LinearClassifier.train's on_checkpoint: the metrics so far are sent first, the state goes to
        ``checkpoints/iter_NNNNNNN.npz``, then the ``checkpoint`` tag points at it and every other
        checkpoint file of the run is deleted (the previous one, the one resumed from, one a kill left
        before its tag moved). A kill at any moment leaves the tag on a complete checkpoint. No checkpoint
        is written sooner than ``checkpoint_min_seconds`` after the start or the last one."""
        if time.monotonic() - self._checkpointed_at < self.spec.checkpoint_min_seconds:
            return  # a training this short is cheaper to run again than to checkpoint
        self._checkpointed_at = time.monotonic()
        self.log.losses(state.loss)
        self.run.flush()
        name = checkpoint_name(state.iteration)
        with temp_dir("checkpoint") as tmp:
            self.run.log_artifact(save_checkpoint(tmp / name, state, self.spec.fingerprint), "checkpoints")
        current = f"checkpoints/{name}"
        self.run.set_tags({CHECKPOINT_TAG: current})
        self._keep_only_checkpoint(current)

    def _keep_only_checkpoint(self, current: str) -> None:
        """Delete every checkpoint file of the run but ``current`` (the one the tag points at)."""
        for old in self.run.client.list_artifacts(self.run.run_id, "checkpoints"):
            if old.path != current:
                self.run.delete_artifact(old.path)

    @timing.timed("tracking")
    def finish(self, history: TrainHistory, metrics: dict[str, float], artifacts: Path,
               model: LinearClassifier,
               data: Dataset, note: str) -> None:
        """Send the losses not sent yet, the final metrics besides loss, train_acc and val_acc (test_acc if
        measured, the per-class accuracies), the files in the folder ``artifacts``, the model as an MLflow
        model (unless the training diverged or was stopped early; stopped, its accuracies so far become
        ``*_at_stop``, see :meth:`_MetricLog.stopped`), the one-line ``note``
        (MLflow's description of the run), and end the run FINISHED (FAILED with the reason if the
        training diverged): params, tags and metrics go in one call if they fit."""
        final = {k: v for k, v in metrics.items() if k not in ("loss", "train_acc", "val_acc")}
        self.log.finish(history.loss, final)
        if history.stopped and history.evals:
            self.log.stopped(history.evals[-1])
        self.run.log_artifacts(artifacts)
        tags = {NOTE_TAG: note}
        if history.stopped:  # a pruned trial: its metrics so far, renamed; no model
            tags[STOPPED_TAG] = history.stopped
        elif not history.diverged:
            self.model_uri = log_model(self.uri, self.run.run_id, model, data.raw_images("val", 3),
                                       experiment_id=self.experiment_id, params=self.params)
            tags[MODEL_URI_TAG] = self.model_uri
        self.run.end("FAILED" if history.diverged else "FINISHED", history.diverged, tags)

    def __enter__(self) -> TrackedJob:
        self.run.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.run.__exit__(exc_type, exc, tb)

    def _start(self, data: Dataset, n_threads: int) -> Run:
        spec = self.spec
        tags = {
            FINGERPRINT_TAG: spec.fingerprint,
            ATTEMPT_TAG: 1,
            THREADS_TAG: n_threads,
            DATASET_TAG: data.fingerprint,
            **environment_tags(),
            **spec.tags,
        }
        if not spec.parent_run_id:  # a sweep's children are named apart by what the sweep varies
            self.run_name = unique_run_name(self.store.client, self.experiment_id, self.run_name)
        run = Run.start(self.uri, spec.settings.experiment, self.run_name, parent_run_id=spec.parent_run_id,
                        tags=tags, experiment_id=self.experiment_id)
        try:
            # params are what can change a result; settings that cannot (progress, threads, tracking,
            # resume, checkpoints, cache) are not clutter there
            params = {**spec.params, "n_train": data.X_train.shape[0], "n_val": data.X_val.shape[0],
                      "n_test": data.X_test.shape[0], "dim": data.dim, "num_classes": data.num_classes}
            run.log_params(params)  # buffered: sent with the first metrics, or at the end
            self.params = params
            log_dataset_inputs(run, data)
        except BaseException as e:
            run.__exit__(type(e), e, e.__traceback__)  # ended as a `with` block ends it
            raise
        return run

    def _download_checkpoint(self, run, data: Dataset) -> TrainState:
        """The run's last checkpoint, checked against this training; ValueError (one line) if it is
        missing, unreadable, or unusable in any way (the caller then trains from the start)."""
        path = run.data.tags[CHECKPOINT_TAG]
        with temp_dir("checkpoint") as tmp:
            try:
                local = self.store.client.download_artifacts(run.info.run_id, path, str(tmp))
            except Exception as e:  # a missing or unreadable artifact: train from the start instead
                raise ValueError(f"cannot read checkpoint {path} of run {run.info.run_id} ({e})") from None
            return load_resumable_checkpoint(local, self.spec.fingerprint, dim=data.dim,
                                             num_classes=data.num_classes, dtype=data.X_train.dtype,
                                             num_iters=self.spec.num_iters, optimizer=self.spec.optimizer)


def _check_same_code_and_data(run, data: Dataset) -> None:
    """A checkpoint continues bit-identically only with the code and data that wrote it."""
    tags = run.data.tags
    commit = git_state()[0]
    if tags.get(GIT_COMMIT_TAG, commit) != commit:
        raise ValueError(f"run {run.info.run_id} was trained by commit {tags[GIT_COMMIT_TAG][:12]}, this "
                         f"is {commit[:12]}: its checkpoint is not resumed")
    if tags.get(DATASET_TAG, data.fingerprint) != data.fingerprint:
        raise ValueError(f"run {run.info.run_id} was trained on other data (dataset fingerprint "
                         f"{tags[DATASET_TAG][:12]}): its checkpoint is not resumed")


def log_dataset_inputs(run: Run, data: Dataset) -> None:
    """The run's training and validation data as MLflow dataset inputs (the run list's Dataset column):
    name, source, the dataset fingerprint as digest (not hashed again), the arrays' schema and shape."""
    from mlflow.entities import Dataset as DatasetEntity
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.exceptions import MlflowException

    inputs = []
    for split, context in (("train", "training"), ("val", "validation")):
        X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
        def spec(a, shape):
            return json.dumps([{"type": "tensor", "tensor-spec": {"dtype": str(a.dtype), "shape": shape}}])

        schema = {"mlflow_tensorspec": {"features": spec(X, [-1, X.shape[1]]), "targets": spec(y, [-1])}}
        entity = DatasetEntity(
            name=f"{data.name}/{split}", digest=data.fingerprint[:32],  # MLflow keeps at most 36 chars
            source_type="local", source=json.dumps({"uri": data.source}), schema=json.dumps(schema),
            profile=json.dumps({"num_rows": int(X.shape[0]), "num_features": int(X.shape[1]),
                                "num_classes": data.num_classes}))
        inputs.append(DatasetInput(entity, tags=[InputTag(mlflow_internals.DATASET_CONTEXT_TAG, context)]))
    for attempt in range(3):
        try:
            run.client.log_inputs(run.run_id, datasets=inputs)
            return
        except MlflowException as e:
            # two jobs of a sweep creating the same dataset entry at once: one insert loses; the entry
            # exists now, so logging again links it
            if "UNIQUE constraint failed" not in str(e) and "duplicate key" not in str(e) or attempt == 2:
                raise


FLUSH_EVERY_S = 10.0


def per_class_metrics(metric: str, class_names, values: np.ndarray) -> dict[str, float]:
    """``{"<metric>/<class>": value}`` for each class name and its value (C,); a class with no value
    (NaN: no rows of it in the split) left out. MLflow's metric keys take letters, digits, ``_-. /``:
    other characters of a class name become ``_``."""
    return {f"{metric}/{_NOT_IN_KEY.sub('_', str(name))}": float(v)
            for name, v in zip(class_names, np.asarray(values).tolist(), strict=True) if math.isfinite(v)}


_NOT_IN_KEY = re.compile(r"[^A-Za-z0-9_.\- ]")


class _MetricLog:
    """Feeds a training's metrics to its run: the loss every ``log_every`` iterations, as the mean of that
    window (step = iterations done at its end; the last window may be shorter), and the accuracies
    (step = iterations done) at each evaluation; MLflow is called once per 1000 values. The whole
    per-iteration history goes to the run as an artifact (loss.npy). A resumed run already holds some
    values: those steps are not logged twice."""

    def __init__(self, run: Run, log_every: int, logged: int = 0, evals_logged: int = 0) -> None:
        self.run = run
        self.log_every = log_every
        self.logged = logged  # iterations whose loss the run has (in its windows)
        self.evals_logged = evals_logged  # the run has accuracies up to this iteration

    @classmethod
    def resuming(cls, run: Run, log_every: int) -> _MetricLog:
        def last_step(key: str) -> int:
            return max((m.step for m in run.client.get_metric_history(run.run_id, key)), default=0)

        return cls(run, log_every, last_step("loss"), last_step("val_acc"))

    def on_eval(self, point: EvalPoint, losses: np.ndarray) -> None:
        """The losses and accuracies so far; sent when the last send is FLUSH_EVERY_S old (a long
        training shows its progress, and its heartbeat, while a short one costs one call at its end)."""
        self.losses(losses)
        if point.iteration > self.evals_logged:
            self.run.log_metric("train_acc", point.train_acc, point.iteration)
            self.run.log_metric("val_acc", point.val_acc, point.iteration)
        if time.monotonic() - self.run.flushed_at > FLUSH_EVERY_S:
            self.run.flush()

    def finish(self, losses: np.ndarray, final: dict[str, float]) -> None:
        """Buffer the last window and the ``final`` metrics (test_acc, per-class accuracies) at the last
        step; the run's end sends them."""
        self.losses(losses, final=True)
        for key, value in final.items():
            self.run.log_metric(key, value, len(losses))

    def stopped(self, point: EvalPoint) -> None:
        """A training stopped early (a pruned trial): its last accuracies are no result, so they go as
        ``train_acc_at_stop`` and ``val_acc_at_stop``, and train_acc and val_acc end NaN at that step
        (MLflow sorts NaN after every number: the run never ranks among finished ones by val_acc)."""
        later = int(time.time() * 1000) + 1  # MLflow's latest value: the highest (step, time, value)
        for key, value in (("train_acc", point.train_acc), ("val_acc", point.val_acc)):
            self.run.log_metric(f"{key}_at_stop", value, point.iteration)
            self.run.log_metric(key, math.nan, point.iteration, later)

    def losses(self, losses: np.ndarray, final: bool = False) -> None:
        """Buffer the means of the whole windows of ``losses`` the run does not have yet (with ``final``,
        of the last, shorter one too)."""
        L = self.log_every
        end = len(losses) if final else len(losses) // L * L
        if end <= self.logged:
            return
        starts = np.arange(self.logged, end, L)
        sums = np.add.reduceat(np.asarray(losses[self.logged:end], dtype=np.float64), starts - self.logged)
        counts = np.minimum(starts + L, end) - starts
        for step, mean in zip((starts + counts).tolist(), (sums / counts).tolist(), strict=True):
            self.run.log_metric("loss", mean, step)
        self.logged = end
