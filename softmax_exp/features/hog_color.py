"""The course's image features (CS231n assignment 1, features.ipynb): a histogram of oriented gradients of
the grey image (cells of 8 x 8 pixels, 9 orientation bins) beside a 10-bin histogram of the hue, each
feature then standardised by the training images' mean and standard deviation."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from softmax_exp.features.color_histogram import hue_histogram
from softmax_exp.features.hog import hog_dim, hog_features
from softmax_exp.features.stage import FeatureStage


class HogColorStage(FeatureStage):
    """HOG + hue histogram, standardised.

    ``params`` (``HogColorParams``): cell_size, orientations, hue_bins, standardize. The rows are
    ``[hog (cells x orientations), hue (hue_bins)]``, each column minus its training mean and divided by its
    training standard deviation (a column constant over the training images is divided by 1); the state
    is ``mean`` and ``std``, (F,) float64 (0 and 1 without ``standardize``).
    """

    NAME = "hog_color"

    @property
    def dim(self) -> int:
        p = self.params
        return hog_dim(self.image_shape, p.cell_size, p.orientations) + p.hue_bins

    def expected_state(self) -> dict[str, tuple[int, ...]]:
        return {"mean": (self.dim,), "std": (self.dim,)}

    def extract(self, images: np.ndarray) -> np.ndarray:
        """The unstandardised features (n, F) float64 of images (n, H, W, channels) uint8."""
        images = self.check_images(images)
        p = self.params
        return np.hstack([hog_features(images, p.cell_size, p.orientations),
                          hue_histogram(images, p.hue_bins)])

    def fit(self, batches: Iterable[np.ndarray]) -> None:
        """The mean and standard deviation of each feature over the training images (in float64, the
        deviation of the centred features, as the course computes it)."""
        features = np.concatenate([self.extract(b) for b in batches]) if self.params.standardize else None
        if features is None or len(features) == 0:
            self.arrays = {"mean": np.zeros(self.dim), "std": np.ones(self.dim)}
            return
        mean = features.mean(axis=0)
        features -= mean
        std = features.std(axis=0)
        std[std == 0] = 1.0  # a feature the training images never vary: left centred, not divided by 0
        self.arrays = {"mean": mean, "std": std}

    def transform(self, images: np.ndarray) -> np.ndarray:
        state = self.state()
        features = self.extract(images)
        features -= state["mean"]
        features /= state["std"]
        return features
