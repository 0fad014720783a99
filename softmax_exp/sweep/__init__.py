"""A multirun as one sweep: the Hydra callback that opens its parent MLflow run and sums it up
(``callback``), what each job leaves (``job``), and the files the two share (``results``: sweep.json,
result.json, summary.csv, the course's table)."""

from softmax_exp.sweep.callback import SweepCallback, abort_sweeps, discard_unused_parents, sweep_failed
from softmax_exp.sweep.job import run_job
from softmax_exp.sweep.results import JobResult, read_sweep_info

__all__ = ["JobResult", "SweepCallback", "abort_sweeps", "discard_unused_parents", "read_sweep_info",
           "run_job", "sweep_failed"]
