"""Per-class results: the confusion matrix and per-class accuracy against a hand count, the pictures,
summary.csv's order, header and empty cells, the metric names of a pruned trial's run."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from helpers import client_for
from PIL import Image

from softmax_exp.learn.metrics import (
    SplitResult,
    confusion_matrix,
    most_confused,
    normalized_by_true_class,
    per_class_accuracy,
)
from softmax_exp.learn.sgd import EvalPoint
from softmax_exp.plots.confusion import save_confusion_png
from softmax_exp.plots.misclassified import save_misclassified_png
from softmax_exp.sweep.results import JobResult, write_summary_csv
from softmax_exp.tracking import Run
from softmax_exp.tracking.job import _MetricLog, per_class_metrics

Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = np.array([0, 0, 1, 2, 1, 0, 2, 2, 2, 1])


def test_confusion_matrix_and_per_class_accuracy_by_hand():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 4)
    # rows: true class; columns: predicted. Class 0: 2 right, one as 1, one as 2; class 3 has no rows
    assert cm.tolist() == [[2, 1, 1, 0], [1, 1, 0, 0], [0, 1, 3, 0], [0, 0, 0, 0]]
    assert cm.dtype == np.int64 and cm.sum() == 10
    acc = per_class_accuracy(cm)
    assert acc[:3].tolist() == [2 / 4, 1 / 2, 3 / 4] and math.isnan(acc[3])
    result = SplitResult.of(Y_TRUE, Y_PRED, 4)
    assert result.accuracy == pytest.approx(6 / 10) and result.per_class[:3].tolist() == acc[:3].tolist()
    assert most_confused(cm, 2) == [(0, 1, 1), (0, 2, 1)]  # ties by true, then predicted class
    assert most_confused(np.eye(3, dtype=np.int64), 4) == []


def test_confusion_normalised_per_true_class():
    frac = normalized_by_true_class(confusion_matrix(Y_TRUE, Y_PRED, 4))
    np.testing.assert_allclose(frac.sum(axis=1), [1, 1, 1, 0])  # a class with no rows stays zeros
    assert frac[2].tolist() == [0.0, 0.25, 0.75, 0.0]


def test_bad_labels_are_one_line_naming_the_argument():
    with pytest.raises(ValueError, match=r"y_pred must hold integer labels in \[0, 3\)"):
        confusion_matrix(np.array([0, 1]), np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="one length"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)


def test_per_class_metric_keys_are_mlflow_keys():
    keys = per_class_metrics("val_acc", ["cat", "a/b: c", "empty"], np.array([0.5, 0.25, np.nan]))
    assert keys == {"val_acc/cat": 0.5, "val_acc/a_b_ c": 0.25}  # no rows of "empty": no value


def test_the_pictures(tmp_path):
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    path = save_confusion_png(tmp_path / "cm.png", cm, ["cat", "dog", "truck"], "a run")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 3 * 56 and im.height > 3 * 56
        # the diagonal's darkest cell (truck: 75 %) is darker than an empty one
        pixels = np.asarray(im.convert("L"))
    assert pixels.min() < 200
    images = [np.full((2, 8, 8, 1), 16, np.uint8), np.zeros((1, 8, 8, 1), np.uint8)]
    path = save_misclassified_png(tmp_path / "g.png", images, [(0, 1, 2), (2, 1, 1)], ["cat", "dog", "truck"],
                                  [4, 2, 4], "title")
    with Image.open(path) as im:
        assert im.width >= 2 * 64 and im.height >= 2 * 64


def test_summary_csv_is_best_first_with_a_header_and_empty_cells(tmp_path):
    jobs = [JobResult(0, "a", "FINISHED", 1e-3, 1.0, 0.8, 0.70),
            JobResult(1, "b", "FAILED", 1e-2, 1.0, reason="diverged"),
            JobResult(2, "c", "PRUNED", 1e-4, 1.0, 0.9, 0.95, note="pruned at iteration 100"),
            JobResult(3, "d", "FINISHED", 1e-3, 0.1, 0.9, 0.75)]
    path = write_summary_csv(tmp_path / "summary.csv", jobs)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    assert header[:5] == ["run_name", "val_acc", "train_acc", "test_acc", "status"] and all(header)
    rows = list(csv.DictReader(open(path)))
    # finished by val_acc, then pruned (whatever its partial val_acc), then failed
    assert [r["run_name"] for r in rows] == ["d", "a", "c", "b"]
    assert rows[0]["test_acc"] == "" and rows[3]["val_acc"] == "" and "nan" not in path.read_text()


def test_a_stopped_training_logs_its_accuracies_under_other_names(store, tmp_path):
    uri = f"sqlite:///{store}"
    with Run.start(uri, "e", "pruned") as run:
        log = _MetricLog(run, 50)
        point = EvalPoint(100, 0.6, 0.55)
        log.on_eval(point, np.ones(100))
        log.finish(np.ones(100), {})
        log.stopped(point)
    client = client_for(store)
    m = client.get_run(run.run_id).data.metrics
    assert m["val_acc_at_stop"] == 0.55 and m["train_acc_at_stop"] == 0.6
    assert math.isnan(m["val_acc"]) and math.isnan(m["train_acc"])
    assert [h.value for h in client.get_metric_history(run.run_id, "val_acc_at_stop")] == [0.55]
    # sorted by val_acc, a finished run comes first whichever way
    with Run.start(uri, "e", "finished") as other:
        other.log_metric("val_acc", 0.1, 100)
    for order in ("DESC", "ASC"):
        ranked = client.search_runs([client.get_experiment_by_name("e").experiment_id],
                                    order_by=[f"metrics.val_acc {order}"])
        assert [r.info.run_name for r in ranked] == ["finished", "pruned"]
