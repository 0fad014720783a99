"""Everything MLflow: the store's URI, experiments, runs with batched metrics, params, tags and artifacts.

mlflow is imported on first use only (it costs seconds), so an untracked training never pays for it.
One :class:`MlflowClient` per tracking URI per process. Metrics are buffered and sent with
``MlflowClient.log_batch`` in chunks of at most 1000; params and tags in chunks of 100 (MLflow's limits).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import subprocess
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
    """The process's MlflowClient for the tracking URI ``uri`` (created once)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline research runs: no usage pings
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("alembic", "mlflow.store.db.utils"):  # the store's schema set-up chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


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

    As a context manager the run ends FINISHED, or FAILED on an exception (KILLED on Ctrl-C).
    """

    def __init__(self, client, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._metrics: list[tuple[str, float, int, int]] = []
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
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = client.create_run(exp_id, run_name=run_name, tags=all_tags)
        return cls(client, run.info.run_id)

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
        from mlflow.entities import Metric

        while self._metrics and (len(self._metrics) >= MAX_METRICS_PER_BATCH or not keep_partial):
            chunk = self._metrics[:MAX_METRICS_PER_BATCH]
            del self._metrics[:MAX_METRICS_PER_BATCH]
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, t, s) for k, v, t, s in chunk])

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        """Copy every file under ``local_dir`` into the run's artifacts."""
        self.client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy one file into the run's artifacts."""
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        """Flush metrics, tag the failure reason if any, and set the run's final status (once)."""
        if self.ended:
            return
        self.ended = True
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
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("KILLED", "interrupted")
        else:
            self.end("FAILED", f"{exc_type.__name__}: {exc}")


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
