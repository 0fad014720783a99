"""One job of a sweep, in whichever process the launcher runs it: it trains (or reuses) and leaves its
``result.json``, whatever happens to it, so that one failing job never stops the sweep."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf.errors import OmegaConfBaseException

from softmax_exp.config import to_config
from softmax_exp.config.overrides import run_name
from softmax_exp.job.context import JobContext
from softmax_exp.job.fit import Training
from softmax_exp.sweep.results import JobResult, SweepInfo, write_result
from softmax_exp.tracking.tags import TRIAL_TAG

log = logging.getLogger(__name__)


def run_job(cfg: Any, job: JobContext, info: SweepInfo | None) -> float:
    """Train the job ``job`` of the sweep described by ``info`` (sweep.json; None without the sweep
    callback) from Hydra's config ``cfg``; return its val_acc, NaN if it failed (what sweepers read).

    A bad config, bad data or a divergence fail this job only: its run (if any) ends FAILED, its
    result.json says why, and a line on stderr names it. Ctrl-C records it KILLED and goes on up.
    """
    num = job.sweep.job_num if job.sweep is not None else 0
    lr, reg = _number(cfg, "lr"), _number(cfg, "reg")
    name = run_name(job.overrides, lr, reg, job.name_keys)
    search = info is not None and info.study is not None
    what, shown = ("trial", num) if search else ("job", num + 1)  # a trial by its Optuna number
    if info is not None and not search:  # a search's sweeper says each trial's line
        log.info(f"{what} {shown}/{info.num_jobs or '?'}: {name}")
    result = JobResult(num, name, "FAILED", lr, reg, output_dir=str(job.output_dir),
                       sweep_id=info.sweep_id if info is not None else "", model=_choice(cfg, "model"),
                       features=_choice(cfg, "features"))
    training: Training | None = None
    try:
        config = to_config(cfg)
        result = dataclasses.replace(result, register_model=config.tracking.register_model or "")
        if search:  # a trial of a search: reports to it, may be pruned
            from softmax_exp.sweep.trial import TrialReporter  # optuna (0.3 s): only in a search

            reporter = TrialReporter(info.study, num, _given_storage())
            job = dataclasses.replace(job, stop_early=reporter, tags={**job.tags, TRIAL_TAG: str(num)})
        training = Training(config, job)
        outcome = training.run()
        metrics = {k: v for k, v in outcome.metrics.items() if k in ("train_acc", "val_acc", "test_acc")}
        result = dataclasses.replace(
            result, **metrics, status=outcome.status, run_id=outcome.run_id or "",
            reason=outcome.history.diverged or "", note=outcome.note, run_name=outcome.run_name or name,
            model_uri=outcome.model_uri or "", iterations=len(outcome.history.loss))
        if outcome.note:
            log.info(f"{what} {shown}: {outcome.note}")
    except KeyboardInterrupt:
        result = dataclasses.replace(result, status="KILLED", reason="interrupted", **_run_of(training))
        raise
    except Exception as e:  # one failing job never stops the sweep
        result = dataclasses.replace(result, reason=f"{type(e).__name__}: {e}", **_run_of(training))
    finally:
        write_result(job.output_dir, result)
    if result.status == "PRUNED":
        return result.val_acc
    if result.status != "FINISHED":
        log.warning(f"{what} {shown} {result.status}: {result.reason}")
        return math.nan
    return result.val_acc


def _given_storage() -> str | None:
    """The search's storage as this job's command gave it (``hydra.sweeper.storage``, a password in it
    included): sweep.json records it without one."""
    return HydraConfig.get().sweeper.get("storage") if HydraConfig.initialized() else None


def _run_of(training: Training | None) -> dict[str, str]:
    """The run (id and name) a training that raised had, for its result."""
    if training is None:
        return {}
    return {"run_id": training.run_id or "", "run_name": training.run_name}


def _choice(cfg: Any, group: str) -> str:
    """The job's choice of a config group (``model.name``), for its result; "?" when it does not resolve
    (the job then fails on it)."""
    try:
        return str(cfg[group].name)
    except (OmegaConfBaseException, AttributeError, KeyError):
        return "?"


def _number(cfg: Any, key: str) -> float:
    """``cfg[key]`` as a float for a job's name; NaN when it does not resolve (the job then fails on it
    with its own line)."""
    try:
        return float(cfg[key])
    except (OmegaConfBaseException, TypeError, ValueError):
        return math.nan
