"""What one training job is handed (:class:`JobContext`), what it gives back (:class:`Outcome`), and how it
can fail (:class:`TrainingDiverged`).

A JobContext is an input only: nothing writes into it. What a job learns on its way (its run's name,
which the store may suffix or take from an earlier run, and its run id) comes back in the Outcome, or,
while it runs, from the :class:`softmax_exp.job.fit.Training` running it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from softmax_exp.learn.model import LinearClassifier
from softmax_exp.learn.sgd import EvalPoint, TrainHistory


class TrainingDiverged(RuntimeError):
    """The loss (or W) became NaN or inf; training stopped early."""


@dataclass(frozen=True)
class SweepRef:
    """The sweep a job belongs to (its sweep.json): the parent MLflow run and its experiment, the sweep's
    id, and the job's number in it."""

    parent_run_id: str | None
    experiment_id: str | None
    sweep_id: str
    job_num: int = 0


@dataclass(frozen=True)
class JobContext:
    """Where one training sits.

    overrides : the command line's overrides (a run is named by those that can change a result)
    output_dir : the job's folder (its artifacts/ and model.npz), None for none
    threads : the Numba threads its launcher gives it (None: all cores)
    name_keys : the keys a sweep varies: the run's name shows only those (None: every override)
    sweep : the sweep it is a job of, None for a single training
    stop_early : asked at each evaluation before the last; a reason (a search's pruner: see
        softmax_exp.sweep.trial) ends a healthy training there, its run FINISHED with the metrics so far,
        tagged, and the job's status PRUNED
    tags : more tags on the run it starts (a trial's number)
    """

    overrides: tuple[str, ...] = ()
    output_dir: Path | None = None
    threads: int | None = None
    name_keys: tuple[str, ...] | None = None
    sweep: SweepRef | None = None
    stop_early: Callable[[EvalPoint], str | None] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a training job produced: the model, its history, final metrics and its MLflow run.

    A job of a sweep that had FINISHED before is not trained again: its model is None, its history
    empty, its metrics and run are the earlier ones, and ``note`` says so (as it says a resume). status
    is FINISHED, FAILED (diverged) or PRUNED (stopped early by ``JobContext.stop_early``: the note says
    at which iteration). run_name is the run's name as the store has it (None untracked).
    """

    model: LinearClassifier | None
    history: TrainHistory
    metrics: dict[str, float]
    run_id: str | None
    status: str
    note: str = ""
    experiment_id: str | None = None
    model_uri: str | None = None  # the logged MLflow model
    run_name: str | None = None
