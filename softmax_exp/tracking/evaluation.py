"""MLflow's own evaluation of a logged classifier: ``mlflow.models.evaluate(model_type="classifier")`` on
raw images and their labels, with the model's probabilities (a softmax model's), so that it gives
log_loss, roc_auc and precision-recall besides accuracy and F1, and its plots (confusion matrix, ROC and
precision-recall curves per class).

MLflow's evaluator asks for probabilities only a model it knows as scikit-learn's; the logged model is
handed to it as one (:func:`softmax_exp.tracking.mlflow_internals.with_probabilities`), its probabilities
those it answers to ``params={"output": "probabilities"}``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from softmax_exp.tracking import mlflow_internals
from softmax_exp.tracking.registry import global_tracking_uri_set

LABEL = "label"


def evaluate_model(uri: str, model_uri: str, images: np.ndarray, labels: np.ndarray,
                   class_names: Sequence[str], run_id: str | None = None, prefix: str = ""):
    """Evaluate the logged model ``model_uri`` of the store ``uri`` on ``images`` ((N, H, W, C) or (N,
    H*W*C) raw pixels, as ``predict`` takes them) with true ``labels`` (N,) int64 in [0, C); return MLflow's
    EvaluationResult (``.metrics``: accuracy_score, f1_score, log_loss, roc_auc, ... ; log_loss and roc_auc
    only for a model that gives probabilities, a softmax's). With ``run_id`` the metrics (names prefixed by
    ``prefix``) and plots are logged to that run (MLflow's evaluation artifacts); without, to a new run of
    MLflow's default experiment. The model's code folder, which loading it puts first on ``sys.path``,
    is taken off again (a process started later would import this package from it)."""
    import pandas as pd

    images = np.asarray(images)
    X = images.reshape(images.shape[0], -1)
    data = pd.DataFrame(X, columns=[f"p{i}" for i in range(X.shape[1])])
    data[LABEL] = np.asarray(labels, dtype=np.int64)
    config = {"log_model_explainability": False, "label_list": list(range(len(class_names))),
              "metric_prefix": prefix}
    path = list(sys.path)  # loading puts the model's code folder first; it goes with the evaluation
    try:
        with global_tracking_uri_set(uri):
            return _evaluate(model_uri, data, config, run_id)
    finally:
        sys.path[:] = path


def _evaluate(model_uri: str, data, config: dict, run_id: str | None):
    """Load the model (as the evaluator asks a scikit-learn one, when it gives probabilities) and
    evaluate it on ``data`` (pixels and the label column) into the run ``run_id``."""
    import mlflow

    loaded = mlflow.pyfunc.load_model(model_uri)
    model = loaded
    if "probabilities" in (loaded.metadata.metadata or {}).get("outputs", []):
        model = mlflow_internals.with_probabilities(
            loaded, lambda X: loaded.predict(X, params={"output": "probabilities"}),
            lambda X, y, sample_weight=None: float(np.mean(loaded.predict(X) == np.asarray(y))))
    with mlflow.start_run(run_id=run_id):
        return mlflow.models.evaluate(model, data, targets=LABEL, model_type="classifier",
                                      evaluator_config=config)
