"""The ``features`` config group: what the classifier sees of an image (conf/features/).

``pixels`` (the default) is the course's preprocessing of the raw pixels, done by the loaders themselves
(``dataset.subtract_mean``, ``dataset.bias_trick``); any other choice names a
:class:`~softmax_exp.features.stage.FeatureStage`, which :meth:`FeatureParams.build` makes. The loaders append
the bias column after a stage's features when ``dataset.bias_trick`` is on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from softmax_exp.util.constraints import Boolean, Checked, GroupName, Integer, Real, option

PIXELS = "pixels"


@dataclass
class FeatureParams(Checked):
    """``features=pixels``: the pixels as the course preprocesses them (conf/features/pixels.yaml)."""

    KEY = "features."

    name: str = option(PIXELS, GroupName("features", lambda: FEATURES),
                       "set by the group: features=pixels | hog_color | kmeans")

    def build(self, image_shape: tuple[int, int, int]) -> Any:
        """The (unfitted) stage of these settings for images of ``image_shape``; None for the pixels."""
        return None

    def cache_spec(self) -> dict[str, Any] | None:
        """What the data cache's fingerprint takes of these settings: None for the pixels (so the caches
        made before there were features keep their fingerprint), else every setting."""
        return None


@dataclass
class HogColorParams(FeatureParams):
    """``features=hog_color``: the course's HOG of the grey image beside a hue histogram, standardised
    (conf/features/hog_color.yaml)."""

    name: str = option("hog_color", GroupName("features", lambda: FEATURES))
    cell_size: int = option(8, Integer(low=1), "HOG cells of cell_size x cell_size pixels")
    orientations: int = option(9, Integer(low=1), "HOG orientation bins over [0, 180) degrees")
    hue_bins: int = option(10, Integer(low=1), "bins of the hue histogram over [0, 255]")
    standardize: bool = option(True, Boolean(),
                               "subtract the training mean and divide by the training std of each feature")

    def build(self, image_shape: tuple[int, int, int]) -> Any:
        from softmax_exp.features.hog_color import HogColorStage  # numba: only where a stage is made

        return HogColorStage(self, image_shape)

    def cache_spec(self) -> dict[str, Any] | None:
        return asdict(self)


@dataclass
class KMeansParams(FeatureParams):
    """``features=kmeans``: Coates, Lee & Ng's single-layer k-means features, their best setting
    (conf/features/kmeans.yaml; softmax_exp/features/kmeans.py)."""

    name: str = option("kmeans", GroupName("features", lambda: FEATURES))
    num_centroids: int = option(1600, Integer(low=1), "K, the centroids (features: pool_grid^2 * K)")
    patch_size: int = option(6, Integer(low=1), "patches of patch_size x patch_size pixels")
    stride: int = option(1, Integer(low=1), "pixels between two patches' corners when extracting")
    pool_grid: int = option(2, Integer(low=1), "sum-pooling over pool_grid^2 regions (2: the quadrants)")
    num_patches: int = option(400000, Integer(low=2), "random training patches k-means learns from")
    contrast_eps: float = option(10.0, Real(low=0, low_open=True),
                                 "a patch is divided by sqrt(its variance + contrast_eps)")
    whitening_eps: float = option(0.1, Real(low=0, low_open=True),
                                  "ZCA: 1 / sqrt(eigenvalue + whitening_eps)")
    kmeans_iters: int = option(10, Integer(low=1), "k-means iterations (Lloyd's)")
    seed: int = option(0, Integer(low=0, high=2**32 - 1), "the patches drawn and the initial centroids")

    def build(self, image_shape: tuple[int, int, int]) -> Any:
        from softmax_exp.features.kmeans import KMeansStage  # numba: only where a stage is made

        return KMeansStage(self, image_shape)

    def cache_spec(self) -> dict[str, Any] | None:
        return asdict(self)


FEATURES: dict[str, type[FeatureParams]] = {PIXELS: FeatureParams, "hog_color": HogColorParams,
                                            "kmeans": KMeansParams}


def stage_from_settings(settings: dict[str, Any], image_shape: tuple[int, int, int]) -> Any:
    """The stage a saved model or cache entry recorded (``settings``: its ``name`` and options), unfitted;
    ValueError (one line) for an unknown name or a bad option."""
    name = settings.get("name")
    if name not in FEATURES or name == PIXELS:
        known = ", ".join(n for n in FEATURES if n != PIXELS)
        raise ValueError(f"unknown feature stage {name!r}; this code knows {known}")
    try:
        params = FEATURES[name](**settings)
    except (TypeError, ValueError) as e:  # an option it does not have, or a value its constraint refuses
        raise ValueError(f"the {name} feature settings {settings} do not fit this code: {e}") from None
    return params.build(image_shape)
