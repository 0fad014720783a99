"""The fingerprints by which a rerun finds its earlier runs, pinned: a change to the code's structure, the
schema's layout included, must leave them as they were, or every sweep and checkpoint made before it is
lost to resume. Recorded at commit 8ca2509. (A change that means to change what a run computes changes
them, and says so.) The SVM added the param model.name; at "softmax" it is left out of the fingerprints
(config.fingerprints.ADDED_KEYS), so they stayed as they were; so did features.name at "pixels"."""

from __future__ import annotations

import dataclasses

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from softmax_exp.config import compose, to_config
from softmax_exp.config.fingerprints import config_fingerprint, result_config
from softmax_exp.sweep import callback
from softmax_exp.util.paths import CONFIG_DIR

CONFIGS = {
    (): "c453dae8fb4eeb7dc7ba55808050f94dc87208417753c9670798cd3c6d9ec648",
    ("dataset=cifar10", "optimizer=momentum", "optimizer.nesterov=true", "optimizer.schedule=cosine",
     "lr=1e-6", "reg=300", "dataset.hflip=true"):
        "0959dc8d5a6bec76b013a6567e452a253e5c579b04d932a4a3fe43cee2e01a72",
    ("dataset=imagefolder", "dataset.root=/data/x", "dataset.image_size=[16,16]", "model.replace=false",
     "eval_train_rows=null"): "45c2a733583dcd9813268a05309c59d1a672622bd3461111266b8d2bbd5caa11",
}
SWEEPS = {
    ("lr=1e-3,1e-2", "reg=0.1,1"): "53454a9472ecb57756bc479a63c8831c3c67dc5b3f72cae6abe1e4853a149b5a",
    ("+experiment=cs231n_grid",): "75fd45f6835a52966adfe3e6cb2211e246cf27a3dfa831f98e973d2b8df9512f",
    ("hydra/sweeper=optuna_lr_reg", "hydra.sweeper.pruner=median",
     "+hydra.sweeper.pruner_args={n_startup_trials:3}"):
        "b20b6abcca948f2e679f4d26c15fd04a354e7a053a92e1734ea38238d7be5b90",
}
PARAMS = ["batch_size", "dataset.bias_trick", "dataset.dtype", "dataset.hflip", "dataset.name",
          "dataset.num_dev", "dataset.num_test", "dataset.num_training", "dataset.num_validation",
          "dataset.split_seed", "dataset.subtract_mean", "eval_every", "eval_test", "eval_train_rows",
          "features.name",
          "kernel", "lr", "model.init_scale", "model.name", "model.replace", "num_iters", "optimizer.gamma",
          "optimizer.min_lr", "optimizer.name", "optimizer.schedule", "optimizer.step_size", "reg", "seed"]


@pytest.mark.parametrize("overrides", list(CONFIGS))
def test_a_config_s_fingerprint_is_the_one_its_runs_carry(overrides):
    assert config_fingerprint(to_config(compose(list(overrides)))) == CONFIGS[overrides]


def test_a_run_s_params_are_the_same_keys():
    assert sorted(result_config(to_config(compose([])))) == PARAMS


def test_another_model_is_another_fingerprint_and_a_logged_config_without_model_name_is_the_softmax():
    softmax = to_config(compose([]))
    svm = to_config(compose(["model=svm"]))
    assert svm.model.name == "svm" and result_config(svm)["model.name"] == "svm"
    assert config_fingerprint(svm) != config_fingerprint(softmax) == CONFIGS[()]
    logged = dataclasses.asdict(softmax)
    del logged["model"]["name"]  # a config.yaml logged before the SVM
    assert config_fingerprint(to_config(logged)) == CONFIGS[()]
    assert to_config(logged).model.name == "softmax"


@pytest.mark.parametrize("overrides", list(SWEEPS))
def test_a_sweep_s_fingerprint_is_the_one_its_parent_carries(overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        config = GlobalHydra.instance().hydra.compose_config(  # as `-m` composes it
            "config", list(overrides), run_mode=RunMode.MULTIRUN, with_log_configuration=False)
    assert callback.fingerprint(config, to_config(config)) == SWEEPS[overrides]
