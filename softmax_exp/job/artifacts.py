"""What a training leaves behind in a folder (and, tracked, in its MLflow run): the course's picture of
W, the loss curve and every iteration's loss (loss.npy, float64), the config and overrides that reproduce
it, and the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml

from softmax_exp.config import Config, to_yaml
from softmax_exp.learn.model import LinearClassifier, TrainHistory
from softmax_exp.plots.loss import save_loss_png
from softmax_exp.plots.weights import save_weights_png
from softmax_exp.util.atomic import atomic_path
from softmax_exp.util.secrets import without_password

FILES = ("weights.png", "loss.png", "loss.npy", "config.yaml", "overrides.yaml")


def write_artifacts(folder: Path, cfg: Config, run_name: str, overrides: Sequence[str],
                    model: LinearClassifier,
                    history: TrainHistory) -> Path:
    """Write :data:`FILES` into ``folder`` (created if missing); return the folder. (The model goes to
    MLflow as a logged model, and to a job's own folder as model.npz beside this one.) A model on a feature
    stage's rows has no weights.png: its W are weights of features, not images.

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
    }
    for name in FILES:
        if name == "weights.png" and pre.features is not None:
            continue
        with atomic_path(folder / name, sync=False) as tmp:
            writers[name](tmp)
    return folder


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # an open file: np.save would append .npy to the temporary name
        np.save(f, array)
