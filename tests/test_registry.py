"""Registering a logged model in the Model Registry of a local store."""

from __future__ import annotations

import os

import mlflow
from helpers import client_for, fresh_store

from softmax_exp.tracking.registry import register


def test_register_finds_the_logged_model_of_a_store_outside_the_current_directory(
        tmp_path, tmp_path_factory, monkeypatch):
    (tmp_path / "store").mkdir()
    (tmp_path / "elsewhere").mkdir()
    store = fresh_store(tmp_path / "store", tmp_path_factory)
    monkeypatch.chdir(tmp_path / "elsewhere")  # MLflow's default store would be ./mlflow.db here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///somewhere-else.db")
    before = mlflow.get_tracking_uri()
    client = client_for(store)
    experiment_id = client.create_experiment("e")
    run = client.create_run(experiment_id)
    model = client.create_logged_model(experiment_id, source_run_id=run.info.run_id, name="model")

    version = register(client, "softmax-e", f"models:/{model.model_id}", run.info.run_id, "val_acc 0.5")

    assert version.run_id == run.info.run_id and version.source == f"models:/{model.model_id}"
    assert client.get_model_version_by_alias("softmax-e", "best").version == version.version
    assert client.get_model_version("softmax-e", version.version).description == "val_acc 0.5"
    # the process's own tracking URI is as it was, and nothing was written where it points
    assert mlflow.get_tracking_uri() == before == os.environ["MLFLOW_TRACKING_URI"]
    assert not (tmp_path / "elsewhere" / "somewhere-else.db").exists()
    assert not (tmp_path / "elsewhere" / "mlflow.db").exists()
