"""``load_dataset``: config -> checked options -> source -> preprocessed (and cached) arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from softmax_exp.data.cache import fingerprint, load_or_build
from softmax_exp.data.cifar10 import open_cifar10
from softmax_exp.data.dataset import Dataset
from softmax_exp.data.digits import open_digits
from softmax_exp.data.imagefolder import open_imagefolder
from softmax_exp.data.options import parse_options
from softmax_exp.data.preprocess import SPLITS, Allocate, allocate_in_memory, build_arrays

_SOURCES = {"digits": open_digits, "cifar10": open_cifar10, "imagefolder": open_imagefolder}


def check_dataset(cfg: Any) -> str:
    """Check the options and find the dataset's source files without reading their pixels (a sweep does
    this once, before any job); return the dataset's fingerprint. Raises DataError in one line."""
    opts = parse_options(cfg)
    source = _SOURCES[opts.name](opts)
    return fingerprint(source.signature, opts.preprocessing())


def load_dataset(cfg: Any) -> Dataset:
    """Load the dataset described by ``cfg``, the ``dataset`` config node (DictConfig or Mapping).

    With ``cache: true`` the preprocessed arrays are built once into the cache and memory-mapped;
    otherwise they are computed in memory. Either way they are read-only. Raises DataError on bad
    input.
    """
    opts = parse_options(cfg)
    source = _SOURCES[opts.name](opts)
    fp = fingerprint(source.signature, opts.preprocessing())

    def build(allocate: Allocate) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        raw = source.read()
        arrays = build_arrays(raw, opts.dtype, opts.subtract_mean, opts.bias_trick, allocate, opts.hflip)
        info = {
            "name": opts.name,
            "class_names": list(raw.class_names),
            "image_shape": list(raw.image_shape),
            "bias_trick": opts.bias_trick,
            "dtype": opts.dtype.name,
        }
        return arrays, info

    if opts.cache:
        arrays, info, path = load_or_build(opts.cache_dir, opts.name, fp, build, _check_cached)
        cache_path: str | None = str(path)
    else:
        arrays, info = build(allocate_in_memory)
        for array in arrays.values():
            array.flags.writeable = False
        cache_path = None
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
    )


def _check_cached(arrays: dict[str, np.ndarray], info: dict[str, Any]) -> None:
    """Check arrays read back from the cache against the Dataset contract, cheaply (X is never read):
    every split's X (n, P [+ 1]) of the configured dtype and y (n,) int64 in [0, C), mean_image (P,)
    float64, with P = H*W*channels and C = len(class_names) >= 2. Raises ValueError naming the first
    break."""
    C, P = len(info["class_names"]), math.prod(info["image_shape"])
    D = P + int(bool(info["bias_trick"]))
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
