"""What one training job is, for everything that runs or tracks one: where it sits (:class:`JobContext`),
what it produced (:class:`Outcome`), and how it can fail (:class:`TrainingDiverged`).

Neutral ground: :mod:`softmax_exp.job.fit` runs a job, :mod:`softmax_exp.tracking` records it, the sweep and
the entrypoint launch it; none of them needs another's module for these types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from softmax_exp.learn.model import Softmax
from softmax_exp.learn.sgd import EvalPoint, TrainHistory


class TrainingDiverged(RuntimeError):
    """The loss (or W) became NaN or inf; training stopped early."""


@dataclass
class JobContext:
    """Where one training sits: its run name and overrides, where its files go, its sweep if any, and
    the Numba threads its launcher gives it (None: all cores). ``stop_early``, asked at each evaluation
    before the last, may end a healthy training there with a reason (a search's pruner: see
    softmax_exp.sweep.trial); its run then ends FINISHED with the metrics so far, tagged, and the job's
    status is PRUNED."""

    run_name: str | None = None
    overrides: list[str] = field(default_factory=list)
    output_dir: Path | None = None
    parent_run_id: str | None = None
    experiment_id: str | None = None
    sweep_id: str | None = None
    job_num: int = 0
    threads: int | None = None
    run_id: str | None = None  # its MLflow run, once it has one (set by the tracked job)
    stop_early: Callable[[EvalPoint], str | None] | None = None
    extra_tags: dict[str, str] = field(default_factory=dict)  # on the run it starts (a trial's number)


@dataclass
class Outcome:
    """What a training job produced: the model, its history, final metrics and the MLflow run id.

    A job of a sweep that had FINISHED before is not trained again: its model is None, its history
    empty, its metrics and run are the earlier ones, and ``note`` says so (as it says a resume). status
    is FINISHED, FAILED (diverged) or PRUNED (stopped early by ``JobContext.stop_early``: the note says
    at which iteration).
    """

    model: Softmax | None
    history: TrainHistory
    metrics: dict[str, float]
    run_id: str | None
    status: str
    note: str = ""
    experiment_id: str | None = None
    model_uri: str | None = None  # the logged MLflow model
