"""Pictures of a training: the course's weight tiles, the loss curve, and the lr x reg accuracy map.

The weight tiles and the loss curve, drawn for every run, are drawn with Pillow (milliseconds, fixed pixel
size); the sweep's accuracy map, once per sweep, with matplotlib's Agg canvas, imported only then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TILE_MIN_PX = 64  # tiles are scaled up by an integer factor to at least this size
TITLE_PX = 16  # title strip above each tile
TILES_PER_ROW = 5  # as in the course: 2 rows of 5 for 10 classes
_PAD = 4


def weight_images(
    W: np.ndarray, image_shape: tuple[int, int, int], bias_trick: bool
) -> np.ndarray:
    """The course's weight images: W (D, C) without the bias row, one (H, W, channels) image per class,
    rescaled together so the smallest weight is 0 and the largest 255. Returns (C, H, W, channels) uint8."""
    H, Wd, ch = image_shape
    w = W[:-1] if bias_trick else W
    if w.shape[0] != H * Wd * ch:
        raise ValueError(
            f"W has {w.shape[0]} non-bias rows; image shape {image_shape} needs {H * Wd * ch}"
        )
    w = w.astype(np.float64).T.reshape(-1, H, Wd, ch)
    lo, hi = float(w.min()), float(w.max())
    scaled = 255.0 * (w - lo) / (hi - lo) if hi > lo else np.zeros_like(w)
    return np.round(scaled).astype(np.uint8)


def weights_png_size(image_shape: tuple[int, int, int], num_classes: int) -> tuple[int, int]:
    """(width, height) in pixels of the picture :func:`save_weights_png` draws."""
    tile = _tile_px(image_shape)
    cols = min(TILES_PER_ROW, num_classes)
    rows = math.ceil(num_classes / TILES_PER_ROW)
    return cols * (tile[1] + _PAD) + _PAD, rows * (tile[0] + TITLE_PX + _PAD) + _PAD


def save_weights_png(
    path: str | Path,
    W: np.ndarray,
    image_shape: tuple[int, int, int],
    class_names: Sequence[str],
    bias_trick: bool,
) -> Path:
    """Draw one tile per class (its weight image, titled with its name) into a PNG at ``path``."""
    from PIL import Image, ImageDraw

    tiles = weight_images(W, image_shape, bias_trick)
    if len(class_names) != tiles.shape[0]:
        raise ValueError(f"{len(class_names)} class names for W with {tiles.shape[0]} classes")
    th, tw = _tile_px(image_shape)
    scale = th // image_shape[0]
    canvas = Image.new("RGB", weights_png_size(image_shape, len(class_names)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, (tile, name) in enumerate(zip(tiles, class_names, strict=True)):
        r, k = divmod(c, TILES_PER_ROW)
        x = _PAD + k * (tw + _PAD)
        y = _PAD + r * (th + TITLE_PX + _PAD)
        rgb = np.repeat(tile, 3, axis=2) if tile.shape[2] == 1 else tile[:, :, :3]
        big = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
        canvas.paste(Image.fromarray(np.ascontiguousarray(big), "RGB"), (x, y + TITLE_PX))
        draw.text((x + 1, y + 2), str(name)[: max(1, tw // 6)], fill="black")
    path = Path(path)
    canvas.save(path, format="PNG")
    return path


LOSS_PNG_SIZE = (640, 400)  # (width, height) of loss.png


def save_loss_png(path: str | Path, loss: np.ndarray, title: str = "") -> Path:
    """The course's loss plot: minibatch loss (n,) against iteration number, 640 x 400 px.

    Drawn with Pillow: each pixel column shows the min..max of the iterations it covers, so a long
    history keeps its spread without drawing every point. Non-finite values (a diverged run) are left out.
    """
    from PIL import Image, ImageDraw

    width, height = LOSS_PNG_SIZE
    left, right, top, bottom = 64, width - 16, 28, height - 40
    canvas = Image.new("RGB", LOSS_PNG_SIZE, "white")
    draw = ImageDraw.Draw(canvas)
    loss = np.asarray(loss, dtype=np.float64)
    n = len(loss)
    finite = loss[np.isfinite(loss)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def y_px(v: float) -> float:
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    def x_px(i: float) -> float:
        return left + i / max(1, n - 1) * (right - left)

    for k in range(5):  # grid lines and tick labels
        v = lo + (hi - lo) * k / 4
        y = y_px(v)
        draw.line([(left, y), (right, y)], fill=(225, 225, 225))
        draw.text((4, y - 6), f"{v:.4g}", fill="black")
        i = (n - 1) * k / 4
        x = x_px(i)
        draw.line([(x, top), (x, bottom)], fill=(225, 225, 225))
        draw.text((x - 10, bottom + 6), f"{i:.0f}", fill="black")
    draw.rectangle([left, top, right, bottom], outline="black")
    if n and finite.size:
        cols = right - left
        edges = np.linspace(0, n, min(n, cols) + 1).astype(int)
        points = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            seg = loss[a:max(b, a + 1)]
            seg = seg[np.isfinite(seg)]
            if seg.size:
                x = x_px((a + b - 1) / 2)
                points += [(x, y_px(float(seg.max()))), (x, y_px(float(seg.min())))]
        if len(points) > 1:
            draw.line(points, fill=(31, 119, 180), width=1)
    draw.text(((left + right) // 2 - 45, height - 18), "Iteration number", fill="black")
    draw.text((left, 8), ("Loss value" + (f"   {title}" if title else ""))[:90], fill="black")
    path = Path(path)
    canvas.save(path, format="PNG")
    return path


def save_val_acc_heatmap_png(
    path: str | Path,
    lr: Sequence[float],
    reg: Sequence[float],
    val_acc: Sequence[float],
    title: str = "validation accuracy",
) -> Path:
    """The course's cross-validation picture: one marker per job at (log10 lr, log10 reg), coloured by
    val_acc; jobs without an accuracy (failed) are drawn as black crosses. 640 x 400 px."""
    lr, reg, acc = (np.asarray(v, dtype=np.float64) for v in (lr, reg, val_acc))
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ok = np.isfinite(acc)
    x, y = np.log10(lr), np.log10(reg)
    if ok.any():
        sc = ax.scatter(x[ok], y[ok], c=acc[ok], s=400, marker="s", cmap="coolwarm")
        fig.colorbar(sc, ax=ax, label="val_acc")
        for xi, yi, a in zip(x[ok], y[ok], acc[ok], strict=True):
            ax.annotate(f"{a:.3f}", (xi, yi), ha="center", va="center", fontsize=7)
    if (~ok).any():
        ax.scatter(x[~ok], y[~ok], c="black", marker="x", s=80, label="failed")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("log learning rate")
    ax.set_ylabel("log regularization strength")
    ax.set_title(title)
    _pad_limits(ax, x, y)
    return _save(fig, path)


def _pad_limits(ax, x: np.ndarray, y: np.ndarray) -> None:
    for values, set_lim in ((x, ax.set_xlim), (y, ax.set_ylim)):
        lo, hi = float(np.min(values)), float(np.max(values))
        pad = 0.25 * (hi - lo) if hi > lo else 0.5
        set_lim(lo - pad, hi + pad)


def _tile_px(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    scale = max(1, math.ceil(TILE_MIN_PX / image_shape[0]))
    return image_shape[0] * scale, image_shape[1] * scale


def _figure():
    from matplotlib.figure import Figure

    # fixed margins: a layout engine would measure every tick label on each save
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)
    return fig


def _save(fig, path: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    path = Path(path)
    fig.savefig(path, format="png", dpi=100)
    return path
