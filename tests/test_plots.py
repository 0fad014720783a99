"""The pictures: they decode at their documented size, and show the data as claimed.

The choices (ticks, scale, smoothing, grid or scatter) are tested on the pure helpers; the pictures are
tested on their decoded pixels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from softmax_exp.plots import heatmap, pillow, weights
from softmax_exp.plots.heatmap import (
    HEATMAP_AXES,
    HEATMAP_PNG_SIZE,
    grid_of,
    save_val_acc_heatmap_png,
    val_acc_figure,
)
from softmax_exp.plots.loss import LOSS_PNG_SIZE, loss_axis, moving_average, save_loss_png
from softmax_exp.plots.ticks import format_values, log_ticks, nice_ticks
from softmax_exp.plots.weights import save_weights_png, weight_images, weight_tile_boxes, weights_png_size


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
    pillow.font.cache_clear()
    try:
        save_loss_png(tmp_path / "loss.png", np.linspace(3, 1, 100), title="run")
        save_weights_png(tmp_path / "w.png", np.ones((65, 10)), (8, 8, 1), list("abcdefghij"), True)
    finally:
        pillow.font.cache_clear()
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
        strip = px[y1:y1 + weights.LABEL_PX, x0:x1].sum(axis=2) < 300  # dark text on white
        cols = np.nonzero(strip.any(axis=0))[0]
        assert cols.size > 10  # a word, not a dot
        assert abs((cols.min() + cols.max()) / 2 - (x1 - x0) / 2) <= 3
        rows = np.nonzero(strip.any(axis=1))[0]
        assert rows.max() - rows.min() >= 10  # a readable font: at least 10 px tall


def test_weights_png_size_puts_5_tiles_a_row():
    assert weights_png_size((32, 32, 3), 10) == (5 * (128 + 8) + 8, 2 * (128 + weights.LABEL_PX + 8) + 8)
    assert weights_png_size((8, 8, 1), 3)[0] == 3 * (128 + 8) + 8


# ---------------------------------------------------------------------------------------------- sweep

LR3 = [1e-7, 5e-7, 5e-6]
REG3 = [1e4, 5e4, 1e5]


def _grid_jobs(acc):
    lr, reg = np.meshgrid(LR3, REG3, indexing="ij")  # job k: lr LR3[k // 3], reg REG3[k % 3]
    return lr.ravel(), reg.ravel(), np.asarray(acc, dtype=np.float64)


def test_grid_of_a_full_and_a_partial_grid():
    lr, reg, acc = _grid_jobs([0.31, 0.35, 0.36, 0.39, 0.40, 0.38, 0.29, np.nan, 0.21])
    g = grid_of(lr, reg, acc)
    assert g.lr.tolist() == LR3 and g.reg.tolist() == REG3
    assert g.val_acc[2, 1] == 0.38  # row reg 1e5, column lr 5e-7
    assert g.ran.all() and g.failed.sum() == 1 and g.failed[1, 2]
    part = grid_of(lr[:6], reg[:6], acc[:6])  # two of three lr: still every pair of those ran
    assert part is not None and part.val_acc.shape == (3, 2)
    holes = grid_of(lr[[0, 1, 2, 4, 8]], reg[[0, 1, 2, 4, 8]], acc[[0, 1, 2, 4, 8]])
    assert holes is not None and holes.ran.sum() == 5 and not holes.ran[0, 2]


def test_grid_of_random_search_is_none():
    rng = np.random.default_rng(0)
    assert grid_of(10 ** rng.uniform(-8, -5, 20), 10 ** rng.uniform(3, 5, 20), rng.uniform(0, 1, 20)) is None
    assert grid_of([1e-7, 2e-7, 3e-7], [1e4, 1e4, 2e4], [0.1, 0.2, 0.3]) is not None  # 3 of 6 pairs ran


def test_grid_of_keeps_the_best_of_a_pair_run_twice():
    g = grid_of([1e-7, 1e-7, 1e-7], [1e4, 1e4, 1e4], [0.3, np.nan, 0.35])
    assert g.val_acc.tolist() == [[0.35]] and not g.failed.any()


def test_format_values_reads_as_the_values():
    assert format_values(LR3) == ["1e-07", "5e-07", "5e-06"]
    assert format_values([1e4, 2.5e4, 1e5]) == ["1e+04", "2.5e+04", "1e+05"]
    assert format_values([1.0001e-7, 1.0002e-7]) == ["1.0001e-07", "1.0002e-07"]


def _cell_centres(nrows, ncols):
    """Pixel centre (x, y) of each cell (row r from the bottom, column c) and the cell size in px."""
    (w, h), (left, bottom, aw, ah) = HEATMAP_PNG_SIZE, HEATMAP_AXES
    cw, ch = w * aw / ncols, h * ah / nrows
    return {(r, c): (w * left + (c + 0.5) * cw, h * (1 - bottom) - (r + 0.5) * ch)
            for r in range(nrows) for c in range(ncols)}, (cw, ch)


def _cell_colour(px, centre, size):
    """Median colour of a patch in the cell's upper left, clear of the printed value and of the frame."""
    x, y = round(centre[0] - 0.3 * size[0]), round(centre[1] - 0.3 * size[1])
    return np.median(px[y - 3:y + 4, x - 3:x + 4].reshape(-1, 3), axis=0)


def test_heatmap_colours_cells_in_the_order_of_their_val_acc(tmp_path):
    from matplotlib import colormaps

    acc = [0.31, 0.35, 0.36, 0.39, 0.40, 0.38, 0.29, np.nan, 0.21]
    px = _decode(save_val_acc_heatmap_png(tmp_path / "h.png", *_grid_jobs(acc), title="9 jobs"))
    assert px.shape[1::-1] == HEATMAP_PNG_SIZE
    centres, size = _cell_centres(3, 3)
    lut = (np.asarray(colormaps[heatmap.HEATMAP_CMAP](np.linspace(0, 1, 256)))[:, :3] * 255)
    position = {}  # the value of each finite cell, read back from its colour through the colour map
    for k, a in enumerate(acc):
        cell = (k % 3, k // 3)  # row: reg index, column: lr index
        colour = _cell_colour(px, centres[cell], size)
        dist = np.linalg.norm(lut - colour, axis=1)
        if np.isfinite(a):
            assert dist.min() < 12, f"cell {cell} is not a colour of the map: {colour}"
            position[a] = int(dist.argmin())
        else:
            nan_colour = colour
    order = sorted(position)
    assert [position[a] for a in order] == sorted(position.values())
    assert position[order[0]] < 10 and position[order[-1]] > 245  # the colours span the map
    finite_colours = [_cell_colour(px, centres[(k % 3, k // 3)], size) for k, a in enumerate(acc)
                      if np.isfinite(a)]
    assert min(np.linalg.norm(nan_colour - c) for c in finite_colours) > 40  # failed: unlike every cell
    assert np.linalg.norm(nan_colour - 255) > 40  # and unlike a blank (never run) cell


def test_heatmap_frames_the_best_cell_and_leaves_pairs_never_run_blank(tmp_path):
    lr, reg, acc = _grid_jobs([0.31, 0.35, 0.36, 0.39, 0.40, 0.38, 0.29, np.nan, 0.21])
    keep = [0, 1, 2, 3, 4, 7, 8]  # (lr 5e-7, reg 1e5) and (lr 5e-6, reg 1e4) never ran
    px = _decode(save_val_acc_heatmap_png(tmp_path / "h.png", lr[keep], reg[keep], acc[keep]))
    centres, (cw, ch) = _cell_centres(3, 3)
    red = (px[:, :, 0] > 180) & (px[:, :, 1] < 90) & (px[:, :, 2] < 90)
    for (r, c), (x, y) in centres.items():
        # the cell without the pixels it shares with its neighbours (cell edges fall between pixels)
        box = red[math.ceil(y - ch / 2):math.floor(y + ch / 2), math.ceil(x - cw / 2):math.floor(x + cw / 2)]
        if (r, c) == (1, 1):  # reg 5e4, lr 5e-7: val_acc 0.40
            assert box.sum() > 2 * (cw + ch), "the best cell has no frame"
        else:
            assert box.sum() == 0
    for cell in [(2, 1), (0, 2)]:
        assert (_cell_colour(px, centres[cell], (cw, ch)) == 255).all()


def test_heatmap_ticks_read_as_the_values_and_the_colourbar_is_labelled():
    fig = val_acc_figure(*_grid_jobs([0.31, 0.35, 0.36, 0.39, 0.40, 0.38, 0.29, np.nan, 0.21]), title="t")
    ax, cax = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1e-07", "5e-07", "5e-06"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1e+04", "5e+04", "1e+05"]
    assert cax.get_ylabel() == "val_acc" and ax.get_title() == "t"


def test_random_search_points_draw_as_a_log_scatter(tmp_path):
    rng = np.random.default_rng(1)
    lr, reg = 10 ** rng.uniform(-7.5, -5.5, 20), 10 ** rng.uniform(3.5, 5.2, 20)
    acc = rng.uniform(0.2, 0.4, 20)
    acc[[3, 11]] = np.nan
    fig = val_acc_figure(lr, reg, acc)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels and all(s in format_values([float(s) for s in labels]) for s in labels)
    assert any("failed (2)" in t.get_text() for t in ax.get_legend().get_texts())
    with Image.open(save_val_acc_heatmap_png(tmp_path / "h.png", lr, reg, acc)) as im:
        assert im.size == HEATMAP_PNG_SIZE


def test_pruned_trials_draw_as_grey_rings_outside_the_colour_scale():
    lr, reg = [1e-7, 1e-6, 1e-5, 3e-7, 3e-6], [1e3, 1e4, 1e5, 3e3, 3e4]
    acc = [0.30, 0.36, 0.12, 0.34, 0.05]  # the pruned ones (0.12, 0.05) stopped early, far below
    pruned = [False, False, True, False, True]
    fig = val_acc_figure(lr, reg, acc, pruned=pruned)
    ax, cax = fig.axes
    assert cax.get_ylim() == (0.30, 0.36)  # the scale of the finished trials only
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "pruned (2)" in texts and "best: 0.360" in texts
    # a search whose points happen to sit on a grid is still a scatter once some are pruned
    grid = val_acc_figure([1e-7, 1e-7, 1e-6, 1e-6], [1e3, 1e4, 1e3, 1e4], [0.3, 0.1, 0.35, 0.32],
                          pruned=[False, True, False, False])
    assert grid.axes[0].get_xscale() == "log"
    with pytest.raises(ValueError, match="pruned has 1 values for 5 jobs"):
        val_acc_figure(lr, reg, acc, pruned=[True])


@pytest.mark.parametrize(
    "lr, reg, acc",
    [([], [], []), ([1e-7, 5e-7], [1e4, 1e4], [np.nan, np.nan]), ([1e-7], [1e4], [0.3]),
     ([1e-7, 2e-7], [1e4, 3e4], [np.nan, np.nan]), ([1e-7, 2e-7], [1e4, 3e4], [0.3, 0.3])],
    ids=["empty", "nan-only-grid", "single", "nan-only-scatter", "equal-acc"],
)
def test_heatmap_of_degenerate_sweeps_decodes(tmp_path, lr, reg, acc):
    with Image.open(save_val_acc_heatmap_png(tmp_path / "h.png", lr, reg, acc)) as im:
        assert im.size == HEATMAP_PNG_SIZE
        im.load()


def test_heatmap_cells_show_a_fourth_decimal_only_when_three_would_merge_two_values():
    from softmax_exp.plots.heatmap import accuracy_decimals

    assert accuracy_decimals(np.array([0.356, 0.314, np.nan, 0.356])) == 3
    assert accuracy_decimals(np.array([0.4136, 0.4144, 0.4164, np.nan])) == 4  # 0.414 and 0.414
    fig = val_acc_figure(*_grid_jobs([0.4136, 0.4164, 0.4098, 0.4144, 0.4164, 0.4108, 0.41, 0.40, 0.39]))
    ax, _ = fig.axes
    texts = {t.get_text() for t in ax.texts}
    assert {"0.4136", "0.4144", "0.4164\nbest", "0.4100"} <= texts


def test_jobs_of_two_models_get_a_panel_each_on_one_colour_scale(tmp_path):
    lr, reg, acc = _grid_jobs([0.31, 0.35, 0.36, 0.39, 0.40, 0.38, 0.29, np.nan, 0.21])
    models = ["model=svm"] * 9 + ["model=softmax"] * 9
    both = [np.r_[v, v] for v in (lr, reg)] + [np.r_[np.asarray(acc) - 0.05, acc]]
    fig = val_acc_figure(*both, title="val_acc over lr x reg (18 jobs)", panels=models)
    ax1, cax1, ax2, cax2 = fig.axes
    assert [ax1.get_title(), ax2.get_title()] == ["model=softmax (9 jobs)", "model=svm (9 jobs)"]
    assert fig.get_suptitle() == "val_acc over lr x reg (18 jobs)"
    assert cax1.get_ylim() == cax2.get_ylim() == pytest.approx((0.16, 0.40))  # one scale: colours compare
    assert ax1.get_position().x1 < ax2.get_position().x0  # side by side, not overlapping
    # each panel its own best: the softmax's 0.40, the svm's 0.35
    texts = [[t.get_text() for t in a.texts if "best" in t.get_text()] for a in (ax1, ax2)]
    assert texts == [["0.400\nbest"], ["0.350\nbest"]]
    with Image.open(save_val_acc_heatmap_png(tmp_path / "h.png", *both, panels=models)) as im:
        assert im.size == (2 * HEATMAP_PNG_SIZE[0], HEATMAP_PNG_SIZE[1] + 34)
    # one model: the picture of before, no panel title of its own
    one = val_acc_figure(lr, reg, acc, title="t", panels=["model=svm"] * 9)
    assert len(one.axes) == 2 and one.axes[0].get_title() == "t" and one.get_suptitle() == ""
    with pytest.raises(ValueError, match="panels has 3 values for 9 jobs"):
        val_acc_figure(lr, reg, acc, panels=["svm"] * 3)
