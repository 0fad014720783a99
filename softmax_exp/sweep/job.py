"""One job of a sweep, in whichever process the launcher runs it: it trains (or reuses) and leaves its
``result.json``, whatever happens to it, so that one failing job never stops the sweep."""

from __future__ import annotations

import logging
import math
from typing import Any

from softmax_exp.config import to_config
from softmax_exp.job.context import JobContext
from softmax_exp.job.fit import fit
from softmax_exp.sweep.results import JobResult, write_result
from softmax_exp.tracking.tags import TRIAL_TAG

log = logging.getLogger(__name__)


def run_job(cfg: Any, job: JobContext, info: dict[str, Any] | None) -> float:
    """Train the job ``job`` of the sweep described by ``info`` (sweep.json; None without the sweep
    callback) from Hydra's config ``cfg``; return its val_acc, NaN if it failed (what sweepers read).

    A bad config, bad data or a divergence fail this job only: its run (if any) ends FAILED, its
    result.json says why, and a line on stderr names it. Ctrl-C records it KILLED and goes on up.
    """
    what = "trial" if info is not None and info.get("study") else "job"
    if info is not None:
        job.parent_run_id, job.experiment_id = info["parent_run_id"], info["experiment_id"]
        job.sweep_id = info["sweep_id"]
        log.info(f"{what} {job.job_num + 1}/{info['num_jobs'] or '?'}: {job.run_name}")
    result: dict[str, Any] = dict(job=job.job_num, run_name=job.run_name, status="FAILED", lr=math.nan,
                                  reg=math.nan, output_dir=str(job.output_dir), sweep_id=job.sweep_id or "")
    try:
        result.update(lr=float(cfg.lr), reg=float(cfg.reg))
        config = to_config(cfg)
        if info is not None and info.get("study"):  # a trial of a search: reports to it, may be pruned
            from softmax_exp.sweep.trial import TrialReporter  # optuna (0.3 s): only in a search

            job.stop_early = TrialReporter(info["study"], job.job_num)
            job.extra_tags[TRIAL_TAG] = str(job.job_num)
        outcome = fit(config, job)
        result.update(outcome.metrics, status=outcome.status, run_id=outcome.run_id or "",
                      reason=outcome.history.diverged or "", note=outcome.note, run_name=job.run_name,
                      model_uri=outcome.model_uri or "", iterations=len(outcome.history.loss))
        if outcome.note:
            log.info(f"{what} {job.job_num + 1}: {outcome.note}")
    except KeyboardInterrupt:
        result.update(status="KILLED", reason="interrupted", run_id=job.run_id or "")
        raise
    except Exception as e:  # one failing job never stops the sweep
        result.update(reason=f"{type(e).__name__}: {e}", run_id=job.run_id or "")
    finally:
        result.pop("loss", None)
        write_result(job.output_dir, JobResult(**result))
    if result["status"] == "PRUNED":
        return float(result.get("val_acc", math.nan))
    if result["status"] != "FINISHED":
        log.warning(f"job {job.job_num + 1} {result['status']}: {result['reason']}")
        return math.nan
    return float(result.get("val_acc", math.nan))
