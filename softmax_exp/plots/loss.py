"""loss.png: the course's loss plot, every minibatch's loss and its moving average over the iterations
(Pillow, a few milliseconds, a fixed size)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from softmax_exp.plots import pillow
from softmax_exp.plots.ticks import log_ticks, nice_ticks, tick_label

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
    f_tick, f_label, f_title = pillow.font(13), pillow.font(14), pillow.font(16)
    canvas = Image.new("RGB", LOSS_PNG_SIZE, "white")
    draw = ImageDraw.Draw(canvas)

    ylabels = [tick_label(t) for t in yticks]
    label_h = f_label.getbbox("loss")[3]
    left = round(8 + label_h + 10 + max(f_tick.getlength(s) for s in ylabels) + 8)
    top, bottom = 36, height - 50
    right = width - max(16, round(f_tick.getlength(tick_label(xticks[-1])) / 2) + 6)
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
        draw.line([(left, y), (right, y)], fill=pillow.GRID)
        draw.line([(left - 4, y), (left, y)], fill=pillow.INK)
        pillow.text(draw, (left - 7, y), s, f_tick, anchor="rm")
    for t in xticks:
        x = float(x_px(t))
        draw.line([(x, top), (x, bottom)], fill=pillow.GRID)
        draw.line([(x, bottom), (x, bottom + 4)], fill=pillow.INK)
        pillow.text(draw, (x, bottom + 7), tick_label(t), f_tick, anchor="mt")
    pillow.text(draw, ((left + right) / 2, height - 6), "iteration", f_label, anchor="mb")
    pillow.vertical_text(canvas, (8 + label_h / 2, (top + bottom) / 2), "loss (log scale)" if log else "loss",
                   f_label)
    pillow.text(draw, (width / 2, 10), pillow.fit(title or "loss", f_title, width - 20), f_title, anchor="mt")

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
        pillow.polylines(draw, xs, ys, _RAW_RGB if window > 1 else _AVG_RGB, 1 if window > 1 else 2)
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
            pillow.polylines(draw, xs, ys, _AVG_RGB, 3)
            curve_x.append(xs)
            curve_y.append(ys)
    else:
        pillow.text(draw, ((left + right) / 2, (top + bottom) / 2),
              "no finite loss" if n else "no loss recorded", f_label, fill=(120, 120, 120), anchor="mm")
    draw.rectangle([left, top, right, bottom], outline=pillow.INK)

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
        pillow.text(draw, (cx + pad + sample + gap, y), label, font, anchor="lm")

