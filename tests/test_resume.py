"""Fingerprints, dead-process detection, and resuming a training in the same MLflow run (in process)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import client_for, window_means

from softmax_exp import tracking
from softmax_exp.config import fingerprints
from softmax_exp.job.context import SweepRef
from softmax_exp.job.fit import JobContext, fit
from softmax_exp.tracking import resume, tags
from softmax_exp.tracking.job import TrackedJob

LONG = ["num_iters=600", "eval_every=100", "checkpoint_every=250", "checkpoint_min_seconds=0"]


def test_config_fingerprint_ignores_what_cannot_change_the_result(make_cfg):
    base = fingerprints.config_fingerprint(make_cfg(None))
    same = ["progress=true", "num_threads=1", "resume=false", "checkpoint_every=7",
            "checkpoint_min_seconds=3", "tracking.enabled=true", "tracking.uri=sqlite:////elsewhere.db",
            "dataset.cache_dir=/tmp/x"]
    for override in same:
        assert fingerprints.config_fingerprint(make_cfg(None, override)) == base, override
    for override in ["lr=2e-2", "reg=0", "seed=1", "kernel=vectorized", "optimizer=momentum",
                     "dataset.num_validation=100", "eval_every=10"]:
        assert fingerprints.config_fingerprint(make_cfg(None, override)) != base, override
    assert fingerprints.config_fingerprint(make_cfg(None, "lr=0.01")) == base  # 1e-2 written otherwise
    assert len(base) == 64 and int(base, 16) >= 0


def test_sweep_fingerprint_is_the_sweep_not_its_directory():
    cfg = {"lr": 1e-3, "reg": 1.0, "num_iters": 200, "hydra": {"sweep": {"dir": "/a"}}}
    fp = fingerprints.sweep_fingerprint(cfg, ["lr=1e-3,1e-2", "reg=1,2"], "BasicSweeper", {})
    moved = {**cfg, "hydra": {"sweep": {"dir": "/b"}}, "lr": 5.0, "progress": True}
    assert fingerprints.sweep_fingerprint(moved, ["reg=1,2", "lr=1e-3,1e-2"], "BasicSweeper", {}) == fp
    assert fingerprints.sweep_fingerprint({**cfg, "num_iters": 300}, ["lr=1e-3,1e-2", "reg=1,2"],
                                    "BasicSweeper", {}) != fp
    assert fingerprints.sweep_fingerprint(cfg, ["lr=1e-3,1e-1", "reg=1,2"], "BasicSweeper", {}) != fp
    assert fingerprints.sweep_fingerprint(cfg, [], "Optuna", {"lr": "tag(log, interval(1e-4, 1))"}) != \
        fingerprints.sweep_fingerprint(cfg, [], "Optuna", {"lr": "tag(log, interval(1e-5, 1))"})


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class _Run:
    """The two fields of an mlflow Run that is_stale reads."""

    def __init__(self, status, tags, start_ms=0):
        self.info = type("Info", (), {"status": status, "start_time": start_ms})()
        self.data = type("Data", (), {"tags": tags})()


def test_a_run_is_stale_when_its_process_is_gone():
    me = tracking.owner_tags()
    assert tracking.owner_alive(me) is True
    assert tracking.owner_alive({**me, tracking.PID_TAG: str(_dead_pid())}) is False
    assert tracking.owner_alive({**me, tracking.PID_START_TAG: "1"}) is False  # the pid was reused
    assert tracking.owner_alive({**me, tracking.HOST_TAG: "another-host"}) is None
    assert not tracking.is_stale(_Run("RUNNING", me), 60)
    assert tracking.is_stale(_Run("RUNNING", {**me, tracking.PID_TAG: str(_dead_pid())}), 60)
    assert not tracking.is_stale(_Run("FINISHED", {**me, tracking.PID_TAG: str(_dead_pid())}), 60)
    far = {**me, tracking.HOST_TAG: "another-host", tracking.HEARTBEAT_TAG: "1000"}
    assert tracking.is_stale(_Run("RUNNING", far), 60, now=1061)
    assert not tracking.is_stale(_Run("RUNNING", far), 60, now=1059)


@pytest.mark.parametrize("error, status", [(KeyboardInterrupt, "KILLED"), (OSError, "FAILED")])
def test_a_stopped_run_goes_on_from_its_checkpoint_in_the_same_run(
    store,
    make_cfg,
    error,
    status,
    tmp_path,
    monkeypatch,
):
    whole = fit(make_cfg(None, *LONG))

    real_checkpoint = TrackedJob.on_checkpoint

    def checkpoint_then_stop(self, state):
        real_checkpoint(self, state)
        if state.iteration == 500:
            raise error  # Ctrl-C, or say a full disk

    monkeypatch.setattr(TrackedJob, "on_checkpoint", checkpoint_then_stop)
    with pytest.raises(error):
        fit(make_cfg(store, *LONG))
    client = client_for(store)
    exp = client.get_experiment_by_name("digits").experiment_id
    (killed,) = client.search_runs([exp])
    assert killed.info.status == status
    assert killed.data.tags[tags.CHECKPOINT_TAG] == "checkpoints/iter_0000500.npz"
    assert [a.path for a in client.list_artifacts(killed.info.run_id, "checkpoints")] == [
        "checkpoints/iter_0000500.npz"]  # the one at 250 was deleted once 500 was in place

    monkeypatch.setattr(TrackedJob, "on_checkpoint", real_checkpoint)
    again = fit(make_cfg(store, *LONG, "num_threads=1"))  # threads do not change the result
    assert again.note == "resumed from iteration 500" and again.run_id == killed.info.run_id
    assert np.array_equal(again.model.W, whole.model.W) and again.metrics == whole.metrics
    (run,) = client.search_runs([exp])
    assert run.info.status == "FINISHED" and run.data.tags[tags.ATTEMPT_TAG] == "2"
    assert tracking.FAILURE_TAG in killed.data.tags and tracking.FAILURE_TAG not in run.data.tags
    assert run.data.tags[resume.RESUMED_TAG] == "500"
    loss = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss"))
    # each window once, as if never stopped
    assert dict(loss) == pytest.approx(dict(window_means(whole.history.loss)), rel=1e-13)
    assert len(loss) == 12
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [100, 200, 300, 400,
                                                                                       500, 600]
    assert fit(make_cfg(store, *LONG)).run_id != run.info.run_id  # a single run is not skipped


def test_a_resumed_run_keeps_only_its_last_checkpoint(store, make_cfg, tmp_path, monkeypatch):
    real_checkpoint = TrackedJob.on_checkpoint

    def checkpoint_then_stop(self, state):
        real_checkpoint(self, state)
        if state.iteration == 500:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrackedJob, "on_checkpoint", checkpoint_then_stop)
    with pytest.raises(KeyboardInterrupt):
        fit(make_cfg(store, *LONG))
    client = client_for(store)
    (killed,) = client.search_runs([client.get_experiment_by_name("digits").experiment_id])
    # what a kill between a checkpoint's upload and the tag's move leaves behind; the resumed run writes
    # no checkpoint after 500 (the next would be 750 of 600), so the stray goes when the run is reopened
    stray = tmp_path / "iter_0000100.npz"
    stray.write_bytes(b"not a checkpoint")
    client.log_artifact(killed.info.run_id, str(stray), "checkpoints")

    monkeypatch.setattr(TrackedJob, "on_checkpoint", real_checkpoint)
    again = fit(make_cfg(store, *LONG))
    assert again.note == "resumed from iteration 500" and again.run_id == killed.info.run_id
    assert [a.path for a in client.list_artifacts(again.run_id, "checkpoints")] == [
        "checkpoints/iter_0000500.npz"]


def test_a_run_left_running_by_a_dead_process_is_marked_killed(store, make_cfg, tmp_path):
    cfg = make_cfg(store)
    client = client_for(store)
    exp = tracking.get_or_create_experiment(client, "digits")
    fp = fingerprints.config_fingerprint(cfg)
    dead = client.create_run(exp, run_name="dead", tags={
        **tracking.owner_tags(), tracking.PID_TAG: str(_dead_pid()), resume.FINGERPRINT_TAG: fp})
    earlier = resume.earlier_runs(client, exp, fp, None, 3600)
    assert [r.info.run_id for r in earlier.marked_killed] == [dead.info.run_id]
    r = client.get_run(dead.info.run_id)
    assert r.info.status == "KILLED" and "stopped without ending the run" in r.data.tags[resume.KILLED_TAG]

    # a job of a sweep whose run is alive in another process is not started twice ...
    parent = client.create_run(exp, run_name="sweep").info.run_id
    alive = client.create_run(exp, run_name="alive", tags={
        **tracking.owner_tags(), resume.FINGERPRINT_TAG: fp, tracking.PARENT_TAG: parent})
    with pytest.raises(resume.JobRunningElsewhere, match=f"running in process {os.getpid()}"):
        fit(cfg, JobContext(sweep=SweepRef(parent, exp, "", 0)))
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"
    # ... the same single run may be, and a killed single run is not resumed once a newer one finished
    single = fit(cfg, JobContext())
    assert single.status == "FINISHED" and single.note == ""
    client.set_tag(dead.info.run_id, resume.CHECKPOINT_TAG, "checkpoints/iter_0000100.npz")
    assert resume.earlier_runs(client, exp, fp, None, 3600).resumable is None
    assert fit(make_cfg(store, "resume=false")).status == "FINISHED"  # resume=false looks at nothing


def test_a_checkpoint_of_other_code_or_data_is_not_resumed(store, make_cfg, tmp_path, monkeypatch, capsys):
    real_checkpoint = TrackedJob.on_checkpoint

    def checkpoint_then_ctrl_c(self, state):
        real_checkpoint(self, state)
        raise KeyboardInterrupt

    client = client_for(store)
    for tag, value, says in [(tags.GIT_COMMIT_TAG, "0" * 40, "was trained by commit 000000000000"),
                             (tags.DATASET_TAG, "f" * 64, "was trained on other data")]:
        monkeypatch.setattr(TrackedJob, "on_checkpoint", checkpoint_then_ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            fit(make_cfg(store, *LONG))
        exp = client.get_experiment_by_name("digits").experiment_id
        killed = client.search_runs([exp], order_by=["attributes.start_time DESC"])[0]
        assert killed.info.status == "KILLED"
        client.set_tag(killed.info.run_id, tag, value)
        monkeypatch.setattr(TrackedJob, "on_checkpoint", real_checkpoint)
        again = fit(make_cfg(store, *LONG))
        assert again.note == "" and again.run_id != killed.info.run_id  # trained from the start
        assert says in capsys.readouterr().err


def test_an_unusable_checkpoint_is_skipped_with_a_warning(store, make_cfg, monkeypatch, capsys):
    """A checkpoint that cannot be resumed (here: its W of another shape) is named in one warning line and
    the job trains from the start; it never fails the job, and the next rerun works too."""
    real_checkpoint = TrackedJob.on_checkpoint

    def damage_then_stop(self, state):
        state.W = np.zeros((state.W.shape[0] + 1, state.W.shape[1]), state.W.dtype)  # not this training's
        real_checkpoint(self, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(TrackedJob, "on_checkpoint", damage_then_stop)
    with pytest.raises(KeyboardInterrupt):
        fit(make_cfg(store, *LONG))
    monkeypatch.setattr(TrackedJob, "on_checkpoint", real_checkpoint)
    again = fit(make_cfg(store, *LONG))
    assert again.status == "FINISHED" and again.note == ""  # trained from the start
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a usable checkpoint" in err[0] and "training from the start" in err[0]


def test_a_run_logged_with_the_old_tag_names_is_resumed(store, make_cfg, monkeypatch):
    # runs logged before the bookkeeping tags moved under mlflow.softmax_exp.* carry softmax_exp.*
    real_checkpoint = TrackedJob.on_checkpoint

    def checkpoint_then_stop(self, state):
        real_checkpoint(self, state)
        if state.iteration == 500:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrackedJob, "on_checkpoint", checkpoint_then_stop)
    with pytest.raises(KeyboardInterrupt):
        fit(make_cfg(store, *LONG))
    client = client_for(store)
    exp = client.get_experiment_by_name("digits").experiment_id
    (killed,) = client.search_runs([exp])
    for key, value in killed.data.tags.items():  # as the earlier version named them
        if key.startswith(tags.BOOKKEEPING):
            client.delete_tag(killed.info.run_id, key)
            client.set_tag(killed.info.run_id, tags.legacy_name(key), value)
    assert tags.FINGERPRINT_TAG not in client.get_run(killed.info.run_id).data.tags

    monkeypatch.setattr(TrackedJob, "on_checkpoint", real_checkpoint)
    again = fit(make_cfg(store, *LONG))
    assert again.note == "resumed from iteration 500" and again.run_id == killed.info.run_id
    assert tags.renamed("softmax_exp.config_fingerprint") == tags.FINGERPRINT_TAG
    assert tags.renamed("softmax_exp.optuna_trial") is None  # read by a person: its name is kept
