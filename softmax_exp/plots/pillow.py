"""What the Pillow pictures (loss.png, weights.png) share: the font, text placed by its ink box, lines
broken where a value is not finite."""

from __future__ import annotations

import functools

import numpy as np

INK = (34, 34, 34)
GRID = (228, 228, 228)


@functools.lru_cache(maxsize=8)
def font(size: int):
    """Pillow's bundled font at ``size`` px: scalable with Pillow >= 10.1 and FreeType; else (older Pillow,
    no FreeType) the fixed bitmap font, smaller but readable. Every layout measures its text, so both fit."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def text(draw, xy: tuple[float, float], text: str, font, fill=INK, anchor: str = "lt") -> None:
    """Draw ``text`` with its ink box placed by ``anchor`` (l/m/r then t/m/b) at ``xy``; measured with the
    font's bbox rather than Pillow's anchors so the bitmap fallback font places text the same way."""
    left, top, right, bottom = font.getbbox(text)
    x = xy[0] - {"l": left, "m": (left + right) / 2, "r": right}[anchor[0]]
    y = xy[1] - {"t": top, "m": (top + bottom) / 2, "b": bottom}[anchor[1]]
    draw.text((x, y), text, font=font, fill=fill)


def fit(text: str, font, width: float) -> str:
    """``text``, cut and ended with '...' if it is wider than ``width`` px."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def vertical_text(canvas, center: tuple[float, float], text: str, font, fill=INK) -> None:
    """``text`` rotated to read bottom to top, centred at ``center``."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(mask).text((1 - left, 1 - top), text, font=font, fill=255)
    mask = mask.rotate(90, expand=True)
    x, y = round(center[0] - mask.width / 2), round(center[1] - mask.height / 2)
    canvas.paste(fill, (x, y, x + mask.width, y + mask.height), mask)


def polylines(draw, x: np.ndarray, y: np.ndarray, fill, width: int) -> None:
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

