"""Image folders: pixels, labels, splits, gray mode, resizing and a val/ folder."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import make_imagefolder, write_png16
from PIL import Image

from softmax_exp.data import load_dataset
from softmax_exp.data.imagefolder import _Decoder


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


def _sixteen_bit_folder(root, gray: bool, seed: int = 0) -> dict[str, np.ndarray]:
    """A 2-class folder of 16-bit PNGs (gray via Pillow, RGB by hand) covering the whole 0..65535 range,
    with 8-bit values widened by bit replication (v * 257) among them; returns {name: uint16 pixels}."""
    rng = np.random.default_rng(seed)
    shape = (4, 6) if gray else (4, 6, 3)
    written = {}
    for split in ("train", "test"):
        for name in ("dark", "light"):
            (root / split / name).mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 65536, size=shape, dtype=np.uint16)
                pixels.flat[:4] = [0, 65535, 255, 256]  # the ends, and the values a clip or >> 8 split
                pixels.flat[4:8] = np.array([1, 128, 254, 255], dtype=np.uint16) * 257
                path = root / split / name / f"img_{i}.png"
                if gray:
                    Image.fromarray(pixels).save(path)
                    assert Image.open(path).mode == "I;16"
                else:
                    write_png16(path, pixels)
                written[f"{split}/{name}/img_{i}.png"] = pixels
    return written


@pytest.mark.parametrize("gray", [True, False], ids=["gray_I16", "rgb48"])
def test_sixteen_bit_pngs_keep_the_high_byte(tmp_path, gray):
    written = _sixteen_bit_folder(tmp_path / "img", gray)
    mode = "L" if gray else "RGB"
    data = load_dataset(_cfg(tmp_path, mode=mode, num_validation=0, num_dev=1))
    got = _as_set(*_undo(data, "train")) | _as_set(*_undo(data, "test"))
    classes = ("dark", "light")
    expected = {((px >> 8).astype(np.uint8).reshape(-1).tobytes(), classes.index(path.split("/")[1]))
                for path, px in written.items()}
    assert got == expected  # every pixel, the clipped ones (>= 256) and the bit-replicated ones included
    rows = np.concatenate([_undo(data, s)[0] for s in ("train", "test")])
    assert {0, 1, 128, 254, 255} <= set(np.unique(rows).tolist())


def test_gray_and_rgb_sixteen_bit_pngs_map_alike(tmp_path):
    """Pillow keeps the high byte of 16-bit RGB PNGs itself; gray ones get the same mapping here."""
    pixels = np.arange(0, 65536, 2731, dtype=np.uint16)[:24].reshape(4, 6)
    Image.fromarray(pixels).save(tmp_path / "gray.png")
    write_png16(tmp_path / "rgb.png", np.repeat(pixels[..., None], 3, axis=2))
    decoder = _Decoder("RGB", None)
    np.testing.assert_array_equal(decoder.decode(tmp_path / "gray.png"), decoder.decode(tmp_path / "rgb.png"))
    np.testing.assert_array_equal(decoder.decode(tmp_path / "gray.png").reshape(4, 6, 3)[..., 1], pixels >> 8)
