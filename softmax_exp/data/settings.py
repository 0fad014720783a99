"""The settings of each dataset (the ``dataset`` config group's schema), each option declared once with its
default, its constraint and its meaning, and checked once, when the settings are made.

:mod:`softmax_exp.data.options` resolves them (paths made absolute, the cache folder found) for the
loaders; :data:`DATASETS` names the group's choices.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from softmax_exp.util.constraints import (
    Boolean,
    Checked,
    GroupName,
    Integer,
    OneOf,
    PathText,
    Pattern,
    Sizes,
    Text,
    option,
)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
DTYPES = ("float32", "float64")
IMAGE_MODES = ("RGB", "L")

ROWS = Integer(low=0)  # a split's size
TRAINING_ROWS = Integer(low=1)
ALL_THAT_REMAIN = Integer(low=0, nullable=True)  # null: every image that is left (image folders)
MD5 = Pattern("[0-9a-fA-F]{32}", "a 32-character hex digest", nullable=True)
GROUP = GroupName("dataset", lambda: DATASETS)  # dataset.name: the group's choice, not typed by hand


@dataclass
class DatasetConfig(Checked):
    """What every dataset has (``softmax_exp/data/``): the preprocessing, the split sizes, the cache."""

    KEY = "dataset."

    name: str = option(MISSING, GROUP, "set by the group: dataset=digits | cifar10 | imagefolder")
    dtype: str = option("float32", OneOf(DTYPES), "float32 | float64")
    subtract_mean: bool = option(True, Boolean(),
                                 "subtract the training mean image (computed in float64) from every split")
    bias_trick: bool = option(True, Boolean(), "append a column of ones: D = H*W*channels + 1")
    hflip: bool = option(False, Boolean(),
                         "also train on a left-right mirror of every training image (val/test untouched)")
    num_training: int | None = option(None, TRAINING_ROWS,
                                      "split sizes (rows); null: all that remain (image folders only)")
    num_validation: int | None = option(None, ROWS, "validation rows (val_acc chooses by them)")
    num_test: int | None = option(None, ROWS, "test rows (test_acc, reported with eval_test=true)")
    num_dev: int = option(0, ROWS, "a seeded sample of training rows")
    split_seed: int = option(0, Integer(low=0),
                             "splits do not follow the training seed: a seed sweep shares one cache entry")
    cache: bool = option(True, Boolean(), "build the arrays once into cache_dir, memory-map them afterwards")
    cache_dir: str | None = option(None, PathText(nullable=True),
                                   "null: $SOFTMAX_EXP_CACHE, else <project root>/.cache/softmax_exp")


@dataclass
class DigitsConfig(DatasetConfig):
    """scikit-learn's 8x8 handwritten digits: 1797 gray images, 10 classes, offline. No official test
    split: the images are shuffled with split_seed, then cut train | val | test."""

    name: str = option("digits", GROUP)
    num_training: int | None = option(1297, TRAINING_ROWS)
    num_validation: int | None = option(250, ROWS)
    num_test: int | None = option(250, ROWS)
    num_dev: int = option(100, ROWS)
    cache: bool = option(False, Boolean(), "1797 tiny images: computing them is faster than a cache lookup")


@dataclass
class Cifar10Config(DatasetConfig):
    """CIFAR-10, python version, preprocessed as in CS231n assignment 1 (get it with
    ``python -m softmax_exp.data download cifar10 --root DIR``)."""

    name: str = option("cifar10", GROUP)
    root: str | None = option(None, PathText(nullable=True),
                              "holds cifar-10-batches-py/ or the archive; null: <project root>/data/cifar10")
    url: str = option(CIFAR10_URL, Text(), "where `python -m softmax_exp.data download cifar10` gets it")
    md5: str | None = option(CIFAR10_MD5, MD5, "checked before extracting the archive; null skips")
    num_training: int | None = option(49000, TRAINING_ROWS, "first rows of the 50000 training images")
    num_validation: int | None = option(1000, ROWS, "the training rows right after")
    num_test: int | None = option(1000, ROWS, "first rows of test_batch")
    num_dev: int = option(500, ROWS)


@dataclass
class ImageFolderConfig(DatasetConfig):
    """Your own images: root/train/<class>/*.png|jpg|jpeg and root/test/<class>/*; root/val/<class>/ is
    used if present, else num_validation images are carved out of train/."""

    name: str = option("imagefolder", GROUP)
    root: str = option(MISSING, PathText(),
                       "required: dataset.root=DIR (relative paths: against the launch dir)")
    mode: str = option("RGB", OneOf(IMAGE_MODES), "RGB | L (gray)")
    image_size: list[int] | None = option(None, Sizes(2, "[H, W] with positive ints"),
                                          "null: all images must match the first; [H, W]: resize all")
    num_training: int | None = option(None, Integer(low=1, nullable=True),
                                      "null: every training image not carved out for validation")
    num_validation: int | None = option(100, ALL_THAT_REMAIN)
    num_test: int | None = option(None, ALL_THAT_REMAIN, "null: every test image")
    num_dev: int = option(50, ROWS)


DATASETS: dict[str, type[DatasetConfig]] = {"digits": DigitsConfig, "cifar10": Cifar10Config,
                                             "imagefolder": ImageFolderConfig}
