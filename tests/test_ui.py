"""``make ui``: the link it prints (the runs of the experiment trained last, model-training mode) and its
refusal of a taken port. No browser, no server."""

from __future__ import annotations

import socket

import pytest
from helpers import client_for

from softmax_exp import tracking, ui

RUNS_VIEW = "/runs?workflowType=machine_learning&viewStateShareKey=softmax-exp-runs"  # views.py


@pytest.fixture
def listening():
    """A port of 127.0.0.1 that something listens on (this test), for the test's duration."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_link_is_the_runs_view_of_the_experiment_trained_last(store):
    client = client_for(store)
    older = tracking.get_or_create_experiment(client, "older")
    newer = tracking.get_or_create_experiment(client, "newer")
    assert ui.runs_link(store, 5123) == f"http://127.0.0.1:5123/#/experiments/{newer}{RUNS_VIEW}"

    for experiment_id, start_ms in ((newer, 1_000), (older, 2_000)):  # the older experiment ran last
        run = client.create_run(experiment_id, start_time=start_ms)
        client.set_terminated(run.info.run_id)
    assert ui.runs_link(store, 5123) == f"http://127.0.0.1:5123/#/experiments/{older}{RUNS_VIEW}"


def test_link_of_an_empty_or_missing_store_is_the_experiments_list(store, tmp_path):
    experiments = "http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
    assert ui.runs_link(store) == experiments  # only MLflow's Default experiment, without runs
    missing = tmp_path / "none" / "mlflow.db"
    assert ui.runs_link(missing) == experiments
    assert not missing.exists()


def test_port_problem_names_a_taken_port_only(listening):
    assert ui.port_problem(listening) is not None
    assert ui.free_port_after(listening) != listening
    assert ui.port_problem(ui.free_port_after(listening)) is None


@pytest.mark.subprocess
def test_serve_on_a_taken_port_stops_with_one_line(run_cli, listening, tmp_path):
    db = tmp_path / "mlflow.db"
    result = run_cli("serve", "--db", str(db), "--port", str(listening), module="softmax_exp.ui", timeout=60)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{listening}" in lines[0] and "make ui UI_PORT=" in lines[0]
    assert not db.exists()  # stopped before the store or a server was touched


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_killed_ui_leaves_no_server_on_its_port(tmp_path):
    """``kill -9`` of ``python -m softmax_exp.ui serve``: the mlflow server it started (and its uvicorn) get
    its death as SIGTERM and free the port, so that the next ``make ui`` can serve there."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    port = ui.free_port_after(5300)
    env = {**os.environ, "CI": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "softmax_exp.ui", "serve", "--db", str(tmp_path / "m.db"),
                             "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:  # the server answers
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the server did not start"
                time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 30
        while ui.port_problem(port) is not None:
            assert time.monotonic() < deadline, f"the port {port} is still taken after the UI was killed"
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_links_name_the_port_make_ui_serves_on(tmp_path, monkeypatch):
    """A training's printed link names the port of a `make ui` serving its store (its record, while its
    process lives), else the Makefile's UI_PORT, else 5000."""
    from softmax_exp.tracking.links import UI_PORT_ENV, experiment_link, run_link, ui_record

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    monkeypatch.delenv(UI_PORT_ENV, raising=False)
    assert run_link(uri, "1", "abc").startswith("http://127.0.0.1:5000/#/experiments/1/runs/abc?")
    monkeypatch.setenv(UI_PORT_ENV, "5001")
    assert run_link(uri, "1", "abc").startswith("http://127.0.0.1:5001/")
    with ui.recorded_port(db, 5077):
        assert ui_record(db).is_file()
        assert run_link(uri, "1", "abc").startswith("http://127.0.0.1:5077/")
        assert "127.0.0.1:5077/" in experiment_link(uri, "1")
    assert not ui_record(db).exists()
    ui_record(db).write_text('{"port": 5078, "pid": 999999999}')  # a server killed hard: ignored
    assert run_link(uri, "1", "abc").startswith("http://127.0.0.1:5001/")
