"""Sweeps through the real CLI: one parent run with nested children, the summary, the exit status."""

from __future__ import annotations

import csv
import os

import pytest
from helpers import sweep_runs as _runs
from PIL import Image

from softmax_exp import tracking
from softmax_exp.tracking import views

pytestmark = pytest.mark.slow
SHORT = ["num_iters=200", "eval_every=100", "progress=false"]


def test_basic_2x2_sweep_is_one_parent_with_four_children(store, run_cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", "lr=1e-3,1e-2", "reg=1e-2,1", *SHORT,
                   f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]

    lines = proc.stdout.splitlines()
    assert [ln for ln in lines if ln.startswith("job ")] == [
        "job 1/4: lr=0.001,reg=0.01", "job 2/4: lr=0.001,reg=1",
        "job 3/4: lr=0.01,reg=0.01", "job 4/4: lr=0.01,reg=1"]
    table = [ln for ln in lines if ln.startswith("lr ")]
    assert [ln.split(" train")[0] for ln in table] == [
        "lr 1.000000e-03 reg 1.000000e-02", "lr 1.000000e-03 reg 1.000000e+00",
        "lr 1.000000e-02 reg 1.000000e-02", "lr 1.000000e-02 reg 1.000000e+00"]
    accs = [float(ln.rsplit("val accuracy: ", 1)[1]) for ln in table]
    best_line = lines[lines.index(table[-1]) + 1]
    assert best_line == f"best validation accuracy achieved during cross-validation: {max(accs):f}"

    client, parents, children = _runs(store)
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "sweep lr x reg (4 jobs)"
    # the parent's params: what the jobs share, and the swept values as written
    assert (parent.data.params["lr"], parent.data.params["reg"]) == ("1e-3,1e-2", "1e-2,1")
    assert parent.data.params["num_iters"] == "200" and "progress" not in parent.data.params
    note = parent.data.tags["mlflow.note.content"].replace("&emsp;", "")
    # the table first (the run page shows a note's first lines), then the command
    assert note.startswith("| run | lr | reg | train_acc | val_acc | status |\n|---|")
    assert "\n**Sweep** `python -m softmax_exp.train -m lr=1e-3,1e-2 reg=1e-2,1" in note
    assert note.count("| FINISHED |") == 4 and "**Best**: `" in note
    where = [ln for ln in lines if ln.startswith("MLflow: parent run")]
    assert where == [f"MLflow: parent run 'sweep lr x reg (4 jobs)' ({parent.info.run_id}) in sqlite:///{store}"]
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags[tracking.PARENT_TAG] for c in children} == {parent.info.run_id}
    assert sorted(c.info.run_name for c in children) == [
        "lr=0.001,reg=0.01", "lr=0.001,reg=1", "lr=0.01,reg=0.01", "lr=0.01,reg=1"]
    for c in children:
        assert (c.data.params["num_iters"], c.data.params["n_train"]) == ("200", "1297")
        assert len(client.get_metric_history(c.info.run_id, "loss")) == 4  # a mean of every 50 iterations
    best = max(children, key=lambda c: c.data.metrics["val_acc"])
    assert parent.data.metrics["best_val_acc"] == max(accs) == best.data.metrics["val_acc"]
    assert parent.data.tags[tracking.tags.BEST_RUN_ID_TAG] == best.info.run_id
    # the best child's model is registered, the alias `best` on it, and the sweep says so
    version = client.get_model_version_by_alias("softmax-digits", "best")
    # registered from the parent (its page lists the version) with the best child's logged model
    assert version.run_id == parent.info.run_id
    assert version.source == best.data.tags[tracking.tags.MODEL_URI_TAG]
    assert f"val_acc {best.data.metrics['val_acc']:.4f}" in version.description
    assert (f"  best: {best.info.run_name} ({best.info.run_id}), val_acc {max(accs):f}; registered as model "
            f"'softmax-digits' version {version.version} (alias 'best')") in lines
    assert any(ln.startswith("  browse it: http://127.0.0.1:5000/#/experiments/") for ln in lines)

    # the UI: the experiment's kind, its saved views (read back), the printed link, the parent's cells
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    key = f"sweep-{parent.info.run_id[:12]}"
    expected = ["metrics.`val_acc`", "metrics.`train_acc`", "params.`lr`", "params.`reg`"]
    for view, search in ((key, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"),
                         ("softmax-exp-runs", "")):
        state = views.read_view(experiment, view)
        assert state == {"searchFilter": search, "orderByKey": "metrics.`val_acc`", "orderByAsc": False,
                         "selectedColumns": expected}, view
    shown = client.search_runs([parent.info.experiment_id], state["searchFilter"] or None)
    assert len(shown) == 5  # the experiment's view: the parent and its 4 jobs (no other run here)
    jobs = client.search_runs([parent.info.experiment_id], views.read_view(experiment, key)["searchFilter"],
                              order_by=["metrics.val_acc DESC"])
    assert {r.info.run_id for r in jobs} == {c.info.run_id for c in children}
    assert (f"  its jobs, best first: http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}/runs?"
            f"workflowType=machine_learning&viewStateShareKey={key}") in lines
    parent_run = client.get_run(parent.info.run_id)
    assert {d.dataset.name for d in parent_run.inputs.dataset_inputs} == {"digits/train", "digits/val"}
    assert [o.model_id for o in parent_run.outputs.model_outputs] == [
        best.data.tags["mlflow.softmax_exp.model_uri"].removeprefix("models:/")]

    # the best job's per-class results, shown by the parent
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {
        "summary.csv", "val_acc_heatmap.png", "confusion_matrix.png", "misclassified.png"}
    per_class = {k: v for k, v in best.data.metrics.items() if k.startswith("val_acc/")}
    assert len(per_class) == 10
    assert {k.removeprefix("best_"): v for k, v in parent_run.data.metrics.items()
            if k.startswith("best_val_acc/")} == per_class
    with Image.open(sweep_dir / "val_acc_heatmap.png") as im:
        assert im.size == (640, 400)
    rows = list(csv.DictReader(open(sweep_dir / "summary.csv")))
    assert [r["status"] for r in rows] == ["FINISHED"] * 4
    assert {r["run_id"] for r in rows} == {c.info.run_id for c in children}
    with Image.open(sweep_dir / "0" / "artifacts" / "weights.png") as im:
        assert im.format == "PNG"


def test_a_sweep_with_eval_test_reports_the_test_acc_of_the_job_chosen_by_val_acc(store, run_cli, tmp_path):
    proc = run_cli("-m", "lr=1e-3,1e-2", "eval_test=true", *SHORT, f"tracking.uri=sqlite:///{store}",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", "tracking.register_model=null")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, (parent,), children = _runs(store)
    best = max(children, key=lambda c: (c.data.metrics["val_acc"], c.info.run_name == "lr=0.001"))
    test_acc = best.data.metrics["test_acc"]
    assert (f"  best: {best.info.run_name} ({best.info.run_id}), val_acc {best.data.metrics['val_acc']:f}, "
            f"test_acc {test_acc:f}") in proc.stdout.splitlines()
    note = parent.data.tags["mlflow.note.content"].replace("&emsp;", "")
    assert "| run | lr | reg | train_acc | val_acc | test_acc | status |" in note
    for c in children:
        assert f"| {c.data.metrics['test_acc']:.4f} | FINISHED |" in note
    assert note.rstrip().endswith(f"test_acc {test_acc:.4f}.")
    state = views.read_view(client.get_experiment(parent.info.experiment_id), "softmax-exp-runs")
    assert state["selectedColumns"][:3] == ["metrics.`val_acc`", "metrics.`train_acc`", "metrics.`test_acc`"]


def test_softmax_and_svm_in_one_sweep_one_table_one_view_a_best_of_each(store, run_cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", "model=softmax,svm", "lr=1e-3,1e-2", "reg=1e-2", *SHORT,
                   f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    table = [ln for ln in lines if ln.startswith("model=")]
    assert [ln.split(" train")[0] for ln in table] == [
        "model=softmax lr 1.000000e-03 reg 1.000000e-02", "model=softmax lr 1.000000e-02 reg 1.000000e-02",
        "model=svm lr 1.000000e-03 reg 1.000000e-02", "model=svm lr 1.000000e-02 reg 1.000000e-02"]
    accs = {(ln.split()[0][6:], ln.split()[2]): float(ln.rsplit("val accuracy: ", 1)[1]) for ln in table}

    client, (parent,), children = _runs(store)
    assert parent.info.run_name == "sweep model x lr (4 jobs)"
    by_name = {c.info.run_name: c for c in children}
    assert set(by_name) == {"model=softmax,lr=0.001", "model=softmax,lr=0.01", "model=svm,lr=0.001",
                            "model=svm,lr=0.01"}
    assert {c.data.params["model.name"] for c in children} == {"softmax", "svm"}
    for model in ("softmax", "svm"):
        mine = [c for n, c in by_name.items() if n.startswith(f"model={model},")]
        best = max(mine, key=lambda c: c.data.metrics["val_acc"])
        assert best.data.metrics["val_acc"] == max(v for (m, _), v in accs.items() if m == model)
        val_acc = best.data.metrics["val_acc"]
        assert f"best validation accuracy of model={model}: {val_acc:f} ({best.info.run_name})" in lines
        version = client.get_model_version_by_alias(f"{model}-digits", "best")  # the best of each model
        assert version.run_id == parent.info.run_id and version.description.startswith(f"{model}: val_acc")
        assert version.source == best.data.tags[tracking.tags.MODEL_URI_TAG]
        assert any(ln.startswith(f"  best model={model}: {best.info.run_name} ") and f"'{model}-digits'" in ln
                   for ln in lines)
        assert f"**Best model={model}**: `{best.info.run_name}`" in parent.data.tags["mlflow.note.content"]
        # the logged model is the model trained: an SVM gives scores, no probabilities
        loaded = client.get_logged_model(best.data.tags[tracking.tags.MODEL_URI_TAG].removeprefix("models:/"))
        assert loaded.params["model.name"] == model
    note = parent.data.tags["mlflow.note.content"].replace("&emsp;", "")
    assert "| run | model | lr | reg | train_acc | val_acc | status |" in note
    rows = list(csv.DictReader(open(sweep_dir / "summary.csv")))
    assert sorted(r["model"] for r in rows) == ["softmax", "softmax", "svm", "svm"]
    assert {r["register_model"] for r in rows} == {"softmax-digits", "svm-digits"}
    key = f"sweep-{parent.info.run_id[:12]}"
    state = views.read_view(client.get_experiment(parent.info.experiment_id), key)
    assert state["selectedColumns"] == ["metrics.`val_acc`", "metrics.`train_acc`", "params.`lr`",
                                        "params.`reg`", "params.`model.name`"]
    with Image.open(sweep_dir / "val_acc_heatmap.png") as im:
        assert im.size == (1280, 434)  # a panel per model


def test_a_sweep_over_feature_sets_shows_them_as_a_column(store, run_cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", "features=pixels,hog_color", "lr=1e-2", *SHORT, "tracking.register_model=null",
                   f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    table = [ln.split(" train")[0] for ln in lines if ln.startswith("features=")]
    assert table == ["features=hog_color lr 1.000000e-02 reg 1.000000e-02",
                     "features=pixels lr 1.000000e-02 reg 1.000000e-02"]
    assert any(ln.startswith("best validation accuracy of features=hog_color: ") for ln in lines)
    client, (parent,), children = _runs(store)
    assert parent.info.run_name == "sweep features (2 jobs)"
    assert sorted(c.info.run_name for c in children) == ["features=hog_color", "features=pixels"]
    rows = list(csv.DictReader(open(sweep_dir / "summary.csv")))
    assert sorted(r["features"] for r in rows) == ["hog_color", "pixels"]
    experiment = client.get_experiment(parent.info.experiment_id)
    state = views.read_view(experiment, f"sweep-{parent.info.run_id[:12]}")
    assert "params.`features.name`" in state["selectedColumns"]
    note = parent.data.tags["mlflow.note.content"].replace("&emsp;", "")
    assert "| run | features | lr | reg |" in note


def test_joblib_sweep_goes_on_after_a_divergence_and_exits_non_zero(store, run_cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", "hydra/launcher=joblib_2w", "lr=1e-2,1e6,3e-3", "reg=1e-2",
                   *SHORT, f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 of 3 jobs failed" in proc.stdout
    failed_line = [ln for ln in proc.stdout.splitlines() if ln.startswith("lr 1.000000e+06")]
    assert failed_line and "[FAILED: loss became inf at iteration" in failed_line[0]

    client, (parent,), children = _runs(store)
    assert parent.info.status == "FAILED" and parent.data.tags[tracking.tags.NUM_FAILED_TAG] == "1"
    status = {c.info.run_name: c.info.status for c in children}
    # a child is named by what the sweep varies
    assert status == {"lr=0.01": "FINISHED", "lr=1e+06": "FAILED", "lr=0.003": "FINISHED"}
    diverged = next(c for c in children if c.info.status == "FAILED")
    assert diverged.data.tags[tracking.FAILURE_TAG].startswith("loss became inf")
    cores = len(os.sched_getaffinity(0))
    assert {c.data.tags["mlflow.softmax_exp.numba_threads"] for c in children} == {str(max(1, cores // 2))}
    rows = {r["run_name"]: r for r in csv.DictReader(open(sweep_dir / "summary.csv"))}
    assert rows["lr=1e+06"]["status"] == "FAILED"
    assert rows["lr=1e+06"]["reason"].startswith("loss became inf")
    assert parent.data.metrics["best_val_acc"] == max(
        c.data.metrics["val_acc"] for c in children if c.info.status == "FINISHED")
