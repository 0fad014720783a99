"""Helpers for the training tests: composed configs, MLflow stores in tmp_path, the CLI as a subprocess.

Every output goes under the test's tmp_path. A new MLflow SQLite store costs seconds of schema set-up, so
an initialised empty store is made once per session and copied.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from softmax_exp.train import CONFIG_DIR

ROOT = CONFIG_DIR.parent
# small and quick on digits, but long enough to reach val_acc > 0.9
FAST = ["num_iters=200", "eval_every=50", "lr=1e-2", "reg=1e-2", "progress=false"]


def compose_cfg(store: Path | None, *overrides: str) -> DictConfig:
    """The project's config with ``overrides``; tracking into ``store`` (a sqlite file) or off."""
    track = ([f"tracking.uri=sqlite:///{store}"] if store is not None
             else ["tracking.enabled=false"])
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=[*FAST, *track, *overrides])


def fresh_store(tmp_path: Path, tmp_path_factory) -> Path:
    """An empty, initialised MLflow SQLite store at ``tmp_path/mlflow.db`` (copied from a template)."""
    template = tmp_path_factory.getbasetemp() / "mlflow_template" / "mlflow.db"
    if not template.exists():
        from softmax_exp.tracking import get_client

        template.parent.mkdir(exist_ok=True)
        get_client(f"sqlite:///{template}").search_experiments()  # creates the schema
    store = tmp_path / "mlflow.db"
    shutil.copy(template, store)
    return store


def run_cli(tmp_path: Path, *args: str, module: str = "softmax_exp.train",
            timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m module args`` in tmp_path, as CI runs it (CI=true: no progress bars)."""
    env = {**os.environ, "CI": "true", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def client_for(store: Path):
    from softmax_exp.tracking import get_client

    return get_client(f"sqlite:///{store}")
