"""The config's schema: :class:`Config`, one training (or every job of a sweep).

Each group's schema lives beside the code that uses it, and is composed here: the top-level training
options are :class:`~softmax_exp.learn.hyperparameters.TrainParams` (Config extends it), ``model`` is
:class:`~softmax_exp.learn.model.ModelParams`, ``optimizer`` :mod:`softmax_exp.learn.optim`'s settings,
``dataset`` :mod:`softmax_exp.data.settings`' and ``tracking``
:class:`~softmax_exp.tracking.settings.TrackingConfig`. Every option is declared once there, with its type,
default, constraint and meaning (:func:`softmax_exp.util.constraints.option`); Hydra rejects a value of
the wrong type or a key that is not an option, and each dataclass checks its constraints once, when
:func:`softmax_exp.config.compose.to_config` makes it. The rest of the package takes a Config, never a
DictConfig.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from omegaconf import MISSING

from softmax_exp.data.settings import DatasetConfig
from softmax_exp.features.settings import FeatureParams
from softmax_exp.learn.hyperparameters import TrainParams
from softmax_exp.learn.model import ModelParams
from softmax_exp.learn.optim import SGDParams
from softmax_exp.tracking.settings import TrackingConfig
from softmax_exp.util.constraints import Boolean, Integer, OneOf, Real, option

# keys that cannot change what a training computes: not a run's params, fingerprint or name
NON_RESULT_KEYS = ("hydra", "progress", "num_threads", "resume", "checkpoint_every", "checkpoint_min_seconds",
                   "tracking", "dataset.cache", "dataset.cache_dir")


# the nodes of Config that are config groups (an override ``model=svm`` chooses one)
GROUP_KEYS = ("dataset", "features", "model", "optimizer", "tracking")


def is_result_key(key: str) -> bool:
    """Whether the config key ``key`` (dotted, or a group path like ``hydra/launcher``) can change a
    training's result (see NON_RESULT_KEYS)."""
    key = key.replace("/", ".")
    return not any(key == k or key.startswith(k + ".") for k in NON_RESULT_KEYS)


def kernel_names() -> list[str]:
    from softmax_exp.kernels import KERNELS  # numba, 0.2 s: not for `data download` or `ui`

    return list(KERNELS)


@dataclass
class Config(TrainParams):
    """One training (or every job of a sweep): the hyperparameters of TrainParams at the top, one node per
    group, and how the job runs."""

    RULES = ((lambda c: c.optimizer.schedule != "cosine" or c.optimizer.min_lr <= c.lr,
              "optimizer.min_lr must be in [0, lr = {obj.lr}]; got {obj.optimizer.min_lr!r}"),)

    dataset: DatasetConfig = option(MISSING, None, "dataset=digits | cifar10 | imagefolder")
    features: FeatureParams = option(default_factory=FeatureParams, help="features=pixels | hog_color")
    model: ModelParams = option(default_factory=ModelParams, help="model=softmax | svm")
    optimizer: SGDParams = option(MISSING, None, "optimizer=sgd | momentum")
    tracking: TrackingConfig = option(default_factory=TrackingConfig, help="tracking=mlflow")
    kernel: str = option("numba_fused", OneOf(kernel_names), "naive | vectorized | numba_naive | numba_fused")
    eval_test: bool = option(False, Boolean(), "also report test_acc at the end")
    num_threads: int | None = option(None, Integer(low=1, nullable=True),
                                     "Numba threads; null: all cores, cores // n_jobs (joblib), "
                                     "cpus_per_task (submitit)")
    progress: bool | None = option(None, Boolean(nullable=True), "tqdm bar; null: on a terminal, not in CI")
    resume: bool = option(True, Boolean(),
                          "reuse / go on with earlier runs of the same config (docs/scale-out.md)")
    checkpoint_every: int = option(1000, Integer(low=0, note="0: no checkpoints"),
                                   "W and the optimizer state to the run every this many iterations "
                                   "(0: never)")
    checkpoint_min_seconds: float = option(10.0, Real(low=0),
                                           "but not sooner than this after the start or the last one")


def as_dict(cfg: Config) -> dict[str, Any]:
    """The config as nested plain dicts (JSON-able), e.g. for params, fingerprints or YAML."""
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Config) -> str:
    """The config as YAML, loadable again with ``to_config(yaml.safe_load(text))``."""
    return yaml.safe_dump(as_dict(cfg), sort_keys=False)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to one level with dotted keys: ``{"a": {"b": 1}} -> {"a.b": 1}``. Lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
