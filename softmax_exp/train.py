"""Train the softmax classifier as configured: ``python -m softmax_exp.train [overrides]`` (Hydra).

The entrypoint only wires parts: Hydra's config -> a checked Config (softmax_exp.config) -> fit
(softmax_exp.job.fit: data -> model -> tracked run). ``-m`` runs a sweep: one parent MLflow run, one child
per job (softmax_exp.sweep). Everything else is one-line errors and exit codes: 2 for bad input, 1 when a
training diverged or a job of a sweep failed, 128 + n after signal n. Nothing imports this module:
scripts and the benchmark call :func:`softmax_exp.job.fit.fit`.
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import logging
import os
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

import softmax_exp.config.help  # noqa: F401 (registers the resolver of the --help template)
from softmax_exp.config import ConfigError, to_config
from softmax_exp.config.hydra_internals import time_config_loading
from softmax_exp.config.overrides import task_overrides
from softmax_exp.data import DataError
from softmax_exp.job.context import JobContext, Outcome, SweepRef, TrainingDiverged
from softmax_exp.job.fit import Training
from softmax_exp.sweep import SweepInfo, abort_sweeps, discard_unused_parents, run_job, sweep_failed
from softmax_exp.sweep.callback import save_traceback
from softmax_exp.tracking.links import run_link
from softmax_exp.tracking.resume import JobRunningElsewhere
from softmax_exp.tracking.store import TrackingError, resolve_tracking_uri
from softmax_exp.util import timing
from softmax_exp.util.errors import one_line
from softmax_exp.util.interrupts import INTERRUPTS
from softmax_exp.util.paths import CONFIG_DIR
from softmax_exp.util.secrets import masked, scrub_files

log = logging.getLogger(__name__)
FULL_ERROR = [False]  # HYDRA_FULL_ERROR=1 as the user set it: tracebacks as they are
OUT_OF_MEMORY = ("out of memory: the data or the model does not fit in this machine's memory; use fewer or "
                 "smaller images (dataset.num_training, dataset.image_size) or dataset.dtype=float32")


def task(cfg: DictConfig) -> float:
    """The Hydra task: one job. Returns val_acc for sweepers (NaN when a job of a sweep failed).

    A single run reports a bad config or data, or a divergence, as one line on stderr and exits
    non-zero. In a sweep a failing job is recorded (result.json, a FAILED run) and the sweep goes on.
    """
    INTERRUPTS.install()  # also in a launcher's worker process: Ctrl-C reaches the whole group
    hc = HydraConfig.get()
    if hc.output_subdir is not None:  # Hydra's record of the job's config: no URL's password in it
        scrub_files((Path(hc.runtime.output_dir) / hc.output_subdir).glob("*.yaml"))
    job = JobContext(overrides=tuple(task_overrides(hc)), output_dir=Path(hc.runtime.output_dir),
                     threads=_threads_per_job(hc))
    if hc.mode == RunMode.MULTIRUN:
        info = SweepInfo.read(hc.sweep.dir)
        sweep = (SweepRef(info.parent_run_id, info.experiment_id, info.sweep_id, hc.job.num) if info else
                 SweepRef(None, None, "", hc.job.num))
        job = dataclasses.replace(job, sweep=sweep, name_keys=info.sweep_keys if info else None)
        return run_job(cfg, job, info)
    return _single(cfg, job)


def _single(cfg: DictConfig, job: JobContext) -> float:
    """One training outside a sweep: its accuracies and where its run is, or one line and an exit code."""
    try:
        config = to_config(cfg)
        outcome = Training(config, job).run()
        if outcome.history.diverged:
            raise TrainingDiverged(outcome.history.diverged)
        _report(config.tracking.uri, outcome)  # logged: a log file on a full disk fails here too
    except (ConfigError, DataError, TrainingDiverged, TrackingError, JobRunningElsewhere) as e:
        _exit_with(e)
    except OSError as e:  # an output folder that cannot be written (else Hydra adds its own line)
        _exit_with(ConfigError(one_line(e)))
    except MemoryError:
        _exit_with(ConfigError(OUT_OF_MEMORY))
    except Exception as e:  # in the task: Hydra would print its own line before the one below
        if FULL_ERROR[0]:
            raise
        _exit_unexpected(e)
    return outcome.metrics["val_acc"]


def _report(tracking_uri: str, outcome: Outcome) -> None:
    metrics = outcome.metrics
    line = f"train accuracy: {metrics['train_acc']:f} val accuracy: {metrics['val_acc']:f}"
    if "test_acc" in metrics:
        line += f" test accuracy: {metrics['test_acc']:f}"
    log.info(line)
    if outcome.run_id:
        uri = resolve_tracking_uri(tracking_uri)
        log.info(f"MLflow run {outcome.run_name!r} ({outcome.run_id}) in {uri}")
        log.info(f"  browse it: {run_link(uri, outcome.experiment_id, outcome.run_id)}")


def main() -> None:
    """``python -m softmax_exp.train``: run Hydra, then exit non-zero if a job of a sweep failed."""
    # The task is taken from the module imported by its package name, not from __main__, so that
    # joblib workers unpickle it by reference.
    from softmax_exp import train as packaged

    # The interpreter's final garbage collections, after the exit handlers, walked every object of
    # MLflow's ~1500 modules: 0.4 s of each tracked command's exit. Frozen at exit, they are skipped; the
    # exit handlers all still run, in any order (Python never promised finalizers for what is alive then).
    atexit.register(gc.freeze)
    app = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
    # Hydra prints its own errors (a missing config group, a bad override, an output folder it cannot
    # create) as a report of many lines; made to re-raise them, they are reported in one line below.
    full_error = FULL_ERROR[0] = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    INTERRUPTS.install()
    timing.start_of_main(time_config_loading)
    try:
        app(packaged.task)()
    except KeyboardInterrupt:
        abort_sweeps("KILLED")
        signum = INTERRUPTS.received[0] if INTERRUPTS.received else signal.SIGINT
        print(f"interrupted by {signal.Signals(signum).name}: the open runs are KILLED, their metrics "
              f"kept; rerun the same command to go on", file=sys.stderr, flush=True)
        sys.exit(128 + signum)
    except Exception as e:  # every other failure: one line (and an unexpected one's traceback in a file)
        if full_error:
            raise
        discard_unused_parents()  # runs of earlier commands are left as they were
        known = _known_failure(e)
        if known is not None:
            _exit_with(ConfigError(known))
        _exit_unexpected(e)
    if sweep_failed():
        sys.exit(1)


def _known_failure(e: Exception) -> str | None:
    """The one line of a failure the project knows to expect (bad input, an output folder that cannot be
    written, a store that does not answer, no memory), None for anything else."""
    if isinstance(e, MemoryError):
        return OUT_OF_MEMORY
    if isinstance(e, (HydraException, OmegaConfBaseException, OSError)):  # Hydra's reports, output folders
        return one_line(e)
    if isinstance(e, ValueError) and isinstance(e.__cause__, OSError):  # logging's dictConfig: "Unable to
        return one_line(e.__cause__)  # configure handler 'file'" from an OSError
    if isinstance(e, (ConfigError, DataError, TrackingError, JobRunningElsewhere)):
        return " ".join(str(e).split())
    return None


def _exit_unexpected(e: BaseException) -> None:
    """A failure nobody expected (a bug): one line naming the file its traceback went to, exit status 1."""
    where = save_traceback(e)
    print(masked(f"error: unexpected {type(e).__name__}: {_first_line(e)} (its traceback: {where})"),
          file=sys.stderr, flush=True)
    sys.exit(1)


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:300] if lines else ""


def _threads_per_job(hc) -> int | None:
    """Numba threads for a job: cores // n_jobs under the joblib launcher (workers x threads <= cores),
    cpus_per_task under submitit (local or SLURM; 1 when unset: the local executor starts every job at
    once); None (all cores) otherwise."""
    launcher = hc.get("launcher") or {}
    target = str(launcher.get("_target_", "")).lower()
    if "submitit" in target:  # SLURM's own count where there is one; unset is one CPU, as in SLURM
        return int(os.environ.get("SLURM_CPUS_PER_TASK") or launcher.get("cpus_per_task") or 1)
    if "joblib" not in target:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n_jobs = launcher.get("n_jobs", -1) or -1
    n_jobs = cores if n_jobs < 0 else n_jobs
    return max(1, cores // max(1, n_jobs))


def _exit_with(error: Exception) -> None:
    kind = "training diverged" if isinstance(error, TrainingDiverged) else "error"
    print(masked(f"{kind}: {error}"), file=sys.stderr, flush=True)
    sys.exit(1 if isinstance(error, TrainingDiverged) else 2)


if __name__ == "__main__":
    main()
