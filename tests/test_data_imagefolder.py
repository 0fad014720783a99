"""Image folders: pixels, labels, splits, gray mode, resizing and a val/ folder."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import make_imagefolder
from PIL import Image

from softmax_exp.data import load_dataset


def _cfg(tmp_path, **overrides):
    return {
        "name": "imagefolder",
        "root": str(tmp_path / "img"),
        "num_validation": 4,
        "num_dev": 3,
        "cache_dir": str(tmp_path / "cache"),
        "dtype": "float64",
        **overrides,
    }


def _undo(data, split):
    """(rows as uint8 HWC pixels, labels) of a split, undoing mean subtraction and the bias column."""
    X = getattr(data, f"X_{split}")
    X = X[:, :-1] if data.bias_trick else X
    return np.rint(X + data.mean_image).astype(np.uint8), getattr(data, f"y_{split}")


def _as_set(pixels, labels):
    return {(row.tobytes(), int(y)) for row, y in zip(pixels, labels, strict=True)}


def _expected(written, split, classes=("cat", "dog", "emu")):
    return {
        (px.reshape(-1).tobytes(), classes.index(path.split("/")[1]))
        for path, px in written[split].items()
    }


def test_rgb_folder_end_to_end(tmp_path):
    written = make_imagefolder(tmp_path / "img", size=(5, 4))
    data = load_dataset(_cfg(tmp_path))
    assert data.class_names == ("cat", "dog", "emu") and data.image_shape == (5, 4, 3)
    assert data.X_train.shape == (14, 61) and data.X_val.shape == (4, 61)
    assert data.X_test.shape == (18, 61) and data.X_dev.shape == (3, 61)
    train, val = _as_set(*_undo(data, "train")), _as_set(*_undo(data, "val"))
    assert not train & val and train | val == _expected(written, "train")
    assert _as_set(*_undo(data, "test")) == _expected(written, "test")
    assert _as_set(*_undo(data, "dev")) <= train
    np.testing.assert_allclose(data.X_train[:, :-1].mean(axis=0), 0.0, atol=1e-9)
    assert data.cache_path is not None and isinstance(data.X_train, np.memmap)


def test_gray_mode_and_split_caps(tmp_path):
    make_imagefolder(tmp_path / "img", size=(3, 7), mode="L")
    data = load_dataset(_cfg(tmp_path, mode="L", num_training=5, num_test=2, bias_trick=False))
    assert data.image_shape == (3, 7, 1) and data.X_train.shape == (5, 21)
    assert data.X_test.shape == (2, 21) and not data.bias_trick
    rgb = load_dataset(_cfg(tmp_path, mode="RGB", num_training=5, num_test=2))
    assert rgb.image_shape == (3, 7, 3) and rgb.dim == 64
    # RGB from a gray image repeats the channel
    pixels, _ = _undo(rgb, "train")
    hwc = pixels.reshape(-1, 3, 7, 3)
    np.testing.assert_array_equal(hwc[..., 0], hwc[..., 2])


def test_image_size_resizes_mixed_sizes(tmp_path):
    make_imagefolder(tmp_path / "img", size=(5, 4))
    Image.new("RGB", (10, 12), (200, 10, 30)).save(tmp_path / "img" / "test" / "dog" / "big.jpg")
    data = load_dataset(_cfg(tmp_path, image_size=[6, 8], subtract_mean=False))
    assert data.image_shape == (6, 8, 3) and data.X_test.shape == (19, 6 * 8 * 3 + 1)
    big = [
        row for row in data.X_test if np.abs(row[:-1].reshape(6, 8, 3) - (200, 10, 30)).max() <= 3
    ]
    assert len(big) == 1  # the .jpg was read and resized


def test_val_folder_is_used_when_present(tmp_path):
    written = make_imagefolder(tmp_path / "img", splits=("train", "val", "test"), per_class=3)
    data = load_dataset(_cfg(tmp_path, num_validation=None))
    assert data.X_train.shape[0] == 9 and data.X_val.shape[0] == 9
    assert _as_set(*_undo(data, "val")) == _expected(written, "val")
    assert _as_set(*_undo(data, "train")) == _expected(written, "train")


@pytest.mark.parametrize("seed_a, seed_b, same", [(0, 0, True), (0, 1, False)])
def test_split_seed_fixes_the_carved_validation_set(tmp_path, seed_a, seed_b, same):
    make_imagefolder(tmp_path / "img")
    a = load_dataset(_cfg(tmp_path, split_seed=seed_a, cache=False))
    b = load_dataset(_cfg(tmp_path, split_seed=seed_b, cache=False))
    assert (_as_set(*_undo(a, "val")) == _as_set(*_undo(b, "val"))) is same
