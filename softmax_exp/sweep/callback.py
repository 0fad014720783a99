"""The Hydra callback that makes a multirun one sweep: a parent MLflow run, a summary, an exit status.

``on_multirun_start`` (main process, before any job) creates the parent run and writes ``sweep.json`` into
the sweep directory, where every job, in this process or a joblib worker, finds it. ``on_multirun_end``
(main process, after all jobs) gathers the jobs' ``result.json`` files, writes ``summary.csv`` and
``val_acc_heatmap.png``, prints the course's table, closes the parent run FINISHED or FAILED, and records
the failures so that the entrypoint (softmax_exp.train) exits non-zero.
"""

from __future__ import annotations

import atexit
import functools
import math
import sys
import uuid
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from softmax_exp.config import Config, as_dict, flatten, to_config
from softmax_exp.overrides import override_key
from softmax_exp.sweep import results

# What went wrong in the sweeps of this process; the entrypoint exits non-zero if anything did.
FAILED_JOBS: list[results.JobResult] = []
ERRORS: list[str] = []  # the callback's own failures (Hydra would turn them into mere warnings)
_OPEN: list[SweepCallback] = []


def sweep_failed() -> bool:
    """Whether a job of a sweep, or the sweep's bookkeeping, failed in this process."""
    return bool(FAILED_JOBS or ERRORS)


def _recorded(method):
    """Record an exception of a callback method in ERRORS and print it in one line (Hydra would only
    warn). A sweep that cannot start (e.g. its tracking server does not answer) exits 2 before any job."""

    @functools.wraps(method)
    def wrapper(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            method(self, config, **kwargs)
        except Exception as e:
            ERRORS.append(f"{method.__name__}: {type(e).__name__}: {e}")
            print(f"error: the sweep's {method.__name__} failed: {type(e).__name__}: {e}",
                  file=sys.stderr, flush=True)
            if method.__name__ == "on_multirun_start":
                self._abandon()
                raise SystemExit(2) from None

    return wrapper


class SweepCallback(Callback):
    """Parent run, summary and exit status of a multirun (configured under ``hydra.callbacks``)."""

    def __init__(self) -> None:
        self._parent = None  # tracking.Run of the open sweep, in the main process only
        _OPEN.append(self)

    @_recorded
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        overrides = [str(o) for o in config.hydra.overrides.task]
        # named by what it varies and sets; where its outputs go is not part of the name
        name = " ".join(o for o in overrides
                        if not override_key(o).startswith(("hydra", "tracking."))) or sweep_dir.name
        shared = to_config(config)  # the config every job starts from, checked before any job
        info: dict[str, Any] = {
            "sweep_id": uuid.uuid4().hex,
            "name": name,
            "num_jobs": count_jobs(config),
            "sweep_keys": sweep_keys(config),
            "parent_run_id": None,
            "experiment_id": None,
            "fingerprint": fingerprint(config, shared),
        }
        if shared.tracking.enabled:
            self._open_parent(shared, info, sweep_dir)
        results.write_sweep_info(sweep_dir, info)

    def _open_parent(self, config: Config, info: dict[str, Any], sweep_dir: Path) -> None:
        """The sweep's parent run: with ``resume``, the one of an earlier invocation of the same sweep
        (reopened; its stale children marked KILLED), else a new one. Two invocations starting at once
        both create one, then keep the older and trash their own."""
        from softmax_exp import tracking
        from softmax_exp.tracking import resume

        atexit.register(self._abandon)  # whatever happens next, the parent is never left RUNNING
        tcfg = config.tracking
        uri = tracking.resolve_tracking_uri(tcfg.uri)
        tracking.check_reachable(uri)
        client = tracking.get_client(uri)
        exp_id = tracking.get_or_create_experiment(client, tcfg.experiment, tcfg.artifact_root)
        fp = info["fingerprint"]
        earlier = resume.sweep_parents(client, exp_id, fp)
        if earlier and not config.resume:  # a forced rerun: the old sweep keeps its runs, not the name
            for run in earlier:
                client.set_tag(run.info.run_id, resume.SUPERSEDED_TAG, "a rerun with resume=false")
                client.delete_tag(run.info.run_id, resume.SWEEP_FINGERPRINT_TAG)
            earlier = []
        stale_s = 60.0 * tcfg.stale_after_min
        if not earlier:
            mine = tracking.Run.start(
                uri, tcfg.experiment, f"sweep {info['name']}", experiment_id=exp_id,
                tags={"sweep_dir": str(sweep_dir.resolve()), resume.SWEEP_FINGERPRINT_TAG: fp,
                      "num_jobs": info["num_jobs"], **tracking.environment_tags()},
            )
            first = resume.sweep_parents(client, exp_id, fp)[0]
            if first.info.run_id == mine.run_id:
                self._parent = mine
                self._parent.log_params(_shared_params(config, info["sweep_keys"]))
            else:  # another invocation of this sweep got there first
                mine.end("KILLED", f"duplicate parent of sweep {fp}; the sweep uses {first.info.run_id}")
                client.delete_run(mine.run_id)
                earlier = [first]
        if earlier:
            parent = earlier[0]
            if tracking.is_stale(parent, stale_s):
                resume.mark_killed(client, parent)
            killed = resume.mark_stale_children(client, parent.info.run_id, stale_s)
            self._parent = tracking.Run.reopen(uri, parent.info.run_id,
                                               {"sweep_dir": str(sweep_dir.resolve())})
            print(f"sweep {info['name']!r}: going on with parent run {parent.info.run_id}"
                  + (f"; {len(killed)} run(s) of a dead process marked KILLED" if killed else ""), flush=True)
        info["parent_run_id"] = self._parent.run_id
        info["tracking_uri"] = uri
        info["experiment_id"] = exp_id

    @_recorded
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        info = results.read_sweep_info(sweep_dir)
        if info is None:
            return
        jobs = results.collect_results(sweep_dir, info["sweep_id"])
        summary = results.write_summary_csv(sweep_dir / results.SUMMARY_FILE, jobs)
        heatmap = None
        if jobs:
            from softmax_exp.plots import save_val_acc_heatmap_png

            heatmap = save_val_acc_heatmap_png(
                sweep_dir / results.HEATMAP_FILE, [r.lr for r in jobs], [r.reg for r in jobs],
                [r.val_acc for r in jobs], title=f"val_acc over lr x reg ({len(jobs)} jobs)")
        print(results.format_table(jobs), flush=True)
        failed = [r for r in jobs if r.failed]
        missing = info["num_jobs"] is not None and len(jobs) < info["num_jobs"]
        if failed:
            print(f"{len(failed)} of {len(jobs)} jobs failed (see {summary})", flush=True)
        FAILED_JOBS.extend(failed)
        if missing:  # a job killed hard (a worker crash) leaves no result.json
            print(f"{info['num_jobs'] - len(jobs)} job(s) left no result", flush=True)
            FAILED_JOBS.append(results.JobResult(-1, "missing", "FAILED", math.nan, math.nan,
                                                 reason="a job left no result"))
        if self._parent is not None:
            best = results.best_result(jobs)
            try:
                if best is not None:
                    self._parent.log_metric("best_val_acc", best.val_acc, step=0)
                    self._parent.set_tags({"best_run_id": best.run_id, "best_run_name": best.run_name})
                self._parent.set_tags({"num_failed": len(failed)})
                self._parent.log_artifact(summary)
                if heatmap is not None:
                    self._parent.log_artifact(heatmap)
            finally:
                status = "FAILED" if failed or missing else "FINISHED"
                reason = f"{len(failed)} job(s) failed" if failed else None
                self._parent.end(status, reason)

    def _abandon(self) -> None:
        """At exit, a parent run still open means the sweep died: never leave it RUNNING."""
        if self._parent is not None and not self._parent.ended:
            self._parent.end("FAILED", "the sweep stopped before all jobs ended")

    def __getstate__(self) -> dict[str, Any]:
        # sent to joblib workers with the Hydra context: the open MLflow run stays in this process
        return {"_parent": None}


def abort_sweeps(status: str = "KILLED") -> None:
    """End every open parent run of this process (Ctrl-C in the main process)."""
    for cb in _OPEN:
        if cb._parent is not None and not cb._parent.ended:
            cb._parent.end(status, "interrupted")


def fingerprint(config: DictConfig, shared: Config) -> str:
    """The sweep's fingerprint (see :func:`softmax_exp.tracking.resume.sweep_fingerprint`) from Hydra's
    config (its overrides and sweeper) and the config the jobs share: same command, same config, same
    fingerprint, whatever the sweep directory."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from softmax_exp.tracking import resume

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    swept = [o.input_line for o in parsed if o.is_sweep_override()]
    sweeper = config.hydra.sweeper
    return resume.sweep_fingerprint(shared, swept, str(sweeper.get("_target_", "")),
                                    dict(sweeper.get("params") or {}))


def count_jobs(config: DictConfig) -> int | None:
    """How many jobs the sweep will launch: the product of the sweep lists for the basic sweeper,
    n_trials for optuna; None if unknown."""
    sweeper = config.hydra.sweeper
    target = str(sweeper.get("_target_", ""))
    if "optuna" in target.lower():
        return int(sweeper.n_trials)
    if "BasicSweeper" not in target:
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    parsed = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
    return sum(len(batch) for batch in BasicSweeper.split_arguments(parsed, None))


def sweep_keys(config: DictConfig) -> list[str]:
    """The config keys the sweep varies (what names a job's run): sweep overrides and sweeper params."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    keys = [str(k) for k in (sweeper.get("params") or {})]
    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    keys += [o.get_key_element() for o in parsed if o.is_sweep_override()]
    return list(dict.fromkeys(override_key(k) for k in keys))


def _shared_params(config: Config, swept: list[str]) -> dict[str, Any]:
    """What all jobs of the sweep share: the config, flattened, without the swept keys."""
    prefixes = tuple(f"{k}." for k in swept)
    flat = flatten(as_dict(config))
    return {k: v for k, v in flat.items() if k not in swept and not k.startswith(prefixes)}
