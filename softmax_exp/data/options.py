"""Dataset options: read the ``dataset`` config node, check every value, resolve every path.

The defaults below are the single source of truth; ``conf/dataset/*.yaml`` repeat them so they can
be overridden from the command line (a test keeps the two in step). Relative paths are resolved
against the directory the user launched from (Hydra's original cwd when Hydra is running, else the
current directory). ``cache_dir: null`` means ``$SOFTMAX_EXP_CACHE`` if set, else ``<project
root>/.cache/softmax_exp``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from softmax_exp.data.errors import DataError

CACHE_ENV = "SOFTMAX_EXP_CACHE"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"

_COMMON = {
    "dtype": "float32",
    "subtract_mean": True,
    "bias_trick": True,
    "split_seed": 0,
    "cache": True,
    "cache_dir": None,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {
        **_COMMON,
        "cache": False,  # 1797 tiny images: computing them is faster than a cache lookup
        "num_training": 1297,
        "num_validation": 250,
        "num_test": 250,
        "num_dev": 100,
    },
    "cifar10": {
        **_COMMON,
        "root": None,  # null: <project root>/data/cifar10
        "url": CIFAR10_URL,
        "md5": CIFAR10_MD5,
        "num_training": 49000,
        "num_validation": 1000,
        "num_test": 1000,
        "num_dev": 500,
    },
    "imagefolder": {
        **_COMMON,
        "root": None,  # required
        "mode": "RGB",
        "image_size": None,
        "num_training": None,  # null: every training image not carved out for validation
        "num_validation": 100,
        "num_test": None,  # null: every test image
        "num_dev": 50,
    },
}
DATASET_NAMES = tuple(DEFAULTS)


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

    def preprocessing(self) -> dict[str, Any]:
        """Every option that changes the arrays, as a JSON-able dict (goes into the fingerprint)."""
        keys = [
            "name",
            "subtract_mean",
            "bias_trick",
            "num_training",
            "num_validation",
            "num_test",
            "num_dev",
            "split_seed",
        ]
        spec = {k: getattr(self, k) for k in keys}
        spec["dtype"] = self.dtype.name
        if self.name == "imagefolder":
            spec["mode"] = self.mode
            spec["image_size"] = list(self.image_size) if self.image_size else None
        return spec


def parse_options(cfg: Any) -> DatasetOptions:
    """Read and check a ``dataset`` config node (DictConfig or Mapping); raise DataError if bad."""
    values = _to_dict(cfg)
    name = values.get("name")
    if name not in DEFAULTS:
        raise DataError(
            f"unknown dataset name {name!r}; choose one of {', '.join(DATASET_NAMES)} "
            f"(e.g. dataset=digits)"
        )
    allowed = DEFAULTS[name]
    unknown = sorted(set(values) - set(allowed) - {"name"})
    if unknown:
        hint = " (pass cfg.dataset, not the whole config)" if "dataset" in unknown else ""
        raise DataError(
            f"unknown option(s) {', '.join(unknown)} for dataset {name!r}{hint}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    v = {**allowed, **values}

    dtype_name = v["dtype"]
    if dtype_name not in ("float32", "float64"):
        raise DataError(f"dataset.dtype must be float32 or float64; got {dtype_name!r}")
    sizes = {}
    for key in ("num_training", "num_validation", "num_test", "num_dev"):
        # null ("all that remain") only makes sense for image folders of unknown size
        sizes[key] = _size(key, v[key], nullable=name == "imagefolder" and key != "num_dev")
    if sizes["num_training"] == 0:
        raise DataError("dataset.num_training must be at least 1; got 0")

    opts = DatasetOptions(
        name=name,
        dtype=np.dtype(dtype_name),
        subtract_mean=_flag("subtract_mean", v["subtract_mean"]),
        bias_trick=_flag("bias_trick", v["bias_trick"]),
        split_seed=_size("split_seed", v["split_seed"], nullable=False),
        cache=_flag("cache", v["cache"]),
        cache_dir=_cache_dir(v["cache_dir"]),
        **sizes,
    )
    extra: dict[str, Any] = {}
    if name == "cifar10":
        root = v["root"]
        default_root = project_root() / "data" / "cifar10"
        extra["root"] = resolve_path(_text("root", root)) if root is not None else default_root
        extra["url"] = _text("url", v["url"])
        md5 = v["md5"]
        if md5 is not None and not (isinstance(md5, str) and re.fullmatch("[0-9a-fA-F]{32}", md5)):
            raise DataError(f"dataset.md5 must be a 32-character hex digest or null; got {md5!r}")
        extra["md5"] = md5.lower() if md5 else None
    elif name == "imagefolder":
        if v["root"] is None:
            raise DataError(
                "dataset.root is required for imagefolder; set dataset.root=DIR "
                "(DIR/train/<class>/*.png and DIR/test/<class>/*.png)"
            )
        extra["root"] = resolve_path(_text("root", v["root"]))
        if v["mode"] not in ("RGB", "L"):
            raise DataError(f"dataset.mode must be 'RGB' or 'L'; got {v['mode']!r}")
        extra["mode"] = v["mode"]
        extra["image_size"] = _image_size(v["image_size"])
    return replace(opts, **extra)


def project_root() -> Path:
    """The source checkout holding the package (has pyproject.toml), else the launch directory."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() else launch_dir()


def launch_dir() -> Path:
    """The directory the user launched from: Hydra's original cwd if Hydra is running, else cwd."""
    if "hydra" in sys.modules:
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import get_original_cwd

        if HydraConfig.initialized():
            try:
                return Path(get_original_cwd())
            except ValueError:  # composed without a run directory (compose API): cwd is unchanged
                pass
    return Path(os.getcwd())


def resolve_path(path: str | os.PathLike) -> Path:
    """Expand ``~`` and make ``path`` absolute against the launch directory."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else launch_dir() / p


def _to_dict(cfg: Any) -> dict[str, Any]:
    if "omegaconf" in sys.modules:
        from omegaconf import DictConfig, OmegaConf
        from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

        if isinstance(cfg, DictConfig):
            try:
                cfg = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
            except MissingMandatoryValue as e:
                raise DataError(
                    f"dataset.{e.key} is required; set it, e.g. dataset.{e.key}=..."
                ) from e
            except OmegaConfBaseException as e:
                raise DataError(
                    f"cannot resolve the dataset config: {' '.join(str(e).split())}"
                ) from e
    if not isinstance(cfg, Mapping):
        raise DataError(
            f"the dataset config must be a mapping (cfg.dataset); got {type(cfg).__name__}"
        )
    return dict(cfg)


def _cache_dir(value: Any) -> Path:
    if value is None:
        env = os.environ.get(CACHE_ENV)
        return resolve_path(env) if env else project_root() / ".cache" / "softmax_exp"
    return resolve_path(_text("cache_dir", value))


def _size(key: str, value: Any, nullable: bool) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        allowed = "an integer >= 0" + (" or null" if nullable else "")
        raise DataError(f"dataset.{key} must be {allowed}; got {value!r}")
    return int(value)


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise DataError(f"dataset.{key} must be true or false; got {value!r}")
    return bool(value)


def _text(key: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise DataError(f"dataset.{key} must be a non-empty string; got {value!r}")
    return str(value)


def _image_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in value)
    )
    if not ok:
        raise DataError(
            f"dataset.image_size must be null or [H, W] with positive ints; got {value!r}"
        )
    return int(value[0]), int(value[1])
