"""SIGKILL at random moments of a sweep (building the data cache, creating the store, MLflow writes,
checkpoint uploads, model logging), five times in a row, then the same command to the end: every job has
exactly one FINISHED run, the store is intact, and no temporary file of the killed processes is left."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from data_fixtures import cifar_overrides, make_cifar_dir
from helpers import client_for

from softmax_exp import tracking

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_a_sweep_killed_five_times_at_random_moments_then_run_again(tmp_path):
    make_cifar_dir(tmp_path / "cifar", n_per_batch=400, n_test=100)
    (tmp_path / "tmp").mkdir()
    store = tmp_path / "mlflow.db"
    sweep = ["-m", "lr=1e-7,3e-7,1e-6", "reg=1e3", "num_iters=2500", "eval_every=500", "checkpoint_every=400",
             "checkpoint_min_seconds=0", "progress=false", f"tracking.uri=sqlite:///{store}",
             *cifar_overrides(tmp_path / "cifar", tmp_path / "cache", num_training=1800, num_validation=150)]
    env = {**os.environ, "CI": "true", "TMPDIR": str(tmp_path / "tmp")}
    rng = random.Random(20261129)
    for attempt in range(5):
        delay = rng.uniform(1.0, 9.0)
        proc = subprocess.Popen([sys.executable, "-m", "softmax_exp.train", *sweep,
                                 f"hydra.sweep.dir={tmp_path}/sweep{attempt}"], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    final = subprocess.run([sys.executable, "-m", "softmax_exp.train", *sweep,
                            f"hydra.sweep.dir={tmp_path}/last"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-3000:]

    with sqlite3.connect(store) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    client = client_for(store)
    runs = client.search_runs([client.get_experiment_by_name("cifar10").experiment_id], max_results=1000)
    parents = [r for r in runs if tracking.PARENT_TAG not in r.data.tags]
    children = [r for r in runs if tracking.PARENT_TAG in r.data.tags]
    assert [p.info.status for p in parents] == ["FINISHED"]  # one live parent (others went to the trash)
    names = sorted(c.info.run_name for c in children)
    assert names == ["lr=1e-06", "lr=1e-07", "lr=3e-07"], names  # exactly one run a job ...
    assert {c.info.status for c in children} == {"FINISHED"}  # ... each FINISHED
    for c in children:
        steps = [m.step for m in client.get_metric_history(c.info.run_id, "loss")]
        assert sorted(steps) == list(range(50, 2501, 50))  # each loss window once
        assert len(client.list_artifacts(c.info.run_id, "checkpoints")) <= 1

    # nothing a killed process was writing is left behind
    leftovers = [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith("softmax_exp-")]
    leftovers += [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp-")]
    leftovers += list(tmp_path.glob(".mlflow.db.*.creating*")) + list((tmp_path / "cifar").glob(".*-*"))
    assert leftovers == []
