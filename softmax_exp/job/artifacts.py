"""What a training leaves behind in a folder (and, tracked, in its MLflow run): the course's picture of
W, the loss curve and every iteration's loss (loss.npy, float64), the validation split's confusion matrix
and its most confused pairs' images, the config and overrides that reproduce it, and the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml

from softmax_exp.config import Config, to_yaml
from softmax_exp.data import Dataset
from softmax_exp.learn.metrics import SplitResult, most_confused
from softmax_exp.learn.model import LinearClassifier, TrainHistory
from softmax_exp.plots.confusion import save_confusion_png
from softmax_exp.plots.loss import save_loss_png
from softmax_exp.plots.misclassified import save_misclassified_png
from softmax_exp.plots.weights import save_weights_png
from softmax_exp.util.atomic import atomic_path
from softmax_exp.util.secrets import without_password

FILES = ("weights.png", "loss.png", "loss.npy", "confusion_matrix.png", "misclassified.png", "config.yaml",
         "overrides.yaml")
CONFUSED_PAIRS = 4  # the gallery's rows: the most confused (true, predicted) pairs
IMAGES_PER_PAIR = 8


def write_artifacts(folder: Path, cfg: Config, run_name: str, overrides: Sequence[str],
                    model: LinearClassifier, history: TrainHistory, val: SplitResult | None = None,
                    data: Dataset | None = None) -> Path:
    """Write :data:`FILES` into ``folder`` (created if missing); return the folder. (The model goes to
    MLflow as a logged model, and to a job's own folder as model.npz beside this one.) A model on a feature
    stage's rows has no weights.png: its W are weights of features, not images. ``val``, the labels the
    model gives the validation split (None: a training that did not run to its end), makes
    confusion_matrix.png, and with ``data`` (whose rows give back the images: pixels, not features)
    misclassified.png, the :data:`CONFUSED_PAIRS` most confused pairs' first images.

    Each file is whole or missing: written under a temporary name, then renamed (a full disk leaves no
    truncated picture); an OSError names the file."""
    folder.mkdir(parents=True, exist_ok=True)
    pre = model.preprocessing
    writers: dict[str, Callable[[Path], object]] = {
        "weights.png": lambda p: save_weights_png(p, model.W, pre.image_shape, pre.class_names,
                                                  pre.bias_trick),
        "loss.png": lambda p: save_loss_png(p, history.loss, title=run_name),
        "loss.npy": lambda p: _save_npy(p, np.asarray(history.loss, dtype=np.float64)),  # every iteration
        "config.yaml": lambda p: p.write_text(without_password(to_yaml(cfg))),  # (a tracking URL's)
        "overrides.yaml": lambda p: p.write_text(without_password(yaml.safe_dump(list(overrides)))),
        "confusion_matrix.png": lambda p: save_confusion_png(
            p, val.confusion, pre.class_names, f"{run_name}: validation, % of each true class"),
        "misclassified.png": lambda p: _save_gallery(p, val, data, pre.class_names, run_name),
    }
    skip = {"weights.png"} if pre.features is not None else set()
    if val is None:
        skip |= {"confusion_matrix.png", "misclassified.png"}
    if data is None or data.features is not None:
        skip.add("misclassified.png")
    for name in FILES:
        if name in skip:
            continue
        with atomic_path(folder / name, sync=False) as tmp:
            writers[name](tmp)
    return folder


def _save_gallery(path: Path, val: SplitResult, data: Dataset, class_names, run_name: str) -> None:
    pairs = most_confused(val.confusion, CONFUSED_PAIRS)
    images = []
    for true, pred, _ in pairs:
        rows = np.flatnonzero((val.y_true == true) & (val.y_pred == pred))[:IMAGES_PER_PAIR]
        images.append(data.raw_images("val", rows=rows))
    save_misclassified_png(path, images, pairs, class_names, val.confusion.sum(axis=1).tolist(),
                           f"{run_name}: the most confused validation images")


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # an open file: np.save would append .npy to the temporary name
        np.save(f, array)
