"""Nothing is lost, duplicated or corrupted when sweeps are killed, interrupted or run in parallel.

Real processes against real SQLite stores: a sweep killed with SIGKILL and run again, Ctrl-C and SIGTERM,
an 8-job joblib sweep run twice, a store locked by another process, two processes racing to create one
experiment and one sweep parent.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import client_for

from softmax_exp import tracking
from softmax_exp.job.fit import fit
from softmax_exp.tracking import resume, tags
from softmax_exp.tracking.logged_model import load_classifier
from softmax_exp.tracking.store import LOCK_RETRIES, RetryingClient

pytestmark = pytest.mark.slow
LONG = ["num_iters=6000", "eval_every=500", "checkpoint_every=1000", "checkpoint_min_seconds=0",
        "progress=false"]


def _start_cli(tmp_path: Path, *args: str, log: str) -> subprocess.Popen:
    """``python -m softmax_exp.train args`` in its own process group, output into tmp_path/log."""
    env = {**os.environ, "CI": "true", "HYDRA_FULL_ERROR": "1"}
    out = open(tmp_path / log, "w")
    return subprocess.Popen([sys.executable, "-m", "softmax_exp.train", *args], cwd=tmp_path, env=env,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _query(store: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql, params).fetchall()


def _wait_for(store: Path, sql: str, proc: subprocess.Popen, timeout: float = 180) -> tuple:
    """Poll the store until ``sql`` returns a row (the process must still be running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the process ended before the awaited state"
        try:
            rows = _query(store, sql)
        except sqlite3.OperationalError:  # the schema is not there yet, or a writer holds the lock
            rows = []
        if rows:
            return rows[0]
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {sql}")


def _integrity(store: Path) -> str:
    """PRAGMA integrity_check, opened as the next MLflow process opens the store: read-write, so that
    SQLite rolls back the hot journal of a transaction cut by a kill (a read-only open refuses to)."""
    with sqlite3.connect(store, timeout=30) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def _children(client, exp_id: str):
    runs = client.search_runs([exp_id], max_results=100)
    return ([r for r in runs if tracking.PARENT_TAG not in r.data.tags],
            [r for r in runs if tracking.PARENT_TAG in r.data.tags])


CHECKPOINTED = ("SELECT r.run_uuid, t.value FROM runs r JOIN tags t USING (run_uuid) "
                "WHERE r.name LIKE '{name}' AND t.key = '" + tags.CHECKPOINT_TAG + "'")


def test_a_sweep_killed_with_sigkill_goes_on_where_it_stopped(store, make_cfg, run_cli, tmp_path):
    sweep = ["-m", "lr=1e-3,1e-2", *LONG, f"tracking.uri=sqlite:///{store}"]
    proc = _start_cli(tmp_path, *sweep, f"hydra.sweep.dir={tmp_path}/first", log="first.txt")
    try:
        run_id, checkpoint = _wait_for(store, CHECKPOINTED.format(name="lr=0.001"), proc)
        time.sleep(0.5)  # a few more iterations past the checkpoint
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _integrity(store) == "ok"
    assert dict(_query(store, "SELECT name, status FROM runs")) == {
        "lr=0.001": "RUNNING", "sweep lr (2 jobs)": "RUNNING"}
    checkpoint = _query(store, f"SELECT value FROM tags WHERE key = '{tags.CHECKPOINT_TAG}' AND run_uuid = ?",
                        run_id)[0][0]  # perhaps a later one than first seen
    resumed_at = int(checkpoint.split("_")[1].split(".")[0])

    # the same command, as a user reruns it: Hydra picks another sweep directory
    again = run_cli(*sweep, f"hydra.sweep.dir={tmp_path}/second")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert "1 run(s) of a dead process marked KILLED" in again.stdout
    assert f"job 1: resumed from iteration {resumed_at}" in again.stdout
    assert _integrity(store) == "ok"

    client = client_for(store)
    exp = client.get_experiment_by_name("digits").experiment_id
    (parent,), children = _children(client, exp)
    assert parent.info.status == "FINISHED" and resume.KILLED_TAG in parent.data.tags
    assert sorted((c.info.run_name, c.info.status) for c in children) == [
        ("lr=0.001", "FINISHED"), ("lr=0.01", "FINISHED")]
    job1 = client.get_run(run_id)  # the same run went on
    assert "stopped without ending the run" in job1.data.tags[resume.KILLED_TAG]
    assert job1.data.tags[resume.RESUMED_TAG] == str(resumed_at) and job1.data.tags[tags.ATTEMPT_TAG] == "2"
    loss = client.get_metric_history(run_id, "loss")
    assert sorted(m.step for m in loss) == list(range(50, 6001, 50))  # every window exactly once
    uninterrupted = fit(make_cfg(None, *LONG, "lr=1e-3"))
    logged = load_classifier(f"sqlite:///{store}", job1.data.tags[tags.MODEL_URI_TAG])
    assert np.array_equal(logged.W, uninterrupted.model.W)
    assert job1.data.metrics["val_acc"] == uninterrupted.metrics["val_acc"]
    rows = list(csv.DictReader(open(tmp_path / "second" / "summary.csv")))
    assert [(r["run_name"], r["status"]) for r in rows] == [("lr=0.001", "FINISHED"), ("lr=0.01", "FINISHED")]

    # a third time: nothing left to do, every job is skipped and the summary still covers them all
    third = run_cli(*sweep, f"hydra.sweep.dir={tmp_path}/third")
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count("finished before in run") == 2
    rows = list(csv.DictReader(open(tmp_path / "third" / "summary.csv")))
    assert {r["run_id"] for r in rows} == {c.info.run_id for c in children}
    assert len(_children(client, exp)[1]) == 2


def _signal_after_checkpoint(proc: subprocess.Popen, store: Path, run_name: str, signum: int) -> int:
    """Send ``signum`` once the run ``run_name`` (a LIKE pattern) has a checkpoint; the exit status."""
    try:
        _wait_for(store, CHECKPOINTED.format(name=run_name), proc)
        proc.send_signal(signum)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_ctrl_c_during_a_sweep_ends_its_runs_killed_with_their_metrics_and_exits_130(store, tmp_path):
    proc = _start_cli(tmp_path, "-m", "lr=1e-3,1e-2", *LONG, f"tracking.uri=sqlite:///{store}",
                      f"hydra.sweep.dir={tmp_path}/sweep", log="out.txt")
    assert _signal_after_checkpoint(proc, store, "lr=0.001", signal.SIGINT) == 130
    out = (tmp_path / "out.txt").read_text()
    assert out.strip().splitlines()[-1].startswith("interrupted by SIGINT: the open runs are KILLED")
    assert _integrity(store) == "ok"
    client = client_for(store)
    (parent,), (run,) = _children(client, client.get_experiment_by_name("digits").experiment_id)
    assert parent.info.status == "KILLED" and run.info.status == "KILLED"
    assert run.data.tags[tracking.FAILURE_TAG] == "interrupted"
    assert '"status": "KILLED"' in (tmp_path / "sweep" / "0" / "result.json").read_text()
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss"))
    checkpoint_at = int(run.data.tags[tags.CHECKPOINT_TAG].split("_")[1].split(".")[0])
    # every whole window up to the stop was flushed, each once
    assert steps == list(range(50, 50 * len(steps) + 1, 50)) and steps[-1] >= checkpoint_at


def test_sigterm_ends_a_single_run_killed_and_exits_143(store, tmp_path):
    proc = _start_cli(tmp_path, *LONG, f"tracking.uri=sqlite:///{store}", log="out.txt")
    assert _signal_after_checkpoint(proc, store, "%", signal.SIGTERM) == 143
    assert "interrupted by SIGTERM" in (tmp_path / "out.txt").read_text()
    assert [s for (s,) in _query(store, "SELECT status FROM runs")] == ["KILLED"]
    assert _integrity(store) == "ok"


def test_a_joblib_sweep_of_8_jobs_records_each_job_once_even_when_run_again(store, run_cli, tmp_path):
    sweep = ["-m", "hydra/launcher=joblib_2w", "lr=1e-3,3e-3,1e-2,3e-2", "reg=1e-3,1e-1",
             "num_iters=150", "eval_every=50", "progress=false", f"tracking.uri=sqlite:///{store}"]
    first = run_cli(*sweep, f"hydra.sweep.dir={tmp_path}/first", timeout=400)
    assert first.returncode == 0, first.stderr[-3000:]
    client = client_for(store)
    exp = client.get_experiment_by_name("digits").experiment_id
    (parent,), children = _children(client, exp)
    assert len(children) == 8 and {c.info.status for c in children} == {"FINISHED"}
    assert len({c.data.tags[resume.FINGERPRINT_TAG] for c in children}) == 8
    assert {c.data.tags[tracking.PARENT_TAG] for c in children} == {parent.info.run_id}
    assert all(len(client.get_metric_history(c.info.run_id, "loss")) == 3 for c in children)
    assert len({c.data.tags[tracking.PID_TAG] for c in children} - {parent.data.tags[tracking.PID_TAG]}) == 2

    again = run_cli(*sweep, f"hydra.sweep.dir={tmp_path}/again", timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished before in run") == 8
    (parent2,), children2 = _children(client, exp)
    assert parent2.info.run_id == parent.info.run_id and parent2.info.status == "FINISHED"
    assert {c.info.run_id for c in children2} == {c.info.run_id for c in children}
    rows = list(csv.DictReader(open(tmp_path / "again" / "summary.csv")))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"FINISHED"}
    assert _integrity(store) == "ok"


def test_calls_wait_while_another_process_holds_the_store_locked(store, tmp_path):
    """MLflow waits 20 s for SQLite's lock and then fails; our client retries until the lock goes,
    and gives up with a clear error after its own deadline."""
    uri = f"sqlite:///{store}"
    run = tracking.Run.start(uri, "locked", "r")
    for step in range(5):
        run.log_metric("m", step, step)
    retries_before = LOCK_RETRIES[0]
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(store)!r}, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(23)\n"
        "db.execute('COMMIT')\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    impatient = RetryingClient(tracking.get_client(uri)._client, retry_seconds=1)
    errors = []
    thread = threading.Thread(target=lambda: _record_error(errors, impatient.get_run, run.run_id))
    thread.start()
    run.flush()  # blocks 20 s in SQLite, fails "database is locked", retries until the lock goes
    thread.join()
    assert holder.wait() == 0
    assert LOCK_RETRIES[0] > retries_before
    assert sorted(m.step for m in run.client.get_metric_history(run.run_id, "m")) == [0, 1, 2, 3, 4]
    assert len(errors) == 1 and isinstance(errors[0], tracking.TrackingError)
    assert str(errors[0]).startswith(f"the MLflow store {uri} stayed locked for 1 s")
    run.end()
    assert _integrity(store) == "ok"


def _record_error(errors: list, fn, *args) -> None:
    try:
        fn(*args)
    except Exception as e:
        errors.append(e)


def _race(barrier, queue, store: str, sweep_dir: str, rounds: int) -> None:
    """In a fresh process: at the barrier, create experiment ``race-<i>`` and open the parent run of
    one sweep, as two invocations starting at once do; report the ids."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from softmax_exp.config import to_config
    from softmax_exp.sweep import SweepInfo, callback
    from softmax_exp.util.paths import CONFIG_DIR

    uri = f"sqlite:///{store}"
    client = tracking.get_client(uri)
    overrides = ["lr=1e-3,1e-2", f"tracking.uri={uri}", "tracking.experiment=sweeps",
                 f"hydra.sweep.dir={sweep_dir}"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        config = GlobalHydra.instance().hydra.compose_config(  # as `-m` composes it
            "config", overrides, run_mode=RunMode.MULTIRUN, with_log_configuration=False)
    for i in range(rounds):
        barrier.wait()
        queue.put(("experiment", tracking.get_or_create_experiment(client, f"race-{i}")))
    barrier.wait()
    cb = callback.SweepCallback()
    shared = to_config(config)
    info = SweepInfo("race-sweep", "race", "lr=1e-3,1e-2", 2, ("lr",), callback.fingerprint(config, shared))
    info = cb._open_parent(shared, info, Path(sweep_dir), {"lr": "1e-3,1e-2"})
    queue.put(("parent", info.parent_run_id))
    cb._parent.end("FINISHED")


def test_two_processes_racing_make_one_experiment_and_one_sweep_parent(store, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier, queue, rounds = ctx.Barrier(2), ctx.Queue(), 4
    procs = [ctx.Process(target=_race, args=(barrier, queue, str(store), str(tmp_path / f"s{i}"), rounds))
             for i in range(2)]
    for p in procs:
        p.start()
    results = []
    deadline = time.monotonic() + 240
    while len(results) < 2 * rounds + 2 and time.monotonic() < deadline:
        assert all(p.exitcode in (None, 0) for p in procs), "a racing process failed (see its stderr)"
        try:
            results.append(queue.get(timeout=1))
        except Exception:  # queue.Empty: not yet
            continue
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    experiments = [v for k, v in results if k == "experiment"]
    assert len(set(experiments)) == rounds  # both processes got the same id in each round
    assert len(_query(store, "SELECT name FROM experiments WHERE name LIKE 'race-%'")) == rounds
    parents = {v for k, v in results if k == "parent"}
    assert len(parents) == 1
    live = _query(store, "SELECT r.run_uuid FROM runs r JOIN tags t USING (run_uuid) "
                         f"WHERE t.key = '{tags.SWEEP_FINGERPRINT_TAG}' AND r.lifecycle_stage = 'active'")
    assert [r for (r,) in live] == list(parents)


def test_resume_false_runs_the_sweep_again_under_a_new_parent(store, run_cli, tmp_path):
    sweep = ["-m", "lr=1e-3,1e-2", "num_iters=50", "eval_every=0", "progress=false",
             f"tracking.uri=sqlite:///{store}"]
    assert run_cli(*sweep, f"hydra.sweep.dir={tmp_path}/a").returncode == 0
    forced = run_cli(*sweep, "resume=false", f"hydra.sweep.dir={tmp_path}/b")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert "finished before" not in forced.stdout and "going on with parent" not in forced.stdout
    client = client_for(store)
    exp = client.get_experiment_by_name("digits").experiment_id
    parents, children = _children(client, exp)
    old, new = sorted(parents, key=lambda r: r.info.start_time)
    assert resume.SWEEP_FINGERPRINT_TAG not in old.data.tags and resume.SUPERSEDED_TAG in old.data.tags
    assert resume.SWEEP_FINGERPRINT_TAG in new.data.tags
    assert sorted(c.data.tags[tracking.PARENT_TAG] == new.info.run_id for c in children) == [
        False, False, True, True]
    # resume again (the default): the new sweep is the one found, nothing is trained
    again = run_cli(*sweep, f"hydra.sweep.dir={tmp_path}/c")
    assert again.returncode == 0 and f"going on with parent run {new.info.run_id}" in again.stdout
    assert again.stdout.count("finished before in run") == 2
