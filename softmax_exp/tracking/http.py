"""A tracking server over HTTP: how long a call waits for it, one line while it does not answer, one line
when it failed.

MLflow retries a failed request itself (urllib3's ``Retry`` in ``mlflow.utils.request_utils``): a refused
or broken connection, a timeout and the answers 408, 429, 500, 502, 503 and 504 are tried again up to
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` times; before the k-th retry (k >= 2) it sleeps
``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR * 2**(k-1)`` seconds (an integer factor) plus up to
``MLFLOW_HTTP_REQUEST_BACKOFF_JITTER`` seconds at random, at most 120 s; each try waits up to
``MLFLOW_HTTP_REQUEST_TIMEOUT`` seconds to connect and again for each read. MLflow's defaults (7, 2, 1.0,
120) keep one call of a job on a stopped server for about 4 minutes, then again for each call its failing
run makes to record its end, with a urllib3 warning for every try.

The project's defaults (:data:`DEFAULTS`): 5 retries with factor 1 sleep 2 + 4 + 8 + 16 s, so a call to a
server that refuses or fails gives up after about 30 s (34 at most, :func:`retry_seconds`): long enough to
outlast a restart of ``mlflow server`` (a few seconds) or of its database, short enough that a job on a
server that is gone stops holding its CPUs (or its SLURM allocation) after that call and the two its run
makes to record its end, about 1.5 minutes (a 2-job joblib sweep ended 3.2 minutes after its server
stopped, its parent's end included; with MLflow's defaults, 6 calls of 4 minutes). Run again, it goes on
from the last checkpoints. A try waits up to 30 s for an answer: a healthy server answers in well under a
second, and a shorter wait would try writes again that a slow server was still doing. A host that drops
packets (no refusal) costs 6 tries x 30 s more, about 3.5 minutes a call.
Any of the four variables set in the environment wins over these defaults.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from urllib.parse import urlsplit

DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1.0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
REPORT_EVERY_S = 300.0  # one line per server per outage: another only this long after the last one

_SERVERS: list[str] = []  # the http(s) tracking URIs configured in this process
_REPORTED: dict[str, float] = {}  # host -> when its outage was last reported (time.monotonic)
_lock = threading.Lock()


def configure(uri: str) -> None:
    """For an http(s) tracking URI ``uri``: MLflow's retry settings from :data:`DEFAULTS` where the
    environment has none (a user's own settings win), no run link printed by MLflow at each run's end
    (the project prints its own; MLflow's costs a call), and urllib3's warning at every retry folded into
    one line per outage (:class:`_RetryWarnings`). Other URIs: nothing. Safe to call again."""
    if not uri.startswith(("http://", "https://")):
        return
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    with _lock:
        if uri not in _SERVERS:
            _SERVERS.append(uri)
        pool_log = logging.getLogger("urllib3.connectionpool")
        if not any(isinstance(f, _RetryWarnings) for f in pool_log.filters):
            pool_log.addFilter(_RetryWarnings())


def retry_seconds() -> float:
    """The longest a call sleeps between its tries of a server that refuses or fails, with the settings in
    force (the environment, else :data:`DEFAULTS`): 34 s with the project's, 249 s with MLflow's."""
    retries, factor, jitter = _settings()[:3]
    return float(sum(min(120.0, factor * 2 ** (k - 1) + jitter) for k in range(2, retries + 1)))


def describe_failure(error: BaseException, uri: str) -> str | None:
    """One line for MLflow's exception ``error`` when the tracking server ``uri`` could not be reached or
    kept failing (after MLflow's retries): what happened, to which server, and what to do. None for any
    other error (a bad parameter, a missing run, ...)."""
    text = " ".join(str(e) for e in _chain(error))
    if "API request to" not in text and not any(type(e).__module__.startswith(("requests", "urllib3"))
                                                for e in _chain(error)):
        return None
    retries, _, _, timeout = _settings()
    tries = f"tried {retries + 1} time{'s' if retries else ''} over up to {retry_seconds():.0f} s"
    again = "run the same command again: it goes on from the last checkpoints"
    if status := re.search(r"too many (\d{3}) error responses", text):
        return (f"the MLflow server at {uri} kept answering HTTP {status[1]} ({tries}): see its log (is its "
                f"database up?), then {again}")
    if re.search(r"timed? ?out|timeout", text, re.IGNORECASE):
        return (f"the MLflow server at {uri} did not answer within {timeout} s "
                f"(MLFLOW_HTTP_REQUEST_TIMEOUT; {tries}): is it overloaded, or its host unreachable? "
                f"When it answers again, {again}")
    if reason := _connection_reason(text):
        return (f"the MLflow server at {uri} does not answer ({reason}; {tries}): start it again (or point "
                f"tracking.uri at the right one), then {again}")
    if status := re.search(r"API request to endpoint (\S+) failed with error code (\d{3})", text):
        return (f"the server at {uri} answered HTTP {status[2]} to {status[1]}: is tracking.uri an MLflow "
                f"server of a version that has this endpoint?")
    return None


def _settings() -> tuple[int, int, float, int]:
    """(max retries, backoff factor, jitter, timeout) as MLflow reads them: the environment, else ours."""
    def get(name: str, kind):
        try:
            return kind(os.environ.get(name) or DEFAULTS[name])
        except ValueError:
            return kind(DEFAULTS[name])

    return (get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", int), get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", int),
            get("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", float), get("MLFLOW_HTTP_REQUEST_TIMEOUT", int))


def _chain(error: BaseException | None):
    """``error`` and the exceptions it was raised from or while handling (MLflow re-raises requests'
    errors as MlflowException with the original's text)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _connection_reason(text: str) -> str | None:
    """A few words for why a connection failed, from urllib3's / requests' text; None if none did."""
    for pattern, reason in (
        (r"Connection refused", "connection refused"),
        (r"Name or service not known|Failed to resolve|nodename nor servname|getaddrinfo failed",
         "unknown host name"),
        (r"No route to host|Network is unreachable|Host is unreachable", "no route to its host"),
        (r"RemoteDisconnected|Connection aborted|Connection reset|BrokenPipe|closed connection",
         "connection closed"),
        (r"Max retries exceeded|NewConnectionError|ConnectionError", "no connection"),
    ):
        if re.search(pattern, text):
            return reason
    return None


class _RetryWarnings(logging.Filter):
    """On urllib3's connection-pool logger: its ``Retrying (Retry(total=...)) after connection broken by
    ...`` warning, logged at every try of an MLflow call, becomes one line naming the server and how long
    each call waits; further ones for that server are dropped for :data:`REPORT_EVERY_S`. Warnings about
    other URLs pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Retrying (") or not isinstance(record.args, tuple) or len(
                record.args) < 3 or "mlflow" not in str(record.args[2]):
            return True
        host = (getattr(record, "__urllib3-retry-warning", None) or {}).get("host", "")
        now = time.monotonic()
        with _lock:
            if host in _REPORTED and now - _REPORTED[host] < REPORT_EVERY_S:
                return False
            _REPORTED[host] = now
            server = next((u for u in _SERVERS if urlsplit(u).hostname == host), None) or f"http://{host}"
        reason = _connection_reason(repr(record.args[1])) or type(record.args[1]).__name__
        retries = _settings()[0]
        record.msg = (f"the MLflow server at {server} does not answer ({reason}): each call is tried "
                      f"{retries + 1} times over up to {retry_seconds():.0f} s before it fails "
                      f"(MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR)")
        record.args = ()
        return True
