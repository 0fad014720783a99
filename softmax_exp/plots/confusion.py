"""The confusion matrix as a picture: rows the true classes, columns the predicted ones, each row
normalised to the fraction of its class (so a row reads "where the images of this class went"), the
class names on both axes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from softmax_exp.learn.metrics import normalized_by_true_class
from softmax_exp.plots import pillow

LOW, HIGH = np.array([255, 255, 255], dtype=np.float64), np.array([31, 94, 168], dtype=np.float64)


def cell_px(num_classes: int) -> int:
    """A cell's side: 56 px for up to 10 classes, smaller for more (a 100-class matrix stays ~1000 px)."""
    return int(np.clip(560 // max(num_classes, 1), 10, 56))


def save_confusion_png(path: str | Path, confusion: np.ndarray, class_names: Sequence[str],
                       title: str = "") -> Path:
    """Draw ``confusion`` (C, C) int64 counts (``[i, j]``: true class i predicted j) normalised per true
    class: each cell shaded by its fraction (its square root: a few percent show) and, where it fits and is
    not empty, written as a percentage; the diagonal
    (right) framed; each row's count of images at its right. ``title``: a caption at the top (cut to the
    width). Writes a PNG at ``path`` and returns it."""
    from PIL import Image, ImageDraw

    confusion = np.asarray(confusion)
    C = confusion.shape[0]
    if confusion.shape != (C, C) or len(class_names) != C:
        raise ValueError(f"confusion must be (C, C) with C = {len(class_names)} class names; got "
                         f"{confusion.shape}")
    frac = normalized_by_true_class(confusion)
    cell = cell_px(C)
    f_name, f_cell, f_axis, f_title = pillow.font(14), pillow.font(max(9, min(14, cell // 3))), \
        pillow.font(15), pillow.font(16)
    names = [pillow.fit(str(n), f_name, 140) for n in class_names]
    name_w = max(f_name.getlength(n) for n in names)
    left = round(34 + name_w + 10)
    top = round(58 + name_w + 10)
    counts = confusion.sum(axis=1)
    count_w = max(f_name.getlength(f"n={c}") for c in counts.tolist())
    width = round(left + C * cell + 10 + count_w + 16)
    height = round(top + C * cell + 16)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        pillow.text(draw, (width / 2, 10), pillow.fit(title, f_title, width - 20), f_title, anchor="mt")
    pillow.text(draw, (left + C * cell / 2, 32), "predicted class", f_axis, anchor="mt")
    pillow.vertical_text(canvas, (14, top + C * cell / 2), "true class", f_axis)
    for i in range(C):
        y = top + i * cell
        pillow.text(draw, (left - 8, y + cell / 2), names[i], f_name, anchor="rm")
        pillow.vertical_text(canvas, (left + i * cell + cell / 2, top - 6 - f_name.getlength(names[i]) / 2),
                             names[i], f_name)
        pillow.text(draw, (left + C * cell + 10, y + cell / 2), f"n={counts[i]}", f_name, anchor="lm")
        for j in range(C):
            x = left + j * cell
            v = frac[i, j]
            color = tuple(int(c) for c in np.rint(LOW + (HIGH - LOW) * np.sqrt(v)))  # small shares seen
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=color)
            if cell >= 26 and confusion[i, j]:  # an empty cell stays blank
                ink = "white" if v > 0.3 else pillow.INK
                pillow.text(draw, (x + cell / 2, y + cell / 2), f"{100 * v:.0f}", f_cell, fill=ink,
                            anchor="mm")
        draw.rectangle([left + i * cell, y, left + i * cell + cell - 1, y + cell - 1], outline=pillow.INK)
    draw.rectangle([left - 1, top - 1, left + C * cell, top + C * cell], outline=pillow.GRID)
    path = Path(path)
    canvas.save(path, format="PNG", compress_level=1)
    return path
