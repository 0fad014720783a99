"""Searches through the real CLI (hydra/sweeper=optuna_lr_reg, the project's Optuna 5 sweeper): pruning and
what a pruned trial leaves, the study in optuna-dashboard, kill -9 and the same command again, two processes
sharing one study on PostgreSQL, and bad settings in one line."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from helpers import client_for
from helpers import sweep_runs as _runs
from omegaconf import OmegaConf
from postgres import _free_port, running_postgres

from softmax_exp import tracking
from softmax_exp.tracking import views
from softmax_exp.tracking.tags import (
    CHECKPOINT_TAG,
    NOTE_TAG,
    PARENT_TAG,
    RESUMED_TAG,
    STOPPED_TAG,
    STUDY_NAME_TAG,
    STUDY_STORAGE_TAG,
    TRIAL_TAG,
)

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]
SEARCH = ["-m", "hydra/sweeper=optuna_lr_reg", "progress=false"]


def _storage(storage: str | Path) -> optuna.storages.BaseStorage:
    from softmax_exp.sweep.study import open_storage

    return open_storage(str(storage))


def _trials(storage: str, name: str = "softmax_lr_reg") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=_storage(storage)).trials


def test_a_pruned_search_ends_pruned_trials_with_their_metrics_so_far(store, run_cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(*SEARCH, "hydra.sweeper.n_trials=8", "hydra.sweeper.pruner=median",
                   "+hydra.sweeper.pruner_args={n_startup_trials:2}", "num_iters=600", "eval_every=100",
                   f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines if ln.startswith("trial ") and " of 8: lr=" in ln] == [
        f"trial {k} of 8" for k in range(8)]  # one line a trial, numbered as Optuna and the job folders
    assert "Launching" not in proc.stdout  # not the launcher's lines besides
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    study = optuna.load_study(study_name="softmax_lr_reg", storage=_storage(sweep_dir / "optuna.journal"))
    assert best.best_value == study.best_value and dict(best.best_params) == study.best_params
    assert study.metric_names == ["val_acc"]  # optuna-dashboard's name of the value

    with open(sweep_dir / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    # best first: the finished trials by val_acc, then the pruned ones
    order = [r["status"] for r in rows]
    assert order == sorted(order, key=lambda s: s != "FINISHED")
    finished = [float(r["val_acc"]) for r in rows if r["status"] == "FINISHED"]
    assert finished == sorted(finished, reverse=True)
    rows.sort(key=lambda r: int(r["job"]))
    statuses = [r["status"] for r in rows]
    assert len(rows) == 8 and set(statuses) <= {"FINISHED", "PRUNED"} and "PRUNED" in statuses
    assert "FINISHED" in statuses
    for r in rows:
        if r["status"] == "PRUNED":
            k = int(r["iterations"])
            assert 0 < k < 600 and r["note"] == f"pruned at iteration {k}"
            assert f"[PRUNED: pruned at iteration {k}]" in proc.stdout
        else:
            assert int(r["iterations"]) == 600
    assert f"{statuses.count('PRUNED')} of 8 trials pruned" in proc.stdout
    assert "  its trials, best first: http://127.0.0.1:5000/" in proc.stdout
    # the search's config beside its jobs, as Hydra's basic sweeper leaves a grid's
    saved = OmegaConf.load(sweep_dir / "multirun.yaml")
    assert saved.hydra.sweeper.pruner == "median" and saved.hydra.sweeper.pruner_args.n_startup_trials == 2
    assert saved.num_iters == 600 and saved.hydra.sweeper.n_trials == 8

    # the study: one trial per row, its state as the row's status, its val_acc as the value
    storage = str(sweep_dir / "optuna.journal")
    trials = _trials(storage)
    assert [t.state.name for t in trials] == [{"FINISHED": "COMPLETE"}.get(s, s) for s in statuses]
    for t, r in zip(trials, rows, strict=True):
        assert t.user_attrs["mlflow_run_id"] == r["run_id"]
        if t.state.name == "COMPLETE":
            assert t.value == float(r["val_acc"])

    client, (parent,), children = _runs(store)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "search lr x reg (8 trials, median pruning)"
    # the search's view of its trials has the column saying which were pruned, where
    experiment = client.get_experiment(parent.info.experiment_id)
    view = views.read_view(experiment, views.sweep_view_key(parent.info.run_id))
    assert f"tags.`{STOPPED_TAG}`" in view["selectedColumns"]
    assert parent.data.tags[STUDY_STORAGE_TAG] == storage
    assert parent.data.tags[STUDY_NAME_TAG] == "softmax_lr_reg"
    note = parent.data.tags[NOTE_TAG]
    assert f"optuna-dashboard {storage}`" in note and "8 jobs, 0 failed" in note
    assert len(children) == 8 and {c.data.tags[TRIAL_TAG] for c in children} == {str(k) for k in range(8)}
    by_id = {c.info.run_id: c for c in children}
    for r in rows:
        run = by_id[r["run_id"]]
        assert run.info.status == "FINISHED"
        if r["status"] == "PRUNED":  # its metrics so far, a tag, a note, no model
            assert run.data.tags[STOPPED_TAG] == r["note"]
            assert r["note"] in run.data.tags[NOTE_TAG]
            # its val_acc when stopped is no result: under its own name, and val_acc ends NaN (sorted
            # after every finished trial's), at the iteration it stopped
            assert run.data.metrics["val_acc_at_stop"] == float(r["val_acc"])
            assert math.isnan(run.data.metrics["val_acc"]) and math.isnan(run.data.metrics["train_acc"])
            assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")][-1] == int(
                r["iterations"])
            assert not [k for k in run.data.metrics if k.startswith("val_acc/")]
            assert r["model_uri"] == ""
        else:
            assert STOPPED_TAG not in run.data.tags and r["model_uri"].startswith("models:/")
    pruned = next(r for r in rows if r["status"] == "PRUNED")  # reproduce says it has no model, in one line
    again = subprocess.run([sys.executable, "-m", "softmax_exp.reproduce", pruned["run_id"], "--tracking-uri",
                            f"sqlite:///{store}"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and len(again.stderr.splitlines()) == 1, again.stderr
    assert f"({pruned['note']}): a pruned trial has no model to compare" in again.stderr
    best = max((r for r in rows if r["status"] == "FINISHED"), key=lambda r: float(r["val_acc"]))
    version = client.get_model_version_by_alias("softmax-digits", "best")
    assert version.source == best["model_uri"] and version.run_id == parent.info.run_id
    # the run list sorted by val_acc, as the search's view sorts it: every finished trial before a pruned one
    ranked = client.search_runs([parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
                                order_by=["metrics.val_acc DESC"])
    pruned = [STOPPED_TAG in run.data.tags for run in ranked]
    assert pruned == sorted(pruned) and any(pruned)
    assert view["selectedColumns"][0] == f"tags.`{STOPPED_TAG}`" and view["orderByKey"] == "metrics.`val_acc`"

    # optuna-dashboard, as the README starts it, shows the study
    port = _free_port()
    dash = subprocess.Popen([str(Path(sys.executable).with_name("optuna-dashboard")), "--host", "127.0.0.1",
                             "--port", str(port), storage], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        studies = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as resp:
                    studies = json.load(resp)["study_summaries"]
                break
            except OSError:
                time.sleep(0.2)
        assert studies is not None, "optuna-dashboard did not answer"
        (shown,) = studies
        assert shown["study_name"] == "softmax_lr_reg"
    finally:
        dash.kill()
        dash.wait()


def test_a_grid_search_visits_each_point_once_and_ends_with_the_grid(store, run_cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(*SEARCH, "hydra/sweeper/sampler=grid", "lr=0.01,0.003", "reg=1e-3,1e-2",
                   "hydra.sweeper.n_trials=10", "num_iters=100", f"tracking.uri=sqlite:///{store}",
                   f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GridSampler, maximize, 4 trials (the grid's 4 points)" in proc.stdout
    trials = _trials(str(sweep_dir / "optuna.journal"))
    points = {(t.params["lr"], t.params["reg"]) for t in trials}
    assert len(trials) == 4 and points == {(lr, reg) for lr in (0.01, 0.003) for reg in (1e-3, 1e-2)}
    assert all(t.state.name == "COMPLETE" for t in trials) and "Traceback" not in proc.stderr
    with open(sweep_dir / "summary.csv") as f:
        assert len(list(csv.DictReader(f))) == 4


def _command(store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "softmax_exp.train", *SEARCH, *extra, f"tracking.uri=sqlite:///{store}"]


def test_a_search_killed_with_sigkill_goes_on_with_the_same_command(store, tmp_path):
    """The second invocation finds the study through the parent run (its own sweep folder is new), takes
    over the killed trial, which goes on from its checkpoint in its MLflow run, and runs the rest."""
    cmd = _command(store, "hydra.sweeper.n_trials=3", "num_iters=20000", "batch_size=500",
                   "eval_every=1000", "checkpoint_every=1000", "checkpoint_min_seconds=0")
    env = {**os.environ, "CI": "true"}
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # a trial in flight with a checkpoint
            _, _, children = _runs(store) if store.exists() else (None, None, [])
            if any(c.info.status == "RUNNING" and CHECKPOINT_TAG in c.data.tags for c in children):
                break
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.3)
        else:
            pytest.fail("no trial checkpointed in time")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    killed = {c.data.tags[TRIAL_TAG]: c.info.run_id for c in _runs(store)[2] if c.info.status == "RUNNING"}
    assert len(killed) == 1

    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    (number, run_id), = killed.items()
    assert f"trial {number}: its process died; going on with it" in again.stdout

    client, parents, children = _runs(store)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    # each trial one MLflow run; the killed one went on in its own run from its checkpoint
    assert sorted(c.data.tags[TRIAL_TAG] for c in children) == ["0", "1", "2"]
    assert all(c.info.status == "FINISHED" for c in children)
    resumed = client.get_run(run_id)
    assert int(resumed.data.tags[RESUMED_TAG]) > 0
    storage = parents[0].data.tags[STUDY_STORAGE_TAG]
    trials = _trials(storage)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert len({(t.params["lr"], t.params["reg"]) for t in trials}) == 3
    assert {t.user_attrs["mlflow_run_id"] for t in trials} == {c.info.run_id for c in children}


@pytest.fixture(scope="module")
def postgres():
    with running_postgres() as pg:
        yield pg


def test_two_processes_share_one_study_on_postgresql(postgres, store, tmp_path):
    storage = postgres.create_database("optuna_two")
    cmd = _command(store, "hydra.sweeper.n_trials=7", f"hydra.sweeper.storage={storage}", "num_iters=400",
                   "eval_every=100")
    env = {**os.environ, "CI": "true"}
    procs = [subprocess.Popen([*cmd, f"hydra.sweep.dir={tmp_path / name}"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    ran = [sum(1 for ln in out.splitlines() if ln.startswith("trial ") and " of 7: lr=" in ln)
           for out, _ in outs]
    assert sum(ran) == 7 and min(ran) >= 1, ran  # both worked, and together ran the study's 7

    trials = _trials(storage)
    assert [t.number for t in trials] == list(range(7))
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({(t.params["lr"], t.params["reg"]) for t in trials}) == 7
    assert len(optuna.get_all_study_summaries(storage)) == 1

    _, parents, children = _runs(store)
    assert len(parents) == 1  # the two invocations elected one parent run
    assert sorted(int(c.data.tags[TRIAL_TAG]) for c in children) == list(range(7))
    assert {c.data.tags[tracking.PARENT_TAG] for c in children} == {parents[0].info.run_id}


@pytest.mark.parametrize(("setting", "message"), [
    ("hydra.sweeper.n_trials=0", "error: hydra.sweeper.n_trials must be an integer >= 1; got 0"),
    ("hydra.sweeper.n_trials=-3", "error: hydra.sweeper.n_trials must be an integer >= 1; got -3"),
    ("hydra.sweeper.direction=sideways", "error: hydra.sweeper.direction must be maximize or minimize"),
    ("hydra.sweeper.pruner=sometimes", "error: hydra.sweeper.pruner must be one of none, median, "
                                       "successive_halving, hyperband; got 'sometimes'"),
    ("hydra.sweeper.storage=postgresql+psycopg://nobody@127.0.0.1:1/none",
     "error: hydra.sweeper.storage postgresql+psycopg://nobody@127.0.0.1:1/none does not open"),
])
def test_bad_search_settings_stop_in_one_line_with_no_run(store, run_cli, tmp_path, setting, message):
    proc = run_cli(*SEARCH, setting, f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={tmp_path / 's'}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    client = client_for(store)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=3)]  # deleted ones too
    assert client.search_runs(experiments, run_view_type=3) == []  # no run, not even one in the trash


def test_a_journal_cut_short_by_a_kill_is_made_whole_and_the_same_search_goes_on(store, run_cli, tmp_path):
    """``truncate -s -40`` of the study's journal (what a kill mid-write or a full disk leaves): the same
    command drops the cut record with a one-line warning naming the file, takes the trial it would have
    ended (its process is gone) again, and ends FINISHED, as its parent run does."""
    common = (*SEARCH, "hydra.sweeper.n_trials=3", "num_iters=100", f"tracking.uri=sqlite:///{store}",
              f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert run_cli(*common).returncode == 0
    journal = tmp_path / "sweep" / "optuna.journal"
    with open(journal, "r+b") as f:
        f.truncate(journal.stat().st_size - 40)
    again = run_cli(*common)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.strip().splitlines() == [
        f"warning: the Optuna journal {journal}: its last record was cut short: dropped (a kill or a full "
        f"disk while it was written); the study goes on"]
    assert [t.state.name for t in _trials(str(journal))] == ["COMPLETE"] * 3
    _, parents, children = _runs(store)
    assert [p.info.status for p in parents] == ["FINISHED"] and len(children) == 3
    assert all(json.loads(line) for line in journal.read_bytes().splitlines())  # whole, record by record


def test_no_password_is_recorded_anywhere(postgres, store, tmp_path):
    """A storage URL with a password, on the command line: the search runs (its jobs open the study with
    it), but the password is in no tag, param, note or artifact of the store, in no file of the sweep
    folder (sweep.json, multirun.yaml, Hydra's own .hydra records, the job logs) and in no line printed."""
    secret = "S3cr3t-pw-4711"
    storage = postgres.create_database("optuna_secret").replace("://mlflow@", f"://mlflow:{secret}@")
    sweep = tmp_path / "sweep"
    cmd = _command(store, "hydra.sweeper.n_trials=2", "num_iters=100", f"hydra.sweeper.storage={storage}",
                   f"hydra.sweep.dir={sweep}")
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CI": "true"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "optuna-dashboard postgresql+psycopg://mlflow@127.0.0.1" in proc.stdout  # runnable as printed
    files = [store, *tmp_path.rglob("*")]  # the store, its artifacts beside it, the sweep folder
    leaks = [str(p) for p in files if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaks == [] and secret not in proc.stdout + proc.stderr
    _, parents, _ = _runs(store)
    assert parents[0].data.tags[STUDY_STORAGE_TAG] == storage.replace(f":{secret}@", "@")
    assert [t.state.name for t in _trials(storage, "softmax_lr_reg")] == ["COMPLETE"] * 2
