"""The feature-stage protocol: what stands between a dataset's images and the linear classifier.

A stage is made from its settings (:meth:`softmax_exp.features.settings.FeatureParams.build`). It learns
what its extraction needs from the training images only (:meth:`FeatureStage.fit`: nothing for a fixed
extractor such as HOG, centroids for k-means), extracts raw features from any images
(:meth:`FeatureStage.extract`), and standardises them with the training features' mean and deviation, which
the loaders compute while they write the training rows (:meth:`FeatureStage.set_standardization`), so the
training images are extracted once. :meth:`FeatureStage.transform` is extraction then standardisation, in the
dataset's dtype: the rows a served model computes from raw images are the training's, bit for bit. What a
stage learnt is a few named float64 arrays (:meth:`state`), which the data cache stores beside the rows it
made and the logged model carries. A new stage is a new module with a subclass, its settings dataclass, and
a line in ``settings.FEATURES``; the loaders and the model do not change.

The pixels themselves (``features=pixels``, the course's preprocessing) are not a stage: the loaders and
the model keep their own exact path for them, so that a pixels run is what it was before stages existed,
bit for bit.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np


class FeatureStage(ABC):
    """A fitted (or not yet fitted) representation of images of one shape.

    ``params`` : the stage's settings (a ``FeatureParams`` dataclass); ``image_shape`` : (H, W, channels)
    of the images it takes; ``arrays`` : the fitted state, None before :meth:`fit` or :meth:`restore`.
    """

    NAME: ClassVar[str]

    def __init__(self, params: Any, image_shape: tuple[int, int, int]) -> None:
        self.params = params
        self.image_shape = tuple(int(s) for s in image_shape)
        self.arrays: dict[str, np.ndarray] | None = None

    @property
    @abstractmethod
    def dim(self) -> int:
        """F, the features of one image."""

    STD_EPS: ClassVar[float] = 0.0  # deviation = sqrt(var + STD_EPS); a deviation of 0 becomes 1

    def fit(self, batches: Iterable[np.ndarray]) -> None:
        """Learn what extraction needs from the training images, given as batches (n, H, W, channels) uint8
        (nothing, unless the stage learns its extractor)."""
        self.arrays = {}

    @abstractmethod
    def extract(self, images: np.ndarray) -> np.ndarray:
        """The raw features (n, F), float32 or float64, of images (n, H, W, channels) uint8."""

    @property
    def standardize(self) -> bool:
        """Whether the features are standardised (else mean 0 and deviation 1 are kept)."""
        return bool(getattr(self.params, "standardize", True))

    def set_standardization(self, mean: np.ndarray, var: np.ndarray) -> None:
        """Keep the training features' mean and (population) variance, (F,) float64, as ``mean`` and
        ``std`` (sqrt(var + STD_EPS), a 0 made 1: a feature the training images never vary is left
        centred, not divided by 0); without :attr:`standardize`, 0 and 1."""
        if not self.standardize:
            mean, var = np.zeros(self.dim), np.ones(self.dim)
        std = np.sqrt(np.asarray(var, dtype=np.float64) + self.STD_EPS)
        std[std == 0] = 1.0
        self.arrays = {**(self.arrays or {}), "mean": np.asarray(mean, dtype=np.float64), "std": std}

    def standardized(self, raw: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Raw features (n, F) already in ``dtype``, standardised in float64, in ``dtype``."""
        state = self.state()
        rows = raw.astype(np.float64)
        rows -= state["mean"]
        rows /= state["std"]
        return rows.astype(dtype, copy=False)

    def transform(self, images: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
        """Rows (n, F) of ``dtype`` of images (n, H, W, channels) uint8: the raw features cast to ``dtype``,
        then standardised (the loaders write the training rows the same way)."""
        dtype = np.dtype(dtype)
        return self.standardized(self.extract(self.check_images(images)).astype(dtype, copy=False), dtype)

    def settings(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (``name`` first): what the cache's fingerprint and a saved model
        record."""
        return {"name": self.NAME, **{k: v for k, v in asdict(self.params).items() if k != "name"}}

    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays, by name; ValueError before the stage is fitted."""
        if self.arrays is None:
            raise ValueError(f"the {self.NAME} feature stage is not fitted; fit() it on the training images")
        return self.arrays

    def restore(self, arrays: dict[str, np.ndarray]) -> FeatureStage:
        """Take fitted arrays (from a cache entry or a model file), checked against :meth:`expected_state`;
        return self. ValueError (one line) when one is missing, of another shape or not finite."""
        wanted = self.expected_state()
        if set(arrays) != set(wanted):
            raise ValueError(f"the {self.NAME} feature stage's state holds {sorted(arrays)}; expected "
                             f"{sorted(wanted)}")
        for name, shape in wanted.items():
            a = np.asarray(arrays[name])
            if a.shape != shape or a.dtype != np.float64 or not np.isfinite(a).all():
                raise ValueError(f"the {self.NAME} feature stage's {name} is {a.dtype} {a.shape}; expected "
                                 f"finite float64 {shape}")
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        return self

    def expected_state(self) -> dict[str, tuple[int, ...]]:
        """The fitted arrays' names and shapes: the extractor's (:meth:`extractor_state`), ``mean`` and
        ``std``."""
        return {**self.extractor_state(), "mean": (self.dim,), "std": (self.dim,)}

    def extractor_state(self) -> dict[str, tuple[int, ...]]:
        """What :meth:`fit` learns, by name and shape (nothing for a fixed extractor)."""
        return {}

    def learns_from_images(self) -> bool:
        """Whether :meth:`fit` reads the training images (the loaders then read them once more)."""
        return bool(self.extractor_state())

    def check_images(self, images: np.ndarray) -> np.ndarray:
        """``images`` once they are known to be (n, H, W, channels) uint8 of this stage's image shape."""
        if (not isinstance(images, np.ndarray) or images.dtype != np.uint8
                or images.shape[1:] != self.image_shape):
            got = (f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray)
                   else type(images).__name__)
            raise ValueError(f"the {self.NAME} feature stage takes uint8 images (n, "
                             f"{', '.join(map(str, self.image_shape))}); got {got}")
        return images


def settings_json(stage: FeatureStage) -> str:
    """The stage's settings as one line of JSON (sorted keys): how a model file records them."""
    return json.dumps(stage.settings(), sort_keys=True)
