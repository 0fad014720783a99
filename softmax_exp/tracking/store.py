"""The MLflow store: its URI, a client per URI whose calls wait out a locked SQLite file, experiments.

A local SQLite store is created whole or not at all: its schema is built in a temporary file under a lock
and renamed into place, so a kill at any moment, or two processes starting on a new store at once, never
leave a half-made store behind (MLflow builds it in place, with dozens of migrations). A store that is
broken anyway (half-made by an older version, not a database, of an older schema, read-only, on a full
disk) is named in one line with its fix (:class:`TrackingError`), as is every failure of a call to it.

mlflow is imported on first use only (it costs seconds), so an untracked training never pays for it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import sqlite3
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from softmax_exp.tracking import http, mlflow_internals, views
from softmax_exp.tracking.http import configure
from softmax_exp.tracking.tags import PARENT_TAG
from softmax_exp.util import timing
from softmax_exp.util.atomic import exclusive_lock, fsync
from softmax_exp.util.paths import project_root

DB_NAME = "mlflow.db"
LOCK_RETRY_SECONDS = 300.0  # how long a call waits, in total, for a locked SQLite store
LOCK_RETRIES = [0]  # calls retried because the store was locked, in this process (read by tests)
_EXPERIMENT_IDS: dict[tuple[str, str], str] = {}  # (tracking URI, name) -> id, found in this process


class TrackingError(RuntimeError):
    """The tracking store cannot be used (unreachable, locked for too long). One line."""


class ServerUnavailable(TrackingError):
    """A tracking server did not answer, or kept failing, through MLflow's bounded retries: another call
    would only wait as long again."""


@dataclass(frozen=True)
class Store:
    """An MLflow store opened for one experiment: its URI (absolute), the process's client for it and the
    experiment's id."""

    uri: str
    client: Any
    experiment_id: str

    @classmethod
    def open(cls, settings, experiment_id: str | None = None) -> Store:
        """The store of the tracking ``settings`` (softmax_exp.tracking.settings.TrackingConfig), a server
        asked first whether it answers, and its experiment, made if missing (``experiment_id``: known)."""
        uri = resolve_tracking_uri(settings.uri)
        check_reachable(uri)
        client = get_client(uri)
        experiment_id = experiment_id or get_or_create_experiment(client, settings.experiment,
                                                                  settings.artifact_root)
        return cls(uri, client, experiment_id)


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
    """The process's MlflowClient for the tracking URI ``uri`` (created once, a new local store created
    whole first: :func:`prepare_store`), its calls retried while the store is locked and its store's
    failures one line (see :class:`RetryingClient`)."""
    _quiet_mlflow()

    configure(uri)  # a server: bounded retries, one line while it does not answer
    prepare_store(uri)
    from mlflow.tracking import MlflowClient

    with translated(uri):  # MLflow opens a database store here, and checks its schema's version
        return RetryingClient(MlflowClient(tracking_uri=uri))


class RetryingClient:
    """An MlflowClient whose calls are retried while a SQLite store is locked, and whose failures that
    come from the store itself are one-line TrackingErrors naming the store and the fix.

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
            uri = self._client.tracking_uri
            with translated(uri):
                return _retrying(self._retry_seconds or LOCK_RETRY_SECONDS, uri)(attr, *args, **kwargs)

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


@contextlib.contextmanager
def translated(uri: str) -> Iterator[None]:
    """Turn a failure of the store ``uri`` (not of the caller) into a one-line TrackingError."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as e:
        message = describe_store_error(e, uri)
        if message is None:
            raise
        if uri.startswith(("http://", "https://")):
            raise ServerUnavailable(message) from None
        raise TrackingError(message) from None


def describe_store_error(error: BaseException, uri: str) -> str | None:
    """One line saying what is wrong with the store ``uri`` and how to fix it, when ``error`` comes from
    the store (not a database, an old schema, read-only, no space, unreachable); None otherwise."""
    text = str(error)
    where = f"the MLflow store {uri}"
    path = sqlite_path(uri)
    if "file is not a database" in text:
        return (f"{where} is not an MLflow store (not a SQLite database); move that file away or point "
                f"tracking.uri at another one")
    if "out-of-date database schema" in text:
        return (f"{where} has an older schema than this MLflow's: back it up, then run "
                f"`mlflow db upgrade {uri}`")
    if "readonly database" in text or "read-only" in text:
        return f"{where} is read-only: make it and its folder writable, or point tracking.uri elsewhere"
    if "unable to open database file" in text:
        return (f"cannot open {where}: its folder {path.parent if path else ''} is missing or not writable; "
                f"fix that, or point tracking.uri elsewhere")
    if "database or disk is full" in text or (isinstance(error, OSError) and error.errno == errno.ENOSPC):
        return f"the disk of {where} is full: free some space there, or point tracking.uri elsewhere"
    if uri.startswith(("http://", "https://")):
        return http.describe_failure(error, uri)
    return None


def sqlite_path(uri: str) -> Path | None:
    """The file of a local ``sqlite:////abs/file`` store URI; None for any other store."""
    if uri.startswith("sqlite:////"):
        return Path(uri[len("sqlite:///"):])
    return None


def prepare_store(uri: str) -> None:
    """Make sure a local SQLite store is whole before MLflow opens it: a new one is built in a temporary
    file beside its place under a lock (``.<name>.lock``; temporary files that a killed creator left are
    removed then), checked, and renamed into place; an existing one is checked. Other stores: nothing.
    Raises TrackingError (one line) for a store that is not usable as it is."""
    path = sqlite_path(uri)
    if path is None:
        return
    if _has_schema(path, uri):
        return

    def cannot(e: OSError) -> TrackingError:
        return TrackingError(describe_store_error(e, uri) or f"cannot create the MLflow store {uri}: "
                             f"{e.strerror or e}; point tracking.uri at a writable folder")

    with contextlib.ExitStack() as stack:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(exclusive_lock(path.parent / f".{path.name}.lock"))
        except OSError as e:
            raise cannot(e) from None
        if _has_schema(path, uri):  # another process made it while this one waited
            return
        for leftover in path.parent.glob(f".{path.name}.*.creating*"):  # under the lock: a dead creator's
            leftover.unlink(missing_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.creating")
        try:
            with translated(uri):
                _build_schema(tmp, uri)
            if not _has_schema(tmp, uri):
                raise TrackingError(f"could not create the MLflow store {uri}: its schema came out "
                                    f"incomplete")
            fsync(tmp)
            os.replace(tmp, path)
            fsync(path.parent)
        except OSError as e:
            raise cannot(e) from None
        finally:
            for part in path.parent.glob(f"{tmp.name}*"):
                part.unlink(missing_ok=True)


def _build_schema(tmp: Path, uri: str) -> None:
    """MLflow's whole schema (every migration) in the new SQLite file ``tmp``, with the store's default
    artifact root for its Default experiment."""
    _quiet_mlflow()
    mlflow_internals.build_schema(tmp, default_artifact_root(uri))


def _has_schema(path: Path, uri: str) -> bool:
    """Whether the SQLite file ``path`` holds an MLflow schema: False when there is no file, or an empty
    one (a store not made yet); True when its tables and alembic's version are there. Anything else (a
    file that is not a database, a schema left half-made) is a TrackingError naming the fix."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        tables, _, runs, whole = mlflow_internals.read_schema(path)
    except sqlite3.DatabaseError as e:
        raise TrackingError(describe_store_error(e, uri) or f"cannot read the MLflow store {uri} "
                            f"({e}); move it away or point tracking.uri elsewhere") from None
    if not tables:
        return False
    if whole:
        return True
    holds = "it holds no runs: delete it" if not runs else f"it holds {runs} runs: back it up, then try " \
            f"`mlflow db upgrade {uri}`, or start a new store"
    raise TrackingError(f"the MLflow store {uri} was left half-made (its schema creation was stopped); "
                        f"{holds}")


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline research runs: no usage pings
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name, level in mlflow_internals.QUIET_LOGGERS.items():  # schema chatter, a traceback per lock
        logging.getLogger(name).setLevel(level)


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """For an http(s) tracking URI, ask the server's ``/health`` within ``timeout`` seconds; raise
    TrackingError in one line if it does not answer (MLflow itself would retry for minutes)."""
    if not uri.startswith(("http://", "https://")):
        return

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
        location = artifact_location(artifact_root, name) if artifact_root else None
        try:
            client.create_experiment(name, artifact_location=location,
                                     tags={views.EXPERIMENT_KIND_TAG: views.CUSTOM_MODEL_DEVELOPMENT})
        except MlflowException:  # another job created it in the meantime
            pass
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise TrackingError(f"cannot create the MLflow experiment {name!r} in {client.tracking_uri}")
    views.prepare_experiment(client, exp)
    _EXPERIMENT_IDS[key] = exp.experiment_id
    return exp.experiment_id


def artifact_location(artifact_root: str, name: str) -> str:
    """``<artifact_root>/<name>``, the folder of a new experiment's runs. A local root is made absolute,
    and the folder must be a child of it whatever the name holds (a separator, ``..``, an absolute path):
    TrackingError (one line) otherwise. A URI root (``s3://...``) gets the name appended."""
    if "://" in artifact_root:
        if "/" in name or name in (".", ".."):
            raise TrackingError(f"the experiment name {name!r} would make a path under {artifact_root}; "
                                f"give tracking.experiment a plain name")
        return f"{artifact_root.rstrip('/')}/{name}"
    root = Path(artifact_root).expanduser().resolve()
    location = (root / name).resolve()
    if location.parent != root:
        raise TrackingError(f"the experiment name {name!r} would put its files outside the artifact root "
                            f"{root}; give tracking.experiment a plain name (no '/', no '..')")
    return str(location)


def child_runs(client, parent_run_id: str) -> list:
    """The runs whose ``mlflow.parentRunId`` tag is ``parent_run_id``, oldest first."""
    parent = client.get_run(parent_run_id)
    return list(client.search_runs([parent.info.experiment_id],
                                   filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                                   max_results=10000, order_by=["attributes.start_time ASC"]))
