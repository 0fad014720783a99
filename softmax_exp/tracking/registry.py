"""The Model Registry: a model registered as a new version under a name, with an alias pointing at it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from softmax_exp.tracking import mlflow_internals


def register(client, name: str, model_uri: str, run_id: str, description: str, alias: str = "best"):
    """Register the logged model ``model_uri`` as a new version of the registered model ``name``
    (created if missing) from the run ``run_id`` (the version's run: the run page that lists it under
    "Registered models"; a sweep's parent, whose best child logged the model) with ``description``, and
    point ``alias`` at it; return the ModelVersion. If ``alias`` already points at a version of that
    model (a sweep run again), nothing new is registered and that version is returned."""
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(name, alias)
    except MlflowException:  # no such model, or no such alias yet
        current = None
    if current is not None and current.source == model_uri and current.run_id == run_id:
        return current
    try:
        client.create_registered_model(name, description=f"Linear classifiers; the alias `{alias}` is the "
                                                         "best job of the latest sweep")
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    # a server checks that a `models:/<model id>` source belongs to the model_id sent with it (without
    # one, to the run, which fails); a local store accepts both
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    with global_tracking_uri_set(client.tracking_uri):
        version = client.create_model_version(name, source=model_uri, run_id=run_id,
                                              description=description, model_id=model_id)
    client.set_registered_model_alias(name, alias, version.version)
    return version


@contextlib.contextmanager
def global_tracking_uri_set(uri: str) -> Iterator[None]:
    """MLflow's fluent API (``mlflow.models.evaluate``, ``mlflow.pyfunc.load_model`` of a ``models:/`` URI)
    and its SQL registry store looks a ``models:/m-...`` source up with ``MlflowClient()``, i.e. the
    process's global tracking URI, not the caller's (a TODO in its ``create_model_version``): with any
    store but the one in the current directory the lookup fails ("Logged model ... not found"). Point
    the global URI at ``uri`` for the call, then put it (and ``MLFLOW_TRACKING_URI``) back as it was."""
    import mlflow

    saved, saved_env = mlflow_internals.global_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved)  # None also unsets MLFLOW_TRACKING_URI
        if saved_env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env
