"""Training checkpoints: a :class:`softmax_exp.model.TrainState` in one ``.npz`` file (no pickle).

A checkpoint carries the config fingerprint of its training, so that it is never resumed into another
one. Files are written to a temporary name and renamed, so a killed writer leaves no half file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from softmax_exp.atomic import atomic_path
from softmax_exp.model import EvalPoint, TrainState

CHECKPOINT_FORMAT = 1
_OPT = "optimizer."


def checkpoint_name(iteration: int) -> str:
    """The file name of the checkpoint after ``iteration`` updates: ``iter_0000500.npz``."""
    return f"iter_{iteration:07d}.npz"


def save_checkpoint(path: str | Path, state: TrainState, fingerprint: str) -> Path:
    """Write ``state`` of the training with config ``fingerprint`` to ``path`` atomically."""
    path = Path(path)
    evals = np.array([(e.iteration, e.train_acc, e.val_acc) for e in state.evals],
                     dtype=np.float64).reshape(-1, 3)
    arrays = {
        "format": np.int64(CHECKPOINT_FORMAT),
        "fingerprint": np.str_(fingerprint),
        "iteration": np.int64(state.iteration),
        "W": state.W,
        "loss": np.asarray(state.loss, dtype=np.float64),
        "evals": evals,
        "rng_state": np.str_(json.dumps(state.rng_state)),
        **{_OPT + k: v for k, v in state.optimizer_state.items()},
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_checkpoint(path: str | Path, fingerprint: str) -> TrainState:
    """Read a checkpoint of the training with config ``fingerprint``; ValueError if the file is not a
    checkpoint or belongs to another training."""
    try:
        with np.load(path, allow_pickle=False) as f:
            fmt = int(f["format"])
            if fmt != CHECKPOINT_FORMAT:
                raise ValueError(f"checkpoint format {fmt}, this code reads {CHECKPOINT_FORMAT}")
            if str(f["fingerprint"]) != fingerprint:
                raise ValueError("it belongs to a training with another config")
            evals = [EvalPoint(int(i), float(t), float(v)) for i, t, v in f["evals"]]
            return TrainState(
                iteration=int(f["iteration"]),
                W=np.ascontiguousarray(f["W"]),
                optimizer_state={k[len(_OPT):]: np.array(f[k]) for k in f.files if k.startswith(_OPT)},
                rng_state=json.loads(str(f["rng_state"])),
                loss=np.array(f["loss"], dtype=np.float64),
                evals=evals,
            )
    except (KeyError, OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a usable checkpoint ({e})") from None
