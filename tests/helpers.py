"""Helpers the tests share (the fixtures built on them are in conftest.py): composed configs, MLflow stores
in a test's folder, the CLI as a subprocess.

A new MLflow SQLite store costs seconds of schema set-up, so an initialised empty store is made once per
session and copied.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from softmax_exp.config import Config, compose, to_config
from softmax_exp.util.paths import CONFIG_DIR

ROOT = CONFIG_DIR.parent
# small and quick on digits, but long enough to reach val_acc > 0.9
FAST = ["num_iters=200", "eval_every=50", "lr=1e-2", "reg=1e-2", "progress=false"]


def compose_cfg(tmp_path: Path, store: Path | None, *overrides: str) -> Config:
    """The project's checked config with FAST and ``overrides``; the dataset cache in ``tmp_path``,
    tracking into ``store`` (a sqlite file) or off."""
    track = [f"tracking.uri=sqlite:///{store}"] if store is not None else ["tracking.enabled=false"]
    return to_config(compose([*FAST, f"dataset.cache_dir={tmp_path / 'cache'}", *track, *overrides]))


def fresh_store(folder: Path, tmp_path_factory) -> Path:
    """An empty, initialised MLflow SQLite store at ``folder/mlflow.db`` (copied from a template)."""
    template = tmp_path_factory.getbasetemp() / "mlflow_template" / "mlflow.db"
    if not template.exists():
        from softmax_exp.tracking import get_client

        template.parent.mkdir(exist_ok=True)
        get_client(f"sqlite:///{template}").search_experiments()  # creates the schema
    store = folder / "mlflow.db"
    shutil.copy(template, store)
    return store


def run_cli(cwd: Path, *args: str, module: str = "softmax_exp.train",
            timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m module args`` in ``cwd``, as CI runs it (CI=true: no progress bars)."""
    env = {**os.environ, "CI": "true", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def client_for(store: Path):
    from softmax_exp.tracking import get_client

    return get_client(f"sqlite:///{store}")


def sweep_runs(store: Path, experiment: str = "digits"):
    """(client, parent runs, child runs) of the active runs of ``experiment`` in the SQLite ``store`` (no
    runs while the experiment does not exist)."""
    from softmax_exp.tracking import PARENT_TAG

    client = client_for(store)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=500) if exp else []
    parents = [r for r in runs if PARENT_TAG not in r.data.tags]
    children = [r for r in runs if PARENT_TAG in r.data.tags]
    return client, parents, children


def window_means(loss, every: int = 50) -> list[tuple[int, float]]:
    """What the loss metric should hold for a loss history: (iterations done, mean) of each window of
    ``every`` iterations, the last window possibly shorter (the reference the tests check against)."""
    import numpy as np

    loss = np.asarray(loss, dtype=np.float64)
    return [(min(start + every, len(loss)), float(np.mean(loss[start:start + every])))
            for start in range(0, len(loss), every)]
