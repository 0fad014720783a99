"""dataset.hflip: the training split augmented with left-right mirrors, against an independent reference."""

from __future__ import annotations

import numpy as np
from data_fixtures import cifar_cfg, course_preprocess, make_cifar_dir

from softmax_exp.config import compose, to_config
from softmax_exp.data import load_dataset
from softmax_exp.data.options import parse_options


def test_cifar_hflip_matches_the_course_preprocessing_of_images_and_their_mirrors(tmp_path):
    train, y_train, test, y_test = make_cifar_dir(tmp_path / "root")
    data = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "cache", hflip=True))
    # reference: the course's preprocessing on the 150 training images followed by their mirrors, made
    # from the raw CHW rows by flipping the last (width) axis
    chw = train.reshape(-1, 3, 32, 32)
    both = np.concatenate([chw[:150], chw[:150, :, :, ::-1]]).reshape(300, -1)
    rest = train[150:]
    ref = course_preprocess(np.concatenate([both, rest]), np.concatenate([y_train[:150], y_train[:150],
                                                                           y_train[150:]]),
                            test, y_test, num_training=300, num_validation=30, num_test=40)
    np.testing.assert_allclose(data.mean_image, ref["mean_image"], rtol=0, atol=1e-12)
    for split in ("train", "val", "test"):
        np.testing.assert_allclose(getattr(data, f"X_{split}"), ref[f"X_{split}"], rtol=0, atol=1e-4)
        np.testing.assert_array_equal(getattr(data, f"y_{split}"), ref[f"y_{split}"])
    # the mean of images and their mirrors is its own mirror
    mean = data.mean_image.reshape(32, 32, 3)
    np.testing.assert_array_equal(mean, mean[:, ::-1])


def test_hflip_leaves_validation_test_and_dev_images_as_they_are(tmp_path):
    make_cifar_dir(tmp_path / "root")
    plain = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "cache"))
    flipped = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "cache", hflip=True))
    assert flipped.X_train.shape == (300, 3073) and plain.X_train.shape == (150, 3073)
    for split in ("val", "test", "dev"):
        n = len(getattr(plain, f"y_{split}"))
        np.testing.assert_array_equal(flipped.raw_images(split, n), plain.raw_images(split, n))
        np.testing.assert_array_equal(getattr(flipped, f"y_{split}"), getattr(plain, f"y_{split}"))
    images = flipped.raw_images("train", 300)
    np.testing.assert_array_equal(images[:150], plain.raw_images("train", 150))
    np.testing.assert_array_equal(images[150:], images[:150, :, ::-1, :])
    assert flipped.fingerprint != plain.fingerprint and flipped.cache_path != plain.cache_path


def test_hflip_cached_and_in_memory_arrays_are_the_same(tmp_path):
    make_cifar_dir(tmp_path / "root")
    cached = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "cache", hflip=True))
    again = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "cache", hflip=True))
    memory = load_dataset(cifar_cfg(tmp_path / "root", tmp_path / "cache", hflip=True, cache=False))
    assert cached.cache_path and again.cache_path == cached.cache_path and memory.cache_path is None
    for name in ("X_train", "y_train", "X_val", "mean_image"):
        np.testing.assert_array_equal(getattr(again, name), getattr(memory, name))


def test_hflip_off_keeps_the_fingerprint_of_caches_made_before_the_option():
    assert "hflip" not in parse_options({"name": "digits"}).preprocessing()
    assert parse_options({"name": "digits", "hflip": True}).preprocessing()["hflip"] is True


def test_hflip_is_a_dataset_option_off_by_default():
    cfg = to_config(compose(["dataset=cifar10", "dataset.hflip=true"]))
    assert cfg.dataset.hflip is True
    assert to_config(compose([])).dataset.hflip is False
