"""The per-run pictures: they decode, have their documented size, and show the data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from softmax_exp.plots import LOSS_PNG_SIZE, save_loss_png, save_weights_png, weight_images


@pytest.mark.parametrize(
    "loss",
    [
        np.linspace(2.3, 0.4, 1500),
        np.full(7, 1.25),  # flat: no zero-height axis
        np.array([2.3, 2.0, np.nan]),  # a diverged run: the NaN is left out
        np.array([]),  # nothing trained
    ],
    ids=["long", "flat", "diverged", "empty"],
)
def test_loss_png_decodes_at_its_size(tmp_path, loss):
    path = save_loss_png(tmp_path / "loss.png", loss, title="lr=0.001,reg=0.1")
    with Image.open(path) as im:
        assert im.size == LOSS_PNG_SIZE
        im.load()


def test_loss_png_draws_the_curve(tmp_path):
    """A falling loss puts curve pixels high on the left and low on the right of the plot."""
    path = save_loss_png(tmp_path / "loss.png", np.linspace(3.0, 1.0, 500))
    with Image.open(path) as im:
        px = np.asarray(im.convert("RGB")).astype(int)
    blue = (px[:, :, 2] > 150) & (px[:, :, 0] < 80)
    rows_left = np.nonzero(blue[:, 70])[0]
    rows_right = np.nonzero(blue[:, 620])[0]
    assert rows_left.size and rows_right.size
    assert rows_left.mean() < rows_right.mean()  # image rows grow downwards


def test_weight_images_rescale_to_0_255():
    W = np.arange(2 * 2 * 1 * 3 + 3, dtype=np.float64).reshape(-1, 3)  # 4 pixels + bias row, 3 classes
    tiles = weight_images(W, (2, 2, 1), bias_trick=True)
    assert tiles.shape == (3, 2, 2, 1) and tiles.dtype == np.uint8
    assert tiles.min() == 0 and tiles.max() == 255


def test_weights_png_rejects_a_wrong_image_shape(tmp_path):
    with pytest.raises(ValueError, match="needs 12"):
        save_weights_png(tmp_path / "w.png", np.zeros((17, 2)), (2, 2, 3), ["a", "b"], bias_trick=True)
