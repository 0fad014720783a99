"""One MLflow run: batched metrics, params and tags, artifacts, and an end that is never skipped."""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from softmax_exp.tracking import mlflow_internals
from softmax_exp.tracking.owners import owner_tags
from softmax_exp.tracking.store import ServerUnavailable, TrackingError, get_client, get_or_create_experiment
from softmax_exp.tracking.tags import FAILURE_TAG, HEARTBEAT_TAG, PARENT_TAG

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000


class Run:
    """One MLflow run. Params and metrics are buffered and sent in as few ``log_batch`` calls as MLflow's
    limits allow; :meth:`end` sends the rest and closes it.

    As a context manager the run ends FINISHED, or FAILED on an exception (KILLED on Ctrl-C, SIGTERM
    or sys.exit, as when submitit requeues a job).
    """

    def __init__(self, client, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._metrics: list[tuple[str, float, int, int]] = []
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self.flushed_at = time.monotonic()  # when buffered values were last sent
        self._artifact_uri: str | None = None
        self._kept_artifacts = False  # an artifact could not be deleted (reported once)
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
        """Buffer params (values turned into strings, cut at 6000 chars); they go with the next
        :meth:`flush` or :meth:`end`, in as few calls as MLflow's limits allow."""
        self._params.update({k: _text(v)[:MAX_PARAM_LENGTH] for k, v in params.items()})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags now (with whatever is buffered), in batches of 100."""
        self._tags.update({k: _text(v) for k, v in tags.items()})
        self.flush()

    def log_metric(self, key: str, value: float, step: int, timestamp_ms: int | None = None) -> None:
        """Buffer one metric value (stamped now, or at ``timestamp_ms``); sent when 1000 are waiting or at
        :meth:`flush` / :meth:`end`."""
        self._metrics.append((key, float(value), _now_ms() if timestamp_ms is None else int(timestamp_ms),
                              int(step)))
        if len(self._metrics) + len(self._params) + len(self._tags) >= MAX_METRICS_PER_BATCH:
            self.flush(full_only=True)

    def flush(self, full_only: bool = False) -> None:
        """Send the buffered params, tags and metrics (with a new heartbeat): one ``log_batch`` per 100
        params, 100 tags or 1000 values in all, MLflow's limits (with ``full_only``, a last part that
        would not fill a call waits). A failed call loses nothing: the buffers are emptied only of what
        was sent."""
        from mlflow.entities import Metric, Param, RunTag

        self._tags[HEARTBEAT_TAG] = str(int(time.time()))
        self.flushed_at = time.monotonic()
        while self._params or self._tags or self._metrics:
            if full_only and len(self._metrics) + min(len(self._params), MAX_PARAMS_TAGS_PER_BATCH) + min(
                    len(self._tags), MAX_PARAMS_TAGS_PER_BATCH) < MAX_METRICS_PER_BATCH:
                break
            params = list(self._params.items())[:MAX_PARAMS_TAGS_PER_BATCH]
            tags = list(self._tags.items())[:MAX_PARAMS_TAGS_PER_BATCH]
            metrics = self._metrics[:MAX_METRICS_PER_BATCH - len(params) - len(tags)]
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, t, s) for k, v, t, s in metrics],
                                  params=[Param(k, v) for k, v in params],
                                  tags=[RunTag(k, v) for k, v in tags])
            for k, _ in params:
                del self._params[k]
            for k, v in tags:
                if self._tags.get(k) == v:
                    del self._tags[k]
            del self._metrics[:len(metrics)]

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        """Copy every file under ``local_dir`` into the run's artifacts."""
        self.client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy one file into the run's artifacts."""
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def delete_artifact(self, path: str) -> None:
        """Delete one of the run's artifacts where the store allows it (best effort: a store that
        cannot delete keeps the file, and says so once per run, in one line)."""
        try:
            if self._artifact_uri is None:  # asked once per run, not at every checkpoint
                self._artifact_uri = self.client.get_run(self.run_id).info.artifact_uri
            # the run's tracking URI, as MlflowClient passes it: an `mlflow-artifacts:/` location is
            # resolved against it (without it MLflow takes its default store and refuses)
            mlflow_internals.artifact_repository(self._artifact_uri, self.client.tracking_uri
                                                 ).delete_artifacts(path)
        except Exception as e:  # an artifact store without deletion
            if not self._kept_artifacts:
                first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
                logging.getLogger(__name__).info("kept artifact %s of run %s (said once a run): %s",
                                                 path, self.run_id, first_line)
            self._kept_artifacts = True

    def end(self, status: str = "FINISHED", reason: str | None = None,
            tags: Mapping[str, Any] | None = None) -> None:
        """Send what is buffered with ``tags`` and the failure reason if any, and set the run's final
        status (once). A tracking server that does not answer is asked once, not twice: when sending
        fails with ServerUnavailable the status is not sent either (the run stays RUNNING; a later
        sweep takes it up after ``tracking.stale_after_min``)."""
        if self.ended:
            return
        self.ended = True
        with _signals_held():  # a second Ctrl-C must not leave the run RUNNING half-way through
            try:
                self._tags.update({k: _text(v) for k, v in (tags or {}).items()})
                if reason:
                    self._tags[FAILURE_TAG] = reason[:5000]
                self.flush()
            except ServerUnavailable:
                raise
            except BaseException:
                self.client.set_terminated(self.run_id, status=status)
                raise
            self.client.set_terminated(self.run_id, status=status)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.end("FINISHED")
            return
        if issubclass(exc_type, ServerUnavailable):  # asking the same server again would wait as long
            self.ended = True
            return
        try:
            if issubclass(exc_type, (KeyboardInterrupt, SystemExit)):  # stopped from outside, not failed
                self.end("KILLED", "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "exited")
            else:
                self.end("FAILED", f"{exc_type.__name__}: {exc}")
        except TrackingError as e:  # the failure that ended the run is the one to report
            if issubclass(exc_type, TrackingError) and str(e) == str(exc):
                return  # the store itself failed (a full disk): that one line says it all
            logging.getLogger(__name__).warning("run %s could not be marked ended: %s", self.run_id, e)


def unique_run_name(client, experiment_id: str, base: str) -> str:
    """``base`` if no run of the experiment has that name yet, else ``base #2``, ``#3``, ...: names a
    person can tell apart in the run list (MLflow itself allows duplicates)."""
    pattern = base.replace("'", "")
    runs = client.search_runs([experiment_id], filter_string=f"attributes.run_name LIKE '{pattern}%'",
                              max_results=1000, run_view_type=3)  # ALL: deleted runs keep their names
    taken = {r.info.run_name for r in runs}
    if base not in taken:
        return base
    n = 2
    while f"{base} #{n}" in taken:
        n += 1
    return f"{base} #{n}"


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


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return "null" if value is None else str(value)


def _now_ms() -> int:
    return int(time.time() * 1000)
