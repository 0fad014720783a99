"""Dataset options: a ``dataset`` config, checked by its schema, with every path resolved.

The schema (``DigitsConfig``, ``Cifar10Config``, ``ImageFolderConfig`` in :mod:`softmax_exp.data.settings`)
holds every option's type, default and constraint; a plain mapping is merged onto it, so ``{"name": "cifar10",
"num_training": 500}`` means the CIFAR-10 defaults with 500 training rows. Relative paths are resolved
against the directory the user launched from (Hydra's original cwd when Hydra is running, else the
current directory). ``cache_dir: null`` means ``$SOFTMAX_EXP_CACHE`` if set, else
``<project root>/.cache/softmax_exp``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from softmax_exp.data.errors import DataError
from softmax_exp.data.settings import DATASETS, DatasetConfig
from softmax_exp.util.constraints import SettingError
from softmax_exp.util.errors import one_line
from softmax_exp.util.paths import project_root, resolve_path

CACHE_ENV = "SOFTMAX_EXP_CACHE"
DATASET_NAMES = tuple(DATASETS)


@dataclass(frozen=True)
class DatasetOptions:
    """Checked options of one dataset; paths are absolute.

    Split sizes are ints >= 0 (num_training >= 1) or None for "all that remain" where the dataset
    allows it.
    """

    name: str
    dtype: np.dtype
    subtract_mean: bool
    bias_trick: bool
    num_training: int | None
    num_validation: int | None
    num_test: int | None
    num_dev: int
    split_seed: int
    cache: bool
    cache_dir: Path
    root: Path | None = None
    url: str | None = None
    md5: str | None = None
    mode: str = "RGB"
    image_size: tuple[int, int] | None = None
    hflip: bool = False

    def preprocessing(self) -> dict[str, Any]:
        """Every option that changes the arrays, as a JSON-able dict (goes into the fingerprint)."""
        keys = ["name", "subtract_mean", "bias_trick", "num_training", "num_validation", "num_test",
                "num_dev", "split_seed"]
        spec = {k: getattr(self, k) for k in keys}
        spec["dtype"] = self.dtype.name
        if self.hflip:  # (absent when off: the caches made before the option keep their fingerprint)
            spec["hflip"] = True
        if self.name == "imagefolder":
            spec["mode"] = self.mode
            spec["image_size"] = list(self.image_size) if self.image_size else None
        return spec


def parse_options(cfg: Any) -> DatasetOptions:
    """Check a ``dataset`` config (a DatasetConfig, a DictConfig or a plain mapping) and resolve its paths;
    raise DataError (one line) if it is bad."""
    c = dataset_config(cfg)
    root = getattr(c, "root", None)
    if c.name == "cifar10" and root is None:
        root = project_root() / "data" / "cifar10"
    return DatasetOptions(
        name=c.name,
        dtype=np.dtype(c.dtype),
        subtract_mean=c.subtract_mean,
        bias_trick=c.bias_trick,
        hflip=c.hflip,
        num_training=c.num_training,
        num_validation=c.num_validation,
        num_test=c.num_test,
        num_dev=c.num_dev,
        split_seed=c.split_seed,
        cache=c.cache,
        cache_dir=_cache_dir(c.cache_dir),
        root=resolve_path(root) if root is not None else None,
        url=getattr(c, "url", None),
        md5=c.md5.lower() if getattr(c, "md5", None) else None,
        mode=getattr(c, "mode", "RGB"),
        image_size=tuple(c.image_size) if getattr(c, "image_size", None) else None,
    )


def dataset_config(cfg: Any) -> DatasetConfig:
    """The checked schema object of a dataset config; DataError names the first bad option."""
    if isinstance(cfg, DatasetConfig):
        return cfg

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(cfg, Mapping):
        raise DataError(f"the dataset config must be a mapping (cfg.dataset); got {type(cfg).__name__}")
    name = cfg.get("name")
    if name not in DATASETS:
        raise DataError(f"unknown dataset name {name!r}; choose one of {', '.join(DATASET_NAMES)} "
                        f"(e.g. dataset=digits)")
    schema = DATASETS[name]
    unknown = sorted(set(cfg) - {f.name for f in dataclasses.fields(schema)})
    if unknown:
        hint = " (pass cfg.dataset, not the whole config)" if "dataset" in unknown else ""
        allowed = sorted(f.name for f in dataclasses.fields(schema) if f.name != "name")
        raise DataError(f"unknown option(s) {', '.join(unknown)} for dataset {name!r}{hint}; "
                        f"allowed: {', '.join(allowed)}")
    try:
        node = OmegaConf.merge(OmegaConf.structured(schema), cfg)
        return OmegaConf.to_object(node)
    except SettingError as e:
        raise DataError(str(e)) from None
    except MissingMandatoryValue as e:
        hint = " (DIR/train/<class>/*.png and DIR/test/<class>/*.png)" if e.full_key == "root" else ""
        raise DataError(f"dataset.{e.full_key} is required; set dataset.{e.full_key}=DIR{hint}") from None
    except OmegaConfBaseException as e:
        raise DataError(f"dataset.{one_line(e)}") from None


def _cache_dir(value: str | None) -> Path:
    if value is None:
        env = os.environ.get(CACHE_ENV)
        return resolve_path(env) if env else project_root() / ".cache" / "softmax_exp"
    return resolve_path(value)
