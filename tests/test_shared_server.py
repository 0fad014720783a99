"""The README's shared server for real: a throwaway PostgreSQL cluster, ``mlflow server`` on it (the project
venv's mlflow with the dev extra's driver, psycopg 3), and joblib sweeps into it through HTTP, killed with
SIGKILL and run again, and cut off from their server for a while and for good.

Needs PostgreSQL's server binaries (Debian's ``postgresql`` package: /usr/lib/postgresql/<version>/bin);
skipped without them. Installs nothing. PostgreSQL refuses to run as root, so under root initdb and pg_ctl
run as the ``postgres`` user (``nobody`` where there is none; subprocess's ``user=``, as ``runuser -u``
would), in a folder made outside pytest's tmp_path, which only root may enter.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from postgres import _free_port, running_postgres

from softmax_exp.tracking import http as tracking_http
from softmax_exp.tracking.tags import CHECKPOINT_TAG, PARENT_TAG

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

SWEEP = ["-m", "hydra/launcher=joblib_2w", "checkpoint_every=1000", "checkpoint_min_seconds=0",
         "eval_every=500", "progress=false"]
# what a run on a server must never print again: the failed checkpoint deletion (MLflow fell back to its
# default sqlite store), urllib3's warning at every retry, MLflow's run links, a traceback
NOISE = ("kept artifact", "tracking URI must be a valid http", "Retrying (", "View run", "Traceback")


class MlflowServer:
    """``mlflow server`` of the project's venv on a backend store, proxying artifacts to a folder."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.backend, self.folder = backend, folder
        self.artifacts = folder / "artifacts"
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> float:
        """Start it and wait until it answers; the seconds that took."""
        started = time.monotonic()
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", self.backend,
             "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1"],
            env=env, stdout=self.log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                pytest.fail(f"mlflow server exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.read().strip() == b"OK":
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"mlflow server not healthy after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def ensure_running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.start()

    def get(self, endpoint: str, **query) -> dict:
        url = f"{self.uri}{endpoint}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    def post(self, endpoint: str, body: dict) -> dict:
        req = urllib.request.Request(f"{self.uri}{endpoint}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def runs(self, experiment: str, filter_string: str = "") -> list[dict]:
        """The active runs of ``experiment`` (none if it does not exist yet), oldest first."""
        try:
            exp = self.get("/api/2.0/mlflow/experiments/get-by-name", experiment_name=experiment)
        except urllib.error.HTTPError:
            return []
        found = self.post("/api/2.0/mlflow/runs/search", {
            "experiment_ids": [exp["experiment"]["experiment_id"]], "filter": filter_string,
            "max_results": 1000, "order_by": ["attributes.start_time ASC"]})
        return found.get("runs", [])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """PostgreSQL and an ``mlflow server`` on it, for the tests of this file."""
    with running_postgres() as pg:
        mlflow = MlflowServer(pg.url, tmp_path_factory.mktemp("shared_server"))
        try:
            mlflow.start()
            yield mlflow
        finally:
            mlflow.stop()


def _sweep_env(**settings: str) -> dict[str, str]:
    """The environment of a sweep: this one without MLflow's HTTP settings (so the project's defaults
    apply), plus ``settings`` (a user's own)."""
    env = {k: v for k, v in os.environ.items() if k not in tracking_http.DEFAULTS}
    return {**env, "CI": "true", "HYDRA_FULL_ERROR": "1", **settings}


def _start_sweep(cwd: Path, *args: str, log: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    out = open(cwd / log, "w")
    return subprocess.Popen([sys.executable, "-m", "softmax_exp.train", *args], cwd=cwd,
                            env=env or _sweep_env(), stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for_checkpoint(server: MlflowServer, experiment: str, proc: subprocess.Popen,
                         timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before any job wrote a checkpoint"
        if server.runs(experiment, f"tags.`{CHECKPOINT_TAG}` LIKE 'checkpoints/%'"):
            return
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint in {experiment} after {timeout} s")


def _check_runs(server: MlflowServer, experiment: str, names: set[str], num_iters: int) -> None:
    """Every job exactly one FINISHED child run of the sweep's one parent, each loss window once, and at
    most one checkpoint file left per run (in the store and on the server's disk)."""
    runs = server.runs(experiment)
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
    parents = [r for r, t in zip(runs, tags, strict=True) if PARENT_TAG not in t]
    children = [r for r, t in zip(runs, tags, strict=True) if PARENT_TAG in t]
    assert len(parents) == 1 and parents[0]["info"]["status"] == "FINISHED"
    assert sorted(r["info"]["run_name"] for r in children) == sorted(names)
    for run in children:
        run_id = run["info"]["run_id"]
        assert run["info"]["status"] == "FINISHED", run["info"]
        history = server.get("/api/2.0/mlflow/metrics/get-history", run_id=run_id, metric_key="loss")
        assert sorted(m["step"] for m in history["metrics"]) == list(range(50, num_iters + 1, 50))
        listed = server.get("/api/2.0/mlflow/artifacts/list", run_id=run_id, path="checkpoints")
        assert len(listed.get("files", [])) <= 1, listed
        assert len(glob.glob(str(server.artifacts / "*" / run_id / "artifacts" / "checkpoints" / "*"))) <= 1


def _assert_quiet(out: str, noise_allowed: tuple[str, ...] = ()) -> None:
    for noise in set(NOISE) - set(noise_allowed):
        assert noise not in out, f"{noise!r} in the output:\n{out[-3000:]}"


def _checkpoints(server: MlflowServer, experiment: str) -> set[tuple[str, str]]:
    """(run id, checkpoint tag) of the runs of ``experiment`` that have a checkpoint."""
    return {(r["info"]["run_id"], t["value"]) for r in server.runs(experiment)
            for t in r["data"].get("tags", []) if t["key"] == CHECKPOINT_TAG}


def test_a_joblib_sweep_killed_with_sigkill_goes_on_through_a_restart_of_its_server(server, tmp_path):
    """Killed once a job has a checkpoint, the same command goes on from it; its server restarted
    meanwhile (within the project's bound) is waited for: each job ends with one FINISHED run holding
    each loss window once and one checkpoint file, and the output says it in one line, without noise."""
    server.ensure_running()
    sweep = [*SWEEP, "lr=1e-3,1e-2", "num_iters=6000", f"tracking.uri={server.uri}",
             "tracking.experiment=killed"]
    proc = _start_sweep(tmp_path, *sweep, f"hydra.sweep.dir={tmp_path}/first", log="first.txt")
    try:
        _wait_for_checkpoint(server, "killed", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its joblib workers
        proc.wait()
    before = _checkpoints(server, "killed")

    proc = _start_sweep(tmp_path, *sweep, f"hydra.sweep.dir={tmp_path}/second", log="second.txt")
    try:
        deadline = time.monotonic() + 120
        while not _checkpoints(server, "killed") - before:  # the rerun's first checkpoint
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint in the rerun"
            time.sleep(0.2)
        stopped = time.monotonic()
        server.stop()
        server.start()
        outage = time.monotonic() - stopped
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = (tmp_path / "second.txt").read_text()
    assert code == 0, out[-3000:]
    assert outage < tracking_http.retry_seconds() - 5, f"the server took {outage:.0f} s to come back"
    assert "resumed from iteration" in out and "registered as model 'softmax-killed'" in out
    said = [line for line in out.splitlines() if f"the MLflow server at {server.uri} does not answer" in line]
    assert 1 <= len(said) <= 3, out[-3000:]  # one line in each process that met the outage
    assert "each call is tried 6 times over up to 34 s" in said[0]
    _assert_quiet((tmp_path / "first.txt").read_text() + out)
    _check_runs(server, "killed", {"lr=0.001", "lr=0.01"}, 6000)


def test_a_sweep_whose_server_is_gone_ends_with_one_line_a_job_within_the_bound(server, tmp_path):
    """The server stopped for good mid-sweep, with a user's own retry settings (they win over the
    project's; 3 tries, up to 1 s between them, so that the test is quick): each job fails with one line
    naming the server, and the sweep ends once its calls have given up."""
    server.ensure_running()
    user = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}
    sweep = [*SWEEP, "lr=5e-3,5e-2", "num_iters=6000", f"tracking.uri={server.uri}",
             "tracking.experiment=gone"]
    proc = _start_sweep(tmp_path, *sweep, f"hydra.sweep.dir={tmp_path}/gone", log="gone.txt",
                        env=_sweep_env(**user))
    try:
        _wait_for_checkpoint(server, "gone", proc)
        stopped = time.monotonic()
        server.stop()
        code = proc.wait(timeout=120)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = (tmp_path / "gone.txt").read_text()
    assert code == 1, out[-3000:]
    # a job: only the call that met the outage (its end is not sent to a server that does not answer);
    # then the parent's end: each call up to 1 s of sleep (and its tries), plus the sweep's own work
    assert took < 4 * (1 + 1) + 15, f"the sweep took {took:.0f} s to end after its server stopped"
    gone = f"the MLflow server at {server.uri} does not answer"
    notices = [line for line in out.splitlines() if gone in line and "each call is tried" in line]
    assert 1 <= len(notices) <= 3 and "each call is tried 3 times over up to 1 s" in notices[0], out[-3000:]
    failed = [line for line in out.splitlines() if re.match(r"job \d FAILED: ", line)]
    # the call that failed first is the one reported: the server does not answer (not a later call's error)
    assert len(failed) == 2 and all(gone in line for line in failed), out[-3000:]
    _assert_quiet(out, noise_allowed=("kept artifact",))  # a checkpoint not deleted as the server went
