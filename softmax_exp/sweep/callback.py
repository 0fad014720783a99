"""The Hydra callback that makes a multirun one sweep: a parent MLflow run, a summary, an exit status.

``on_multirun_start`` (main process, before any job) checks the config and the data every job shares,
opens the parent run and writes ``sweep.json`` into the sweep directory, where every job, in this process
or a joblib worker, finds it: a sweep that cannot run (bad config, no data, no tracking server) stops
there, in one line, before any job. ``on_multirun_end`` (main process, after all jobs) gathers the jobs'
``result.json`` files, writes ``summary.csv`` and ``val_acc_heatmap.png``, logs the course's table,
registers the best job's model, closes the parent run FINISHED or FAILED with a note summing the sweep up,
says where it all went, and records the failures so that the entrypoint (softmax_exp.train) exits non-zero.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import logging
import math
import os
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from softmax_exp.config import Config, ConfigError, to_config
from softmax_exp.config.fingerprints import result_config, sweep_fingerprint
from softmax_exp.config.hydra_internals import split_sweep_arguments
from softmax_exp.config.overrides import override_key, task_overrides
from softmax_exp.config.schema import GROUP_KEYS
from softmax_exp.data import DataError, check_dataset, load_dataset
from softmax_exp.plots.heatmap import save_val_acc_heatmap_png
from softmax_exp.sweep import results
from softmax_exp.sweep.results import StudyRef, SweepInfo
from softmax_exp.tracking import resume, tags, views
from softmax_exp.tracking.evaluation import evaluate_model
from softmax_exp.tracking.links import experiment_link, run_link
from softmax_exp.tracking.owners import is_stale
from softmax_exp.tracking.provenance import environment_tags
from softmax_exp.tracking.registry import register
from softmax_exp.tracking.run import Run, unique_run_name
from softmax_exp.tracking.store import Store, TrackingError, child_runs
from softmax_exp.tracking.tags import FAILURE_TAG
from softmax_exp.util import timing
from softmax_exp.util.secrets import masked, without_password

if TYPE_CHECKING:
    from softmax_exp.sweep.study import StudySettings

log = logging.getLogger(__name__)

# What went wrong in the sweeps of this process; the entrypoint exits non-zero if anything did.
FAILED_JOBS: list[results.JobResult] = []
ERRORS: list[str] = []  # the callback's own failures (Hydra would turn them into mere warnings)
_OPEN: list[SweepCallback] = []
ELECTION_WAIT_S = 0.25  # how long a new parent run waits before it looks for an older one of its sweep


def sweep_failed() -> bool:
    """Whether a job of a sweep, or the sweep's bookkeeping, failed in this process."""
    return bool(FAILED_JOBS or ERRORS)


def _recorded(method):
    """Record an exception of a callback method in ERRORS and print it in one line (Hydra would only
    warn). A sweep that cannot start (a bad config, no data, a tracking server that does not answer)
    exits 2 before any job."""

    @functools.wraps(method)
    def wrapper(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            method(self, config, **kwargs)
        except Exception as e:
            ERRORS.append(f"{method.__name__}: {type(e).__name__}: {e}")
            if isinstance(e, (ConfigError, DataError, TrackingError)):
                print(masked(f"error: {e}"), file=sys.stderr, flush=True)
            else:
                first = (str(e).strip().splitlines() or [""])[0][:300]
                print(masked(f"error: the sweep's {method.__name__} failed: {type(e).__name__}: {first} "
                             f"(its traceback: {save_traceback(e)})"), file=sys.stderr, flush=True)
            if method.__name__ == "on_multirun_start":
                self._abandon(started=False)
                raise SystemExit(2) from None

    return wrapper


class SweepCallback(Callback):
    """Parent run, summary and exit status of a multirun (configured under ``hydra.callbacks``)."""

    def __init__(self) -> None:
        self._parent = None  # tracking.Run of the open sweep, in the main process only
        self._reopened: tuple | None = None  # an earlier parent's status, end time and number of children
        self._sweep_dir: str | None = None
        _OPEN.append(self)

    @_recorded
    @timing.timed("tracking")
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        self._sweep_dir = str(sweep_dir)
        shared = to_config(config)  # the config every job starts from, checked before any job
        with timing.section("data"):
            check_dataset(shared.dataset, shared.features)  # no data: one line now, not a failure per job
        search, space = _search_settings(config)  # a search's bad settings: one line, before any run
        keys = sweep_keys(config)
        num_jobs = count_jobs(config) if search is None else search.planned_trials(space)
        name = (f"search {' x '.join(keys)} ({num_jobs} trials{_pruning(search)})" if search is not None else
                f"sweep {' x '.join(keys) or 'of jobs'} ({num_jobs or '?'} jobs)")
        command = without_password(" ".join(task_overrides(config.hydra)))  # (a tracking URL's)
        info = SweepInfo(uuid.uuid4().hex, name, command, num_jobs, tuple(keys), fingerprint(config, shared))
        storage = _explicit_storage(search)
        if storage is not None:  # a storage that does not open stops the search before its parent run
            _study().load_study(search, storage, create=True, space=space)
        if shared.tracking.enabled:
            info = self._open_parent(shared, info, sweep_dir, swept_values(config), search, storage, space)
        elif search is not None:
            storage = storage or _study().default_storage(sweep_dir)
            _study().load_study(search, storage, create=True, space=space)
            info = dataclasses.replace(info, study=search.as_info(storage))
        info.write(sweep_dir)

    def _open_parent(self, config: Config, info: SweepInfo, sweep_dir: Path, swept: dict[str, str],
                     search: StudySettings | None = None, storage: str | None = None,
                     space: dict[str, Any] | None = None) -> SweepInfo:
        """The sweep's parent run: with ``resume``, the one of an earlier invocation of the same sweep
        (reopened; its stale children marked KILLED), else a new one. Two invocations starting at once
        both create one, then keep the older and trash their own. A search's parent links its study
        (tags, without a password): without an explicit storage, the study of the parent it goes on with,
        else a journal file in this sweep folder; the study is opened (and must be this search's) before
        any run is made or reopened. Returns ``info`` with the parent, its store and its view filled in."""
        atexit.register(self._abandon)  # whatever happens next, the parent is never left RUNNING
        tcfg = config.tracking
        store = Store.open(tcfg)
        uri, client, exp_id = store.uri, store.client, store.experiment_id
        fp = info.fingerprint
        earlier = resume.sweep_parents(client, exp_id, fp)
        if earlier and not config.resume:  # a forced rerun: the old sweep keeps its runs, not the name
            for run in earlier:
                client.set_tag(run.info.run_id, tags.SUPERSEDED_TAG, "a rerun with resume=false")
                client.delete_tag(run.info.run_id, tags.SWEEP_FINGERPRINT_TAG)
            earlier = []
        stale_s = 60.0 * tcfg.stale_after_min

        def study_of(parent) -> str | None:  # the storage of the search's study, opened and checked
            if search is None:
                return None
            found = storage or (_study().usable_storage(parent.data.tags[tags.STUDY_STORAGE_TAG], None)
                                if parent is not None and tags.STUDY_STORAGE_TAG in parent.data.tags
                                else _study().default_storage(sweep_dir))
            _study().load_study(search, found, create=True, space=space)
            return found

        study_storage = study_of(earlier[0] if earlier else None)
        study_tags = {} if search is None else {
            tags.STUDY_STORAGE_TAG: _study().recorded_storage(study_storage),
            tags.STUDY_NAME_TAG: search.study_name}
        if not earlier:
            mine = Run.start(
                uri, tcfg.experiment, unique_run_name(client, exp_id, info.name), experiment_id=exp_id,
                tags={tags.SWEEP_DIR_TAG: str(sweep_dir.resolve()), tags.SWEEP_FINGERPRINT_TAG: fp,
                      tags.NUM_JOBS_TAG: info.num_jobs, **environment_tags(), **study_tags,
                      tags.NOTE_TAG: f"`python -m softmax_exp.train -m {info.command}`: running"},
            )
            # Two invocations starting together elect the oldest parent (ties: the smaller run id). Created
            # in the same millisecond, each could look before the other's run is committed and both win:
            # looking a moment later, both see both.
            time.sleep(ELECTION_WAIT_S)
            first = resume.sweep_parents(client, exp_id, fp)[0]
            if first.info.run_id == mine.run_id:
                self._parent = mine
                self._parent.log_params({**_shared_params(config, info.sweep_keys), **swept})
            else:  # another invocation of this sweep got there first
                mine.end("KILLED", f"duplicate parent of sweep {fp}; the sweep uses {first.info.run_id}")
                client.delete_run(mine.run_id)
                earlier = [first]
                study_storage = study_of(first)
                if search is not None:
                    study_tags[tags.STUDY_STORAGE_TAG] = _study().recorded_storage(study_storage)
        if earlier:
            parent = earlier[0]
            if is_stale(parent, stale_s):
                parent = resume.mark_killed(client, parent)
            killed = resume.mark_stale_children(client, parent.info.run_id, stale_s)
            children = len(child_runs(client, parent.info.run_id))
            self._reopened = (parent.info.status, parent.info.end_time, children)  # put back if no job runs
            self._parent = Run.reopen(uri, parent.info.run_id,
                                      {tags.SWEEP_DIR_TAG: str(sweep_dir.resolve()), **study_tags})
            log.info(f"{parent.info.run_name}: going on with parent run {parent.info.run_id}"
                     + (f"; {len(killed)} run(s) of a dead process marked KILLED" if killed else ""))
        view = _save_views(client, exp_id, self._parent.run_id, info.name, info.sweep_keys, config.eval_test,
                           search is not None and search.pruner != "none")
        study = search.as_info(study_storage) if search is not None else None
        return dataclasses.replace(info, parent_run_id=self._parent.run_id, view=view,
                                   tracking_uri=without_password(uri), experiment_id=exp_id,
                                   register_model=tcfg.register_model, study=study)

    @_recorded
    @timing.timed("tracking")
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        info = SweepInfo.read(sweep_dir)
        if info is None:
            return
        if info.study is not None:  # a search: every trial of its study, whichever process ran it
            study = _study()
            storage = study.usable_storage(info.study.storage, config.hydra.sweeper.get("storage"))
            jobs = study.study_results(study.load_study(info.study, storage), study.stale_seconds(config))
        else:
            jobs = results.collect_results(sweep_dir, info.sweep_id)
        summary = results.write_summary_csv(sweep_dir / results.SUMMARY_FILE, jobs)
        pruned = [r.status == "PRUNED" for r in jobs]
        heatmap = None
        if jobs:
            with timing.section("pictures"):
                what = (f"{len(jobs)} trials, {sum(pruned)} pruned" if info.study is not None else
                        f"{len(jobs)} jobs")
                heatmap = save_val_acc_heatmap_png(
                    sweep_dir / results.HEATMAP_FILE, [r.lr for r in jobs], [r.reg for r in jobs],
                    [math.nan if r.failed else r.val_acc for r in jobs],  # a diverged job's last val_acc
                    title=f"val_acc over lr x reg ({what})", pruned=pruned,  # is no result: a failed cell
                    panels=[results.variant_of(r) for r in jobs])
        log.info(results.format_table(jobs))
        failed = [r for r in jobs if r.failed]
        if any(pruned):
            iterations = sum(r.iterations for r in jobs)
            log.info(f"{sum(pruned)} of {len(jobs)} trials pruned, {iterations} SGD iterations in all")
        missing = info.num_jobs is not None and len(jobs) < info.num_jobs
        if failed:
            log.info(f"{len(failed)} of {len(jobs)} jobs failed (see {summary})")
        FAILED_JOBS.extend(failed)
        if missing:  # a job killed hard (a worker crash) leaves no result.json
            log.info(f"{info.num_jobs - len(jobs)} job(s) left no result")
            FAILED_JOBS.append(results.JobResult(-1, "missing", "FAILED", math.nan, math.nan,
                                                 reason="a job left no result"))
        if self._parent is not None:
            shared = to_config(config)
            self._close_parent(info, jobs, summary, heatmap, failed, missing,
                               shared if shared.tracking.evaluate_best else None)

    def _close_parent(self, info: SweepInfo, jobs: list[results.JobResult], summary: Path,
                      heatmap: Path | None, failed: list, missing: bool,
                      evaluate: Config | None = None) -> None:
        """Best job, note, files and status of the parent run (with ``evaluate``, the config the jobs
        share, MLflow's evaluation of the best model on its validation images); then where everything
        is."""
        best = results.best_result(jobs)
        parent = self._parent
        versions = []
        try:
            if best is not None:
                parent.log_metric("best_val_acc", best.val_acc, step=0)
                parent.set_tags({tags.BEST_RUN_ID_TAG: best.run_id, tags.BEST_RUN_NAME_TAG: best.run_name})
                if info.register_model:
                    versions = _register_bests(parent.client, jobs, parent.run_id)
                _show_best_in_parent(parent, best)
                if evaluate is not None and best.model_uri:
                    with timing.section("evaluate"):
                        _evaluate_best(parent, parent.client.tracking_uri, best, evaluate)
            parent.set_tags({tags.NUM_FAILED_TAG: len(failed),
                             tags.NOTE_TAG: results.format_note(info.command, jobs, versions,
                                                                _study_line(info.study))})
            parent.log_artifact(summary)
            if heatmap is not None:
                parent.log_artifact(heatmap)
        finally:
            status = "FAILED" if failed or missing else "FINISHED"
            parent.end(status, f"{len(failed)} job(s) failed" if failed else None)
        self._say_where(info, jobs, versions)

    def _say_where(self, info: SweepInfo, jobs: list[results.JobResult], versions: list) -> None:
        parent = self._parent.client.get_run(self._parent.run_id)
        uri, run_id = info.tracking_uri, parent.info.run_id
        log.info(f"MLflow: parent run {parent.info.run_name!r} ({run_id}) in {uri}")
        log.info(f"  browse it: {run_link(uri, info.experiment_id, run_id)}")
        if info.view:
            link = experiment_link(uri, info.experiment_id, view=info.view)
            log.info(f"  its {'trials' if info.study else 'jobs'}, best first: {link}")
        if info.study is not None:
            log.info(f"  its study: {_study().study_dashboard_command(info.study.storage)}")
        registered = {v.source: v for v in versions}
        several = len(results.variants_of(jobs)) > 1
        bests = results.best_of_each(jobs) if several else {"": results.best_result(jobs)}
        for variant, best in bests.items():
            if best is None:
                continue
            which = f" {variant}" if variant else ""
            line = f"  best{which}: {best.run_name} ({best.run_id}), val_acc {best.val_acc:f}"
            if math.isfinite(best.test_acc):  # reported for the job chosen by val_acc, never chosen by
                line += f", test_acc {best.test_acc:f}"
            version = registered.get(best.model_uri)
            if version is not None:
                line += f"; registered as model {version.name!r} version {version.version} (alias 'best')"
            log.info(line)

    def _abandon(self, started: bool = True) -> None:
        """At exit, a parent run still open means the sweep died: never leave it RUNNING. A sweep that
        stopped before its first job (``started`` false) leaves a parent it reopened as it was: an earlier
        command's run keeps the status it ended with."""
        if self._parent is None or self._parent.ended:
            return
        if not started and self._reopened is not None:
            status, end_time, _ = self._reopened
            self._parent.ended = True
            self._parent.client.set_terminated(self._parent.run_id, status=status, end_time=end_time)
            return
        self._parent.end("FAILED", "the sweep stopped before all jobs ended")

    def __getstate__(self) -> dict[str, Any]:
        # sent to joblib workers with the Hydra context: the open MLflow run stays in this process
        return {"_parent": None, "_reopened": None, "_sweep_dir": None}


def save_traceback(e: BaseException) -> Path:
    """Append ``e``'s traceback (no URL's password in it) to the log of where it happened and return that
    file: error.log in the folder of the sweep this process runs, else the job's log (the root logger's
    file), else a file in the temp folder."""
    sweeps = [Path(cb._sweep_dir).resolve() for cb in _OPEN if cb._sweep_dir is not None]
    files = [h.baseFilename for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    path = (sweeps[-1] / "error.log" if sweeps else Path(files[-1]) if files else
            Path(tempfile.gettempdir()) / f"softmax_exp-error-{os.getpid()}.log")
    text = "".join(traceback.format_exception(e))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {' '.join(sys.argv)}\n{masked(text)}\n")
    except OSError as err:
        return Path(f"{path}, which could not be written: {err.strerror}")
    return path


def discard_unused_parents() -> None:
    """A sweep stopped before its first job (Hydra could not compose one): a parent run it made, still
    without children, is ended and moved to MLflow's trash, so that nothing of it is left; a parent of an
    earlier command it reopened, with no new child, is put back as it was."""
    for cb in _OPEN:
        parent = cb._parent
        if parent is None or parent.ended:
            continue
        children = len(child_runs(parent.client, parent.run_id))
        if cb._reopened is not None:
            if children == cb._reopened[2]:
                cb._abandon(started=False)
        elif not children:
            parent.end("KILLED", tags={FAILURE_TAG: "the sweep stopped before its first job"})
            parent.client.delete_run(parent.run_id)


def abort_sweeps(status: str = "KILLED") -> None:
    """End every open parent run of this process (Ctrl-C in the main process)."""
    for cb in _OPEN:
        if cb._parent is not None and not cb._parent.ended:
            cb._parent.end(status, "interrupted")


def fingerprint(config: DictConfig, shared: Config) -> str:
    """The sweep's fingerprint (see :func:`softmax_exp.config.fingerprints.sweep_fingerprint`) from Hydra's
    config (its overrides and sweeper) and the config the jobs share: same command, same config, same
    fingerprint, whatever the sweep directory. A search's fingerprint holds its study, pruner and sampler
    too (not n_trials: the same search with more trials goes on with its study)."""
    sweeper = config.hydra.sweeper
    identity = str(sweeper.get("_target_", ""))
    if is_search(config):  # another study, pruner or sampler is another search; more trials are not
        keys = ("study_name", "storage", "direction", "pruner", "pruner_args", "sampler")
        settings = OmegaConf.to_container(sweeper, resolve=True)
        identity += " " + json.dumps({k: settings.get(k) for k in keys}, sort_keys=True, default=str)
    return sweep_fingerprint(shared, [o.input_line for o in _sweep_overrides(config)], identity,
                             dict(sweeper.get("params") or {}))


def count_jobs(config: DictConfig) -> int | None:
    """How many jobs the sweep will launch: the product of the sweep lists for the basic sweeper,
    n_trials for optuna; None if unknown."""
    sweeper = config.hydra.sweeper
    target = str(sweeper.get("_target_", ""))
    if is_search(config):
        return int(sweeper.n_trials)
    if not target.endswith(("BasicSweeper", "GridSweeper")):
        return None
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    parsed = OverridesParser.create().parse_overrides(params + task_overrides(config.hydra))
    return sum(len(batch) for batch in split_sweep_arguments(parsed))


def is_search(config: DictConfig) -> bool:
    """Whether the multirun is a search of the project's Optuna sweeper."""
    return str(config.hydra.sweeper.get("_target_", "")).endswith(".OptunaSweeper")


def _search_settings(config: DictConfig) -> tuple[StudySettings | None, dict[str, Any] | None]:
    """A search's checked settings and its search space; (None, None) for another sweeper."""
    if not is_search(config):
        return None, None
    study = _study()
    settings = study.StudySettings.of(config.hydra.sweeper, str(config.hydra.job.name))
    space, _ = study.search_space(settings.params, task_overrides(config.hydra))
    settings.search_extender()  # a custom_search_space that cannot be imported: one line now
    return settings, space


def _study():
    """softmax_exp.sweep.study, imported by a search only (Optuna: 0.3 s of every command's start)."""
    from softmax_exp.sweep import study

    return study


def _pruning(search: StudySettings) -> str:
    return "" if search.pruner == "none" else f", {search.pruner.replace('_', ' ')} pruning"


def _explicit_storage(search: StudySettings | None) -> str | None:
    return _study().absolute_storage(search.storage) if search is not None and search.storage else None


def _study_line(study: StudyRef | None) -> str:
    if study is None:
        return ""
    return (f"Optuna study `{study.study_name}` ({study.n_trials} trials, pruner {study.pruner}): "
            f"`{_study().study_dashboard_command(study.storage)}`")


def sweep_keys(config: DictConfig) -> list[str]:
    """The config keys the sweep varies (what names a job's run): sweep overrides and sweeper params, config
    groups first (``model x lr x reg``, as a job's name has them)."""
    return sorted(swept_values(config), key=lambda k: k not in GROUP_KEYS)


def swept_values(config: DictConfig) -> dict[str, str]:
    """What the sweep varies, key -> the values as written (``lr`` -> ``1e-3,1e-2``, or an Optuna range):
    the sweeper's params, then the command line's sweep overrides."""
    sweeper = config.hydra.sweeper
    values = {override_key(str(k)): str(v) for k, v in (sweeper.get("params") or {}).items()}
    for o in _sweep_overrides(config):
        values[override_key(o.get_key_element())] = o.input_line.partition("=")[2]
    return values


def _sweep_overrides(config: DictConfig) -> list:
    parsed = OverridesParser.create().parse_overrides(task_overrides(config.hydra))
    return [o for o in parsed if o.is_sweep_override()]


def _shared_params(config: Config, swept: tuple[str, ...]) -> dict[str, Any]:
    """What all jobs of the sweep share and can change a result: the config's params without the swept
    keys."""
    prefixes = tuple(f"{k}." for k in swept)
    return {k: v for k, v in result_config(config).items() if k not in swept and not k.startswith(prefixes)}


def _save_views(client, experiment_id: str, parent_run_id: str, name: str, keys: tuple[str, ...],
                test_acc: bool, pruned: bool = False) -> str | None:
    """The experiment's view with this sweep's columns (the latest sweep's), and the sweep's own view of
    its jobs (a pruning search's: with the column saying which were pruned, where); the key of the sweep's
    view, None if the experiment had no room for it."""
    views.save_view(client, experiment_id, views.EXPERIMENT_VIEW, views.EXPERIMENT_VIEW_NAME,
                    views.view_state(views.columns(keys, test_acc)))
    cols = views.columns(keys, test_acc, pruned)
    key = views.sweep_view_key(parent_run_id)
    state = views.view_state(cols, f"tags.`{tags.PARENT_TAG}` = '{parent_run_id}'")
    return key if views.save_view(client, experiment_id, key, f"{name}: jobs by val_acc", state) else None


def _register_bests(client, jobs: list[results.JobResult], parent_run_id: str) -> list:
    """Register the best job of each registered-model name the jobs resolved (``tracking.register_model``,
    by default ``<model>-<experiment>``: the best of each model) and return the versions. Jobs of several
    models under one name register the best of them all, the model named in the version's description.
    A version is the best job's logged model registered from the sweep's parent run: the parent's page
    lists it under "Registered models" (MLflow lists the versions whose run is the page's), its
    description names the job's run."""
    by_name: dict[str, list[results.JobResult]] = {}
    for r in jobs:
        if r.register_model:
            by_name.setdefault(r.register_model, []).append(r)
    versions = []
    for name, mine in by_name.items():
        best = results.best_result(mine)
        if best is None or not best.model_uri:
            continue
        test = f", test_acc {best.test_acc:.4f}" if math.isfinite(best.test_acc) else ""
        about = (f"{best.model}: val_acc {best.val_acc:.4f} (train_acc {best.train_acc:.4f}{test}) with "
                 f"lr={best.lr:g}, reg={best.reg:g}: run {best.run_name} ({best.run_id})")
        versions.append(register(client, name, best.model_uri, parent_run_id, about))
    return versions


def _show_best_in_parent(parent, best: results.JobResult) -> None:
    """The parent run's Dataset and Models cells: the best job's dataset inputs and its logged model."""
    from mlflow.entities import LoggedModelOutput

    client = parent.client
    child, mine = client.get_run(best.run_id), client.get_run(parent.run_id)  # (a resumed sweep has some)
    have = {(d.dataset.name, d.dataset.digest) for d in (mine.inputs.dataset_inputs if mine.inputs else [])}
    new = [d for d in (child.inputs.dataset_inputs if child.inputs else [])
           if (d.dataset.name, d.dataset.digest) not in have]
    if new:
        client.log_inputs(parent.run_id, datasets=new)
    linked = {o.model_id for o in (mine.outputs.model_outputs if mine.outputs else [])}
    model_id = best.model_uri.removeprefix("models:/") if best.model_uri else None
    if model_id and model_id not in linked:
        client.log_outputs(parent.run_id, [LoggedModelOutput(model_id, 0)])
    _show_best_classes(parent, child)


def _evaluate_best(parent, uri: str, best: results.JobResult, config: Config) -> None:
    """``mlflow.models.evaluate`` of the best job's logged model on the validation images (the raw
    pixels of the jobs' dataset and split), logged to the parent: metrics ``best_log_loss``,
    ``best_roc_auc``, ... and MLflow's plots (``best_roc_curve_plot.png``, ...)."""
    parent.flush()
    data = load_dataset(config.dataset)  # the pixels: a feature stage's rows give no images back
    result = evaluate_model(uri, best.model_uri, data.raw_images("val"), data.y_val, data.class_names,
                            run_id=parent.run_id, prefix="best_")
    shown = {k: v for k, v in result.metrics.items() if k.endswith(("log_loss", "roc_auc"))}
    log.info("  MLflow's evaluation of the best model on the validation split: "
             + ", ".join(f"{k} {v:.4f}" for k, v in sorted(shown.items())))


BEST_PICTURES = ("confusion_matrix.png", "misclassified.png")  # the best job's, shown by the parent


def _show_best_classes(parent, child) -> None:
    """The best job's per-class results on the parent run: its ``val_acc/<class>`` (``test_acc/<class>``)
    as ``best_val_acc/<class>`` (``best_test_acc/<class>``), its confusion matrix and its gallery of the
    most confused validation images."""
    for key, value in child.data.metrics.items():
        if key.startswith(("val_acc/", "test_acc/")):
            parent.log_metric(f"best_{key}", value, step=0)
    have = {a.path for a in parent.client.list_artifacts(child.info.run_id)}
    with tempfile.TemporaryDirectory(prefix="softmax_exp-best-") as tmp:
        for name in BEST_PICTURES:
            if name in have:
                parent.log_artifact(parent.client.download_artifacts(child.info.run_id, name, tmp))
