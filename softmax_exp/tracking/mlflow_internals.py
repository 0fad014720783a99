"""Every use of MLflow's private API, and of what its UI and store do without documenting it, in one place.

MLflow 3 has no public way for these needs, so they lean on its internals; ``tests/test_mlflow_internals.py``
checks each against the MLflow installed (its version is one of :data:`TESTED_MLFLOW`): an MLflow upgrade
starts there.

- :func:`global_tracking_uri`: the SQL registry store looks a ``models:/m-...`` source up with
  ``MlflowClient()``, i.e. the process's global tracking URI, not the caller's (a TODO in its
  ``create_model_version``): the registry sets it for the call and puts back what it read here
  (``mlflow.tracking._tracking_service.utils._tracking_uri``).
- :func:`build_schema` and :func:`read_schema`: a new SQLite store is built whole in a temporary file by
  MLflow's ``SqlAlchemyStore`` (every migration) and renamed into place; a store's state is read off its
  tables and alembic's ``alembic_version`` (MLflow's schema is alembic's).
- :func:`artifact_repository`: deleting one artifact of a run (a superseded checkpoint) needs the run's
  artifact repository; MlflowClient has no delete.
- :func:`with_probabilities`: MLflow's default classifier evaluator asks a model for probabilities (and
  then gives log_loss, roc_auc and their curves) only when its pyfunc loader is scikit-learn's, XGBoost's or
  CatBoost's, reading ``predict_proba`` off the raw model (``_extract_raw_model``).
- :data:`DATASET_CONTEXT_TAG` (``mlflow.utils.mlflow_tags``): the tag that says a dataset input's role.
- :data:`QUIET_LOGGERS`: loggers of MLflow's store that narrate its schema set-up or log a traceback for
  every locked SQLite call (the project retries and reports those itself).
- The UI's conventions, read off its JavaScript bundle: a saved view of the runs table is an experiment
  tag :data:`VIEW_TAG_PREFIX` ``<key>`` opened by the link parameter :data:`VIEW_SHARE_KEY_PARAM`; an
  experiment's kind is the tag :data:`EXPERIMENT_KIND_TAG`; a run's tags under :data:`SYSTEM_TAG_PREFIX`
  are not listed on its page; :data:`MODEL_TRAINING_LINK` asks for the
  model-training mode (MLflow 3 opens in its GenAI mode).

mlflow itself is imported inside the functions only (it costs seconds), as everywhere in the project.
"""

from __future__ import annotations

import contextlib
import copy
import sqlite3
from pathlib import Path

TESTED_MLFLOW = ("3.17.2",)  # pyproject.toml: mlflow>=3.1,<3.18

DATASET_CONTEXT_TAG = "mlflow.data.context"  # mlflow.utils.mlflow_tags.MLFLOW_DATASET_CONTEXT
QUIET_LOGGERS = {"alembic": "WARNING", "mlflow.store.db.utils": "CRITICAL"}

VIEW_TAG_PREFIX = "mlflow.sharedViewState."
SYSTEM_TAG_PREFIX = "mlflow."  # tags the UI keeps off a run's page and tag columns (its system tags)
VIEW_SHARE_KEY_PARAM = "viewStateShareKey"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CUSTOM_MODEL_DEVELOPMENT = "custom_model_development"  # the kind of model training (not GenAI)
MODEL_TRAINING_LINK = "workflowType=machine_learning"

_SCHEMA_TABLE = "experiments"  # a table every MLflow schema has
_ALEMBIC_TMP = "_alembic_tmp_"  # the prefix of the tables alembic leaves when a migration is stopped


def global_tracking_uri() -> str | None:
    """The tracking URI ``mlflow.set_tracking_uri`` set in this process (None: none was)."""
    from mlflow.tracking._tracking_service import utils

    return utils._tracking_uri


def build_schema(path: Path, artifact_root: str | None) -> None:
    """MLflow's whole schema (every migration) in the new SQLite file ``path``, with ``artifact_root`` for its
    Default experiment."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{path}", artifact_root)
    store.engine.dispose()


def read_schema(path: Path) -> tuple[set[str], list, int, bool]:
    """What the SQLite file ``path`` holds of an MLflow schema: (its tables, alembic's version rows, the
    number of runs, whether the schema is whole: the tables and a version, no migration left half-done).
    sqlite3.DatabaseError when the file is not a database."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        versions = (con.execute("SELECT version_num FROM alembic_version").fetchall()
                    if "alembic_version" in tables else [])
        runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] if "runs" in tables else 0
    whole = bool(versions) and _SCHEMA_TABLE in tables and not any(t.startswith(_ALEMBIC_TMP) for t in tables)
    return tables, versions, runs, whole


def artifact_repository(artifact_uri: str, tracking_uri: str):
    """The artifact repository of a run's ``artifact_uri``, resolved against its ``tracking_uri`` as
    MlflowClient does (an ``mlflow-artifacts:/`` location needs it)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)


def with_probabilities(model, predict_proba, score=None):
    """The loaded pyfunc ``model`` as MLflow's default classifier evaluator asks a scikit-learn model: its
    raw model's ``predict`` (``model.predict``), ``predict_proba(X) -> (N, C)`` and ``score(X, y)``
    (accuracy, optional). Only the loader's name in a copy of the metadata changes; the model's files and
    code are as logged."""
    from mlflow.pyfunc import PyFuncModel

    class Raw:
        def predict(self, X, params=None):
            return model.predict(X)

        def get_raw_model(self):
            return self

    raw = Raw()
    raw.predict_proba = predict_proba
    if score is not None:
        raw.score = score
    meta = copy.deepcopy(model.metadata)
    meta.flavors["python_function"] = {**meta.flavors["python_function"], "loader_module": "mlflow.sklearn"}
    return PyFuncModel(meta, raw)
