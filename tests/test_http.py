"""A tracking server over HTTP (softmax_exp.tracking.http): MLflow's retry settings, the one line while a
server does not answer, and the one line for MLflow's exception when it failed.

The exceptions are MLflow's own, raised by a real MlflowClient against a closed port, a server that answers
503 and one that does not answer in time (with the retries set low, as a user may, so the tests are quick).
"""

from __future__ import annotations

import http.server
import logging
import os
import socket
import threading
import time

import pytest

from softmax_exp.tracking import http as tracking_http

SETTINGS = [*tracking_http.DEFAULTS, "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"]


@pytest.fixture
def clean_env(monkeypatch):
    """None of MLflow's HTTP settings set; whatever the test or configure() sets is undone after it."""
    for name in SETTINGS:
        monkeypatch.setenv(name, "x")  # recorded, so that the undo removes what configure() sets
        monkeypatch.delenv(name)
    return monkeypatch


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(handler: type[http.server.BaseHTTPRequestHandler]):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _mlflow_error(uri: str) -> Exception:
    from mlflow.tracking import MlflowClient

    with pytest.raises(Exception) as info:
        MlflowClient(uri).get_experiment("0")
    return info.value


def test_configure_sets_the_defaults_for_servers_only_and_a_users_settings_win(clean_env):
    tracking_http.configure("sqlite:////tmp/mlflow.db")
    assert not any(name in os.environ for name in SETTINGS)
    clean_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    tracking_http.configure("http://127.0.0.1:5000")
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"  # the user's
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"


def test_retry_seconds_is_the_longest_a_call_sleeps(clean_env):
    assert tracking_http.retry_seconds() == 34  # (2 + 4 + 8 + 16) s and up to 1 s of jitter each
    for name, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7"), ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "2"),
                        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")):
        clean_env.setenv(name, value)
    assert tracking_http.retry_seconds() == 249  # MLflow's own defaults: the last sleep is capped at 120 s


def test_a_server_that_does_not_answer_is_one_line_naming_it_and_the_fix(clean_env):
    clean_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    clean_env.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    uri = f"http://127.0.0.1:{_closed_port()}"
    line = tracking_http.describe_failure(_mlflow_error(uri), uri)
    assert line.startswith(f"the MLflow server at {uri} does not answer (connection refused; tried 2 times")
    assert "run the same command again" in line and "\n" not in line


def test_a_server_that_keeps_failing_or_is_too_slow_is_one_line(clean_env):
    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args):
            pass

    class Slow(Failing):
        def do_GET(self):
            time.sleep(2)

    clean_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    clean_env.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    server, uri = _serve(Failing)
    try:
        line = tracking_http.describe_failure(_mlflow_error(uri), uri)
        assert line.startswith(f"the MLflow server at {uri} kept answering HTTP 503 (tried 2 times")
    finally:
        server.shutdown()
    clean_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    clean_env.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    server, uri = _serve(Slow)
    try:
        line = tracking_http.describe_failure(_mlflow_error(uri), uri)
        assert line.startswith(f"the MLflow server at {uri} did not answer within 1 s "
                               "(MLFLOW_HTTP_REQUEST_TIMEOUT")
    finally:
        server.shutdown()


def test_other_errors_are_not_described(store):
    from mlflow.exceptions import MlflowException

    from softmax_exp.tracking import get_client

    with pytest.raises(MlflowException) as info:
        get_client(f"sqlite:///{store}").get_experiment("12345")
    assert tracking_http.describe_failure(info.value, "http://127.0.0.1:5000") is None
    assert tracking_http.describe_failure(ValueError("bad lr"), "http://127.0.0.1:5000") is None


def test_urllib3_retry_warnings_become_one_line_per_outage(clean_env, caplog):
    clean_env.setattr(tracking_http, "_REPORTED", {})  # none reported yet in this process
    tracking_http.configure("http://127.0.0.1:5000")
    pool_log = logging.getLogger("urllib3.connectionpool")
    refused = ConnectionRefusedError(111, "Connection refused")
    extra = {"__urllib3-retry-warning": {"host": "127.0.0.1"}}
    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        for _ in range(3):  # the tries of one call, and of the next ones
            pool_log.warning("Retrying (%r) after connection broken by '%r': %s", "Retry(total=4)", refused,
                             "/api/2.0/mlflow/runs/log-batch", extra=extra)
        pool_log.warning("Retrying (%r) after connection broken by '%r': %s", "Retry(total=4)", refused,
                         "/some/other/service", extra={"__urllib3-retry-warning": {"host": "example.org"}})
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == (
        "the MLflow server at http://127.0.0.1:5000 does not answer (connection refused): each call is tried "
        "6 times over up to 34 s before it fails (MLFLOW_HTTP_REQUEST_MAX_RETRIES, "
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR)")
    assert len(lines) == 2 and lines[1].startswith("Retrying (")  # not MLflow's: left as it is
