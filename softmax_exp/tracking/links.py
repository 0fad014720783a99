"""Where a person opens a run or an experiment in MLflow's UI: links for the terminal.

MLflow 3 opens in its GenAI mode (a traces dashboard); ``workflowType=machine_learning`` asks for its
model-training mode, where the runs table is.
"""

from __future__ import annotations

from softmax_exp.tracking.mlflow_internals import MODEL_TRAINING_LINK, VIEW_SHARE_KEY_PARAM

HOST = "127.0.0.1"
UI_PORT = 5000  # what `make ui` serves on by default
MODEL_TRAINING = MODEL_TRAINING_LINK


def experiment_link(uri: str, experiment_id: str | None = None, port: int = UI_PORT,
                    view: str | None = None) -> str:
    """The runs table of an experiment (the experiments list without one), in model-training mode and,
    given a saved view's key (softmax_exp.tracking.views), in that view: on the tracking server itself
    for an http(s) store, on `make ui`'s address (``port``) for a local one."""
    base = f"{_base(uri, port)}/#/experiments"
    if experiment_id is None:
        return f"{base}?{MODEL_TRAINING}"
    shown = f"&{VIEW_SHARE_KEY_PARAM}={view}" if view else ""
    return f"{base}/{experiment_id}/runs?{MODEL_TRAINING}{shown}"


def run_link(uri: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the UI (see :func:`experiment_link`); a local store's link needs `make ui` running."""
    link = f"{_base(uri, UI_PORT)}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING}"
    return link if uri.startswith(("http://", "https://")) else f"{link}  (run `make ui` first)"


def _base(uri: str, port: int) -> str:
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return f"http://{HOST}:{port}"
