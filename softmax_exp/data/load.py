"""``load_dataset``: config -> checked options -> source -> preprocessed (and cached) arrays: the pixels as
the course prepares them, or the rows of a feature stage (``features``) fitted on the training images."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from softmax_exp.data.cache import fingerprint, load_or_build
from softmax_exp.data.cifar10 import open_cifar10
from softmax_exp.data.dataset import Dataset
from softmax_exp.data.digits import open_digits
from softmax_exp.data.errors import DataError
from softmax_exp.data.featurize import STATE_PREFIX, build_feature_arrays
from softmax_exp.data.imagefolder import open_imagefolder
from softmax_exp.data.options import parse_options
from softmax_exp.data.preprocess import SPLITS, Allocate, allocate_in_memory, build_arrays
from softmax_exp.features.settings import FeatureParams, stage_from_settings

_SOURCES = {"digits": open_digits, "cifar10": open_cifar10, "imagefolder": open_imagefolder}


def check_dataset(cfg: Any, features: FeatureParams | None = None) -> str:
    """Check the options and find the dataset's source files without reading their pixels (a sweep does
    this once, before any job); return the dataset's fingerprint. Raises DataError in one line."""
    opts = parse_options(cfg)
    source = _SOURCES[opts.name](opts)
    return fingerprint(source.signature, _spec(opts, features))


def _spec(opts, features: FeatureParams | None) -> dict[str, Any]:
    """What makes the arrays: the preprocessing options, and the feature stage's settings unless the
    pixels (absent then: the caches made before there were stages keep their fingerprint)."""
    spec = opts.preprocessing()
    stage = features.cache_spec() if features is not None else None
    if stage is not None:
        spec["features"] = stage
    return spec


def load_dataset(cfg: Any, features: FeatureParams | None = None, progress: bool | None = None) -> Dataset:
    """Load the dataset described by ``cfg``, the ``dataset`` config node (DictConfig or Mapping), as the
    pixels' rows or, with ``features`` (the ``features`` config node) other than the pixels, the rows of
    that feature stage fitted on the training images (a tqdm bar while it builds: ``progress``, None on a
    terminal only).

    With ``cache: true`` the preprocessed arrays are built once into the cache and memory-mapped;
    otherwise they are computed in memory. Either way they are read-only. Raises DataError on bad
    input.
    """
    opts = parse_options(cfg)
    source = _SOURCES[opts.name](opts)
    fp = fingerprint(source.signature, _spec(opts, features))

    def build(allocate: Allocate) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        raw = source.read()
        stage = _stage(features, raw.image_shape, opts.name) if features is not None else None
        info = {
            "name": opts.name,
            "class_names": list(raw.class_names),
            "image_shape": list(raw.image_shape),
            "bias_trick": opts.bias_trick,
            "dtype": opts.dtype.name,
        }
        if stage is None:
            arrays = build_arrays(raw, opts.dtype, opts.subtract_mean, opts.bias_trick, allocate, opts.hflip)
        else:
            arrays = build_feature_arrays(raw, stage, opts.dtype, opts.bias_trick, allocate, opts.hflip,
                                          progress)
            info["features"] = stage.settings()
        return arrays, info

    if opts.cache:
        arrays, info, path = load_or_build(opts.cache_dir, opts.name, fp, build, _check_cached)
        cache_path: str | None = str(path)
    else:
        arrays, info = build(allocate_in_memory)
        for array in arrays.values():
            array.flags.writeable = False
        cache_path = None
    stage = _fitted_stage(arrays, info)
    return Dataset(
        name=opts.name,
        **{f"{a}_{s}": arrays[f"{a}_{s}"] for a in "Xy" for s in ("train", "val", "test", "dev")},
        class_names=tuple(info["class_names"]),
        image_shape=tuple(info["image_shape"]),
        mean_image=arrays["mean_image"],
        bias_trick=opts.bias_trick,
        fingerprint=fp,
        cache_path=cache_path,
        source=str(opts.root) if opts.root is not None else "sklearn.datasets.load_digits",
        features=stage,
        examples=arrays.get("examples_val"),
    )


def _stage(features: FeatureParams, image_shape: tuple[int, int, int], dataset: str):
    """The unfitted stage of ``features`` for the dataset's images; DataError (one line) when its settings
    do not fit them (HOG cells larger than the images, say)."""
    stage = features.build(image_shape)
    if stage is not None:
        try:
            _ = stage.dim  # the settings against the images' shape
        except ValueError as e:
            raise DataError(f"features={stage.NAME} does not fit the {'x'.join(map(str, image_shape))} "
                            f"images of {dataset}: {e}; change the features' settings") from None
    return stage


def _fitted_stage(arrays: dict[str, np.ndarray], info: dict[str, Any]):
    """The fitted feature stage the arrays were made with, from their info and state; None for pixels."""
    if "features" not in info:
        return None
    stage = stage_from_settings(info["features"], tuple(info["image_shape"]))
    return stage.restore({k.removeprefix(STATE_PREFIX): np.asarray(v, dtype=np.float64)
                          for k, v in arrays.items() if k.startswith(STATE_PREFIX)})


def _check_cached(arrays: dict[str, np.ndarray], info: dict[str, Any]) -> None:
    """Check arrays read back from the cache against the Dataset contract, cheaply (X is never read):
    every split's X (n, P [+ 1]) of the configured dtype and y (n,) int64 in [0, C), mean_image (P,)
    float64, with P = H*W*channels and C = len(class_names) >= 2. Raises ValueError naming the first
    break."""
    C, P = len(info["class_names"]), math.prod(info["image_shape"])
    F = _fitted_stage(arrays, info).dim if "features" in info else P  # (the stage checks its state)
    D = F + int(bool(info["bias_trick"]))
    if C < 2 or not all(isinstance(n, str) for n in info["class_names"]):
        raise ValueError(f"class_names {info['class_names']!r:.80} are not 2 or more strings")
    missing = [k for k in ("mean_image", *(f"{a}_{s}" for s in SPLITS for a in "Xy")) if k not in arrays]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    if arrays["mean_image"].shape != (P,) or arrays["mean_image"].dtype != np.float64:
        raise ValueError(f"mean_image is {arrays['mean_image'].shape} {arrays['mean_image'].dtype}, "
                         f"expected ({P},) float64")
    for split in SPLITS:
        X, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if X.ndim != 2 or X.shape[1] != D or X.dtype != np.dtype(info["dtype"]):
            raise ValueError(f"X_{split} is {X.shape} {X.dtype}, expected (n, {D}) {info['dtype']}")
        if y.shape != (len(X),) or y.dtype != np.int64:
            raise ValueError(f"y_{split} is {y.shape} {y.dtype}, expected ({len(X)},) int64")
        if len(y) and (y.min() < 0 or y.max() >= C):
            bad = int(y.min()) if y.min() < 0 else int(y.max())
            raise ValueError(f"y_{split} holds label {bad}, outside [0, {C})")
