"""softmax_exp.tracking against a real MLflow SQLite store in tmp_path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers import client_for

from softmax_exp import tracking


def test_resolve_tracking_uri_makes_local_stores_absolute(tmp_path):
    assert tracking.resolve_tracking_uri("sqlite:///m.db", tmp_path) == f"sqlite:///{tmp_path}/m.db"
    assert tracking.resolve_tracking_uri("sqlite:////abs/m.db", tmp_path) == "sqlite:////abs/m.db"
    assert tracking.resolve_tracking_uri("mlruns", tmp_path) == (tmp_path / "mlruns").as_uri()
    assert tracking.resolve_tracking_uri("file:mlruns", tmp_path) == (tmp_path / "mlruns").as_uri()
    assert tracking.resolve_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    with pytest.raises(ValueError, match="tracking.uri must be a non-empty string"):
        tracking.resolve_tracking_uri("")
    assert tracking.default_artifact_root("sqlite:////a/b/mlflow.db") == "/a/b/mlartifacts"
    assert tracking.default_artifact_root("http://x") is None


def test_flatten_uses_dotted_keys():
    from softmax_exp.config.schema import flatten

    flat = flatten({"a": 1, "b": {"c": {"d": "x"}, "e": [1, 2]}, "f": {}})
    assert flat == {"a": 1, "b.c.d": "x", "b.e": [1, 2], "f": {}}


def test_default_config_store_is_the_project_db():
    from softmax_exp.config import compose, to_config
    from softmax_exp.util.paths import project_root

    cfg = to_config(compose())
    assert cfg.tracking.uri == f"sqlite:///{project_root()}/mlflow.db" == tracking.default_uri()
    assert cfg.tracking.experiment == "digits"


def test_run_batches_params_tags_metrics_and_ends_once(store, tmp_path):
    """Params, tags and metrics wait in the run and go in as few log_batch calls as MLflow's limits allow
    (1000 values a call, 100 params, 100 tags); nothing is lost or sent twice."""
    uri = f"sqlite:///{store}"
    run = tracking.Run.start(uri, "exp", "r1", tags={"kernel": "numba_fused"})
    calls = []
    real = run.client._client.log_batch

    def counted(run_id, metrics=(), params=(), tags=(), **kw):
        calls.append((len(metrics), len(params), len(tags)))
        return real(run_id, metrics=metrics, params=params, tags=tags, **kw)

    run.client._client.log_batch = counted
    run.log_params({f"p{i}": i for i in range(150)} | {"long": "x" * 7000})
    values = np.linspace(3.0, 1.0, 2500)
    for step, value in enumerate(values[:890]):
        run.log_metric("loss", value, step)
    assert calls == []  # nothing sent yet: 890 values and 151 params would not fill a call
    for step, value in enumerate(values[890:], start=890):
        run.log_metric("loss", value, step)
    run.log_metric("val_acc", 0.5, 2500)
    run.end("FINISHED", tags={"note": "done"})
    run.end("FAILED")  # a second end changes nothing
    assert all(m + p + t <= 1000 and p <= 100 and t <= 100 for m, p, t in calls)
    assert sum(m for m, _, _ in calls) == 2501 and sum(p for _, p, _ in calls) == 151
    assert len(calls) == 3  # 2501 values + 151 params + 2 tags, 1000 a call
    client = client_for(store)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "r1" and got.data.tags["note"] == "done"
    assert len(got.data.params) == 151 and len(got.data.params["long"]) == 6000
    history = sorted(client.get_metric_history(run.run_id, "loss"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(2500))
    np.testing.assert_array_equal([m.value for m in history], values)
    exp = client.get_experiment(got.info.experiment_id)
    assert Path(exp.artifact_location) == tmp_path / "mlartifacts" / "exp"


def test_run_context_ends_failed_or_killed(store, tmp_path):
    uri = f"sqlite:///{store}"
    with pytest.raises(RuntimeError):
        with tracking.Run.start(uri, "exp", "boom") as failed:
            raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt):
        with tracking.Run.start(uri, "exp", "ctrl-c", parent_run_id=failed.run_id) as killed:
            raise KeyboardInterrupt
    client = client_for(store)
    a, b = client.get_run(failed.run_id), client.get_run(killed.run_id)
    assert a.info.status == "FAILED" and a.data.tags[tracking.FAILURE_TAG] == "RuntimeError: boom"
    assert b.info.status == "KILLED" and b.data.tags[tracking.PARENT_TAG] == failed.run_id
    assert [r.info.run_id for r in tracking.child_runs(client, failed.run_id)] == [killed.run_id]


def test_environment_tags():
    tags = tracking.environment_tags()
    assert set(tags) >= {"mlflow.source.git.commit", "mlflow.source.name", "mlflow.user",
                         "mlflow.softmax_exp.git_dirty", "mlflow.softmax_exp.numpy_version",
                         "mlflow.softmax_exp.numba_version", "mlflow.softmax_exp.mlflow_version"}
    assert tags["mlflow.softmax_exp.git_dirty"] in ("true", "false", "unknown")
    assert not math.isnan(float(tags["mlflow.softmax_exp.numpy_version"].split(".")[0]))


def test_experiment_files_live_beside_the_store_not_in_the_cwd(tmp_path, monkeypatch):
    """An experiment created without an artifact root keeps its files next to the SQLite store."""
    store = tmp_path / "store" / "mlflow.db"
    store.parent.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    client = tracking.get_client(f"sqlite:///{store}")
    exp_id = tracking.get_or_create_experiment(client, "beside")
    location = client.get_experiment(exp_id).artifact_location
    assert location == str(store.parent / "mlartifacts" / "beside")
    assert not (elsewhere / "mlruns").exists()


def _listen(answer: bytes):
    """A one-shot local server that sends ``answer`` to whatever it is asked; its port."""
    import socket
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def serve():
        conn, _ = sock.accept()
        conn.recv(1000)
        conn.sendall(answer)
        conn.close()
        sock.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock.getsockname()[1]


def test_check_reachable_fails_fast_only_when_nothing_answers():
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(tracking.TrackingError, match=f"server at http://127.0.0.1:{closed} does not answer"):
        tracking.check_reachable(f"http://127.0.0.1:{closed}")
    assert time.monotonic() - start < 5
    ok, not_found = b"HTTP/1.0 200 OK\r\n\r\nOK", b"HTTP/1.0 404 Not Found\r\n\r\n"
    tracking.check_reachable(f"http://127.0.0.1:{_listen(ok)}")
    tracking.check_reachable(f"http://127.0.0.1:{_listen(not_found)}/")  # a proxy guarding /health
    tracking.check_reachable(f"https://127.0.0.1:{_listen(ok)}")  # answers, without TLS: MLflow's call
    tracking.check_reachable("sqlite:////nowhere/mlflow.db")  # not a server: nothing to ask
