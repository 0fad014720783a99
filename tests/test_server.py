"""Runs read back through a real ``mlflow server`` on 127.0.0.1, over its REST API (as `make ui` serves)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from softmax_exp import tracking
from softmax_exp.job.context import SweepRef
from softmax_exp.job.fit import JobContext, fit

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, endpoint: str, **query) -> bytes:
    url = f"{base}{endpoint}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def _post(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _start_server(store: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    return subprocess.Popen(
        [str(mlflow_cli), "server", "--backend-store-uri", f"sqlite:///{store}",
         "--default-artifact-root", str(store.parent / "mlartifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _wait_healthy(base: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if _get(base, "/health").strip() == b"OK":
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"mlflow server not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


def test_parent_and_children_through_the_rest_api(store, make_cfg, tmp_path):
    uri = f"sqlite:///{store}"
    parent = tracking.Run.start(uri, "digits", "sweep lr=1e-3,1e-2")
    children = {}
    for lr in ("1e-3", "1e-2"):
        cfg = make_cfg(store, f"lr={lr}")
        out = fit(cfg, JobContext(overrides=(f"lr={lr}",), sweep=SweepRef(parent.run_id, None, "", 0)))
        children[out.run_id] = out.metrics["val_acc"]
    parent.log_metric("best_val_acc", max(children.values()), 0)
    parent.end("FINISHED")

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    proc = _start_server(store, port, log)
    try:
        _wait_healthy(base, proc, log)
        exp = json.loads(_get(base, "/api/2.0/mlflow/experiments/get-by-name",
                              experiment_name="digits"))["experiment"]
        found = _post(base, "/api/2.0/mlflow/runs/search", {
            "experiment_ids": [exp["experiment_id"]],
            "filter": f"tags.`mlflow.parentRunId` = '{parent.run_id}'"})["runs"]
        assert {r["info"]["run_id"] for r in found} == set(children)
        for r in found:
            rid = r["info"]["run_id"]
            assert r["info"]["status"] == "FINISHED"
            metrics = {m["key"]: m["value"] for m in r["data"]["metrics"]}
            assert metrics["val_acc"] == children[rid]
            params = {p["key"]: p["value"] for p in r["data"]["params"]}
            assert params["num_iters"] == "200" and params["dataset.name"] == "digits"
            history = json.loads(_get(base, "/api/2.0/mlflow/metrics/get-history", run_id=rid,
                                      metric_key="loss"))["metrics"]
            assert sorted(m["step"] for m in history) == [50, 100, 150, 200]  # a mean every 50 iterations
            files = json.loads(_get(base, "/api/2.0/mlflow/artifacts/list", run_id=rid))["files"]
            assert {f["path"] for f in files} >= {"weights.png", "loss.png", "config.yaml"}
            png = _get(base, "/get-artifact", path="weights.png", run_uuid=rid)
            with Image.open(io.BytesIO(png)) as im:
                assert im.format == "PNG" and im.size[0] > 0
        got = json.loads(_get(base, "/api/2.0/mlflow/runs/get", run_id=parent.run_id))["run"]
        assert got["info"]["status"] == "FINISHED"
        assert {m["key"]: m["value"] for m in got["data"]["metrics"]}["best_val_acc"] == max(
            children.values())
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
