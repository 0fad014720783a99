"""weights.png: the course's class templates, W drawn as one image per class (Pillow)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from softmax_exp.plots import pillow

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
    font = pillow.font(16)
    canvas = Image.new("RGB", weights_png_size(image_shape, len(class_names)), "white")
    draw = ImageDraw.Draw(canvas)
    boxes = weight_tile_boxes(image_shape, len(class_names))
    for tile, name, (x0, y0, x1, y1) in zip(tiles, class_names, boxes, strict=True):
        rgb = np.repeat(tile, 3, axis=2) if tile.shape[2] == 1 else tile[:, :, :3]
        big = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
        canvas.paste(Image.fromarray(np.ascontiguousarray(big), "RGB"), (x0, y0))
        label = pillow.fit(str(name), font, x1 - x0)
        pillow.text(draw, ((x0 + x1) / 2, y1 + LABEL_PX / 2), label, font, anchor="mm")
    path = Path(path)
    canvas.save(path, format="PNG", compress_level=1)
    return path

