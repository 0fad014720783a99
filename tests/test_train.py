"""One training from a composed config: what reaches MLflow, the checks before work, failures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from train_helpers import FAST, client_for, compose_cfg, fresh_store, run_cli

import softmax_exp.data
from softmax_exp import tracking
from softmax_exp.model import Softmax
from softmax_exp.plots import weights_png_size
from softmax_exp.train import ConfigError, JobContext, TrainingDiverged, fit, run


def test_digits_run_logs_params_metrics_tags_artifacts(tmp_path, tmp_path_factory):
    store = fresh_store(tmp_path, tmp_path_factory)
    cfg = compose_cfg(store, "eval_test=true")
    val_acc = run(cfg, overrides=["lr=1e-2", "reg=0.01"])
    assert val_acc > 0.9
    client = client_for(store)
    (r,) = client.search_runs([client.get_experiment_by_name("digits").experiment_id])
    assert r.info.status == "FINISHED" and r.info.run_name == "lr=0.01,reg=0.01"
    p = r.data.params
    assert (p["lr"], p["reg"], p["num_iters"], p["kernel"]) == ("0.01", "0.01", "200", "numba_fused")
    assert p["dataset.name"] == "digits" and p["optimizer.name"] == "sgd"
    assert p["model.replace"] == "True" and p["tracking.uri"] == f"sqlite:///{store}"
    assert (p["n_train"], p["n_val"], p["n_test"], p["dim"], p["num_classes"]) == (
        "1297", "250", "250", "65", "10")
    loss = client.get_metric_history(r.info.run_id, "loss")
    assert sorted(m.step for m in loss) == list(range(200))
    val = sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, "val_acc"))
    assert [s for s, _ in val] == [50, 100, 150, 200] and val[-1][1] == val_acc
    assert [m.step for m in client.get_metric_history(r.info.run_id, "train_acc")] != []
    assert 0.8 < r.data.metrics["test_acc"] <= 1.0
    t = r.data.tags
    assert t["kernel"] == "numba_fused" and int(t["numba_threads"]) >= 1 and t["seed"] == "0"
    assert len(t["dataset_fingerprint"]) == 64 and t["git_dirty"] in ("true", "false", "unknown")
    assert {"git_commit", "numpy_version", "numba_version", "mlflow_version"} <= set(t)

    names = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert names == {"weights.png", "loss.png", "config.yaml", "overrides.yaml", "model.npz"}
    local = client.download_artifacts(r.info.run_id, "", str(tmp_path / "dl"))
    with Image.open(f"{local}/weights.png") as im:
        assert im.size == weights_png_size((8, 8, 1), 10)
    with Image.open(io.BytesIO(open(f"{local}/loss.png", "rb").read())) as im:
        assert im.size == (640, 400)
    model = Softmax.load(f"{local}/model.npz")
    data = softmax_exp.data.load_dataset(cfg.dataset)
    assert model.accuracy(data.X_val, data.y_val) == val_acc
    assert model.preprocessing.class_names == data.class_names
    np.testing.assert_array_equal(model.preprocessing.mean_image, data.mean_image)


BAD = [
    ("lr=0", "lr must be a finite number > 0"),
    ("lr=-1e-3", "lr must be"),
    ("reg=-1", "reg must be a finite number >= 0"),
    ("num_iters=0", "num_iters must be an integer >= 1"),
    ("batch_size=0", "batch_size must be an integer >= 1"),
    ("kernel=turbo", "unknown kernel 'turbo'; choose one of: naive, vectorized"),
    ("optimizer.name=adam", "unknown optimizer 'adam'"),
    ("optimizer.schedule=linear", "unknown optimizer.schedule 'linear'"),
    ("eval_every=-1", "eval_every must be an integer >= 0"),
]


@pytest.mark.parametrize("override, message", BAD)
def test_bad_config_fails_before_loading_data(override, message, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded")

    monkeypatch.setattr(softmax_exp.data, "load_dataset", no_data)
    with pytest.raises(ConfigError, match=message):
        fit(compose_cfg(None, override))


def test_batch_larger_than_training_set_without_replacement():
    with pytest.raises(ConfigError, match=r"batch_size=2000 is larger than the training set \(1297"):
        fit(compose_cfg(None, "batch_size=2000", "model.replace=false"))
    assert fit(compose_cfg(None, "batch_size=2000", "num_iters=2")).status == "FINISHED"


def test_cli_reports_a_bad_value_in_one_line(tmp_path):
    proc = run_cli(tmp_path, "lr=-1", "tracking.enabled=false", f"hydra.run.dir={tmp_path}/out")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: lr must be a finite number > 0; got -1"]


def test_divergence_ends_the_run_failed_with_the_reason(tmp_path, tmp_path_factory):
    store = fresh_store(tmp_path, tmp_path_factory)
    with pytest.raises(TrainingDiverged, match="loss became inf at iteration"):
        run(compose_cfg(store, "lr=1e6"))
    client = client_for(store)
    (r,) = client.search_runs([client.get_experiment_by_name("digits").experiment_id])
    assert r.info.status == "FAILED"
    assert r.data.tags[tracking.FAILURE_TAG].startswith("loss became inf at iteration")
    steps = [m.step for m in client.get_metric_history(r.info.run_id, "loss")]
    assert 1 <= len(steps) < 200 and "val_acc" not in r.data.metrics


@pytest.mark.parametrize("error, status", [(RuntimeError("disk full"), "FAILED"),
                                           (KeyboardInterrupt(), "KILLED")])
def test_an_exception_never_leaves_the_run_running(error, status, tmp_path, tmp_path_factory,
                                                   monkeypatch):
    store = fresh_store(tmp_path, tmp_path_factory)

    def explode(*args, **kwargs):
        raise error

    monkeypatch.setattr(Softmax, "_evaluate", explode)
    with pytest.raises(type(error)):
        fit(compose_cfg(store), JobContext(run_name="boom"))
    client = client_for(store)
    (r,) = client.search_runs([client.get_experiment_by_name("digits").experiment_id])
    assert r.info.status == status and r.info.end_time is not None


def test_same_config_same_bits():
    """Same config and seed, same kernel and thread count: identical loss history and W."""
    outcomes = [fit(compose_cfg(None, "optimizer=momentum", "optimizer.nesterov=true",
                                "num_threads=2", *FAST)) for _ in range(2)]
    (a, b) = outcomes
    assert np.array_equal(a.history.loss, b.history.loss) and len(a.history.loss) == 200
    assert np.array_equal(a.model.W, b.model.W) and a.metrics == b.metrics
    c = fit(compose_cfg(None, "seed=1"))
    assert not np.array_equal(c.model.W, a.model.W)


def _hydra_cfg(*overrides: str):
    from hydra import compose, initialize_config_dir

    from softmax_exp.train import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_primary_config_keys_and_defaults():
    cfg = _hydra_cfg()
    for key in ("lr", "reg", "num_iters", "batch_size", "seed", "kernel", "eval_every"):
        assert key in cfg
    assert cfg.dataset.name == "digits" and cfg.kernel == "numba_fused"
    assert (cfg.model.name, cfg.optimizer.name, cfg.tracking.enabled) == ("softmax", "sgd", True)
    assert cfg.hydra.callbacks.sweep._target_ == "softmax_exp.callbacks.SweepCallback"
    momentum = _hydra_cfg("optimizer=momentum").optimizer
    assert (momentum.name, momentum.momentum, momentum.nesterov, momentum.schedule) == (
        "momentum", 0.9, False, "none")


def test_experiment_launcher_and_sweeper_configs():
    grid = _hydra_cfg("+experiment=cs231n_grid")
    assert grid.dataset.name == "cifar10" and grid.num_iters == 700 and grid.batch_size == 200
    assert str(grid.hydra.mode) == "RunMode.MULTIRUN"
    assert dict(grid.hydra.sweeper.params) == {"lr": "5e-6,1e-7,5e-7", "reg": "1e4,5e4,1e5"}
    assert _hydra_cfg("+experiment=cs231n_grid", "dataset=digits").dataset.name == "digits"
    assert _hydra_cfg("hydra/launcher=joblib_2w").hydra.launcher.n_jobs == 2
    optuna = _hydra_cfg("hydra/sweeper=optuna_lr_reg").hydra.sweeper
    assert optuna.direction == "maximize" and optuna.storage is None
    assert optuna.params.lr.startswith("tag(log") and optuna.params.reg.startswith("tag(log")


def test_cli_single_run_prints_accuracies_and_where_the_run_is(tmp_path, tmp_path_factory):
    """What `make train` shows: train / val accuracy, then the run's place in the store."""
    store = fresh_store(tmp_path, tmp_path_factory)
    proc = run_cli(tmp_path, *FAST, f"tracking.uri=sqlite:///{store}")
    assert proc.returncode == 0, proc.stderr
    acc_line, run_line = proc.stdout.strip().splitlines()[-2:]
    words = acc_line.split()
    assert words[:2] == ["train", "accuracy:"] and words[3:5] == ["val", "accuracy:"]
    assert 0.9 < float(words[5]) <= 1.0
    client = client_for(store)
    (r,) = client.search_runs([client.get_experiment_by_name("digits").experiment_id])
    assert r.info.status == "FINISHED"
    assert r.info.run_id in run_line and str(store) in run_line and "make ui" in run_line
    assert r.data.metrics["val_acc"] == float(words[5])
