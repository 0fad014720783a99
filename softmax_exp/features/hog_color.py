"""The course's image features (CS231n assignment 1, features.ipynb): a histogram of oriented gradients of
the grey image (cells of 8 x 8 pixels, 9 orientation bins) beside a 10-bin histogram of the hue, each
feature then standardised by the training images' mean and standard deviation."""

from __future__ import annotations

import numpy as np

from softmax_exp.features.color_histogram import hue_histogram
from softmax_exp.features.hog import hog_dim, hog_features
from softmax_exp.features.stage import FeatureStage


class HogColorStage(FeatureStage):
    """HOG + hue histogram, standardised.

    ``params`` (``HogColorParams``): cell_size, orientations, hue_bins, standardize. The rows are
    ``[hog (cells x orientations), hue (hue_bins)]``, each column minus its training mean and divided by its
    training standard deviation (a column constant over the training images is divided by 1), as the
    course does; the extractor learns nothing, the state is ``mean`` and ``std``, (F,) float64 (0 and 1
    without ``standardize``).
    """

    NAME = "hog_color"

    @property
    def dim(self) -> int:
        p = self.params
        return hog_dim(self.image_shape, p.cell_size, p.orientations) + p.hue_bins

    def extract(self, images: np.ndarray) -> np.ndarray:
        """The unstandardised features (n, F) float64 of images (n, H, W, channels) uint8."""
        images = self.check_images(images)
        p = self.params
        return np.hstack([hog_features(images, p.cell_size, p.orientations),
                          hue_histogram(images, p.hue_bins)])
