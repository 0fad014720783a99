"""Coates, Lee & Ng's k-means features: each step against a plain numpy float64 reference written from the
paper's code, the fit seeded, the extraction independent of its blocks and threads, the stage in the data
cache and in a saved model."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import cifar_cfg, make_cifar_dir

from softmax_exp.data import DataError, load_dataset
from softmax_exp.features.kmeans import KMeansStage, _pool_bounds
from softmax_exp.features.settings import KMeansParams
from softmax_exp.kernels import num_threads
from softmax_exp.learn.model import LinearClassifier, Preprocessing, Softmax

SMALL = dict(num_centroids=20, num_patches=3000, kmeans_iters=5)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def fitted(images):
    stage = KMeansParams(**SMALL).build((32, 32, 3))
    stage.fit([images[:30], images[30:]])
    return stage


def reference(stage: KMeansStage, image: np.ndarray) -> np.ndarray:
    """The paper's extract_features for one image, in numpy float64 (im2col by positions, HWC patches)."""
    p, s, K = stage.params.patch_size, stage.params.stride, stage.params.num_centroids
    rows, cols = stage.positions
    patches = np.array([image[r * s : r * s + p, c * s : c * s + p].astype(np.float64).ravel()
                        for r in range(rows) for c in range(cols)])
    patches = (patches - patches.mean(axis=1, keepdims=True)) / np.sqrt(
        patches.var(axis=1, ddof=1, keepdims=True) + stage.params.contrast_eps)
    white = (patches - stage.arrays["patch_mean"]) @ stage.arrays["whitening"]
    C = stage.arrays["centroids"]
    z = np.sqrt(np.maximum((white**2).sum(1)[:, None] + (C**2).sum(1)[None, :] - 2 * white @ C.T, 0))
    act = np.maximum(z.mean(axis=1, keepdims=True) - z, 0).reshape(rows, cols, K)
    br, bc = _pool_bounds(rows, stage.params.pool_grid), _pool_bounds(cols, stage.params.pool_grid)
    g = stage.params.pool_grid
    return np.concatenate([act[br[i] : br[i + 1], bc[j] : bc[j + 1]].sum((0, 1)) for i in range(g)
                           for j in range(g)])


def test_the_features_are_the_papers_pipeline(fitted, images):
    got = fitted.extract(images[:5])
    assert got.shape == (5, 4 * 20) and got.dtype == np.float32 and fitted.dim == 80
    for i in range(5):
        np.testing.assert_allclose(got[i], reference(fitted, images[i]), rtol=2e-4, atol=2e-3)
    assert (got >= 0).all() and got.sum(axis=1).min() > 0


def test_whitening_makes_the_patch_covariance_the_identity_up_to_eps(fitted):
    w = fitted.arrays["whitening"]
    assert np.allclose(w, w.T)
    cov_white = np.linalg.inv(w) @ np.linalg.inv(w)  # W = C_eps^(-1/2): the covariance it whitens, + eps
    eigenvalues = np.linalg.eigvalsh(cov_white)
    assert eigenvalues.min() >= fitted.params.whitening_eps - 1e-9  # eigenvalues d + eps


def test_the_fit_is_seeded(images, fitted):
    again = KMeansParams(**SMALL).build((32, 32, 3))
    again.fit([images])
    for k in ("patch_mean", "whitening", "centroids"):
        np.testing.assert_array_equal(again.arrays[k], fitted.arrays[k])
    other = KMeansParams(**SMALL, seed=1).build((32, 32, 3))
    other.fit([images])
    assert not np.array_equal(other.arrays["centroids"], fitted.arrays["centroids"])


def test_a_rows_features_do_not_depend_on_its_block_or_the_threads(fitted, images):
    whole = fitted.extract(images)
    one_by_one = np.concatenate([fitted.extract(images[i : i + 1]) for i in range(len(images))])
    np.testing.assert_array_equal(whole, one_by_one)
    with num_threads(1):
        np.testing.assert_array_equal(fitted.extract(images), whole)


def test_pooling_regions_are_the_papers_halves():
    assert _pool_bounds(27, 2).tolist() == [0, 14, 27]  # MATLAB's round(27 / 2) = 14
    assert _pool_bounds(27, 3).tolist() == [0, 9, 18, 27]
    assert _pool_bounds(4, 1).tolist() == [0, 4]


def test_settings_that_do_not_fit_the_images_are_one_line(tmp_path):
    make_cifar_dir(tmp_path / "c", n_per_batch=10, n_test=10)
    cfg = cifar_cfg(tmp_path / "c", tmp_path / "cache", num_training=40, num_validation=5, num_test=5,
                    num_dev=0)
    with pytest.raises(DataError, match=r"features=kmeans does not fit the 32x32x3 images of cifar10: images "
                                         r"must be at least one patch \(40 x 40 pixels\)"):
        load_dataset(cfg, KMeansParams(patch_size=40), progress=False)
    with pytest.raises(DataError, match="pool_grid 30 is finer than the 27 x 27 patch positions"):
        load_dataset(cfg, KMeansParams(pool_grid=30), progress=False)
    assert not [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]


def test_the_stage_in_the_cache_and_in_a_saved_model(tmp_path):
    make_cifar_dir(tmp_path / "c", n_per_batch=40, n_test=30)
    cfg = cifar_cfg(tmp_path / "c", tmp_path / "cache", num_training=180, num_validation=20, num_test=30,
                    num_dev=0)
    params = KMeansParams(**SMALL)
    data = load_dataset(cfg, params, progress=False)
    assert data.dim == 81 and data.features.NAME == "kmeans"
    X = np.asarray(data.X_train, dtype=np.float64)[:, :-1]
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-4)  # standardised: sqrt(var + 0.01)
    assert (X.std(axis=0) < 1).all() and (X.std(axis=0) > 0.9).any()
    model = Softmax("numba_fused", Preprocessing.of(data))
    model.train(data.X_train, data.y_train, lr=1e-2, reg=1e-3, num_iters=30, batch_size=50)
    back = LinearClassifier.load(model.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.preprocess(data.examples), data.X_val[: len(data.examples)])
    assert back.preprocessing.features.arrays["centroids"].shape == (20, 108)
    again = load_dataset(cfg, params, progress=False)
    assert again.cache_path == data.cache_path and np.array_equal(again.X_train, data.X_train)


def test_the_experiment_file_is_the_papers_setting_on_cifar10(make_cfg):
    """conf/experiment/kmeans_cifar10.yaml: the default kmeans stage (the paper's best setting) on CIFAR-10
    with the mirrors, every test image reported, Nesterov momentum with a cosine schedule."""
    cfg = make_cfg(None, "+experiment=kmeans_cifar10")
    assert cfg.features == KMeansParams() and cfg.features.num_centroids == 1600
    assert cfg.dataset.name == "cifar10" and cfg.dataset.hflip and cfg.dataset.num_test == 10000
    assert cfg.optimizer.nesterov and cfg.optimizer.schedule == "cosine" and cfg.eval_test
    assert cfg.tracking.experiment == "kmeans_cifar10"
