"""Misclassified images of the most confused pairs of classes: a row per pair (true -> predicted), the
images that went the wrong way, as the course's features notebook shows them per class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from softmax_exp.plots import pillow

MIN_TILE_PX = 64  # images are scaled up (nearest neighbour) to at least this


def save_misclassified_png(path: str | Path, images: Sequence[np.ndarray],
                           pairs: Sequence[tuple[int, int, int]], class_names: Sequence[str],
                           class_counts: Sequence[int], title: str = "") -> Path:
    """A gallery: row r shows ``images[r]`` ((n_r, H, W, channels) uint8, n_r >= 0), the images of true
    class ``pairs[r][0]`` predicted ``pairs[r][1]``, labelled with the pair, its count ``pairs[r][2]`` and
    its share of the true class (``class_counts``: (C,) rows of each class in the split). Writes a PNG at
    ``path`` and returns it."""
    from PIL import Image, ImageDraw

    if len(images) != len(pairs):
        raise ValueError(f"{len(images)} image rows for {len(pairs)} pairs")
    shape = next((im.shape[1:] for im in images if len(im)), (8, 8, 1))
    H, W = int(shape[0]), int(shape[1])
    scale = max(1, -(-MIN_TILE_PX // max(H, W)))
    tile_h, tile_w, gap = H * scale, W * scale, 6
    per_row = max([len(im) for im in images] + [1])
    f_label, f_title = pillow.font(14), pillow.font(16)
    label_h = 24
    top = 34 if title else 8
    width = max(16 + per_row * (tile_w + gap), 420, round(f_title.getlength(title)) + 24)
    height = top + max(len(pairs), 1) * (label_h + tile_h + 14)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        pillow.text(draw, (width / 2, 10), pillow.fit(title, f_title, width - 20), f_title, anchor="mt")
    if not pairs:
        pillow.text(draw, (width / 2, top + 20), "no misclassified image", f_label, anchor="mt")
    peak = max([int(im.max()) for im in images if len(im)] + [1])
    gain = 255.0 / peak if peak < 128 else 1.0  # digits' 0..16 pixels, stretched to be seen
    y = top
    for row, (true, pred, count) in zip(images, pairs, strict=True):
        share = count / class_counts[true] if class_counts[true] else float("nan")
        images_word = "image" if count == 1 else "images"
        label = (f"true {class_names[true]}, predicted {class_names[pred]}: {count} {images_word} "
                 f"({100 * share:.1f}% of {class_names[true]})")
        pillow.text(draw, (8, y + 4), pillow.fit(label, f_label, width - 16), f_label)
        y += label_h
        for k, image in enumerate(row):
            rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
            rgb = np.clip(np.rint(rgb * gain), 0, 255).astype(np.uint8) if gain != 1.0 else rgb
            big = np.repeat(np.repeat(np.asarray(rgb, dtype=np.uint8), scale, axis=0), scale, axis=1)
            canvas.paste(Image.fromarray(np.ascontiguousarray(big), "RGB"), (8 + k * (tile_w + gap), y))
        y += tile_h + 14
    path = Path(path)
    canvas.save(path, format="PNG", compress_level=1)
    return path
