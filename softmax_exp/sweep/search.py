"""The search loop of the Optuna sweeper: claim a trial of the study, launch it as a job with Hydra's
launcher, tell the study how it ended; until the study holds ``n_trials`` (see softmax_exp.sweep.study).

Up to ``n_jobs`` trials are claimed and launched together (the joblib launcher runs them at once). A
trial's job number is its trial number, so several processes sharing one study and one sweep folder
never share a job folder, and a trial's MLflow run says which trial it is.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from omegaconf import DictConfig, OmegaConf

from softmax_exp.sweep.results import RESULT_FILE, JobResult, SweepInfo
from softmax_exp.sweep.study import (
    Claimed,
    StudySettings,
    absolute_storage,
    claim_trial,
    default_storage,
    load_study,
    record_result,
    search_space,
    stale_seconds,
    trial_overrides,
    usable_storage,
)
from softmax_exp.util.atomic import atomic_path
from softmax_exp.util.secrets import without_password

log = logging.getLogger(__name__)


def run_search(launcher: Any, config: DictConfig, arguments: Sequence[str]) -> list[JobReturn]:
    """Run the search of Hydra's ``config`` with ``launcher``; ``arguments``: the command line's
    overrides. Returns the JobReturns of the trials this process ran."""
    settings = StudySettings.of(config.hydra.sweeper)
    sweep_dir = Path(config.hydra.sweep.dir)
    info = SweepInfo.read(sweep_dir)  # the sweep callback's: it chose the storage (a resumed search's)
    if info is not None and info.study is not None:
        storage = usable_storage(info.study.storage, settings.storage)
    else:
        storage = absolute_storage(settings.storage) if settings.storage else default_storage(sweep_dir)
    space, fixed = search_space(settings.params, arguments)
    shared = load_study(settings, storage, create=True, space=space)
    save_multirun_config(config, sweep_dir)
    stale_s = stale_seconds(config)
    returns: list[JobReturn] = []
    while True:
        claimed: list[Claimed] = []
        while len(claimed) < settings.n_jobs:
            c = claim_trial(shared, settings, space, stale_s)
            if c is None:
                break
            if c.resumed:
                log.info(f"trial {c.number + 1}/{settings.n_trials}: its process died; going on with it "
                         f"({_params(c)})")
            claimed.append(c)
        if not claimed:
            break
        for group in consecutive(claimed):
            jobs = [tuple(trial_overrides(c.trial.params, fixed)) for c in group]
            for c, ret in zip(group, launcher.launch(jobs, initial_job_idx=group[0].number), strict=True):
                record_result(shared, c.number, job_result(ret, c))
                returns.append(ret)
    done = len(shared.study.get_trials(deepcopy=False))
    log.info(f"study {shared.name!r}: {done} of {settings.n_trials} trials"
             + (f"; this process ran {len(returns)}" if len(returns) != done else ""))
    return returns


def save_multirun_config(config: DictConfig, sweep_dir: Path) -> None:
    """Write the search's config (the sweeper's settings included) to ``multirun.yaml`` in the sweep folder,
    as Hydra's basic sweeper does for a grid, without any URL's password; whole or not at all, as several
    workers may write it."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(sweep_dir / "multirun.yaml", sync=False) as tmp:
        tmp.write_text(without_password(OmegaConf.to_yaml(config)))


def consecutive(claimed: Sequence[Claimed]) -> list[list[Claimed]]:
    """The claimed trials in runs of consecutive numbers (one launch each: a launch numbers its jobs
    from its first)."""
    groups: list[list[Claimed]] = []
    for c in sorted(claimed, key=lambda c: c.number):
        if groups and groups[-1][-1].number + 1 == c.number:
            groups[-1].append(c)
        else:
            groups.append([c])
    return groups


def job_result(ret: JobReturn, claimed: Claimed) -> JobResult:
    """How a trial's job ended: its result.json, or (none: the job crashed) FAILED with the launcher's
    reason."""
    output_dir = ret.hydra_cfg.hydra.runtime.output_dir if ret.hydra_cfg is not None else None
    path = Path(output_dir or "") / RESULT_FILE
    if output_dir and path.is_file():
        data = json.loads(path.read_text())
        if data.get("job") == claimed.number:
            return JobResult.from_dict(data)
    params = claimed.trial.params
    return JobResult(claimed.number, f"trial {claimed.number}", "FAILED", float(params.get("lr", math.nan)),
                     float(params.get("reg", math.nan)), reason=f"the job left no result ({ret.status.name}: "
                                                              f"{ret._return_value})")


def _params(c: Claimed) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in c.trial.params.items())
