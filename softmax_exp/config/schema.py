"""The typed configuration: the schema of ``conf/``, its range checks, and a checked :class:`Config`.

The dataclasses below are registered in Hydra's ConfigStore; ``conf/config.yaml`` and every group file
extend one of them (``defaults: [base_config]``, ``[base_digits]``, ...). So every option's type, default
and meaning (the comment beside it) live here once, and Hydra itself rejects a value of the wrong type
(``lr=abc``, ``num_iters=1.5``, ``eval_test=maybe``) or a key that is not an option, naming the key.

What a type cannot say (``lr > 0``, ``reg >= 0``, a kernel that exists, ...) is checked by each
dataclass's ``__post_init__``, which :func:`to_config` runs when it turns Hydra's DictConfig into a
:class:`Config` object: a bad value is one :class:`ConfigError` line naming the key, the value and the
fix, raised before any data is loaded. The rest of the package takes a :class:`Config`, never a DictConfig.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from softmax_exp.learn.hyperparameters import TrainParams, check_hyperparameters
from softmax_exp.learn.optim import SCHEDULES, make_optimizer, make_schedule
from softmax_exp.util.paths import CONFIG_DIR, project_root

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
DTYPES = ("float32", "float64")
STORE_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")
IMAGE_MODES = ("RGB", "L")
MAX_EXPERIMENT_NAME = 500  # MLflow's limit (mlflow.utils.validation.MAX_EXPERIMENT_NAME_LENGTH)
MAX_MODEL_NAME = 256  # the registry's name column (registered_models.name, VARCHAR(256))
MAX_PATH = 4096  # Linux's PATH_MAX


# keys that cannot change what a training computes: not a run's params, fingerprint or name
NON_RESULT_KEYS = ("hydra", "progress", "num_threads", "resume", "checkpoint_every", "checkpoint_min_seconds",
                   "tracking",
                   "dataset.cache", "dataset.cache_dir")


def is_result_key(key: str) -> bool:
    """Whether the config key ``key`` (dotted, or a group path like ``hydra/launcher``) can change a
    training's result (see NON_RESULT_KEYS)."""
    key = key.replace("/", ".")
    return not any(key == k or key.startswith(k + ".") for k in NON_RESULT_KEYS)


class ConfigError(ValueError):
    """A configuration value is invalid; raised before any data is loaded. The message is one line."""


# ------------------------------------------------------------------------------------------- dataset


@dataclass
class DatasetConfig:
    """What every dataset has (``softmax_exp/data/``): the preprocessing, the split sizes, the cache."""

    name: str = MISSING
    dtype: str = "float32"  # float32 | float64
    subtract_mean: bool = True  # subtract the training mean image (computed in float64) from every split
    bias_trick: bool = True  # append a column of ones: D = H*W*channels + 1
    hflip: bool = False  # also train on a left-right mirror of every training image (val/test untouched)
    num_training: int | None = None  # split sizes (rows); null: all that remain (image folders only)
    num_validation: int | None = None
    num_test: int | None = None
    num_dev: int = 0  # a seeded sample of training rows
    split_seed: int = 0  # splits do not follow the training seed: a seed sweep shares one cache entry
    cache: bool = True  # build the arrays once into cache_dir and memory-map them afterwards
    cache_dir: str | None = None  # null: $SOFTMAX_EXP_CACHE, else <project root>/.cache/softmax_exp

    def __post_init__(self) -> None:
        if self.name != next((n for n, c in DATASETS.items() if c is type(self)), self.name):
            raise ConfigError(f"dataset.name is set by the dataset group, not by hand; got {self.name!r}: "
                              f"choose dataset={' | dataset='.join(DATASETS)}")
        _choice("dataset.dtype", self.dtype, DTYPES)
        nullable = self._nullable_sizes()
        for key in ("num_training", "num_validation", "num_test", "num_dev"):
            value = getattr(self, key)
            if value is None and key in nullable:
                continue
            if value is None or value < 0:
                allowed = "an integer >= 0" + (" or null" if key in nullable else "")
                raise ConfigError(f"dataset.{key} must be {allowed}; got {_show(value)}")
        if self.num_training == 0:
            raise ConfigError("dataset.num_training must be at least 1; got 0")
        if self.split_seed < 0:
            raise ConfigError(f"dataset.split_seed must be an integer >= 0; got {self.split_seed}")
        _path("dataset.cache_dir", self.cache_dir, nullable=True)

    def _nullable_sizes(self) -> tuple[str, ...]:
        return ()


@dataclass
class DigitsConfig(DatasetConfig):
    """scikit-learn's 8x8 handwritten digits: 1797 gray images, 10 classes, offline. No official test
    split: the images are shuffled with split_seed, then cut train | val | test."""

    name: str = "digits"
    num_training: int | None = 1297
    num_validation: int | None = 250
    num_test: int | None = 250
    num_dev: int = 100
    cache: bool = False  # 1797 tiny images: computing them is faster than a cache lookup


@dataclass
class Cifar10Config(DatasetConfig):
    """CIFAR-10, python version, preprocessed as in CS231n assignment 1 (get it with
    ``python -m softmax_exp.data download cifar10 --root DIR``)."""

    name: str = "cifar10"
    root: str | None = None  # holds cifar-10-batches-py/ or the archive; null: <project root>/data/cifar10
    url: str = CIFAR10_URL
    md5: str | None = CIFAR10_MD5  # checked before extracting the archive; null skips
    num_training: int | None = 49000  # first rows of the 50000 training images
    num_validation: int | None = 1000  # the training rows right after
    num_test: int | None = 1000  # first rows of test_batch
    num_dev: int = 500

    def __post_init__(self) -> None:
        super().__post_init__()
        _path("dataset.root", self.root, nullable=True)
        _non_empty("dataset.url", self.url)
        if self.md5 is not None and not re.fullmatch("[0-9a-fA-F]{32}", self.md5):
            raise ConfigError(f"dataset.md5 must be a 32-character hex digest or null; got {self.md5!r}")


@dataclass
class ImageFolderConfig(DatasetConfig):
    """Your own images: root/train/<class>/*.png|jpg|jpeg and root/test/<class>/*; root/val/<class>/ is
    used if present, else num_validation images are carved out of train/."""

    name: str = "imagefolder"
    root: str = MISSING  # required: dataset.root=DIR (relative paths: against the launch dir)
    mode: str = "RGB"  # RGB | L (gray)
    image_size: list[int] | None = None  # null: all images must match the first; [H, W]: resize all
    num_training: int | None = None  # null: every training image not carved out for validation
    num_validation: int | None = 100
    num_test: int | None = None  # null: every test image
    num_dev: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        _path("dataset.root", self.root)
        _choice("dataset.mode", self.mode, IMAGE_MODES)
        size = self.image_size
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise ConfigError(f"dataset.image_size must be null or [H, W] with positive ints; got "
                              f"{list(size)}")

    def _nullable_sizes(self) -> tuple[str, ...]:
        return ("num_training", "num_validation", "num_test")


DATASETS: dict[str, type[DatasetConfig]] = {"digits": DigitsConfig, "cifar10": Cifar10Config,
                                             "imagefolder": ImageFolderConfig}

# ------------------------------------------------------------------------------------ model, optimizer


@dataclass
class ModelConfig:
    """The softmax classifier (softmax_exp/model.py): scores = X @ W, W of shape (D, C)."""

    init_scale: float = 0.001  # W starts as init_scale * randn(D, C), drawn from the seed
    replace: bool = True  # minibatch rows drawn with replacement (the course's choice); false: without

    def __post_init__(self) -> None:
        if not (math.isfinite(self.init_scale) and self.init_scale > 0):
            raise ConfigError(f"model.init_scale must be a number > 0; got {self.init_scale!r}")


@dataclass
class SGDConfig:
    """Plain SGD, the course's update: W -= lr_t * dW (softmax_exp/optim.py)."""

    name: str = "sgd"  # set by the group: optimizer=sgd | momentum
    schedule: str = "none"  # none | step | cosine: lr_t over the iterations t
    step_size: int = 100  # step: lr_t = lr * gamma ** (t // step_size)
    gamma: float = 0.5
    min_lr: float = 0.0  # cosine: lr_t goes from lr down to min_lr at the last iteration

    def __post_init__(self) -> None:
        if self.name != _group_name(type(self)):
            raise ConfigError(f"optimizer.name is set by the optimizer group, not by hand; got "
                              f"{self.name!r}: choose optimizer=sgd or optimizer=momentum")
        _choice("optimizer.schedule", self.schedule, SCHEDULES)
        _checked(self.build)

    def build(self):
        """The optimizer object (softmax_exp.learn.optim) this config describes."""
        return make_optimizer(self.name)


@dataclass
class MomentumConfig(SGDConfig):
    """SGD with momentum: v = momentum * v + dW; W -= lr_t * v (Nesterov: W -= lr_t * (dW + momentum * v))."""

    name: str = "momentum"
    momentum: float = 0.9  # in [0, 1)
    nesterov: bool = False

    def build(self):
        return make_optimizer(self.name, self.momentum, self.nesterov)


OPTIMIZERS: dict[str, type[SGDConfig]] = {"sgd": SGDConfig, "momentum": MomentumConfig}

# ------------------------------------------------------------------------------------------- tracking


@dataclass
class TrackingConfig:
    """MLflow tracking (softmax_exp/tracking/). A relative sqlite path is made absolute against the
    launch directory, so Hydra's job directories and joblib workers all write to one store."""

    enabled: bool = True  # false: no MLflow at all (not even imported)
    uri: str = "sqlite:///${project_root:}/mlflow.db"  # `make ui` serves this store
    experiment: str = "${dataset.name}"  # the MLflow experiment; by default the dataset's name
    artifact_root: str | None = None  # null: <folder of the sqlite file>/mlartifacts/<experiment>
    stale_after_min: float = 60.0  # a RUNNING run of another host with no heartbeat this long is dead
    register_model: str | None = "softmax-${.experiment}"  # a sweep registers its best model so; null: not
    log_every: int = 50  # the loss metric: the mean of every this many iterations (loss.npy has them all)

    def __post_init__(self) -> None:
        _non_empty("tracking.uri", self.uri)
        if self.uri.startswith("file:") or "://" not in self.uri and not self.uri.startswith("databricks"):
            raise ConfigError(f"tracking.uri {self.uri!r} names a folder store, which MLflow 3 no longer "
                              f"develops; use a SQLite file, tracking.uri=sqlite:///PATH/mlflow.db, or a "
                              f"server, tracking.uri=http://HOST:PORT")
        scheme = self.uri.split("://", 1)[0].split("+", 1)[0]
        if "://" in self.uri and scheme not in STORE_SCHEMES:
            raise ConfigError(f"tracking.uri {self.uri!r}: unknown store scheme {scheme!r}; use "
                              f"sqlite:///PATH/mlflow.db, http(s)://HOST:PORT or a database URI "
                              f"({', '.join(STORE_SCHEMES[3:])})")
        _name("tracking.experiment", self.experiment, MAX_EXPERIMENT_NAME)
        _path("tracking.artifact_root", self.artifact_root, nullable=True)
        _non_empty("tracking.register_model", self.register_model, nullable=True)
        if self.register_model is not None:
            _name("tracking.register_model", self.register_model, MAX_MODEL_NAME, forbidden="/\\:")
        if self.log_every < 1:
            raise ConfigError(f"tracking.log_every must be an integer >= 1; got {self.log_every}")
        if not (math.isfinite(self.stale_after_min) and self.stale_after_min > 0):
            raise ConfigError(f"tracking.stale_after_min must be a number > 0; got {self.stale_after_min}")


# ------------------------------------------------------------------------------------------- the whole


@dataclass
class Config:
    """One training (or every job of a sweep): the options at the top and one node per group."""

    dataset: DatasetConfig = MISSING  # dataset=digits | cifar10 | imagefolder
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: SGDConfig = MISSING  # optimizer=sgd | momentum
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    lr: float = 3e-3  # learning rate (> 0); the schedule in optimizer/ may lower it over time
    reg: float = 1e-2  # L2 strength (>= 0): loss = mean(-log p_y) + 0.5 * reg * sum(W * W)
    num_iters: int = 500  # SGD iterations (>= 1)
    batch_size: int = 200  # rows per minibatch (>= 1)
    seed: int = 0  # seeds W = init_scale * randn(D, C) and the minibatch draws
    kernel: str = "numba_fused"  # naive | vectorized | numba_naive | numba_fused
    eval_every: int = 100  # train_acc / val_acc every this many iterations (0: only at the end)
    eval_train_rows: int | None = 5000  # train_acc before the end: on a fixed sample this big (null: all)
    eval_test: bool = False  # also report test_acc at the end
    num_threads: int | None = None  # Numba threads; null: all cores, cores // n_jobs (joblib), cpus_per_task
    progress: bool | None = None  # tqdm bar; null: on a terminal, not in CI
    resume: bool = True  # reuse / go on with earlier runs of the same config (README "Running at scale")
    checkpoint_every: int = 1000  # W and the optimizer state to the run every this many iterations (0: never)
    checkpoint_min_seconds: float = 10.0  # but not sooner than this after the start or the last one

    def __post_init__(self) -> None:
        from softmax_exp.kernels import KERNELS  # numba, 0.2 s: not for `data download` or `ui`

        _checked(check_hyperparameters, self.lr, self.reg, self.num_iters, self.batch_size,
                 self.model.replace, self.eval_every)
        _choice("kernel", self.kernel, KERNELS)
        if self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0; got {self.seed}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"num_threads must be null or an integer >= 1; got {self.num_threads}")
        if self.eval_train_rows is not None and self.eval_train_rows < 1:
            raise ConfigError(f"eval_train_rows must be null or an integer >= 1; got {self.eval_train_rows}")
        if not (math.isfinite(self.checkpoint_min_seconds) and self.checkpoint_min_seconds >= 0):
            raise ConfigError(f"checkpoint_min_seconds must be a number >= 0; got "
                              f"{self.checkpoint_min_seconds}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be an integer >= 0 (0: no checkpoints); got "
                              f"{self.checkpoint_every}")
        _checked(self.build_schedule)

    def train_params(self) -> TrainParams:
        """The hyperparameters of the training this config describes."""
        return TrainParams(lr=self.lr, reg=self.reg, num_iters=self.num_iters, batch_size=self.batch_size,
                           seed=self.seed, replace=self.model.replace, init_scale=self.model.init_scale,
                           eval_every=self.eval_every, eval_train_rows=self.eval_train_rows)

    def build_schedule(self):
        """The learning-rate schedule (iteration -> rate) of the optimizer's settings."""
        opt = self.optimizer
        return make_schedule(opt.schedule, self.lr, self.num_iters, opt.step_size, opt.gamma, opt.min_lr)


def register() -> None:
    """Put the schemas into Hydra's ConfigStore and register ``${project_root:}`` (idempotent)."""
    OmegaConf.register_new_resolver("project_root", lambda: str(project_root()), replace=True)
    cs = ConfigStore.instance()
    cs.store(group="schema", name="config", node=Config)
    for group, schemas in (("dataset", DATASETS), ("optimizer", OPTIMIZERS),
                           ("model", {"softmax": ModelConfig}), ("tracking", {"mlflow": TrackingConfig})):
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


def compose(overrides: Sequence[str] = (), return_hydra_config: bool = False):
    """The project's config (conf/config.yaml) with Hydra ``overrides``, as a DictConfig, without a Hydra
    app running (scripts, the benchmark, tests). :func:`to_config` makes it a checked Config."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=return_hydra_config)


def to_config(cfg: Any) -> Config:
    """A checked :class:`Config` from Hydra's composed config (its ``hydra`` node, if any, is left out), or
    from a plain mapping shaped like one (a logged ``config.yaml``). Interpolations are resolved.

    Raises ConfigError (one line) for a key that is not an option, a value of the wrong type, a
    required value left out, or a value out of range.
    """
    try:
        if isinstance(cfg, DictConfig):
            node = cfg.copy()  # keeps the schema's type, which masked_copy would drop
            if "hydra" in node:
                with open_dict(node):
                    del node["hydra"]
        else:
            node = OmegaConf.merge(_schema_for(cfg), cfg)
        unknown = _unknown_keys(node)
        if unknown:
            key, options = unknown[0]
            raise ConfigError(f"unknown option {key}; the options there are: {', '.join(options)}")
        return OmegaConf.to_object(node)
    except MissingMandatoryValue as e:
        raise ConfigError(f"{e.full_key} is required; set it, e.g. {e.full_key}=...") from None
    except OmegaConfBaseException as e:
        raise ConfigError(one_line(e)) from None


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


def one_line(error: BaseException) -> str:
    """A Hydra / OmegaConf error, or an OSError of an output folder, as one line that says what to fix."""
    if isinstance(error, OSError) and error.filename:
        return (f"{error.strerror}: {error.filename}; make it a writable folder with free space, or write "
                f"the outputs elsewhere with hydra.run.dir=DIR (a sweep: hydra.sweep.dir=DIR)")
    message = _first_part(error)
    override = getattr(error, "override", None)  # hydra.errors.OverrideParseException
    if override:
        return f"cannot parse the override {override!r}: {message}"
    cause = error.__cause__
    key = getattr(cause, "full_key", None) or getattr(error, "full_key", None)
    if cause is not None and key and "not in" in str(cause).split("\n")[0]:
        return f"unknown option {key}; `python -m softmax_exp.train --help` lists the options"
    if cause is not None and key:
        return f"{key}: {_first_part(cause)}"
    if key and message.split()[:1] != [key]:
        return f"{key}: {message}"
    return message


# ------------------------------------------------------------------------------------------- helpers


def _group_name(cls: type) -> str:
    return next(name for name, c in OPTIMIZERS.items() if c is cls)


def _schema_for(values: Mapping[str, Any]):
    """The structured schema of a plain config mapping: Config with the dataset and optimizer schemas its
    ``name`` keys choose."""
    schema = OmegaConf.structured(Config)
    for key, choices in (("dataset", DATASETS), ("optimizer", OPTIMIZERS)):
        name = (values.get(key) or {}).get("name")
        if name not in choices:
            raise ConfigError(f"{key}.name must be one of {', '.join(choices)}; got {name!r}")
        schema[key] = OmegaConf.structured(choices[name])
    return schema


def _unknown_keys(node, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Keys of a DictConfig that its schema does not have (an override ``+key=...`` adds them), with the
    schema's own keys; the schema drops them silently otherwise."""
    cls = OmegaConf.get_type(node)
    names = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else None
    found = []
    for key, value in node.items_ex(resolve=False):
        full = f"{prefix}{key}"
        if names is not None and key not in names:
            found.append((full, names))
        elif isinstance(value, DictConfig):
            found += _unknown_keys(value, full + ".")
    return found


def _first_part(error: BaseException) -> str:
    # Hydra's messages span lines and end with the config search path; OmegaConf's add key / type lines
    text = str(error).split("Config search path")[0]
    lines = [line for line in text.splitlines() if not line.strip().startswith(("full_key:", "object_type=",
                                                                                "reference_type="))]
    return " ".join(" ".join(lines).split())


def _choice(key: str, value: str, choices) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {key} {value!r}; choose one of: {', '.join(choices)}")


def _non_empty(key: str, value: str | None, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not value:
        raise ConfigError(f"{key} must be a non-empty string{' or null' if nullable else ''}; got {value!r}")


def _name(key: str, value: str, max_chars: int, forbidden: str = "/\\") -> None:
    """A name that also becomes part of a path (an experiment's artifact folder) or a URI: printable, at
    most ``max_chars``, no path separator, not ``.`` or ``..``, no space at either end."""
    _non_empty(key, value)
    fix = f"give {key} a plain name, e.g. {key}=my-study"
    if len(value) > max_chars:
        raise ConfigError(f"{key} is {len(value)} characters long, MLflow takes at most {max_chars}; "
                          f"choose a shorter name")
    bad = sorted({c for c in value if c in forbidden or not c.isprintable()})
    if bad:
        raise ConfigError(f"{key} {_clip(value)} has {' '.join(map(repr, bad))} in it; {fix} (no "
                          f"{' '.join(forbidden)} or control character)")
    if value in (".", "..") or value != value.strip():
        raise ConfigError(f"{key} {_clip(value)} is not a usable name; {fix}")


def _path(key: str, value: str | None, nullable: bool = False) -> None:
    """A path from the config: non-empty, printable (no NUL, newline or other control character), at
    most MAX_PATH characters."""
    _non_empty(key, value, nullable)
    if value is None:
        return
    if len(value) > MAX_PATH:
        raise ConfigError(f"{key} is {len(value)} characters long; a path has at most {MAX_PATH}")
    if not value.isprintable():
        raise ConfigError(f"{key} {_clip(value)} has a control character (NUL, newline, ...) in it; give a "
                          f"plain path")


def _clip(value: str, n: int = 60) -> str:
    return repr(value if len(value) <= n else value[:n] + "...")


def _checked(fn, *args) -> Any:
    """Call a checking builder of another module; its ValueError becomes a ConfigError."""
    try:
        return fn(*args)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _show(value: Any) -> str:
    return "null" if value is None else repr(value)


register()
