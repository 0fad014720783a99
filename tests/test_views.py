"""softmax_exp.tracking.views: the MLflow UI's saved views, as the UI reads them, never over a user's."""

from __future__ import annotations

import json

from softmax_exp import ui
from softmax_exp.tracking import get_client, get_or_create_experiment, views


def test_a_new_experiment_gets_its_kind_and_the_runs_view(store):
    client = get_client(f"sqlite:///{store}")
    exp_id = get_or_create_experiment(client, "views-new")
    experiment = client.get_experiment(exp_id)
    assert experiment.tags[views.EXPERIMENT_KIND_TAG] == "custom_model_development"
    envelope = json.loads(experiment.tags["mlflow.sharedViewState.softmax-exp-runs"])
    assert envelope["name"] == "softmax_exp: runs by val_acc"
    assert envelope["createdAt"] == envelope["updatedAt"]
    assert json.loads(envelope["state"]) == views.view_state(views.columns())
    assert ui.runs_link(store).endswith(
        f"/#/experiments/{exp_id}/runs?workflowType=machine_learning&viewStateShareKey=softmax-exp-runs")


def test_a_kind_the_user_set_is_kept(store):
    client = get_client(f"sqlite:///{store}")
    exp_id = client.create_experiment("views-kind", tags={views.EXPERIMENT_KIND_TAG: "classification"})
    get_or_create_experiment(client, "views-kind")
    assert client.get_experiment(exp_id).tags[views.EXPERIMENT_KIND_TAG] == "classification"


def test_the_projects_view_follows_the_latest_sweep_but_never_a_view_the_user_saved(store):
    client = get_client(f"sqlite:///{store}")
    exp_id = get_or_create_experiment(client, "views-user")
    key = views.EXPERIMENT_VIEW
    cols = views.columns(["lr", "reg", "optimizer", "optimizer.momentum"])
    assert cols[-2:] == ["params.`optimizer.name`", "params.`optimizer.momentum`"]
    assert views.save_view(client, exp_id, key, "x", views.view_state(cols))
    assert views.read_view(client.get_experiment(exp_id), key)["selectedColumns"] == cols
    # the user saves over it in the UI (Views -> Overwrite view): a new updatedAt, their state
    tag = views.view_tag(key)
    envelope = json.loads(client.get_experiment(exp_id).tags[tag])
    mine = {"searchFilter": "", "orderByKey": "attributes.start_time", "selectedColumns": ["params.`lr`"]}
    envelope.update(updatedAt=envelope["updatedAt"] + 5, state=json.dumps(mine))
    client.set_experiment_tag(exp_id, tag, json.dumps(envelope))
    assert views.save_view(client, exp_id, key, "x", views.view_state(views.columns(["seed"])))
    assert views.read_view(client.get_experiment(exp_id), key) == mine
    # and a view under another key is the user's too: never written
    client.set_experiment_tag(exp_id, views.view_tag("theirs"), json.dumps(envelope))
    assert views.save_view(client, exp_id, "theirs", "x", views.view_state(cols))
    assert views.read_view(client.get_experiment(exp_id), "theirs") == mine
