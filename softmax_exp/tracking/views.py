"""Saved views of the MLflow UI's run list: the columns a user of this project wants, best run first.

MLflow 3's runs table keeps a saved view ("Views -> Save") as an experiment tag
``mlflow.sharedViewState.<key>`` holding ``{"name", "createdAt", "updatedAt", "state"}``, ``state`` the
view as JSON text: the search facets (``searchFilter``, ``orderByKey``, ``orderByAsc``, ...) and the table's
UI state (``selectedColumns``, ...). A link with ``viewStateShareKey=<key>`` opens the list in that view.

Each experiment the project writes gets two kinds:

- :data:`EXPERIMENT_VIEW`: every run, sorted by val_acc (descending), with val_acc, train_acc, test_acc
  when logged, lr, reg and the keys the latest sweep varied as columns (``make ui``'s link);
- one per sweep (:func:`sweep_view_key`): the same, filtered to the sweep's jobs (the link a sweep prints).

Sorted by a metric, MLflow lists a sweep's children flat (it nests them under their parent only when
sorted by start time), so all jobs show without expanding anything. A view is rewritten only while it is
as this project left it (its ``updatedAt`` is the one recorded in :data:`WRITTEN_TAG`): a view the user
saved over, or saved under another key, is never touched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

from softmax_exp.tracking.mlflow_internals import (
    CUSTOM_MODEL_DEVELOPMENT,
    EXPERIMENT_KIND_TAG,
    VIEW_TAG_PREFIX,
)
from softmax_exp.tracking.tags import PREFIX, STOPPED_TAG

EXPERIMENT_VIEW = "softmax-exp-runs"
EXPERIMENT_VIEW_NAME = "softmax_exp: runs by val_acc"
WRITTEN_TAG = PREFIX + "views_written"  # JSON {view key: the updatedAt this project wrote}
MAX_TAG_VALUE = 5000  # MLflow's limit on an experiment tag's value

# Column ids as the runs table names them: "<type>.`<key>`". No attribute columns (Dataset, Models): they
# would push the metrics past the right edge of the table.
_METRICS = ("val_acc", "train_acc")


def view_tag(key: str) -> str:
    return VIEW_TAG_PREFIX + key


def sweep_view_key(parent_run_id: str) -> str:
    """The key of a sweep's view: one per parent run (a resumed sweep keeps its view)."""
    return f"sweep-{parent_run_id[:12]}"


def columns(swept_keys: Iterable[str] = (), test_acc: bool = False, pruned: bool = False) -> list[str]:
    """The runs table's columns besides the run name, start and duration: val_acc, train_acc (and test_acc),
    then lr, reg and every swept key as params (a swept config group ``optimizer`` is its param
    ``optimizer.name``, ``model`` its ``model.name``); with ``pruned`` (a search with a pruner) the tag
    saying where a trial was pruned first, and ``val_acc_at_stop`` (a pruned trial's val_acc is NaN, its
    partial value under that name: it sorts after every finished trial)."""
    metrics = [*_METRICS, "test_acc"] if test_acc else list(_METRICS)
    params: list[str] = []
    for key in ("lr", "reg", *swept_keys):
        name = key.replace("/", ".")
        name = f"{name}.name" if name in ("optimizer", "dataset", "model", "features") else name
        if name not in params:
            params.append(name)
    if pruned:  # which trials were stopped, first; their accuracies when stopped beside the final ones
        return [f"tags.`{STOPPED_TAG}`", *(f"metrics.`{m}`" for m in metrics), "metrics.`val_acc_at_stop`",
                *(f"params.`{p}`" for p in params)]
    return [*(f"metrics.`{m}`" for m in metrics), *(f"params.`{p}`" for p in params)]


def view_state(selected_columns: Sequence[str], search_filter: str = "") -> dict:
    """The state of a runs-table view: sorted by val_acc, best first, with these columns."""
    return {"searchFilter": search_filter, "orderByKey": "metrics.`val_acc`", "orderByAsc": False,
            "selectedColumns": list(selected_columns)}


def ensure_experiment_kind(client, experiment_id: str, experiment=None) -> None:
    """Tag the experiment as model development (``mlflow.experimentKind``), so MLflow's UI neither asks
    nor guesses its kind; a kind already set (by the user) is kept."""
    experiment = experiment or client.get_experiment(experiment_id)
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        _set_tag(client, experiment_id, EXPERIMENT_KIND_TAG, CUSTOM_MODEL_DEVELOPMENT)


def prepare_experiment(client, experiment) -> None:
    """What every experiment the project writes gets once: its kind, and :data:`EXPERIMENT_VIEW` (lr and
    reg as columns) unless it has one (a sweep's keeps its columns)."""
    ensure_experiment_kind(client, experiment.experiment_id, experiment)
    save_view(client, experiment.experiment_id, EXPERIMENT_VIEW, EXPERIMENT_VIEW_NAME,
              view_state(columns()), replace=False, experiment=experiment)


def save_view(client, experiment_id: str, key: str, name: str, state: dict, *, replace: bool = True,
              experiment=None) -> bool:
    """Write the view ``key`` (shown as ``name``) unless it exists and the user changed it, or it exists
    and ``replace`` is false; True if the experiment now has it (written now or before)."""
    experiment = experiment or client.get_experiment(experiment_id)
    current = experiment.tags.get(view_tag(key))
    written = _written(experiment.tags)
    if current is not None:
        envelope = _envelope(current)
        ours = envelope is not None and envelope.get("updatedAt") == written.get(key)
        if not ours or not replace:
            return True
        if envelope.get("state") == json.dumps(state):
            return True  # already so
        created = envelope.get("createdAt")
    else:
        created = None
    now = int(time.time() * 1000)
    value = json.dumps({"name": name, "createdAt": created or now, "updatedAt": now,
                        "state": json.dumps(state)})
    if len(value) > MAX_TAG_VALUE:  # many swept keys: the first columns only
        return current is not None
    written[key] = now
    _set_tag(client, experiment_id, view_tag(key), value)
    _set_tag(client, experiment_id, WRITTEN_TAG, json.dumps(_recent(written)))
    return True


def _set_tag(client, experiment_id: str, key: str, value: str) -> None:
    """Set an experiment tag; another process setting it at the same moment (the SQL store inserts, and
    one insert loses) leaves the other's value, which is the same view or kind."""
    from mlflow.exceptions import MlflowException

    try:
        client.set_experiment_tag(experiment_id, key, value)
    except MlflowException as e:
        if "UNIQUE constraint failed" not in str(e) and "duplicate key" not in str(e):
            raise


def read_view(experiment, key: str) -> dict | None:
    """The state of the view ``key`` of an experiment (an mlflow Experiment), None if it has none."""
    envelope = _envelope(experiment.tags.get(view_tag(key), ""))
    try:
        return json.loads(envelope["state"]) if envelope else None
    except (TypeError, ValueError):
        return None


def _envelope(value: str) -> dict | None:
    try:
        envelope = json.loads(value)
    except ValueError:
        return None
    return envelope if isinstance(envelope, dict) and isinstance(envelope.get("state"), str) else None


def _written(tags: dict) -> dict:
    try:
        written = json.loads(tags.get(WRITTEN_TAG, "{}"))
    except ValueError:
        return {}
    return written if isinstance(written, dict) else {}


def _recent(written: dict, keep: int = 100) -> dict:
    """The last ``keep`` views written (the tag stays under MLflow's 5000 characters)."""
    return dict(sorted(written.items(), key=lambda kv: kv[1])[-keep:])
