"""The pictures: they decode at their documented size, and show the data as claimed.

The choices (ticks, scale, smoothing, grid or scatter) are tested on the pure helpers; the pictures are
tested on their decoded pixels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from softmax_exp import plots
from softmax_exp.plots import (
    LOSS_PNG_SIZE,
    log_ticks,
    loss_axis,
    moving_average,
    nice_ticks,
    save_loss_png,
    save_weights_png,
    weight_images,
    weight_tile_boxes,
    weights_png_size,
)


def _decode(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def _is_round_step(step: float) -> bool:
    mantissa = step / 10.0 ** math.floor(math.log10(step))
    return any(math.isclose(mantissa, m) for m in (1, 2, 5))


# ---------------------------------------------------------------------------------------------- ticks


@pytest.mark.parametrize(
    "lo, hi, n",
    [(0, 8.3, 6), (0, 166.4, 6), (0, 699, 8), (0, 19999, 8), (-5.826, 2.0, 5), (0.0, 0.003, 4), (3, 3, 5),
     (1e20, 3.3e20, 5), (0, 1, 8)],
)
def test_nice_ticks_are_round_and_cover_the_range(lo, hi, n):
    ticks = nice_ticks(lo, hi, n)
    step = ticks[1] - ticks[0]
    assert _is_round_step(step)
    np.testing.assert_allclose(np.diff(ticks), step, rtol=1e-9)
    np.testing.assert_allclose(ticks / step, np.round(ticks / step), atol=1e-9)  # multiples of the step
    assert ticks[0] <= lo and ticks[-1] >= hi and len(ticks) - 1 <= n
    assert all(len(f"{t:g}") <= 7 for t in ticks)  # no 0.30000000000000004


def test_nice_ticks_for_iterations_are_the_obvious_ones():
    assert nice_ticks(0, 699, 8, min_step=1).tolist() == [0, 100, 200, 300, 400, 500, 600, 700]
    assert nice_ticks(0, 19999, 8, min_step=1).tolist() == [0, 5000, 10000, 15000, 20000]
    assert nice_ticks(0, 1, 8, min_step=1).tolist() == [0, 1]  # no iteration 0.2


def test_log_ticks_are_powers_of_ten_or_1_2_5_over_few_decades():
    assert log_ticks(1.8, 1050).tolist() == [1, 10, 100, 1000, 10000]
    assert log_ticks(150, 900).tolist() == [100, 200, 500, 1000]
    wide = log_ticks(1.5, 1e20, 8)
    assert len(wide) <= 8 and wide[0] <= 1.5 and wide[-1] >= 1e20
    np.testing.assert_allclose(np.log10(wide), np.round(np.log10(wide)))


# ---------------------------------------------------------------------------------------------- loss


def test_a_falling_loss_gets_a_linear_axis_from_zero_with_round_ticks():
    rng = np.random.default_rng(0)
    loss = 2 + 6 * np.exp(-np.arange(700) / 120) + 0.15 * rng.standard_normal(700)
    log, ticks = loss_axis(loss)
    assert not log
    assert ticks[0] == 0 and ticks[-1] >= loss.max()
    assert ticks.tolist() == [0, 2, 4, 6, 8, 10]


def test_a_loss_spanning_decades_gets_a_log_axis():
    loss = 2 + 1e3 * np.exp(-np.arange(1500) / 60)  # a huge reg: starts near 1e3, ends near 2
    log, ticks = loss_axis(loss)
    assert log and ticks[0] <= loss.min() and ticks[-1] >= loss.max()
    assert not loss_axis(np.linspace(50, 2, 100))[0]  # a factor 25 stays linear


def test_loss_axis_ignores_a_diverged_tail_and_survives_no_finite_value():
    log, ticks = loss_axis(np.array([2.3, 2.1, 1.9, np.inf, np.nan]))
    assert not log and ticks.tolist()[0] == 0 and ticks[-1] >= 2.3
    assert loss_axis(np.array([np.nan, np.nan]))[1].tolist() == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_moving_average_on_a_known_series():
    x = np.arange(10.0)
    np.testing.assert_allclose(moving_average(x, 3), [0.5, 1, 2, 3, 4, 5, 6, 7, 8, 8.5])
    np.testing.assert_allclose(moving_average(x, 5)[:3], [1.0, 1.5, 2.0])  # ends: the clipped window
    np.testing.assert_array_equal(moving_average(x, 1), x)
    assert moving_average(np.array([]), 5).size == 0


def test_moving_average_is_nan_only_where_the_window_holds_a_nan():
    x = np.array([1.0, 2.0, 3.0, 4.0, np.nan, 6.0, 7.0, 8.0])
    out = moving_average(x, 3)
    assert np.isnan(out).tolist() == [False, False, False, True, True, True, False, False]
    np.testing.assert_allclose(out[[0, 1, 2, 6, 7]], [1.5, 2.0, 3.0, 7.0, 7.5])


def test_moving_average_wants_an_odd_window():
    with pytest.raises(ValueError, match="odd"):
        moving_average(np.ones(5), 4)


@pytest.mark.parametrize(
    "loss",
    [
        np.linspace(2.3, 0.4, 1500),
        np.full(7, 1.25),  # flat: no zero-height axis
        np.array([2.3, 2.0, np.nan]),  # a diverged run: the NaN is left out
        np.array([2.3, 1e30, np.inf, np.nan]),  # blown up: a log axis up to 1e30
        np.array([]),  # nothing trained
        np.array([np.nan, np.nan]),  # nothing finite
        np.array([2.3]),  # one iteration
        2 + 6 * np.exp(-np.arange(25000) / 4000),  # a long run
    ],
    ids=["long", "flat", "diverged", "blown-up", "empty", "nan-only", "single", "25000"],
)
def test_loss_png_decodes_at_its_size(tmp_path, loss):
    path = save_loss_png(tmp_path / "loss.png", loss, title="lr=0.001,reg=0.1")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == LOSS_PNG_SIZE
        im.load()


def test_loss_png_draws_the_curve(tmp_path):
    """A falling loss puts curve pixels high on the left and low on the right of the plot."""
    px = _decode(save_loss_png(tmp_path / "loss.png", np.linspace(3.0, 1.0, 500)))
    blue = (px[:, :, 2] > 150) & (px[:, :, 0] < 80)
    rows_left = np.nonzero(blue[:, 70])[0]
    rows_right = np.nonzero(blue[:, 620])[0]
    assert rows_left.size and rows_right.size
    assert rows_left.mean() < rows_right.mean()  # image rows grow downwards


def test_loss_png_starts_the_y_axis_at_zero(tmp_path):
    """A loss from 3 to 2 is drawn in the top third of the plot: the axis goes down to 0, not to 2."""
    px = _decode(save_loss_png(tmp_path / "loss.png", np.linspace(3.0, 2.0, 400)))
    rows = np.nonzero(((px[:, :, 2] > 150) & (px[:, :, 0] < 80))[:, 100:600].any(axis=1))[0]
    assert rows.size and rows.max() < 0.45 * LOSS_PNG_SIZE[1]


def test_loss_png_marks_where_the_loss_stops_being_finite(tmp_path):
    px = _decode(save_loss_png(tmp_path / "loss.png", np.r_[np.linspace(3, 2, 300), np.full(300, np.nan)]))
    red = (px[:, :, 0] > 180) & (px[:, :, 1] < 80) & (px[:, :, 2] < 80)
    cols = np.nonzero(red.sum(axis=0) > 50)[0]  # a vertical dashed line
    assert cols.size and 250 < cols.mean() < 400  # iteration 300 of an axis 0..600, 640 px wide


def test_pictures_draw_with_the_bitmap_font_of_an_old_pillow(tmp_path, monkeypatch):
    from PIL import ImageFont

    bitmap = ImageFont.load_default_imagefont()  # what load_default() gives without FreeType

    def old_load_default(**kwargs):  # Pillow < 10.1 has no size argument
        if kwargs:
            raise TypeError("load_default() got an unexpected keyword argument 'size'")
        return bitmap

    monkeypatch.setattr(ImageFont, "load_default", old_load_default)
    plots._font.cache_clear()
    try:
        save_loss_png(tmp_path / "loss.png", np.linspace(3, 1, 100), title="run")
        save_weights_png(tmp_path / "w.png", np.ones((65, 10)), (8, 8, 1), list("abcdefghij"), True)
    finally:
        plots._font.cache_clear()
    assert _decode(tmp_path / "loss.png").shape[:2] == LOSS_PNG_SIZE[::-1]
    assert _decode(tmp_path / "w.png").shape[1::-1] == weights_png_size((8, 8, 1), 10)


# ---------------------------------------------------------------------------------------------- weights


def test_weight_images_rescale_to_0_255():
    W = np.arange(2 * 2 * 1 * 3 + 3, dtype=np.float64).reshape(-1, 3)  # 4 pixels + bias row, 3 classes
    tiles = weight_images(W, (2, 2, 1), bias_trick=True)
    assert tiles.shape == (3, 2, 2, 1) and tiles.dtype == np.uint8
    assert tiles.min() == 0 and tiles.max() == 255


def test_weights_png_rejects_a_wrong_image_shape(tmp_path):
    with pytest.raises(ValueError, match="needs 12"):
        save_weights_png(tmp_path / "w.png", np.zeros((17, 2)), (2, 2, 3), ["a", "b"], bias_trick=True)


@pytest.mark.parametrize(
    "image_shape", [(32, 32, 3), (8, 8, 1), (28, 20, 1)], ids=["cifar", "digits", "28x20"]
)
def test_weight_tiles_are_big_and_show_the_template(tmp_path, image_shape):
    """Class 0's template is a known gradient; its tile in the PNG is that gradient, scaled up by an integer
    factor (nearest neighbour) to >= 128 px, with white around it."""
    H, Wd, ch = image_shape
    C = 10
    W = np.zeros((H * Wd * ch + 1, C))
    gradient = np.arange(H * Wd * ch, dtype=np.float64).reshape(H, Wd, ch)  # brighter to the bottom right
    W[:-1, 0] = gradient.ravel()
    W[-1] = 1e6  # the bias row is not part of any picture
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    px = _decode(save_weights_png(tmp_path / "w.png", W, image_shape, names, bias_trick=True))
    assert px.shape[1::-1] == weights_png_size(image_shape, C)

    x0, y0, x1, y1 = weight_tile_boxes(image_shape, C)[0]
    assert min(x1 - x0, y1 - y0) >= 128
    scale = (y1 - y0) // H
    assert (x1 - x0, y1 - y0) == (Wd * scale, H * scale)
    tile = px[y0:y1, x0:x1]
    expected = np.round(255 * gradient / gradient.max()).astype(int)
    expected = np.repeat(expected, 3, axis=2) if ch == 1 else expected
    np.testing.assert_array_equal(tile, np.kron(expected, np.ones((scale, scale, 1), dtype=int)))
    assert (px[y0:y1, x0 - 1] == 255).all() and (px[y0 - 1, x0:x1] == 255).all()  # nothing spills over
    x0, y0, x1, y1 = weight_tile_boxes(image_shape, C)[1]
    assert (px[y0:y1, x0:x1] == 0).all()  # class 1's weights are all the smallest weight


def test_class_names_are_centred_under_their_tiles(tmp_path):
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    W = np.random.default_rng(0).standard_normal((32 * 32 * 3 + 1, 10))
    px = _decode(save_weights_png(tmp_path / "w.png", W, (32, 32, 3), names, bias_trick=True))
    for x0, _, x1, y1 in weight_tile_boxes((32, 32, 3), 10):
        strip = px[y1:y1 + plots.LABEL_PX, x0:x1].sum(axis=2) < 300  # dark text on white
        cols = np.nonzero(strip.any(axis=0))[0]
        assert cols.size > 10  # a word, not a dot
        assert abs((cols.min() + cols.max()) / 2 - (x1 - x0) / 2) <= 3
        rows = np.nonzero(strip.any(axis=1))[0]
        assert rows.max() - rows.min() >= 10  # a readable font: at least 10 px tall


def test_weights_png_size_puts_5_tiles_a_row():
    assert weights_png_size((32, 32, 3), 10) == (5 * (128 + 8) + 8, 2 * (128 + plots.LABEL_PX + 8) + 8)
    assert weights_png_size((8, 8, 1), 3)[0] == 3 * (128 + 8) + 8
