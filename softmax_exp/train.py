"""Train the softmax classifier as configured: ``python -m softmax_exp.train [overrides]`` (Hydra).

The entrypoint only wires parts: config -> checks -> data -> model (kernel, optimizer) -> metrics ->
tracking. ``-m`` runs a sweep (one parent MLflow run, one child per job; see softmax_exp.callbacks).
:func:`run` trains once from a composed config without Hydra running, for scripts and benchmarks.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from softmax_exp import resume, sweep, tracking
from softmax_exp.interrupts import INTERRUPTS
from softmax_exp.kernels import KERNELS, num_threads
from softmax_exp.model import Preprocessing, Softmax, TrainHistory, TrainState, check_hyperparameters
from softmax_exp.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
tracking.register_resolvers()


class ConfigError(ValueError):
    """A configuration value is invalid; raised before any data is loaded."""


class TrainingDiverged(RuntimeError):
    """The loss (or W) became NaN or inf; training stopped early."""


@dataclass
class JobContext:
    """Where one training sits: its run name and overrides, where its files go, its sweep if any."""

    run_name: str | None = None
    overrides: list[str] = field(default_factory=list)
    output_dir: Path | None = None
    parent_run_id: str | None = None
    experiment_id: str | None = None
    sweep_id: str | None = None
    job_num: int = 0
    threads: int | None = None


@dataclass
class Outcome:
    """What :func:`fit` produced: the model, its history, final metrics and the MLflow run id.

    A job of a sweep that had FINISHED before is not trained again: its model is None, its history
    empty, its metrics and run are the earlier ones, and ``note`` says so (as it says a resume).
    """

    model: Softmax | None
    history: TrainHistory
    metrics: dict[str, float]
    run_id: str | None
    status: str
    note: str = ""


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first invalid value (lr, reg, num_iters, batch_size, eval_every,
    kernel, optimizer, schedule, num_threads, tracking). Reads no data."""
    try:
        check_hyperparameters(cfg.lr, cfg.reg, cfg.num_iters, cfg.batch_size, cfg.model.replace,
                              cfg.eval_every)
        if cfg.kernel not in KERNELS:
            raise ValueError(f"unknown kernel {cfg.kernel!r}; choose one of: {', '.join(KERNELS)}")
        opt = cfg.optimizer
        if opt.name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {opt.name!r}; choose one of: {', '.join(OPTIMIZERS)} "
                             f"(optimizer=momentum)")
        if opt.schedule not in SCHEDULES:
            raise ValueError(f"unknown optimizer.schedule {opt.schedule!r}; choose one of: "
                             f"{', '.join(SCHEDULES)}")
        _optimizer(cfg)
        make_schedule(opt.schedule, cfg.lr, cfg.num_iters, opt.step_size, opt.gamma, opt.min_lr)
        n = cfg.num_threads
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"num_threads must be null or an integer >= 1; got {n!r}")
        if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
            raise ValueError(f"seed must be an integer >= 0; got {cfg.seed!r}")
        if not isinstance(cfg.eval_test, bool):
            raise ValueError(f"eval_test must be true or false; got {cfg.eval_test!r}")
        if not isinstance(cfg.resume, bool):
            raise ValueError(f"resume must be true or false; got {cfg.resume!r}")
        ce = cfg.checkpoint_every
        if isinstance(ce, bool) or not isinstance(ce, int) or ce < 0:
            raise ValueError(f"checkpoint_every must be an integer >= 0 (0: no checkpoints); got {ce!r}")
        if cfg.progress not in ("auto", True, False):
            raise ValueError(f"progress must be auto, true or false; got {cfg.progress!r}")
        if not isinstance(cfg.model.init_scale, (int, float)) or not cfg.model.init_scale > 0:
            raise ValueError(f"model.init_scale must be a number > 0; got {cfg.model.init_scale!r}")
        if not isinstance(cfg.tracking.enabled, bool):
            raise ValueError(f"tracking.enabled must be true or false; got {cfg.tracking.enabled!r}")
        if cfg.tracking.enabled:
            tracking.resolve_tracking_uri(cfg.tracking.uri)
            if not isinstance(cfg.tracking.experiment, str) or not cfg.tracking.experiment:
                raise ValueError(f"tracking.experiment must be a non-empty string; got "
                                 f"{cfg.tracking.experiment!r}")
            stale = cfg.tracking.stale_after_min
            if isinstance(stale, bool) or not isinstance(stale, (int, float)) or not stale > 0:
                raise ValueError(f"tracking.stale_after_min must be a number > 0; got {stale!r}")
    except ValueError as e:
        raise ConfigError(str(e)) from None


def fit(cfg: DictConfig, job: JobContext | None = None) -> Outcome:
    """Check the config, load the data, train, evaluate, and (tracking.enabled) log one MLflow run.

    The run ends FINISHED, FAILED (divergence: reason in the ``failure_reason`` tag; any exception) or
    KILLED (Ctrl-C); it is never left RUNNING. Raises ConfigError before loading data on a bad config.
    With ``resume`` (tracking on), earlier runs of the same config are looked up first (see
    :mod:`softmax_exp.resume`): a KILLED or FAILED run with a checkpoint goes on where it stopped; in a
    sweep a FINISHED one is reused without training.
    """
    validate_config(cfg)
    job = job or JobContext()
    threads = cfg.num_threads if cfg.num_threads is not None else job.threads
    with num_threads(_cap_threads(threads)) as n_threads:
        return _fit(cfg, job, n_threads)


def _fit(cfg: DictConfig, job: JobContext, n_threads: int) -> Outcome:
    from softmax_exp.data import DataError, load_dataset

    fingerprint = resume.config_fingerprint(cfg)
    earlier = _earlier_runs(cfg, job, fingerprint) if cfg.tracking.enabled else resume.Earlier()
    if earlier.finished is not None and job.parent_run_id:
        return _reuse(earlier.finished)
    data = load_dataset(cfg.dataset)
    try:  # the one check that needs the data: a batch without replacement must fit the training set
        check_hyperparameters(cfg.lr, cfg.reg, cfg.num_iters, cfg.batch_size, cfg.model.replace,
                              cfg.eval_every, n_train=data.X_train.shape[0])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if data.X_val.shape[0] == 0:
        raise DataError("the validation split is empty; set dataset.num_validation >= 1")
    model = Softmax(cfg.kernel, Preprocessing.of(data))
    run, state, log = None, None, _MetricLog(None)
    if cfg.tracking.enabled:
        run, state, log = _open_run(cfg, job, data, n_threads, fingerprint, earlier)
    checkpoints = _Checkpoints(run, fingerprint, log) if run is not None else None
    with run if run is not None else nullcontext(), INTERRUPTS.deferred():
        # an exception ends the run FAILED, Ctrl-C KILLED
        opt = cfg.optimizer
        history = model.train(
            data.X_train, data.y_train, lr=cfg.lr, reg=cfg.reg, num_iters=cfg.num_iters,
            batch_size=cfg.batch_size, seed=cfg.seed, optimizer=_optimizer(cfg),
            schedule=make_schedule(opt.schedule, cfg.lr, cfg.num_iters, opt.step_size, opt.gamma,
                                   opt.min_lr),
            replace=cfg.model.replace, init_scale=cfg.model.init_scale, eval_every=cfg.eval_every,
            X_val=data.X_val, y_val=data.y_val, on_eval=log.on_eval if run else None,
            progress=_show_progress(cfg.progress), checkpoint_every=cfg.checkpoint_every,
            on_checkpoint=checkpoints, resume_from=state, should_stop=INTERRUPTS.requested,
        )
        metrics = {"loss": float(history.loss[-1]) if len(history.loss) else math.nan}
        if history.evals:
            metrics["train_acc"] = history.evals[-1].train_acc
            metrics["val_acc"] = history.evals[-1].val_acc
        if cfg.eval_test and history.diverged is None and data.X_test.shape[0]:
            metrics["test_acc"] = model.accuracy(data.X_test, data.y_test)
        log.finish(history.loss, metrics.get("test_acc"))
        if run is not None or job.output_dir is not None:
            _write_artifacts(cfg, job, model, history, run)
        status = "FAILED" if history.diverged else "FINISHED"
        if run is not None:
            run.end(status, history.diverged)
    note = f"resumed from iteration {state.iteration}" if state is not None else ""
    return Outcome(model, history, metrics, run.run_id if run else None, status, note)


def _earlier_runs(cfg: DictConfig, job: JobContext, fingerprint: str) -> resume.Earlier:
    """Find the store (failing fast if a server does not answer), the experiment, and with ``resume``
    the earlier runs of this job."""
    tcfg = cfg.tracking
    uri = tracking.resolve_tracking_uri(tcfg.uri)
    tracking.check_reachable(uri)
    client = tracking.get_client(uri)
    if job.experiment_id is None:
        job.experiment_id = tracking.get_or_create_experiment(client, tcfg.experiment, tcfg.artifact_root)
    if not cfg.resume:
        return resume.Earlier()
    return resume.earlier_runs(client, job.experiment_id, fingerprint, job.parent_run_id,
                               60.0 * tcfg.stale_after_min)


def _reuse(run) -> Outcome:
    """The outcome of a job of a sweep that FINISHED before: its run's metrics, nothing trained."""
    keys = ("loss", "train_acc", "val_acc", "test_acc")
    metrics = {k: float(run.data.metrics[k]) for k in keys if k in run.data.metrics}
    return Outcome(None, TrainHistory(np.empty(0)), metrics, run.info.run_id, "FINISHED",
                   note=f"finished before in run {run.info.run_id}: skipped")


def _open_run(cfg: DictConfig, job: JobContext, data, n_threads: int, fingerprint: str,
              earlier: resume.Earlier) -> tuple[tracking.Run, TrainState | None, _MetricLog]:
    """Go on with the stopped run of this job from its checkpoint if there is one, else start a new run
    (in a sweep, the job's other unfinished runs are then replaced by it)."""
    uri = tracking.resolve_tracking_uri(cfg.tracking.uri)
    unfinished = list(earlier.unfinished)
    if earlier.resumable is not None:
        old = earlier.resumable
        try:
            _check_same_code_and_data(old, data)
            state = _download_checkpoint(uri, old, fingerprint)
        except ValueError as e:
            print(f"warning: {e}; training from the start", file=sys.stderr, flush=True)
            unfinished.append(old)
        else:
            attempt = int(old.data.tags.get("attempt", "1")) + 1
            run = tracking.Run.reopen(uri, old.info.run_id, {resume.RESUMED_TAG: state.iteration,
                                                             "attempt": attempt,
                                                             "numba_threads": n_threads})
            if tracking.FAILURE_TAG in old.data.tags:  # why it stopped last time: no longer true
                run.client.delete_tag(run.run_id, tracking.FAILURE_TAG)
            return run, state, _MetricLog.resuming(run)
    run = _start_run(cfg, job, data, n_threads, fingerprint)
    if job.parent_run_id and unfinished:
        resume.supersede(run.client, unfinished, run.run_id)
    return run, None, _MetricLog(run)


def _check_same_code_and_data(run, data) -> None:
    """A checkpoint continues bit-identically only with the code and data that wrote it."""
    tags = run.data.tags
    commit = tracking.environment_tags()["git_commit"]
    if tags.get("git_commit", commit) != commit:
        raise ValueError(f"run {run.info.run_id} was trained by commit {tags['git_commit'][:12]}, this is "
                         f"{commit[:12]}: its checkpoint is not resumed")
    if tags.get("dataset_fingerprint", data.fingerprint) != data.fingerprint:
        raise ValueError(f"run {run.info.run_id} was trained on other data (dataset fingerprint "
                         f"{tags['dataset_fingerprint'][:12]}): its checkpoint is not resumed")


def _download_checkpoint(uri: str, run, fingerprint: str) -> TrainState:
    from softmax_exp.checkpoint import load_checkpoint

    path = run.data.tags[resume.CHECKPOINT_TAG]
    with tempfile.TemporaryDirectory(prefix="softmax_exp_ckpt_") as tmp:
        try:
            local = tracking.get_client(uri).download_artifacts(run.info.run_id, path, tmp)
        except Exception as e:  # a missing or unreadable artifact: train from the start instead
            raise ValueError(f"cannot read checkpoint {path} of run {run.info.run_id} ({e})") from None
        return load_checkpoint(local, fingerprint)


class _Checkpoints:
    """Saves a TrainState into the run: metrics so far are sent first, the file goes to
    ``checkpoints/iter_NNNNNNN.npz``, then the ``checkpoint`` tag points at it and the previous
    file is deleted. A kill at any moment leaves the tag on a complete checkpoint."""

    def __init__(self, run: tracking.Run, fingerprint: str, log: _MetricLog) -> None:
        self.run, self.fingerprint, self.log = run, fingerprint, log
        self.last: str | None = None

    def __call__(self, state: TrainState) -> None:
        from softmax_exp.checkpoint import checkpoint_name, save_checkpoint

        self.log.losses(state.loss)
        self.run.flush()
        name = checkpoint_name(state.iteration)
        with tempfile.TemporaryDirectory(prefix="softmax_exp_ckpt_") as tmp:
            self.run.log_artifact(save_checkpoint(Path(tmp) / name, state, self.fingerprint), "checkpoints")
        previous, self.last = self.last, f"checkpoints/{name}"
        self.run.set_tags({resume.CHECKPOINT_TAG: self.last})
        if previous and previous != self.last:
            self.run.delete_artifact(previous)


class _MetricLog:
    """Feeds a training's metrics to its run: the buffered loss series (step = iteration) and the
    accuracies (step = iterations done) at each evaluation; MLflow is called once per 1000 values.
    A resumed run already holds some values: those steps are not logged twice."""

    def __init__(self, run: tracking.Run | None, logged: int = 0, evals_logged: int = 0) -> None:
        self.run = run
        self.logged = logged  # loss values the run has
        self.evals_logged = evals_logged  # the run has accuracies up to this iteration

    @classmethod
    def resuming(cls, run: tracking.Run) -> _MetricLog:
        def last_step(key: str) -> int:
            return max((m.step for m in run.client.get_metric_history(run.run_id, key)), default=-1)

        return cls(run, last_step("loss") + 1, last_step("val_acc"))

    def on_eval(self, point, losses: np.ndarray) -> None:
        self.losses(losses)
        if point.iteration > self.evals_logged:
            self.run.log_metric("train_acc", point.train_acc, point.iteration)
            self.run.log_metric("val_acc", point.val_acc, point.iteration)

    def finish(self, losses: np.ndarray, test_acc: float | None) -> None:
        if self.run is None:
            return
        self.losses(losses)
        if test_acc is not None:
            self.run.log_metric("test_acc", test_acc, len(losses))
        self.run.flush()

    def losses(self, losses: np.ndarray) -> None:
        """Buffer the loss values the run does not have yet."""
        if len(losses) > self.logged:
            self.run.log_series("loss", losses[self.logged:], self.logged)
            self.logged = len(losses)


def run(cfg: DictConfig, overrides: Sequence[str] = ()) -> float:
    """Train once from a composed config (no Hydra app needed); return the final val accuracy.

    ``overrides`` only name the MLflow run. Raises ConfigError (bad config, before data is loaded),
    softmax_exp.data.DataError (bad data) or TrainingDiverged (its run is ended FAILED first).
    """
    outcome = fit(cfg, JobContext(run_name=run_name(list(overrides), cfg), overrides=list(overrides)))
    if outcome.history.diverged:
        raise TrainingDiverged(outcome.history.diverged)
    return outcome.metrics["val_acc"]


def run_name(overrides: Sequence[str], cfg: DictConfig, keys: Sequence[str] | None = None) -> str:
    """A run's name from its overrides, values normalised: ``lr=1e-7 reg=2.5e4`` -> ``lr=1e-07,reg=25000``.

    Hydra's own overrides (``hydra...``) are left out; with ``keys``, only those keys are kept.
    Without any, the name is ``lr=<lr>,reg=<reg>``.
    """
    parts = []
    for o in overrides:
        key, _, value = o.partition("=")
        bare = key.lstrip("+~")
        if bare.startswith("hydra") or (keys is not None and bare not in keys):
            continue
        parts.append(f"{bare}={_format_value(value)}")
    return ",".join(parts) or f"lr={cfg.lr:g},reg={cfg.reg:g}"


def task(cfg: DictConfig) -> float:
    """The Hydra task: one job. Returns val_acc for sweepers (NaN when a job of a sweep failed).

    A single run reports a bad config or data, or a divergence, as one line on stderr and exits
    non-zero. In a sweep a failing job is recorded (result.json, a FAILED run) and the sweep goes on.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from softmax_exp.data import DataError

    INTERRUPTS.install()  # also in a launcher's worker process: Ctrl-C reaches the whole group
    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    multirun = hc.mode == RunMode.MULTIRUN
    info = sweep.read_sweep_info(hc.sweep.dir) if multirun else None
    job = JobContext(overrides=overrides, output_dir=Path(hc.runtime.output_dir),
                     job_num=hc.job.num if multirun else 0, threads=_threads_per_job(hc))
    job.run_name = run_name(overrides, cfg, info["sweep_keys"] if info else None)
    if not multirun:
        try:
            outcome = fit(cfg, job)
        except (ConfigError, DataError, TrainingDiverged, tracking.TrackingError,
                resume.JobRunningElsewhere) as e:
            _exit_with(e)
        except OSError as e:  # an output folder that cannot be written (else Hydra adds its own line)
            _exit_with(ConfigError(_one_line(e)))
        if outcome.history.diverged:
            _exit_with(TrainingDiverged(outcome.history.diverged))
        _print_accuracies(outcome.metrics)
        if outcome.run_id:
            print(f"MLflow run {job.run_name} ({outcome.run_id}) in "
                  f"{tracking.resolve_tracking_uri(cfg.tracking.uri)}; browse it with: make ui", flush=True)
        return outcome.metrics["val_acc"]

    if info is not None:
        job.parent_run_id, job.experiment_id = info["parent_run_id"], info["experiment_id"]
        job.sweep_id = info["sweep_id"]
        print(f"job {job.job_num + 1}/{info['num_jobs'] or '?'}: {job.run_name}", flush=True)
    result = dict(job=job.job_num, run_name=job.run_name, status="FAILED", lr=float(cfg.lr),
                  reg=float(cfg.reg), output_dir=str(job.output_dir), sweep_id=job.sweep_id or "")
    try:
        outcome = fit(cfg, job)
        result.update(outcome.metrics, status=outcome.status, run_id=outcome.run_id or "",
                      reason=outcome.history.diverged or "", note=outcome.note)
        if outcome.note:
            print(f"job {job.job_num + 1}: {outcome.note}", flush=True)
    except KeyboardInterrupt:
        result.update(status="KILLED", reason="interrupted")
        raise
    except Exception as e:  # one failing job never stops the sweep
        result["reason"] = f"{type(e).__name__}: {e}"
    finally:
        result.pop("loss", None)
        sweep.write_result(job.output_dir, sweep.JobResult(**result))
    if result["status"] != "FINISHED":
        print(f"job {job.job_num + 1} {result['status']}: {result['reason']}", file=sys.stderr,
              flush=True)
        return math.nan
    return float(result.get("val_acc", math.nan))


def main() -> None:
    """``python -m softmax_exp.train``: run Hydra, then exit non-zero if a job of a sweep failed."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from softmax_exp import callbacks

    # The task is taken from the module imported by its package name, not from __main__, so that
    # joblib workers unpickle it by reference.
    from softmax_exp import train as packaged

    app = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
    # Hydra prints its own errors (a missing config group, a bad override, an output folder it cannot
    # create) as a report of many lines; made to re-raise them, they are reported in one line below.
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    INTERRUPTS.install()
    try:
        app(packaged.task)()
    except KeyboardInterrupt:
        callbacks.abort_sweeps("KILLED")
        signum = INTERRUPTS.received[0] if INTERRUPTS.received else signal.SIGINT
        print(f"interrupted by {signal.Signals(signum).name}: the open runs are KILLED, their metrics "
              f"kept; rerun the same command to go on", file=sys.stderr, flush=True)
        sys.exit(128 + signum)
    except (HydraException, OmegaConfBaseException, OSError) as e:
        if full_error:
            raise
        _exit_with(ConfigError(_one_line(e)))
    if callbacks.sweep_failed():
        sys.exit(1)


# ------------------------------------------------------------------------------------------------------


def _start_run(cfg: DictConfig, job: JobContext, data, n_threads: int, fingerprint: str) -> tracking.Run:
    tcfg = cfg.tracking
    uri = tracking.resolve_tracking_uri(tcfg.uri)
    tags = {
        resume.FINGERPRINT_TAG: fingerprint,
        "attempt": 1,
        "kernel": cfg.kernel,
        "numba_threads": n_threads,
        "dataset_fingerprint": data.fingerprint,
        "seed": cfg.seed,
        **tracking.environment_tags(),
    }
    if job.sweep_id:
        tags.update(sweep_id=job.sweep_id, job_num=job.job_num)
    # a sweep's jobs go into the experiment of its parent run
    r = tracking.Run.start(uri, tcfg.experiment, job.run_name or run_name([], cfg),
                           artifact_root=tcfg.artifact_root, parent_run_id=job.parent_run_id,
                           tags=tags, experiment_id=job.experiment_id)
    try:
        params = tracking.flatten(OmegaConf.to_container(cfg, resolve=True))
        params.update(n_train=data.X_train.shape[0], n_val=data.X_val.shape[0],
                      n_test=data.X_test.shape[0], dim=data.dim, num_classes=data.num_classes)
        r.log_params(params)
    except BaseException as e:
        r.end("FAILED", f"{type(e).__name__}: {e}")
        raise
    return r


def _write_artifacts(cfg, job: JobContext, model: Softmax, history: TrainHistory, run) -> None:
    from softmax_exp.plots import save_loss_png, save_weights_png

    def write(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        pre = model.preprocessing
        save_weights_png(folder / "weights.png", model.W, pre.image_shape, pre.class_names,
                         pre.bias_trick)
        save_loss_png(folder / "loss.png", history.loss, title=job.run_name or "")
        (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        (folder / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(job.overrides)))
        model.save(folder / "model.npz")
        if run is not None:
            run.log_artifacts(folder)

    if job.output_dir is not None:
        write(job.output_dir / "artifacts")
    else:
        with tempfile.TemporaryDirectory(prefix="softmax_exp_") as tmp:
            write(Path(tmp))


def _optimizer(cfg: DictConfig):
    opt = cfg.optimizer
    return make_optimizer(opt.name, opt.get("momentum", 0.9), opt.get("nesterov", False))


def _cap_threads(n: int | None) -> int | None:
    if n is None:
        return None
    import numba

    return max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))


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


def _show_progress(setting: Any) -> bool:
    if setting == "auto":
        return sys.stderr.isatty() and not os.environ.get("CI")
    return bool(setting)


def _format_value(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    if value.strip().lstrip("+-").isdigit():
        return str(int(value))
    return f"{number:g}"


def _print_accuracies(metrics: dict[str, float]) -> None:
    line = f"train accuracy: {metrics['train_acc']:f} val accuracy: {metrics['val_acc']:f}"
    if "test_acc" in metrics:
        line += f" test accuracy: {metrics['test_acc']:f}"
    print(line, flush=True)


def _one_line(error: Exception) -> str:
    """A Hydra / OmegaConf error or an OSError as one line that says what to fix."""
    if isinstance(error, OSError) and error.filename:
        return (f"{error.strerror}: {error.filename}; make it a writable folder with free space, or write "
                f"the outputs elsewhere with hydra.run.dir=DIR (a sweep: hydra.sweep.dir=DIR)")
    # Hydra's messages span lines and end with the config search path
    message = " ".join(str(error).split("Config search path")[0].split())
    override = getattr(error, "override", None)  # hydra.errors.OverrideParseException
    return f"cannot parse the override {override!r}: {message}" if override else message


def _exit_with(error: Exception) -> None:
    kind = "training diverged" if isinstance(error, TrainingDiverged) else "error"
    print(f"{kind}: {error}", file=sys.stderr, flush=True)
    sys.exit(1 if isinstance(error, TrainingDiverged) else 2)


if __name__ == "__main__":
    main()
