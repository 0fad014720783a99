"""Pictures of a training: the course's weight tiles, the loss curve, and the lr x reg accuracy map.

The weight tiles and the loss curve, drawn for every run, are drawn with Pillow (a few milliseconds, fixed
pixel size); the sweep's accuracy map, once per sweep, with matplotlib's Agg canvas, imported only then.
What a picture shows is decided by small pure helpers, tested on their own: :func:`nice_ticks`,
:func:`log_ticks`, :func:`loss_axis`, :func:`moving_average`, :func:`grid_of`, :func:`format_values`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------------------------
# Ticks, scales, smoothing: pure helpers


def nice_ticks(lo: float, hi: float, max_intervals: int = 5, min_step: float = 0.0) -> np.ndarray:
    """Round tick values covering [lo, hi]: the multiples of a step 1, 2 or 5 x 10^k (>= ``min_step``; 1 for
    iteration numbers), the smallest such step that needs at most ``max_intervals`` intervals, from the last
    multiple <= lo to the first >= hi.

    ``nice_ticks(0, 8.3)`` is [0, 2, 4, 6, 8, 10]; ``nice_ticks(0, 699, 8)`` is [0, 100, ..., 700].
    Returns (k,) float64, k >= 2, rounded so that 0.1 * 3 prints as 0.3.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"nice_ticks needs finite bounds, got lo={lo}, hi={hi}")
    if max_intervals < 1:
        raise ValueError(f"max_intervals must be >= 1, got {max_intervals}")
    lo, hi = min(lo, hi), max(lo, hi)
    if hi == lo:  # one value: an interval around it
        lo, hi = (0.0, 1.0) if lo == 0 else (lo - abs(lo) / 2, hi + abs(hi) / 2)
    exponent = math.floor(math.log10((hi - lo) / max_intervals))
    while True:
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**exponent
            if step < min_step:
                continue
            # the tolerance keeps 0.3 / 0.1 = 2.9999999999999996 from counting as an extra interval
            k0, k1 = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
            if k1 - k0 <= max_intervals:
                ticks = np.arange(k0, k1 + 1, dtype=np.float64) * step
                return np.round(ticks, max(0, -exponent)) + 0.0  # + 0.0: no "-0"
        exponent += 1


def log_ticks(lo: float, hi: float, max_ticks: int = 8) -> np.ndarray:
    """Round tick values for a log axis covering [lo, hi] (0 < lo <= hi): powers of ten, every decade or
    every k-th so at most ``max_ticks``; over at most 3 decades also 2 and 5 times a power of ten.
    From the last tick <= lo to the first >= hi. Returns (k,) float64, k >= 2."""
    if not (0 < lo <= hi < math.inf):
        raise ValueError(f"log_ticks needs 0 < lo <= hi < inf, got lo={lo}, hi={hi}")
    d0, d1 = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    d1 = max(d1, d0 + 1)
    if d1 - d0 <= 3:
        # float("5e-07") is the double nearest 5e-07; 5 * 10.0**-7 is not always
        ticks = [float(f"{m}e{d}") for d in range(d0, d1) for m in (1, 2, 5)] + [float(f"1e{d1}")]
        ticks = np.array(ticks)
        first = np.nonzero(ticks <= lo * (1 + 1e-9))[0][-1]
        last = np.nonzero(ticks >= hi * (1 - 1e-9))[0][0]
        return ticks[first:last + 1]
    every = math.ceil((d1 - d0) / max(1, max_ticks - 1))
    d0, d1 = every * math.floor(d0 / every), every * math.ceil(d1 / every)
    return np.array([float(f"1e{d}") for d in range(d0, d1 + 1, every)])


LOG_SPAN = 100.0  # a loss whose finite values span more than this (max / min) is drawn on a log axis


def loss_axis(loss: np.ndarray) -> tuple[bool, np.ndarray]:
    """The loss plot's y axis for a loss (n,): ``(log_scale, ticks)``.

    Linear from 0 (the lowest value if it is negative) to a round tick >= the largest finite value; a log
    scale when the finite loss is positive and spans more than :data:`LOG_SPAN`, as a run with a huge reg
    that starts near 1e3 and ends near 2 (or a diverging run). NaN and inf are ignored.
    """
    loss = np.asarray(loss, dtype=np.float64)
    finite = loss[np.isfinite(loss)]
    if finite.size == 0:
        return False, nice_ticks(0.0, 1.0, 6)
    lo, hi = float(finite.min()), float(finite.max())
    if lo > 0 and hi / lo > LOG_SPAN:
        return True, log_ticks(lo, hi)
    return False, nice_ticks(min(0.0, lo), max(0.0, hi), 6)


def moving_average_window(n: int) -> int:
    """The window the loss plot averages ``n`` iterations over: odd (centred), about n / 25, 1 below 50."""
    return 2 * (n // 50) + 1


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of x (n,): ``out[i]`` is the mean of ``x[i - h : i + h + 1]``, h = window // 2,
    the window clipped to the series (so the ends average over h + 1 to window - 1 values). A window that
    holds a NaN or inf gives NaN. ``window`` is odd and >= 1. Returns (n,) float64.

    From cumulative sums, O(n): exact to rounding for values of one magnitude (a loss), not across a
    blow-up to 1e300 (the windows after it are NaN/inf, which the plot leaves out anyway).
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 1, got {window}")
    x = np.asarray(x, dtype=np.float64).ravel()
    n, h = x.size, window // 2
    bad = ~np.isfinite(x)
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.concatenate(([0.0], np.cumsum(np.where(bad, 0.0, x))))
        nbad = np.concatenate(([0], np.cumsum(bad)))
        i = np.arange(n)
        a, b = np.maximum(i - h, 0), np.minimum(i + h + 1, n)
        out = (total[b] - total[a]) / (b - a)
    out[nbad[b] > nbad[a]] = np.nan
    return out


def format_values(values: Sequence[float]) -> list[str]:
    """Tick labels for hyperparameter values: 3 significant digits (``1e-07``, ``5e-07``, ``2.5e+04``,
    ``0.001``), more where two distinct values would otherwise print alike."""
    values = [float(v) for v in values]
    for digits in range(3, 18):
        labels = [f"{v:.{digits}g}" for v in values]
        if len(set(labels)) == len(set(values)):
            return labels
    return labels


def _tick_label(v: float) -> str:
    """An axis tick: plain for 0.001 .. 999999, else ``1e+20`` style."""
    if v == 0 or 1e-3 <= abs(v) < 1e6:
        return f"{v:.6g}"
    return f"{v:.3g}"


# ---------------------------------------------------------------------------------------------------------
# Pillow drawing helpers

_INK = (34, 34, 34)
_GRID = (228, 228, 228)


@functools.lru_cache(maxsize=8)
def _font(size: int):
    """Pillow's bundled font at ``size`` px: scalable with Pillow >= 10.1 and FreeType; else (older Pillow,
    no FreeType) the fixed bitmap font, smaller but readable. Every layout measures its text, so both fit."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def _text(draw, xy: tuple[float, float], text: str, font, fill=_INK, anchor: str = "lt") -> None:
    """Draw ``text`` with its ink box placed by ``anchor`` (l/m/r then t/m/b) at ``xy``; measured with the
    font's bbox rather than Pillow's anchors so the bitmap fallback font places text the same way."""
    left, top, right, bottom = font.getbbox(text)
    x = xy[0] - {"l": left, "m": (left + right) / 2, "r": right}[anchor[0]]
    y = xy[1] - {"t": top, "m": (top + bottom) / 2, "b": bottom}[anchor[1]]
    draw.text((x, y), text, font=font, fill=fill)


def _fit(text: str, font, width: float) -> str:
    """``text``, cut and ended with '...' if it is wider than ``width`` px."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _vertical_text(canvas, center: tuple[float, float], text: str, font, fill=_INK) -> None:
    """``text`` rotated to read bottom to top, centred at ``center``."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(mask).text((1 - left, 1 - top), text, font=font, fill=255)
    mask = mask.rotate(90, expand=True)
    x, y = round(center[0] - mask.width / 2), round(center[1] - mask.height / 2)
    canvas.paste(fill, (x, y, x + mask.width, y + mask.height), mask)


def _polylines(draw, x: np.ndarray, y: np.ndarray, fill, width: int) -> None:
    """Lines through the points (x, y), broken where y is not finite; a lone point is a dot."""
    ok = np.isfinite(y)
    breaks = np.nonzero(np.diff(ok.astype(np.int8)))[0] + 1
    for xs, ys, oks in zip(np.split(x, breaks), np.split(y, breaks), np.split(ok, breaks), strict=True):
        if not oks[0]:
            continue
        if xs.size == 1:
            r = max(1.5, width)
            draw.ellipse([xs[0] - r, ys[0] - r, xs[0] + r, ys[0] + r], fill=fill)
        else:
            draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=fill, width=width,
                      joint="curve" if width > 1 else None)


# ---------------------------------------------------------------------------------------------------------
# Loss curve

LOSS_PNG_SIZE = (640, 400)  # (width, height) of loss.png
_RAW_RGB = (170, 199, 232)  # light blue: every minibatch's loss
_AVG_RGB = (31, 119, 180)  # bold blue: its moving average
_BAD_RGB = (214, 39, 40)  # red: where the loss stops being finite


def save_loss_png(path: str | Path, loss: np.ndarray, title: str = "") -> Path:
    """The course's loss plot, 640 x 400 px: the minibatch loss (n,) against the iteration number.

    The raw loss is drawn light (a long run: each pixel column spans the min..max of its iterations), its
    centred :func:`moving_average` bold (of log loss on a log axis), the window named in the legend. The
    y axis is :func:`loss_axis`: from 0 with round ticks, or log when the loss spans decades. A diverged
    run's NaN/inf tail is left out and its first iteration marked. ``title`` is a short caption (the run
    name), cut with '...' to the width.
    """
    from PIL import Image, ImageDraw

    loss = np.asarray(loss, dtype=np.float64).ravel()
    n = loss.size
    log, yticks = loss_axis(loss)
    xticks = nice_ticks(0.0, float(max(n - 1, 1)), 8, min_step=1.0)
    width, height = LOSS_PNG_SIZE
    f_tick, f_label, f_title = _font(13), _font(14), _font(16)
    canvas = Image.new("RGB", LOSS_PNG_SIZE, "white")
    draw = ImageDraw.Draw(canvas)

    ylabels = [_tick_label(t) for t in yticks]
    label_h = f_label.getbbox("loss")[3]
    left = round(8 + label_h + 10 + max(f_tick.getlength(s) for s in ylabels) + 8)
    top, bottom = 36, height - 50
    right = width - max(16, round(f_tick.getlength(_tick_label(xticks[-1])) / 2) + 6)
    x0, x1 = float(xticks[0]), float(xticks[-1])
    y0, y1 = (math.log10(yticks[0]), math.log10(yticks[-1])) if log else (yticks[0], yticks[-1])

    def x_px(i):
        return left + (np.asarray(i, dtype=np.float64) - x0) / (x1 - x0) * (right - left)

    def y_px(v):
        v = np.asarray(v, dtype=np.float64)
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.log10(v)
        return bottom - (v - y0) / (y1 - y0) * (bottom - top)

    for t, s in zip(yticks, ylabels, strict=True):
        y = float(y_px(t))
        draw.line([(left, y), (right, y)], fill=_GRID)
        draw.line([(left - 4, y), (left, y)], fill=_INK)
        _text(draw, (left - 7, y), s, f_tick, anchor="rm")
    for t in xticks:
        x = float(x_px(t))
        draw.line([(x, top), (x, bottom)], fill=_GRID)
        draw.line([(x, bottom), (x, bottom + 4)], fill=_INK)
        _text(draw, (x, bottom + 7), _tick_label(t), f_tick, anchor="mt")
    _text(draw, ((left + right) / 2, height - 6), "iteration", f_label, anchor="mb")
    _vertical_text(canvas, (8 + label_h / 2, (top + bottom) / 2), "loss (log scale)" if log else "loss",
                   f_label)
    _text(draw, (width / 2, 10), _fit(title or "loss", f_title, width - 20), f_title, anchor="mt")

    finite = np.isfinite(loss)
    window = moving_average_window(n)
    curve_x: list[np.ndarray] = []  # every drawn point, to find an empty corner for the legend
    curve_y: list[np.ndarray] = []
    if finite.any():
        data_px = max(1, int(float(x_px(n - 1)) - left))
        if n <= data_px:
            xs, ys = x_px(np.arange(n)), y_px(loss)
        else:  # one min..max zigzag per pixel column: every minibatch's spread, ~2 points a column
            edges = np.arange(data_px + 1) * n // data_px
            lo = np.minimum.reduceat(np.where(finite, loss, np.inf), edges[:-1])
            hi = np.maximum.reduceat(np.where(finite, loss, -np.inf), edges[:-1])
            lo[~np.isfinite(lo)] = np.nan
            hi[~np.isfinite(hi)] = np.nan
            xs = np.repeat(x_px((edges[:-1] + edges[1:] - 1) / 2), 2)
            ys = y_px(np.column_stack([hi, lo]).ravel())
        _polylines(draw, xs, ys, _RAW_RGB if window > 1 else _AVG_RGB, 1 if window > 1 else 2)
        curve_x.append(xs)
        curve_y.append(ys)
        if window > 1:
            idx = np.unique(np.linspace(0, n - 1, min(n, 2 * data_px)).astype(np.int64))
            if log:  # on a log axis, the mean of log loss: an average of 1e3 and 1e19 is not near 1e3
                with np.errstate(divide="ignore", invalid="ignore"):
                    smooth = 10.0 ** moving_average(np.log10(loss), window)
            else:
                smooth = moving_average(loss, window)
            xs, ys = x_px(idx), y_px(smooth[idx])
            _polylines(draw, xs, ys, _AVG_RGB, 3)
            curve_x.append(xs)
            curve_y.append(ys)
    else:
        _text(draw, ((left + right) / 2, (top + bottom) / 2),
              "no finite loss" if n else "no loss recorded", f_label, fill=(120, 120, 120), anchor="mm")
    draw.rectangle([left, top, right, bottom], outline=_INK)

    legend = []  # (label, colour, line width, dashed)
    if finite.any():
        if window > 1:
            mean = "moving geometric mean" if log else "moving average"
            legend += [("minibatch loss", _RAW_RGB, 2, False),
                       (f"{mean} ({window} iterations)", _AVG_RGB, 3, False)]
        else:
            legend += [("minibatch loss", _AVG_RGB, 2, False)]
    if not finite.all():
        first_bad = int(np.argmin(finite))
        x = float(x_px(first_bad))
        for y in range(top + 1, bottom, 8):
            draw.line([(x, y), (x, min(y + 4, bottom - 1))], fill=_BAD_RGB, width=2)
        legend.append((f"not finite from iteration {first_bad}", _BAD_RGB, 2, True))
    if legend:
        _draw_legend(draw, legend, f_tick, (left, top, right, bottom), curve_x, curve_y)
    path = Path(path)
    canvas.save(path, format="PNG", compress_level=1)  # vs the default 6: 1.5 ms less, a 25% larger file
    return path


def _draw_legend(draw, entries, font, box, curve_x, curve_y) -> None:
    """A framed legend in the corner of ``box`` that the fewest drawn points fall in."""
    left, top, right, bottom = box
    sample, gap, pad = 26, 6, 6
    line_h = max(font.getbbox("Ag")[3], 12) + 4
    w = pad + sample + gap + max(font.getlength(e[0]) for e in entries) + pad
    h = pad + line_h * len(entries) + pad - 4
    xs = np.concatenate(curve_x) if curve_x else np.empty(0)
    ys = np.concatenate(curve_y) if curve_y else np.empty(0)
    corners = [(right - 8 - w, top + 8), (left + 8, top + 8), (right - 8 - w, bottom - 8 - h),
               (left + 8, bottom - 8 - h)]

    def crowd(corner):
        cx, cy = corner
        return int(np.count_nonzero((xs >= cx) & (xs <= cx + w) & (ys >= cy) & (ys <= cy + h)))

    cx, cy = min(corners, key=crowd)  # min keeps the first of equals: top right
    draw.rectangle([cx, cy, cx + w, cy + h], fill="white", outline=(190, 190, 190))
    for k, (label, colour, lw, dashed) in enumerate(entries):
        y = cy + pad + k * line_h + (line_h - 4) / 2
        if dashed:
            for x in range(int(cx + pad), int(cx + pad + sample), 8):
                draw.line([(x, y), (x + 4, y)], fill=colour, width=lw)
        else:
            draw.line([(cx + pad, y), (cx + pad + sample, y)], fill=colour, width=lw)
        _text(draw, (cx + pad + sample + gap, y), label, font, anchor="lm")


# ---------------------------------------------------------------------------------------------------------
# Weight tiles

TILE_MIN_PX = 128  # tiles are scaled up by an integer factor to at least this on their shorter side
LABEL_PX = 26  # class-name strip under each tile
TILES_PER_ROW = 5  # as in the course: 2 rows of 5 for 10 classes
_PAD = 8


def weight_images(
    W: np.ndarray, image_shape: tuple[int, int, int], bias_trick: bool
) -> np.ndarray:
    """The course's weight images: W (D, C) without the bias row, one (H, W, channels) image per class,
    rescaled together so the smallest weight is 0 and the largest 255 (weights that are not finite count as
    0). Returns (C, H, W, channels) uint8."""
    H, Wd, ch = image_shape
    w = W[:-1] if bias_trick else W
    if w.shape[0] != H * Wd * ch:
        raise ValueError(
            f"W has {w.shape[0]} non-bias rows; image shape {image_shape} needs {H * Wd * ch}"
        )
    w = w.astype(np.float64).T.reshape(-1, H, Wd, ch)
    finite = np.isfinite(w)
    if not finite.all():  # a diverged W: its finite weights are drawn, NaN and inf as 0
        w = np.where(finite, w, 0.0)
    lo, hi = float(w.min()), float(w.max())
    with np.errstate(over="ignore", invalid="ignore"):  # hi - lo overflows for weights near +-1e308
        scaled = 255.0 * (w / 2 - lo / 2) / (hi / 2 - lo / 2) if hi > lo else np.zeros_like(w)
    return np.round(np.clip(scaled, 0, 255)).astype(np.uint8)


def weight_tile_scale(image_shape: tuple[int, int, int]) -> int:
    """The integer factor a weight image is scaled up by: its shorter side becomes >= :data:`TILE_MIN_PX`."""
    return max(1, math.ceil(TILE_MIN_PX / min(image_shape[0], image_shape[1])))


def weight_tile_boxes(image_shape: tuple[int, int, int], num_classes: int) -> list[tuple[int, int, int, int]]:
    """Where :func:`save_weights_png` puts each class's tile: (left, top, right, bottom) px, right and
    bottom exclusive, class by class, :data:`TILES_PER_ROW` a row, the name in a strip under each."""
    scale = weight_tile_scale(image_shape)
    th, tw = image_shape[0] * scale, image_shape[1] * scale
    boxes = []
    for c in range(num_classes):
        r, k = divmod(c, TILES_PER_ROW)
        x, y = _PAD + k * (tw + _PAD), _PAD + r * (th + LABEL_PX + _PAD)
        boxes.append((x, y, x + tw, y + th))
    return boxes


def weights_png_size(image_shape: tuple[int, int, int], num_classes: int) -> tuple[int, int]:
    """(width, height) in pixels of the picture :func:`save_weights_png` draws."""
    scale = weight_tile_scale(image_shape)
    th, tw = image_shape[0] * scale, image_shape[1] * scale
    cols = min(TILES_PER_ROW, num_classes)
    rows = math.ceil(num_classes / TILES_PER_ROW)
    return cols * (tw + _PAD) + _PAD, rows * (th + LABEL_PX + _PAD) + _PAD


def save_weights_png(
    path: str | Path,
    W: np.ndarray,
    image_shape: tuple[int, int, int],
    class_names: Sequence[str],
    bias_trick: bool,
) -> Path:
    """The course's class templates: W (D, C) (with a bias row if ``bias_trick``) as C tiles of
    ``image_shape`` (H, W, channels), :func:`weight_images`, scaled up by :func:`weight_tile_scale`
    (nearest neighbour) so each is >= 128 px, the class name centred under each, 5 tiles a row. Writes a
    PNG of :func:`weights_png_size` at ``path``."""
    from PIL import Image, ImageDraw

    tiles = weight_images(W, image_shape, bias_trick)
    if len(class_names) != tiles.shape[0]:
        raise ValueError(f"{len(class_names)} class names for W with {tiles.shape[0]} classes")
    scale = weight_tile_scale(image_shape)
    font = _font(16)
    canvas = Image.new("RGB", weights_png_size(image_shape, len(class_names)), "white")
    draw = ImageDraw.Draw(canvas)
    boxes = weight_tile_boxes(image_shape, len(class_names))
    for tile, name, (x0, y0, x1, y1) in zip(tiles, class_names, boxes, strict=True):
        rgb = np.repeat(tile, 3, axis=2) if tile.shape[2] == 1 else tile[:, :, :3]
        big = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
        canvas.paste(Image.fromarray(np.ascontiguousarray(big), "RGB"), (x0, y0))
        _text(draw, ((x0 + x1) / 2, y1 + LABEL_PX / 2), _fit(str(name), font, x1 - x0), font, anchor="mm")
    path = Path(path)
    canvas.save(path, format="PNG", compress_level=1)
    return path


# ---------------------------------------------------------------------------------------------------------
# The sweep's accuracy over lr x reg


@dataclass(frozen=True)
class LrRegGrid:
    """Jobs on a grid: ``lr`` (ncols,) and ``reg`` (nrows,) the sorted distinct values; ``val_acc``
    (nrows, ncols), NaN where the pair failed or never ran; ``ran`` (nrows, ncols) bool."""

    lr: np.ndarray
    reg: np.ndarray
    val_acc: np.ndarray
    ran: np.ndarray

    @property
    def failed(self) -> np.ndarray:
        return self.ran & np.isnan(self.val_acc)


def grid_of(lr: Sequence[float], reg: Sequence[float], val_acc: Sequence[float]) -> LrRegGrid | None:
    """The jobs (lr, reg, val_acc), each (n,), as a grid, or None when they do not form one.

    They form one when at least half of the (distinct lr) x (distinct reg) pairs ran, unless every lr and
    every reg is distinct (random search, Optuna: n jobs in n x n cells). A pair run more than once keeps
    its best finite val_acc; NaN val_acc is a failed job. Jobs with a non-finite lr or reg are left out.
    """
    lr, reg, acc = (np.asarray(v, dtype=np.float64).ravel() for v in (lr, reg, val_acc))
    keep = np.isfinite(lr) & np.isfinite(reg)
    lr, reg, acc = lr[keep], reg[keep], acc[keep]
    if lr.size == 0:
        return None
    lrs, col = np.unique(lr, return_inverse=True)
    regs, row = np.unique(reg, return_inverse=True)
    ran = np.zeros((regs.size, lrs.size), dtype=bool)
    ran[row, col] = True
    pairs = int(ran.sum())
    if pairs > 1 and lrs.size == pairs and regs.size == pairs:
        return None
    if pairs < 0.5 * ran.size:
        return None
    grid = np.full(ran.shape, -np.inf)
    np.maximum.at(grid, (row, col), np.where(np.isnan(acc), -np.inf, acc))
    grid[np.isneginf(grid)] = np.nan
    return LrRegGrid(lrs, regs, grid, ran)


HEATMAP_PNG_SIZE = (640, 400)  # (width, height) of the sweep picture
HEATMAP_AXES = (0.17, 0.15, 0.6, 0.76)  # (left, bottom, width, height) of the map, figure fractions
HEATMAP_CMAP = "viridis"  # its lightness rises with the value: brighter cell, better val_acc
_COLORBAR_AXES = (0.82, 0.15, 0.03, 0.76)
_BEST_COLOR = "#d62728"  # red: in no viridis cell
_FAILED_FACE = "#c8c8c8"


def val_acc_figure(
    lr: Sequence[float],
    reg: Sequence[float],
    val_acc: Sequence[float],
    title: str = "val_acc over lr x reg",
    pruned: Sequence[bool] | None = None,
):
    """The sweep's picture as a matplotlib Figure (Agg, no pyplot state), :data:`HEATMAP_PNG_SIZE` px.

    Jobs on a grid (:func:`grid_of`): a heatmap, one equal cell per (lr, reg) pair, lr across and reg up,
    ticks labelled with the values, the val_acc printed in each cell, the best cell framed red, failed
    (NaN) cells grey and hatched, pairs never run blank. Otherwise (Optuna, random search): a scatter on
    log axes, points coloured by val_acc, the best ringed red, failed jobs as crosses, pruned trials of a
    search (``pruned``, (n,) bool: their val_acc is only what they reached when stopped) as small grey
    rings, outside the colour scale. A val_acc colourbar.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    lr, reg, acc = (np.asarray(v, dtype=np.float64).ravel() for v in (lr, reg, val_acc))
    if not lr.size == reg.size == acc.size:
        raise ValueError(f"lr, reg and val_acc differ in length: {lr.size}, {reg.size}, {acc.size}")
    stopped = np.zeros(lr.size, bool) if pruned is None else np.asarray(pruned, dtype=bool).ravel()
    if stopped.size != lr.size:
        raise ValueError(f"pruned has {stopped.size} values for {lr.size} jobs")
    fig = Figure(figsize=(HEATMAP_PNG_SIZE[0] / 100, HEATMAP_PNG_SIZE[1] / 100), dpi=100)
    ax = fig.add_axes(HEATMAP_AXES)
    cax = fig.add_axes(_COLORBAR_AXES)
    cmap = colormaps[HEATMAP_CMAP]
    finite = acc[np.isfinite(acc) & ~stopped]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.005, hi + 0.005
    norm = Normalize(lo, hi)
    fig.colorbar(ScalarMappable(norm, cmap), cax=cax).set_label("val_acc", fontsize=11)
    cax.tick_params(labelsize=9)
    grid = grid_of(lr, reg, acc) if not stopped.any() else None
    if grid is not None:
        _draw_grid(ax, cax, grid, cmap, norm)
    else:
        _draw_scatter(ax, lr, reg, acc, cmap, norm, stopped)
    ax.set_xlabel("learning rate (lr)", fontsize=11)
    ax.set_ylabel("regularization strength (reg)", fontsize=11)
    ax.set_title(title, fontsize=12)
    return fig


def save_val_acc_heatmap_png(
    path: str | Path,
    lr: Sequence[float],
    reg: Sequence[float],
    val_acc: Sequence[float],
    title: str = "val_acc over lr x reg",
    pruned: Sequence[bool] | None = None,
) -> Path:
    """Write :func:`val_acc_figure` of the jobs (lr, reg, val_acc, pruned), each (n,), as a PNG at
    ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = val_acc_figure(lr, reg, val_acc, title, pruned)
    FigureCanvasAgg(fig)
    path = Path(path)
    fig.savefig(path, format="png", dpi=100)
    return path


def accuracy_decimals(values: np.ndarray) -> int:
    """3 decimals for accuracies, 4 when 3 would show two different values (a validation set of more
    than 1000 images) as the same number."""
    finite = np.unique(values[np.isfinite(values)])
    return 3 if len(np.unique(np.round(finite, 3))) == len(finite) else 4


def _draw_grid(ax, cax, grid: LrRegGrid, cmap, norm) -> None:
    from matplotlib.patches import Rectangle

    nrows, ncols = grid.val_acc.shape
    xlabels = format_values(grid.lr)
    # labels wider than their cell (a 9 pt digit is ~7 px) are turned 30 degrees, the map raised for them
    slanted = max(map(len, xlabels)) * 7.5 > 0.9 * HEATMAP_PNG_SIZE[0] * HEATMAP_AXES[2] / ncols
    if slanted:
        for a in (ax, cax):
            left, bottom, width, height = a.get_position().bounds
            a.set_position((left, bottom + 0.07, width, height - 0.07))
    shown = np.ma.masked_invalid(grid.val_acc)
    ax.imshow(shown, cmap=cmap.with_extremes(bad=(0, 0, 0, 0)), norm=norm, origin="lower", aspect="auto",
              interpolation="nearest", extent=(-0.5, ncols - 0.5, -0.5, nrows - 0.5))
    ax.set_xlim(-0.5, ncols - 0.5)
    ax.set_ylim(-0.5, nrows - 0.5)
    ax.set_xticks(range(ncols), xlabels, fontsize=9, rotation=30 if slanted else 0,
                  ha="right" if slanted else "center", rotation_mode="anchor" if slanted else "default")
    ax.set_yticks(range(nrows), format_values(grid.reg), fontsize=9)
    ax.set_xticks(np.arange(ncols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(nrows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    for side in ax.spines.values():
        side.set_visible(False)

    _, _, width, height = ax.get_position().bounds
    cell_w, cell_h = HEATMAP_PNG_SIZE[0] * width / ncols, HEATMAP_PNG_SIZE[1] * height / nrows
    decimals = accuracy_decimals(grid.val_acc)
    # a bold "0.412" (5 characters; 6 with a 4th decimal) over two lines fits in the frame
    fontsize = min(14.0, 0.15 * cell_w * 5 / (2 + decimals), 0.2 * cell_h)
    best = np.unravel_index(np.nanargmax(grid.val_acc), grid.val_acc.shape) if np.isfinite(
        grid.val_acc).any() else None
    for (r, c), a in np.ndenumerate(grid.val_acc):
        if grid.failed[r, c]:
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=_FAILED_FACE, edgecolor="#888888",
                                   hatch="//", linewidth=0, zorder=1))
            if fontsize >= 5:
                ax.text(c, r, "failed", ha="center", va="center", fontsize=fontsize, color="#333333",
                        bbox={"facecolor": _FAILED_FACE, "edgecolor": "none", "pad": 1}, zorder=2)
        elif np.isfinite(a) and fontsize >= 5:
            red, green, blue, _ = cmap(norm(a))
            ink = "black" if 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.45 else "white"
            label = f"{a:.{decimals}f}\nbest" if (r, c) == best else f"{a:.{decimals}f}"
            ax.text(c, r, label, ha="center", va="center", fontsize=fontsize, color=ink,
                    fontweight="bold" if (r, c) == best else "normal", zorder=2)
    if best is not None:
        lw = 4.0  # points; inset by half of it and 1.5 px (in cell units): the frame lies inside the cell
        inset_px = lw * 100 / 72 / 2 + 1.5
        dx, dy = inset_px / cell_w, inset_px / cell_h
        r, c = best
        ax.add_patch(Rectangle((c - 0.5 + dx, r - 0.5 + dy), 1 - 2 * dx, 1 - 2 * dy, fill=False,
                               edgecolor=_BEST_COLOR, linewidth=lw, zorder=3))


def _draw_scatter(ax, lr, reg, acc, cmap, norm, pruned=None) -> None:
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    ok = np.isfinite(lr) & np.isfinite(reg) & (lr > 0) & (reg > 0)  # a log axis shows positive values
    pruned = np.zeros(lr.size, bool) if pruned is None else pruned
    lr, reg, acc, pruned = lr[ok], reg[ok], acc[ok], pruned[ok]
    ax.set_xscale("log")
    ax.set_yscale("log")
    if lr.size == 0:
        ax.text(0.5, 0.5, "no jobs", transform=ax.transAxes, ha="center", va="center", fontsize=12,
                color="#777777")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    good = np.isfinite(acc) & ~pruned
    ax.scatter(lr[good], reg[good], c=acc[good], cmap=cmap, norm=norm, s=90, edgecolors="#333333",
               linewidths=0.6, zorder=3)
    if pruned.any():
        ax.scatter(lr[pruned], reg[pruned], s=45, facecolors="none", edgecolors="#888888", linewidths=1.4,
                   zorder=3, label=f"pruned ({int(pruned.sum())})")
    failed = ~np.isfinite(acc) & ~pruned
    if failed.any():
        ax.scatter(lr[failed], reg[failed], marker="x", color="#333333", s=70, linewidths=2, zorder=3,
                   label=f"failed ({int(failed.sum())})")
    if good.any():
        b = int(np.nanargmax(np.where(good, acc, np.nan)))
        ax.scatter([lr[b]], [reg[b]], s=380, facecolors="none", edgecolors=_BEST_COLOR, linewidths=2.5,
                   zorder=4, label=f"best: {acc[b]:.3f}")
    has_legend = bool(ax.get_legend_handles_labels()[0])
    for values, axis, set_lim in ((lr, ax.xaxis, ax.set_xlim), (reg, ax.yaxis, ax.set_ylim)):
        lo, hi = float(values.min()), float(values.max())
        ticks = log_ticks(lo, hi, 7)
        decades = max(math.log10(ticks[-1] / ticks[0]), 1.0)
        pad = 10 ** (0.08 * decades)
        lo_lim, hi_lim = min(lo, ticks[0]) / pad, max(hi, ticks[-1]) * pad
        if has_legend and axis is ax.yaxis:  # an empty strip on top for the legend: it covers no point
            hi_lim *= 10 ** (0.18 * math.log10(hi_lim / lo_lim))
        set_lim(lo_lim, hi_lim)
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FixedFormatter(format_values(ticks)))
        axis.set_minor_formatter(NullFormatter())  # matplotlib labels minor log ticks on short axes
    ax.tick_params(labelsize=9)
    ax.grid(which="major", color="#e4e4e4", linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    if has_legend:
        ax.legend(loc="upper center", ncol=2, fontsize=9, framealpha=0.9, markerscale=0.7)
