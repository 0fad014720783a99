"""What a training leaves behind in a folder (and, tracked, in its MLflow run): the course's picture of
W, the loss curve and every iteration's loss (loss.npy, float64), the config and overrides that reproduce
it, and the model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from softmax_exp.config import Config, to_yaml
from softmax_exp.model import Softmax, TrainHistory
from softmax_exp.plots import save_loss_png, save_weights_png

FILES = ("weights.png", "loss.png", "loss.npy", "config.yaml", "overrides.yaml")


def write_artifacts(folder: Path, cfg: Config, run_name: str, overrides: Sequence[str], model: Softmax,
                    history: TrainHistory) -> Path:
    """Write :data:`FILES` into ``folder`` (created if missing); return the folder. (The model goes to
    MLflow as a logged model, and to a job's own folder as model.npz beside this one.)"""
    folder.mkdir(parents=True, exist_ok=True)
    pre = model.preprocessing
    save_weights_png(folder / "weights.png", model.W, pre.image_shape, pre.class_names, pre.bias_trick)
    save_loss_png(folder / "loss.png", history.loss, title=run_name)
    np.save(folder / "loss.npy", np.asarray(history.loss, dtype=np.float64))  # every iteration's loss
    (folder / "config.yaml").write_text(to_yaml(cfg))
    (folder / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    return folder
