"""The search loop of the Optuna sweeper: claim a trial of the study, launch it as a job with Hydra's
launcher, tell the study how it ended; until the study holds ``n_trials`` (see softmax_exp.sweep.study).

Up to ``n_jobs`` trials are claimed and launched together (the joblib launcher runs them at once). A
trial's job number is its trial number, so several processes sharing one study and one sweep folder
never share a job folder, and a trial's MLflow run says which trial it is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from softmax_exp.sweep.results import RESULT_FILE, JobResult, SweepInfo
from softmax_exp.sweep.study import (
    Claimed,
    SharedStudy,
    StudySettings,
    absolute_storage,
    claim_trial,
    default_storage,
    join_study,
    keep_result,
    load_study,
    search_space,
    stale_seconds,
    tell,
    trial_overrides,
    usable_storage,
)
from softmax_exp.util.atomic import atomic_path
from softmax_exp.util.secrets import without_password

log = logging.getLogger(__name__)


def run_search(launcher: Any, config: DictConfig, arguments: Sequence[str]) -> list[JobReturn]:
    """Run the search of Hydra's ``config`` with ``launcher``; ``arguments``: the command line's
    overrides. Returns the JobReturns of the trials this process ran.

    A trial's value is what its task returned (a float; a sequence of them for several directions). A
    task that raised fails its trial; once more than ``max_failure_rate`` of a batch's trials failed, the
    search stops with that error (after one line saying so). A task that returned NaN (a softmax_exp job
    that diverged or failed) fails its trial without stopping the search; one that raised
    ``optuna.TrialPruned`` or that its pruner stopped (a softmax_exp job's result.json says PRUNED) is
    PRUNED."""
    settings = StudySettings.of(config.hydra.sweeper, str(config.hydra.job.name))
    sweep_dir = Path(config.hydra.sweep.dir)
    info = SweepInfo.read(sweep_dir)  # the sweep callback's: it chose the storage (a resumed search's)
    if info is not None and info.study is not None:
        storage = usable_storage(info.study.storage, settings.storage)
    else:
        storage = absolute_storage(settings.storage) if settings.storage else default_storage(sweep_dir)
    space, fixed = search_space(settings.params, arguments)
    extend = settings.search_extender()
    n_trials = settings.planned_trials(space)
    shared = load_study(settings, storage, create=True, space=space)
    join_study(shared, settings, space)
    if info is not None and info.study is not None:  # a softmax_exp search: its value is val_acc
        name_objective(shared.study, "val_acc")
    save_multirun_config(config, sweep_dir)
    sampler = type(shared.study.sampler).__name__
    log.info(f"study {shared.name!r} in {without_password(storage)}: {sampler}, "
             f"{' and '.join(settings.directions)}, {n_trials} trials"
             + (f" (the grid's {n_trials} points)" if n_trials < settings.n_trials else ""))
    stale_s = stale_seconds(config)
    returns: list[JobReturn] = []
    while True:
        claimed: list[Claimed] = []
        while len(claimed) < settings.n_jobs:
            c = claim_trial(shared, n_trials, space, stale_s)
            if c is None:
                break
            if c.resumed:
                log.info(f"trial {c.number}: its process died; going on with it ({_params(c)})")
            elif extend is not None:
                extend(config, c.trial)  # more parameters, suggested by the app's function
            claimed.append(c)
        if not claimed:
            break
        failures: list[tuple[Claimed, JobReturn]] = []
        for group in consecutive(claimed):
            jobs = [tuple(trial_overrides(c.trial.params, fixed)) for c in group]
            for c in group:  # one line a trial, numbered as Optuna and Hydra's job folder number it
                log.info(f"trial {c.number} of {n_trials}: {_params(c)}")
            with quiet_launcher():
                launched = launcher.launch(jobs, initial_job_idx=group[0].number)
            for c, ret in zip(group, launched, strict=True):
                if not tell_outcome(shared, c, ret, len(settings.directions)):
                    failures.append((c, ret))
                returns.append(ret)
        if failures and len(failures) / len(claimed) > settings.max_failure_rate:
            c, ret = failures[0]
            log.error(f"the search stops: {len(failures)} of {len(claimed)} trials failed, more than "
                      f"hydra.sweeper.max_failure_rate={settings.max_failure_rate:g} allows; "
                      f"trial {c.number}: {_reason(ret)}")
            raise_failure(ret)
    done = len(shared.study.get_trials(deepcopy=False))
    log.info(f"study {shared.name!r}: {done} of {n_trials} trials"
             + (f"; this process ran {len(returns)}" if len(returns) != done else ""))
    write_optimization_results(shared.study, sweep_dir)
    return returns


# the launchers' own lines per batch and job ("Launching 2 jobs locally", "#3 : lr=0.0123456789..."): the
# search's line per trial says it once
LAUNCHER_LOGGERS = ("hydra._internal.core_plugins.basic_launcher",
                    "hydra_plugins.hydra_joblib_launcher._core",
                    "hydra_plugins.hydra_joblib_launcher.joblib_launcher",
                    "hydra_plugins.hydra_submitit_launcher.submitit_launcher")


@contextlib.contextmanager
def quiet_launcher() -> Iterator[None]:
    """The launchers' info lines off while a search launches (their warnings and errors stay)."""
    loggers = [logging.getLogger(name) for name in LAUNCHER_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def name_objective(study: optuna.Study, name: str) -> None:
    """Name the study's value (optuna-dashboard shows it instead of "Objective 0")."""
    if study.metric_names != [name]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([name])


def tell_outcome(shared: SharedStudy, claimed: Claimed, ret: JobReturn, n_values: int) -> bool:
    """Tell the study how a trial's job ended; False if it failed in a way that counts against
    ``max_failure_rate`` (its task raised, or returned what is not a value)."""
    result = project_result(ret, claimed)
    if result is not None:
        keep_result(shared, claimed.number, result)
    if ret.status == JobStatus.FAILED:
        pruned = isinstance(ret._return_value, optuna.TrialPruned)
        tell(shared, claimed.number, state=TrialState.PRUNED if pruned else TrialState.FAIL)
        return pruned
    if result is not None and result.status == "PRUNED":
        tell(shared, claimed.number, state=TrialState.PRUNED)
        return True
    try:
        values = task_values(ret.return_value, n_values)
    except ValueError as e:
        ret.status, ret._return_value = JobStatus.FAILED, e  # raised as the job's error if the search stops
        tell(shared, claimed.number, state=TrialState.FAIL)
        return False
    tell(shared, claimed.number, values)
    return True


def task_values(value: Any, n_values: int) -> list[float]:
    """A task's return value as the trial's values: a float (one direction) or a sequence of ``n_values``
    floats; ValueError naming what was returned otherwise."""
    try:
        if n_values == 1:
            return [float(value)]
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        what = "a float" if n_values == 1 else f"a list or tuple of {n_values} floats"
        raise ValueError(f"the task must return {what} (the trial's value"
                         f"{'s' if n_values > 1 else ''}); it returned {value!r}") from None
    if len(values) != n_values:
        raise ValueError(f"the task returned {len(values)} values for {n_values} directions "
                         f"(hydra.sweeper.direction)")
    return values


def raise_failure(ret: JobReturn) -> None:
    """Raise a failed job's error as Hydra does for a failed job of a sweep (JobReturn.return_value)."""
    ret.return_value  # noqa: B018 (JobReturn raises its job's exception, with its traceback)


def write_optimization_results(study: optuna.Study, sweep_dir: Path) -> None:
    """``optimization_results.yaml`` in the sweep folder, as hydra-optuna-sweeper writes it: ``name``,
    ``best_params`` and ``best_value`` (several directions: ``solutions``, the Pareto front's params and
    values), over every trial of the study; none (and one line) when no trial completed."""
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        log.warning(f"study {study.study_name!r}: no trial completed, so no best and no "
                    f"optimization_results.yaml")
        return
    if len(study.directions) == 1:
        best = study.best_trial
        results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
        name = (study.metric_names or ["value"])[0]
        log.info(f"best {name} {best.value:g}: {_shown(best.params)} (trial {best.number})")
    else:
        results = {"name": "optuna", "solutions": [{"params": t.params, "values": t.values}
                                                   for t in study.best_trials]}
        log.info(f"{len(study.best_trials)} Pareto-optimal trials: "
                 + "; ".join(f"{t.values} at {_shown(t.params)}" for t in study.best_trials))
    with atomic_path(sweep_dir / "optimization_results.yaml", sync=False) as tmp:
        OmegaConf.save(OmegaConf.create(results), tmp)


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


def project_result(ret: JobReturn, claimed: Claimed) -> JobResult | None:
    """A softmax_exp job's result.json for this trial; for a job that raised, a FAILED row with its error;
    None for another app's job that ended."""
    output_dir = ret.hydra_cfg.hydra.runtime.output_dir if ret.hydra_cfg is not None else None
    path = Path(output_dir or "") / RESULT_FILE
    if output_dir and path.is_file():
        data = json.loads(path.read_text())
        if data.get("job") == claimed.number:
            return JobResult.from_dict(data)
    if ret.status != JobStatus.FAILED:
        return None
    params = claimed.trial.params
    return JobResult(claimed.number, f"trial {claimed.number}", "FAILED", _float(params.get("lr")),
                     _float(params.get("reg")), reason=_reason(ret))


def _reason(ret: JobReturn) -> str:
    e = ret._return_value
    text = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {text}" if isinstance(e, BaseException) else f"{ret.status.name}: {e!r}"


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _shown(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "-"


def _params(c: Claimed) -> str:
    return _shown(c.trial.params)
