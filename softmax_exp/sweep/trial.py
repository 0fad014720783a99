"""A search's job as a trial of its Optuna study: it reports val_acc at every evaluation and stops when
the study's pruner tells it to.

The sweeper (hydra_plugins/softmax_exp_optuna_sweeper) launches trial ``k`` as the sweep's job number
``k``; sweep.json's ``study`` names the storage, the study and its pruner. The job, in whichever process
the launcher runs it, opens the study there and becomes :class:`TrialReporter`, which
:class:`~softmax_exp.job.context.JobContext` asks at each evaluation (``stop_early``). A trial resumed from
a checkpoint reports only the evaluations after the ones its study already has.
"""

from __future__ import annotations

import math
import time

import optuna

from softmax_exp.learn.sgd import EvalPoint
from softmax_exp.sweep.results import StudyRef
from softmax_exp.sweep.study import HEARTBEAT_ATTR, load_study, usable_storage


class TrialReporter:
    """``JobContext.stop_early`` of trial ``number`` of the study ``info`` (sweep.json's ``study``):
    reports val_acc at step = iterations done, renews the trial's heartbeat, and answers
    ``"pruned at iteration k"`` when the pruner says so."""

    def __init__(self, study: StudyRef, number: int, given_storage: str | None = None) -> None:
        self.shared = load_study(study, usable_storage(study.storage, given_storage))
        self.number = number
        self.trial_id = self.shared.trial_id(number)
        # the trial as Study.ask made it: Optuna's Trial over the running trial of the study
        self.trial = optuna.Trial(self.shared.study, self.trial_id)
        reported = self.shared.backend.get_trial(self.trial_id).intermediate_values
        self.last_step = max(reported, default=0)

    def __call__(self, point: EvalPoint) -> str | None:
        if point.iteration <= self.last_step or not math.isfinite(point.val_acc):
            return None
        self.trial.report(point.val_acc, point.iteration)
        self.last_step = point.iteration
        self.shared.backend.set_trial_system_attr(self.trial_id, HEARTBEAT_ATTR, int(time.time()))
        if self.trial.should_prune():
            return f"pruned at iteration {point.iteration}"
        return None
