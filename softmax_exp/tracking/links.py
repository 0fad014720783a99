"""Where a person opens a run or an experiment in MLflow's UI: links for the terminal.

MLflow 3 opens in its GenAI mode (a traces dashboard); ``workflowType=machine_learning`` asks for its
model-training mode, where the runs table is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from softmax_exp.tracking.mlflow_internals import MODEL_TRAINING_LINK, VIEW_SHARE_KEY_PARAM

HOST = "127.0.0.1"
UI_PORT = 5000  # what `make ui` serves on by default
UI_PORT_ENV = "SOFTMAX_EXP_UI_PORT"  # the port `make ui` serves on, as the Makefile gives it to `make train`
MODEL_TRAINING = MODEL_TRAINING_LINK


def ui_record(db: str | os.PathLike) -> Path:
    """The file where `make ui` records the port it serves the SQLite store ``db`` on, while it does:
    ``.<name>.ui.json`` beside it (``.mlflow.db.ui.json``)."""
    db = Path(db)
    return db.with_name(f".{db.name}.ui.json")


def ui_port(uri: str) -> int:
    """The port a link to the local store ``uri`` is to name: the one `make ui` serves that store on now
    (its record, while its process lives), else ``$SOFTMAX_EXP_UI_PORT`` (the Makefile's UI_PORT), else
    :data:`UI_PORT`."""
    if uri.startswith("sqlite:///"):
        try:
            record = json.loads(ui_record(uri.removeprefix("sqlite:///")).read_text())
            port, pid = int(record["port"]), int(record["pid"])
            os.kill(pid, 0)  # alive (a server killed hard leaves its record behind)
            return port
        except (OSError, ValueError, KeyError, TypeError):
            pass
    value = os.environ.get(UI_PORT_ENV, "")
    return int(value) if value.isdigit() and 0 < int(value) < 65536 else UI_PORT


def experiment_link(uri: str, experiment_id: str | None = None, port: int | None = None,
                    view: str | None = None) -> str:
    """The runs table of an experiment (the experiments list without one), in model-training mode and,
    given a saved view's key (softmax_exp.tracking.views), in that view: on the tracking server itself
    for an http(s) store, on `make ui`'s address for a local one (``port``, default :func:`ui_port`)."""
    base = f"{_base(uri, port)}/#/experiments"
    if experiment_id is None:
        return f"{base}?{MODEL_TRAINING}"
    shown = f"&{VIEW_SHARE_KEY_PARAM}={view}" if view else ""
    return f"{base}/{experiment_id}/runs?{MODEL_TRAINING}{shown}"


def run_link(uri: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the UI (see :func:`experiment_link`); a local store's link needs `make ui` running."""
    link = f"{_base(uri, None)}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING}"
    return link if uri.startswith(("http://", "https://")) else f"{link}  (run `make ui` first)"


def _base(uri: str, port: int | None) -> str:
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return f"http://{HOST}:{port if port is not None else ui_port(uri)}"
