"""The MLflow store: its URI, a client per URI whose calls wait out a locked SQLite file, experiments.

mlflow is imported on first use only (it costs seconds), so an untracked training never pays for it.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
from pathlib import Path

from softmax_exp import timing
from softmax_exp.paths import project_root

DB_NAME = "mlflow.db"
LOCK_RETRY_SECONDS = 300.0  # how long a call waits, in total, for a locked SQLite store
LOCK_RETRIES = [0]  # calls retried because the store was locked, in this process (read by tests)
_EXPERIMENT_IDS: dict[tuple[str, str], str] = {}  # (tracking URI, name) -> id, found in this process


class TrackingError(RuntimeError):
    """The tracking store cannot be used (unreachable, locked for too long). One line."""


def default_uri() -> str:
    """The project's own store, ``sqlite:///<project root>/mlflow.db`` (what ``make ui`` serves)."""
    return f"sqlite:///{project_root() / DB_NAME}"


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
@timing.timed("store")
def get_client(uri: str):
    """The process's MlflowClient for the tracking URI ``uri`` (created once), its calls retried while
    the store is locked (see :class:`RetryingClient`)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline research runs: no usage pings
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the store's schema set-up chatter
    # it logs a traceback for every "database is locked" before raising; the retry below reports instead
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    from softmax_exp.tracking.http import configure

    configure(uri)  # a server: bounded retries, one line while it does not answer
    from mlflow.tracking import MlflowClient

    return RetryingClient(MlflowClient(tracking_uri=uri))


class RetryingClient:
    """An MlflowClient whose calls are retried while a SQLite store is locked.

    MLflow waits up to 20 s for SQLite's lock, but a writer that must upgrade a read lock fails at
    once ("database is locked") when another writer is committing, and a long-held lock outlasts the
    wait. Each failed call rolled its transaction back, so calling again is safe: tenacity retries it
    with jittered exponential backoff (50 ms doubling to 2 s) for up to ``LOCK_RETRY_SECONDS`` in total,
    then the call fails with a one-line TrackingError.
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
            return _retrying(self._retry_seconds or LOCK_RETRY_SECONDS, self._client.tracking_uri)(
                attr, *args, **kwargs)

        return call


def _is_locked(error: BaseException) -> bool:
    return "database is locked" in str(error) or "database table is locked" in str(error)


def _retrying(seconds: float, uri: str):
    import tenacity

    def count(state) -> None:
        LOCK_RETRIES[0] += 1

    def give_up(state):
        raise TrackingError(f"the MLflow store {uri} stayed locked for {seconds:.0f} s; is another "
                            f"process holding a write lock on it?") from None

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_locked),
        wait=tenacity.wait_random_exponential(multiplier=0.05, max=2.0),
        stop=tenacity.stop_after_delay(seconds),
        before_sleep=count,
        retry_error_callback=give_up,
    )


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

    key = (client.tracking_uri, name)
    if key in _EXPERIMENT_IDS:  # a training after the first in a process: no lookup
        return _EXPERIMENT_IDS[key]
    exp = client.get_experiment_by_name(name)
    if exp is None:
        artifact_root = artifact_root or default_artifact_root(client.tracking_uri)
        location = str(Path(artifact_root) / name) if artifact_root else None
        try:
            _EXPERIMENT_IDS[key] = client.create_experiment(name, artifact_location=location)
            return _EXPERIMENT_IDS[key]
        except MlflowException:  # another job created it in the meantime
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    _EXPERIMENT_IDS[key] = exp.experiment_id
    return exp.experiment_id


def child_runs(client, parent_run_id: str) -> list:
    """The runs whose ``mlflow.parentRunId`` tag is ``parent_run_id``, oldest first."""
    from softmax_exp.tracking.tags import PARENT_TAG

    parent = client.get_run(parent_run_id)
    return list(client.search_runs([parent.info.experiment_id],
                                   filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                                   max_results=10000, order_by=["attributes.start_time ASC"]))
