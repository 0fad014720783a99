"""Everything MLflow: the store's URI, experiments, runs with batched metrics, params, tags and artifacts.

mlflow is imported on first use only (it costs seconds), so an untracked training never pays for it.
One :class:`MlflowClient` per tracking URI per process, whose calls are retried with backoff while a
SQLite store is locked by another writer. Metrics are buffered and sent with ``MlflowClient.log_batch`` in
chunks of at most 1000; params and tags in chunks of 100 (MLflow's limits). Every run records which
process owns it (host, pid, heartbeat), so that a later invocation can tell a run whose process died
from one that is still going.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import random
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000
PARENT_TAG = "mlflow.parentRunId"
FAILURE_TAG = "failure_reason"
DB_NAME = "mlflow.db"
HOST_TAG, PID_TAG, PID_START_TAG, HEARTBEAT_TAG = "host", "pid", "pid_start", "heartbeat"
LOCK_RETRY_SECONDS = 300.0  # how long a call waits, in total, for a locked SQLite store
LOCK_RETRIES = [0]  # calls retried because the store was locked, in this process (read by tests)


class TrackingError(RuntimeError):
    """The tracking store cannot be used (unreachable, locked for too long)."""


def project_root() -> Path:
    """The source checkout holding this package (it has pyproject.toml), else the current directory."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def register_resolvers() -> None:
    """Register ``${project_root:}`` for the configs (idempotent)."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("project_root", lambda: str(project_root()), replace=True)


def resolve_tracking_uri(uri: str, base_dir: str | Path | None = None) -> str:
    """Make a local store URI absolute against ``base_dir`` (default: cwd), so that jobs running in
    other working directories write to the same store. Remote URIs (http, databricks, ...) pass through.

    ``sqlite:///mlflow.db`` -> ``sqlite:////abs/mlflow.db``; ``mlruns`` or ``file:mlruns`` -> ``file:///abs/mlruns``.
    """
    if not isinstance(uri, str) or not uri:
        raise ValueError(f"tracking.uri must be a non-empty string; got {uri!r}")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        if path == ":memory:" or path.startswith("/"):
            return uri
        return "sqlite:///" + str((base / path).resolve())
    if uri.startswith("file:"):
        path = uri[len("file://"):] if uri.startswith("file://") else uri[len("file:"):]
        return Path(base / path).resolve().as_uri()
    if "://" in uri or ":" in uri.split("/", 1)[0]:
        return uri
    return (base / Path(uri).expanduser()).resolve().as_uri()


def default_artifact_root(uri: str) -> str | None:
    """Where runs of a local store keep their files: ``<folder of the sqlite file>/mlartifacts``.
    None (the server or MLflow decides) for other stores."""
    if uri.startswith("sqlite:////"):
        return str(Path(uri[len("sqlite:///"):]).parent / "mlartifacts")
    return None


@functools.lru_cache(maxsize=8)
def get_client(uri: str):
    """The process's MlflowClient for the tracking URI ``uri`` (created once), calls retried while the
    store is locked (see :class:`RetryingClient`)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline research runs: no usage pings
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the store's schema set-up chatter
    # it logs a traceback for every "database is locked" before raising; the retry below reports instead
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    from mlflow.tracking import MlflowClient

    return RetryingClient(MlflowClient(tracking_uri=uri))


class RetryingClient:
    """An MlflowClient whose calls are retried while a SQLite store is locked.

    MLflow waits up to 20 s for SQLite's lock, but a writer that must upgrade a read lock fails at
    once ("database is locked") when another writer is committing, and a long-held lock outlasts the
    wait. Each failed call rolled its transaction back, so calling again is safe: retry with
    exponential backoff (50 ms doubling to 2 s, jittered) for up to ``LOCK_RETRY_SECONDS`` in total.
    """

    def __init__(self, client, retry_seconds: float | None = None) -> None:
        self._client = client
        self._retry_seconds = retry_seconds

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args, **kwargs):
            return _retry_while_locked(attr, args, kwargs, self._retry_seconds or LOCK_RETRY_SECONDS,
                                       self._client.tracking_uri)

        return call


def _retry_while_locked(fn, args, kwargs, retry_seconds: float, uri: str):
    start = time.monotonic()
    delay = 0.05
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if "database is locked" not in str(e) and "database table is locked" not in str(e):
                raise
            if time.monotonic() - start + delay > retry_seconds:
                raise TrackingError(f"the MLflow store {uri} stayed locked for {retry_seconds:.0f} s; "
                                    f"is another process holding a write lock on it?") from None
            LOCK_RETRIES[0] += 1
            time.sleep(delay * (0.5 + random.random()))
            delay = min(2 * delay, 2.0)


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """For an http(s) tracking URI, ask the server's ``/health`` within ``timeout`` seconds; raise
    TrackingError in one line if it does not answer (MLflow itself would retry for minutes)."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
            r.read(100)
    except urllib.error.HTTPError:
        return  # something answers (a proxy may guard /health); MLflow's own calls will tell more
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ssl.SSLError):
            return  # it answers; certificates are MLflow's business (MLFLOW_TRACKING_INSECURE_TLS, ...)
        raise TrackingError(f"the MLflow server at {uri} does not answer ({reason}); start it "
                            f"(make ui serves the local store) or point tracking.uri elsewhere") from None


def get_or_create_experiment(client, name: str, artifact_root: str | None = None) -> str:
    """The id of the experiment ``name``, created (with ``artifact_root/<name>``) if missing.

    Without ``artifact_root`` a local store's runs keep their files beside the store
    (:func:`default_artifact_root`), never in MLflow's fallback ``./mlruns`` of whatever the current
    directory happens to be.
    """
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifact_root = artifact_root or default_artifact_root(client.tracking_uri)
    location = str(Path(artifact_root) / name) if artifact_root else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # another job created it in the meantime
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


class Run:
    """One MLflow run. Metrics are buffered and sent in batches; :meth:`end` flushes and closes it.

    As a context manager the run ends FINISHED, or FAILED on an exception (KILLED on Ctrl-C, SIGTERM
    or sys.exit, as when submitit requeues a job).
    """

    def __init__(self, client, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._metrics: list[tuple[str, float, int, int]] = []
        self._artifact_uri: str | None = None
        self.ended = False

    @classmethod
    def start(
        cls,
        uri: str,
        experiment: str,
        run_name: str,
        *,
        artifact_root: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        experiment_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run named ``run_name`` in ``experiment`` (created if missing; or directly
        in the experiment with id ``experiment_id``), a child of ``parent_run_id`` if given."""
        client = get_client(uri)
        exp_id = experiment_id or get_or_create_experiment(client, experiment, artifact_root)
        all_tags = {k: str(v) for k, v in {**(tags or {}), **owner_tags()}.items()}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = client.create_run(exp_id, run_name=run_name, tags=all_tags)
        return cls(client, run.info.run_id)

    @classmethod
    def reopen(cls, uri: str, run_id: str, tags: Mapping[str, Any] | None = None) -> Run:
        """Set the ended run ``run_id`` RUNNING again, owned by this process (to go on with it)."""
        client = get_client(uri)
        client.update_run(run_id, status="RUNNING")
        run = cls(client, run_id)
        run.set_tags({**(tags or {}), **owner_tags()})
        return run

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params now, in batches of 100 (values are turned into strings, cut at 6000 chars)."""
        from mlflow.entities import Param

        items = [Param(k, _text(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for chunk in _chunks(items, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(self.run_id, params=chunk)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags now, in batches of 100."""
        from mlflow.entities import RunTag

        items = [RunTag(k, _text(v)) for k, v in tags.items()]
        for chunk in _chunks(items, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(self.run_id, tags=chunk)

    def log_metric(self, key: str, value: float, step: int) -> None:
        """Buffer one metric value; sent when 1000 are waiting or at :meth:`flush` / :meth:`end`."""
        self._metrics.append((key, float(value), _now_ms(), int(step)))
        if len(self._metrics) >= MAX_METRICS_PER_BATCH:
            self.flush()

    def log_series(self, key: str, values: np.ndarray, first_step: int = 0) -> None:
        """Buffer ``values`` (n,) as metric ``key`` at steps first_step .. first_step + n - 1."""
        ts = _now_ms()
        self._metrics.extend(
            (key, v, ts, first_step + i) for i, v in enumerate(np.asarray(values, dtype=float).tolist())
        )
        if len(self._metrics) >= MAX_METRICS_PER_BATCH:
            self.flush(keep_partial=True)

    def flush(self, keep_partial: bool = False) -> None:
        """Send the buffered metrics, 1000 per call (with keep_partial, a last short chunk waits)."""
        from mlflow.entities import Metric, RunTag

        while self._metrics and (len(self._metrics) >= MAX_METRICS_PER_BATCH or not keep_partial):
            chunk = self._metrics[:MAX_METRICS_PER_BATCH]
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, t, s) for k, v, t, s in chunk],
                                  tags=[RunTag(HEARTBEAT_TAG, str(int(time.time())))])
            del self._metrics[:MAX_METRICS_PER_BATCH]  # only once sent: a failed call loses nothing

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        """Copy every file under ``local_dir`` into the run's artifacts."""
        self.client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy one file into the run's artifacts."""
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def delete_artifact(self, path: str) -> None:
        """Delete one of the run's artifacts where the store allows it (best effort: a store that
        cannot delete keeps the file)."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        try:
            if self._artifact_uri is None:  # asked once per run, not at every checkpoint
                self._artifact_uri = self.client.get_run(self.run_id).info.artifact_uri
            get_artifact_repository(self._artifact_uri).delete_artifacts(path)
        except Exception as e:  # an artifact store without deletion
            logging.getLogger(__name__).info("kept artifact %s of run %s: %s", path, self.run_id, e)

    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        """Flush metrics, tag the failure reason if any, and set the run's final status (once)."""
        if self.ended:
            return
        self.ended = True
        with _signals_held():  # a second Ctrl-C must not leave the run RUNNING half-way through
            try:
                self.flush()
                if reason:
                    self.set_tags({FAILURE_TAG: reason[:5000]})
            finally:
                self.client.set_terminated(self.run_id, status=status)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.end("FINISHED")
        elif issubclass(exc_type, (KeyboardInterrupt, SystemExit)):  # stopped from outside, not failed
            self.end("KILLED", "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "exited")
        else:
            self.end("FAILED", f"{exc_type.__name__}: {exc}")


def owner_tags() -> dict[str, str]:
    """Which process owns a run: host name, pid, the pid's start time (pids are reused) and a
    heartbeat (seconds since the epoch, renewed whenever metrics are sent)."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: _process_start(pid),
            HEARTBEAT_TAG: str(int(time.time()))}


def owner_alive(tags: Mapping[str, str]) -> bool | None:
    """Whether the process named by a run's owner tags still runs: True / False on this host, None
    (cannot tell) for another host or a run without owner tags."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return None
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    started = tags.get(PID_START_TAG, "")
    return not (started and _process_start(pid) != started)


def is_stale(run, stale_after_s: float, now: float | None = None) -> bool:
    """A RUNNING run whose process is gone: dead on this host, or (another host) no heartbeat for
    ``stale_after_s`` seconds."""
    if run.info.status != "RUNNING":
        return False
    alive = owner_alive(run.data.tags)
    if alive is not None:
        return not alive
    beat = run.data.tags.get(HEARTBEAT_TAG, "")
    last = float(beat) if beat.isdigit() else run.info.start_time / 1000
    return (now if now is not None else time.time()) - last > stale_after_s


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to one level with dotted keys: ``{"a": {"b": 1}} -> {"a.b": 1}``.
    Lists stay values (logged as JSON)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def environment_tags() -> dict[str, str]:
    """Tags that pin down the code: git commit and dirty flag, numpy / numba / mlflow versions."""
    commit, dirty = _git_state(str(project_root()))
    tags = {"git_commit": commit, "git_dirty": dirty}
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    for pkg in ("numpy", "numba", "mlflow"):
        tags[f"{pkg}_version"] = _version(pkg)
    return tags


def child_runs(uri: str, parent_run_id: str) -> list:
    """The runs whose ``mlflow.parentRunId`` tag is ``parent_run_id``, oldest first."""
    client = get_client(uri)
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
        max_results=10000,
        order_by=["attributes.start_time ASC"],
    )
    return list(runs)


@functools.lru_cache(maxsize=4)
def _git_state(root: str) -> tuple[str, str]:
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"
    return commit, str(bool(status.strip())).lower()


def _process_start(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ("" where /proc has none)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


class _signals_held:
    """Hold SIGINT and SIGTERM (delivered on exit) in the main thread; elsewhere do nothing."""

    SIGNALS = {signal.SIGINT, signal.SIGTERM}

    def __enter__(self):
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)

    def __exit__(self, *exc) -> None:
        if self.active:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return "null" if value is None else str(value)


def _chunks(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _now_ms() -> int:
    return int(time.time() * 1000)
