"""The feature-stage protocol: what stands between a dataset's images and the linear classifier.

A stage is made from its settings (:meth:`softmax_exp.features.settings.FeatureParams.build`), fitted once
on the training images only (:meth:`FeatureStage.fit`), then turns any images into rows
(:meth:`FeatureStage.transform`). What fitting learnt is a few named float64 arrays (:meth:`state`), which
the data cache stores beside the rows it made and the logged model carries, so a served model computes
the rows the training computed, from raw images. A new stage is a new module with a subclass, its settings
dataclass, and a line in ``settings.FEATURES``; the loaders and the model do not change.

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

    @abstractmethod
    def fit(self, batches: Iterable[np.ndarray]) -> None:
        """Learn the state from the training images, given as batches (n, H, W, channels) uint8."""

    @abstractmethod
    def transform(self, images: np.ndarray) -> np.ndarray:
        """Rows (n, F) float64 of images (n, H, W, channels) uint8, with the fitted state."""

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

    @abstractmethod
    def expected_state(self) -> dict[str, tuple[int, ...]]:
        """The fitted arrays' names and shapes."""

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
