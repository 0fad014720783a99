"""A new MLflow store is made whole or not at all: kills during its creation, and processes starting on it
together, never leave it half-made; a store broken anyway is named in one line with its fix."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import FAST, client_for

from softmax_exp.tracking import TrackingError, get_client
from softmax_exp.tracking.store import artifact_location, get_or_create_experiment, prepare_store

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def _train(folder: Path, *extra: str) -> subprocess.Popen:
    """``python -m softmax_exp.train`` into ``folder/mlflow.db``, in ``folder``."""
    env = {**os.environ, "CI": "true"}
    args = [*FAST, "num_iters=20", f"tracking.uri=sqlite:///{folder}/mlflow.db",
            f"hydra.run.dir={folder}/out"]
    return subprocess.Popen([sys.executable, "-m", "softmax_exp.train", *args, *extra], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _whole(store: Path) -> None:
    """The store opens, takes a run, and no temporary file of its creation is left."""
    prepare_store(f"sqlite:///{store}")
    with sqlite3.connect(store) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not list(store.parent.glob(f".{store.name}.*.creating*"))


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_kill_during_the_first_run_into_a_new_store_never_breaks_it(signum, tmp_path):
    """The first run into a new store is killed at many moments of its first seconds (before, during and
    after MLflow builds the schema); then the same command is run again and must work."""
    delays = [0.5, 1.0, 1.7, 2.5, 3.5, 5.0]
    folders = [tmp_path / f"d{i}" for i in range(len(delays))]
    for folder in folders:
        folder.mkdir()
    for start in range(0, len(delays), 2):  # two at a time: two cores
        pairs = zip(folders[start:start + 2], delays[start:start + 2], strict=True)
        procs = [(_train(folder), delay) for folder, delay in pairs]
        t0 = time.monotonic()
        for proc, delay in sorted(procs, key=lambda p: p[1]):
            time.sleep(max(0.0, t0 + delay - time.monotonic()))
            proc.send_signal(signum)
        for proc, _ in procs:
            proc.wait(timeout=120)
    for start in range(0, len(folders), 2):
        again = [_train(folder) for folder in folders[start:start + 2]]
        for proc in again:
            assert proc.wait(timeout=240) == 0, proc.stderr.read()[-2000:]
    for folder in folders:
        store = folder / "mlflow.db"
        _whole(store)
        client = client_for(store)
        runs = client.search_runs([client.get_experiment_by_name("digits").experiment_id])
        assert "FINISHED" in {r.info.status for r in runs}


def _open_at_once(barrier, store: str, queue) -> None:
    barrier.wait()
    try:
        client = get_client(f"sqlite:///{store}")
        client.search_experiments()
        queue.put("ok")
    except Exception as e:  # reported to the test
        queue.put(f"{type(e).__name__}: {e}")


def test_processes_opening_a_new_store_together_make_it_once(tmp_path):
    """Four processes open the same new store at the same moment, five times over: every one succeeds and
    the store is whole (MLflow alone collides: 'Online migration expected to match one row')."""
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(5):
        store = tmp_path / f"r{round_}" / "mlflow.db"
        barrier, queue = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(barrier, str(store), queue)) for _ in range(4)]
        for p in procs:
            p.start()
        answers = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert answers == ["ok"] * 4, answers
        _whole(store)


def test_runs_started_together_on_a_new_store_all_finish(tmp_path):
    """Three trainings started together on a store that does not exist yet: all finish, in one store."""
    folder = tmp_path / "s"
    folder.mkdir()
    procs = [_train(folder, f"hydra.run.dir={folder}/out{i}", f"seed={i}") for i in range(3)]
    for proc in procs:
        assert proc.wait(timeout=240) == 0, proc.stderr.read()[-2000:]
    _whole(folder / "mlflow.db")
    client = client_for(folder / "mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("digits").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3


def test_a_half_made_store_is_named_with_its_fix(tmp_path):
    """A store whose schema creation was stopped (by an older version) is one line, not 150."""
    good = tmp_path / "good.db"
    prepare_store(f"sqlite:///{good}")
    half = tmp_path / "half.db"
    with sqlite3.connect(good) as src, sqlite3.connect(half) as dst:
        src.backup(dst)
    with sqlite3.connect(half) as con:
        con.execute("CREATE TABLE _alembic_tmp_runs (x INTEGER)")
    with pytest.raises(TrackingError, match=r"was left half-made .*; it holds no runs: delete it$"):
        prepare_store(f"sqlite:///{half}")
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database, just text " * 100)
    with pytest.raises(TrackingError, match="is not an MLflow store"):
        prepare_store(f"sqlite:///{garbage}")
    empty = tmp_path / "empty.db"
    empty.touch()  # an empty file is a store not made yet
    prepare_store(f"sqlite:///{empty}")
    _whole(empty)


@pytest.mark.parametrize("name", ["../escaped", "../../escaped", "/tmp/absolute", "a/b", "..", ".",
                                  "a/../../b"])
def test_an_experiment_name_never_puts_files_outside_the_artifact_root(tmp_path, name):
    """Whatever reaches the store (the config refuses these names first), the folder of a new experiment
    is a child of the artifact root, or nothing is created at all."""
    root = tmp_path / "store" / "mlartifacts"
    with pytest.raises(TrackingError, match="give tracking.experiment a plain name"):
        artifact_location(str(root), name)
    store = tmp_path / "store" / "mlflow.db"
    client = get_client(f"sqlite:///{store}")
    with pytest.raises(TrackingError, match="plain name"):
        get_or_create_experiment(client, name)
    assert client.get_experiment_by_name(name) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    with pytest.raises(TrackingError, match="plain name"):
        artifact_location("s3://bucket/artifacts", name)


def test_a_plain_name_is_a_child_of_the_root(tmp_path):
    root = tmp_path / "mlartifacts"
    assert artifact_location(str(root), "digits") == str(root / "digits")
    assert artifact_location(str(root), "a b..c") == str(root / "a b..c")
    assert artifact_location("s3://bucket/artifacts/", "digits") == "s3://bucket/artifacts/digits"
