"""The settings of MLflow tracking (the ``tracking`` config group's schema), each option declared once with
its default, its constraint and its meaning, and checked once, when the settings are made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from softmax_exp.util.constraints import Boolean, Checked, Constraint, Integer, Name, PathText, Real, option

STORE_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")
MAX_EXPERIMENT_NAME = 500  # MLflow's limit (mlflow.utils.validation.MAX_EXPERIMENT_NAME_LENGTH)
MAX_MODEL_NAME = 256  # the registry's name column (registered_models.name, VARCHAR(256))


@dataclass(frozen=True)
class StoreURI(Constraint):
    """A tracking URI MLflow 3 develops: a SQLite file, a server, or a database (not a folder store)."""

    def problem(self, value: Any, owner: Any = None) -> str | None:
        if not isinstance(value, str) or not value:
            return "{key} must be a non-empty string; got {value}"
        shown = repr(value).replace("{", "{{").replace("}", "}}")
        if value.startswith("file:") or "://" not in value and not value.startswith("databricks"):
            return (f"{{key}} {shown} names a folder store, which MLflow 3 no longer develops; use a SQLite "
                    f"file, {{key}}=sqlite:///PATH/mlflow.db, or a server, {{key}}=http://HOST:PORT")
        scheme = value.split("://", 1)[0].split("+", 1)[0]
        if "://" in value and scheme not in STORE_SCHEMES:
            return (f"{{key}} {shown}: unknown store scheme {scheme!r}; use sqlite:///PATH/mlflow.db, "
                    f"http(s)://HOST:PORT or a database URI ({', '.join(STORE_SCHEMES[3:])})")
        return None


@dataclass
class TrackingConfig(Checked):
    """MLflow tracking (softmax_exp/tracking/). A relative sqlite path is made absolute against the
    launch directory, so Hydra's job directories and joblib workers all write to one store."""

    KEY = "tracking."

    enabled: bool = option(True, Boolean(), "false: no MLflow at all (not even imported)")
    uri: str = option("sqlite:///${project_root:}/mlflow.db", StoreURI(), "`make ui` serves this store")
    experiment: str = option("${dataset.name}", Name(max_chars=MAX_EXPERIMENT_NAME),
                             "the MLflow experiment; by default the dataset's name")
    artifact_root: str | None = option(None, PathText(nullable=True),
                                       "null: <folder of the sqlite file>/mlartifacts/<experiment>")
    stale_after_min: float = option(60.0, Real(low=0, low_open=True),
                                    "a RUNNING run of another host with no heartbeat this long is dead")
    register_model: str | None = option("${model.name}-${.experiment}",
                                        Name(nullable=True, max_chars=MAX_MODEL_NAME, forbidden="/\\:"),
                                        "a sweep registers its best model (of each model) so; null: not")
    evaluate_best: bool = option(False, Boolean(),
                                 "a sweep runs mlflow.models.evaluate on its best model (validation split) "
                                 "and logs it to its parent")
    log_every: int = option(50, Integer(low=1),
                            "the loss metric: the mean of every this many iterations (loss.npy has them all)")
