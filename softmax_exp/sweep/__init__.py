"""A multirun as one sweep: the Hydra callback that opens its parent MLflow run and sums it up
(``callback``), what each job leaves (``job``), and the files the two share (``results``: sweep.json,
result.json, summary.csv, the course's table). A search's Optuna study: ``study`` (its settings, storage,
space and trials), ``search`` (the sweeper's loop) and ``trial`` (a job's reports to its trial)."""

from softmax_exp.sweep.callback import SweepCallback, abort_sweeps, discard_unused_parents, sweep_failed
from softmax_exp.sweep.job import run_job
from softmax_exp.sweep.results import JobResult, SweepInfo

__all__ = ["JobResult", "SweepCallback", "SweepInfo", "abort_sweeps", "discard_unused_parents", "run_job",
           "sweep_failed"]
