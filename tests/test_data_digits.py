"""digits end to end, the split and preprocessing options, and the Hydra config group."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from softmax_exp.config import compose
from softmax_exp.data import DataError, Dataset, load_dataset
from softmax_exp.data.digits import read_digits
from softmax_exp.data.options import CACHE_ENV, parse_options
from softmax_exp.util.paths import project_root

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_digits_defaults_give_the_course_shapes():
    data = load_dataset({"name": "digits"})
    assert isinstance(data, Dataset)
    assert data.X_train.shape == (1297, 65) and data.X_val.shape == (250, 65)
    assert data.X_test.shape == (250, 65) and data.X_dev.shape == (100, 65)
    for split in ("train", "val", "test", "dev"):
        X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
        assert X.dtype == np.float32 and X.flags.c_contiguous and not X.flags.writeable
        assert y.dtype == np.int64 and len(y) == len(X) and 0 <= y.min() and y.max() < 10
        np.testing.assert_array_equal(X[:, -1], 1.0)
    assert data.class_names == tuple("0123456789") and data.num_classes == 10
    assert data.image_shape == (8, 8, 1) and data.dim == 65 and data.bias_trick
    assert data.mean_image.shape == (64,) and data.mean_image.dtype == np.float64
    assert data.cache_path is None and len(data.fingerprint) == 64


def test_digits_file_reader_matches_load_digits():
    pixels, labels = read_digits()
    digits = load_digits()
    np.testing.assert_array_equal(pixels, digits.data)
    np.testing.assert_array_equal(labels, digits.target)
    assert pixels.dtype == np.uint8 and labels.dtype == np.int64


def test_digits_splits_partition_the_images_and_undo_to_raw_pixels():
    data = load_dataset({"name": "digits", "dtype": "float64"})
    digits = load_digits()
    raw = np.concatenate(
        [getattr(data, f"X_{s}")[:, :-1] + data.mean_image for s in ("train", "val", "test")]
    )
    labels = np.concatenate([data.y_train, data.y_val, data.y_test])
    expected = np.column_stack([digits.images.reshape(1797, -1), digits.target])
    got = np.column_stack([raw, labels])
    np.testing.assert_allclose(got[np.lexsort(got.T)], expected[np.lexsort(expected.T)], atol=1e-12)
    # the mean is the training mean; the dev rows are training rows
    np.testing.assert_allclose((data.X_train[:, :-1]).mean(axis=0), 0.0, atol=1e-12)
    train_rows = {r.tobytes() for r in data.X_train}
    assert all(r.tobytes() in train_rows for r in data.X_dev)
    assert len({r.tobytes() for r in data.X_dev}) == 100  # sampled without replacement


def test_digits_options_change_the_arrays():
    plain = load_dataset({"name": "digits", "subtract_mean": False, "bias_trick": False})
    assert plain.X_train.shape == (1297, 64) and not plain.bias_trick
    np.testing.assert_array_equal(plain.mean_image, 0.0)
    assert plain.X_train.min() == 0.0 and plain.X_train.max() == 16.0
    small = load_dataset(
        {
            "name": "digits",
            "num_training": 500,
            "num_validation": 100,
            "num_test": 50,
            "num_dev": 10,
        }
    )
    assert [len(small.y_train), len(small.y_val), len(small.y_test), len(small.y_dev)] == [
        500,
        100,
        50,
        10,
    ]


def test_split_seed_decides_the_split_and_the_fingerprint():
    a = load_dataset({"name": "digits", "split_seed": 3})
    b = load_dataset({"name": "digits", "split_seed": 3})
    c = load_dataset({"name": "digits", "split_seed": 4})
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_dev, b.y_dev)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert not np.array_equal(a.y_train, c.y_train)


def test_the_dataset_defaults_live_in_the_schema_only():
    """conf/dataset/*.yaml name their schema and hold no value of their own; composing one gives the
    schema's defaults, which is also what a plain mapping with only the name means."""
    from omegaconf import MISSING, OmegaConf

    from softmax_exp.data.settings import DATASETS

    for name, schema in DATASETS.items():
        assert yaml.safe_load((CONF / "dataset" / f"{name}.yaml").read_text()) == {
            "defaults": [f"/schema/dataset/{name}@_here_"]}
        extra = ["dataset.root=x"] if name == "imagefolder" else []
        composed = OmegaConf.to_container(compose([f"dataset={name}", *extra]).dataset)
        defaults = {f.name: f.default for f in dataclasses.fields(schema)}
        assert {k: v for k, v in composed.items() if defaults[k] is not MISSING} == {
            k: v for k, v in defaults.items() if v is not MISSING}, name
    assert parse_options({"name": "cifar10"}).num_training == DATASETS["cifar10"]().num_training == 49000


def test_hydra_compose_then_load_digits(tmp_path):
    cfg = compose(["dataset.num_dev=7", f"dataset.cache_dir={tmp_path}"])
    data = load_dataset(cfg.dataset)
    assert data.name == "digits" and data.X_dev.shape == (7, 65)


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert parse_options({"name": "digits"}).cache_dir == project_root() / ".cache" / "softmax_exp"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert parse_options({"name": "digits"}).cache_dir == tmp_path / "env"
    monkeypatch.chdir(tmp_path)
    opts = parse_options({"name": "cifar10", "cache_dir": "rel/cache", "root": "data"})
    assert opts.cache_dir == tmp_path / "rel" / "cache" and opts.root == tmp_path / "data"


def test_cached_digits_round_trip(tmp_path):
    cfg = {"name": "digits", "cache": True, "cache_dir": str(tmp_path)}
    first, second = load_dataset(cfg), load_dataset(cfg)
    assert first.cache_path == second.cache_path and Path(first.cache_path).parent == tmp_path
    assert isinstance(second.X_train, np.memmap)
    np.testing.assert_array_equal(first.X_train, load_dataset({"name": "digits"}).X_train)


def test_whole_config_instead_of_dataset_node_is_explained():
    with pytest.raises(DataError, match="pass cfg.dataset"):
        load_dataset({"name": "digits", "dataset": {"name": "digits"}})
