"""val_acc_heatmap.png: a sweep's validation accuracy over lr x reg, a heatmap for a grid and a scatter
for a search (matplotlib's Agg canvas, imported only when a sweep draws it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softmax_exp.plots.ticks import format_values, log_ticks


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
    panels: Sequence[str] | None = None,
):
    """The sweep's picture as a matplotlib Figure (Agg, no pyplot state), :data:`HEATMAP_PNG_SIZE` px a
    panel.

    Jobs on a grid (:func:`grid_of`): a heatmap, one equal cell per (lr, reg) pair, lr across and reg up,
    ticks labelled with the values, the val_acc printed in each cell, the best cell framed red, failed
    (NaN) cells grey and hatched, pairs never run blank. Otherwise (Optuna, random search): a scatter on
    log axes, points coloured by val_acc, the best ringed red, failed jobs as crosses, pruned trials of a
    search (``pruned``, (n,) bool: their val_acc is only what they reached when stopped) as small grey
    rings, outside the colour scale. A val_acc colourbar.

    ``panels`` (n,) names each job's panel (its model, say ``model=svm``): with more than one name, a panel
    per name side by side (in name order, each its own map and best, one colour scale for all), ``title``
    above them all.
    """
    from matplotlib.figure import Figure

    lr, reg, acc = (np.asarray(v, dtype=np.float64).ravel() for v in (lr, reg, val_acc))
    if not lr.size == reg.size == acc.size:
        raise ValueError(f"lr, reg and val_acc differ in length: {lr.size}, {reg.size}, {acc.size}")
    stopped = np.zeros(lr.size, bool) if pruned is None else np.asarray(pruned, dtype=bool).ravel()
    if stopped.size != lr.size:
        raise ValueError(f"pruned has {stopped.size} values for {lr.size} jobs")
    panel = np.asarray(panels if panels is not None else [""] * lr.size, dtype=str).ravel()
    if panel.size != lr.size:
        raise ValueError(f"panels has {panel.size} values for {lr.size} jobs")
    names = sorted(set(panel.tolist()))
    finite = acc[np.isfinite(acc) & ~stopped]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.005, hi + 0.005
    panels = len(names) if len(names) > 1 else 1
    width, height = HEATMAP_PNG_SIZE
    top = _SUPTITLE_PX if panels > 1 else 0
    fig = Figure(figsize=(panels * width / 100, (height + top) / 100), dpi=100)
    for i, name in enumerate(names if panels > 1 else [None]):
        mine = np.ones(lr.size, bool) if name is None else panel == name
        ax = fig.add_axes(_panel_rect(HEATMAP_AXES, i, panels, top))
        cax = fig.add_axes(_panel_rect(_COLORBAR_AXES, i, panels, top))
        _draw_panel(fig, ax, cax, lr[mine], reg[mine], acc[mine], stopped[mine], (lo, hi))
        ax.set_title(title if name is None else f"{name} ({int(mine.sum())} jobs)", fontsize=12)
    if panels > 1:
        fig.suptitle(title, fontsize=13, y=1 - 8 / (height + top), va="top")
    return fig


_SUPTITLE_PX = 34  # the strip above the panels for the title of a picture of several models


def _panel_rect(rect: tuple[float, float, float, float], i: int, panels: int, top: int):
    """``rect`` (a panel's fractions) as the fractions of panel ``i`` of ``panels`` side by side, under a
    strip of ``top`` px."""
    width, height = HEATMAP_PNG_SIZE
    left, bottom, w, h = rect
    total = height + top
    return ((i + left) / panels, bottom * height / total, w / panels, h * height / total)


def _draw_panel(fig, ax, cax, lr, reg, acc, stopped, scale: tuple[float, float]) -> None:
    """One map of jobs (lr, reg, val_acc, pruned) on ``ax`` with its colourbar (val_acc ``scale``) on
    ``cax``."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cmap = colormaps[HEATMAP_CMAP]
    norm = Normalize(*scale)
    fig.colorbar(ScalarMappable(norm, cmap), cax=cax).set_label("val_acc", fontsize=11)
    cax.tick_params(labelsize=9)
    grid = grid_of(lr, reg, acc) if not stopped.any() else None
    if grid is not None:
        _draw_grid(ax, cax, grid, cmap, norm)
    else:
        _draw_scatter(ax, lr, reg, acc, cmap, norm, stopped)
    ax.set_xlabel("learning rate (lr)", fontsize=11)
    ax.set_ylabel("regularization strength (reg)", fontsize=11)


def save_val_acc_heatmap_png(
    path: str | Path,
    lr: Sequence[float],
    reg: Sequence[float],
    val_acc: Sequence[float],
    title: str = "val_acc over lr x reg",
    pruned: Sequence[bool] | None = None,
    panels: Sequence[str] | None = None,
) -> Path:
    """Write :func:`val_acc_figure` of the jobs (lr, reg, val_acc, pruned, panels), each (n,), as a PNG at
    ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = val_acc_figure(lr, reg, val_acc, title, pruned, panels)
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
    fig_w, fig_h = ax.figure.get_size_inches() * ax.figure.dpi
    _, _, width, _ = ax.get_position().bounds
    slanted = max(map(len, xlabels)) * 7.5 > 0.9 * fig_w * width / ncols
    if slanted:
        raise_by = 0.07 * HEATMAP_PNG_SIZE[1] / fig_h  # 28 px
        for a in (ax, cax):
            left, bottom, width, height = a.get_position().bounds
            a.set_position((left, bottom + raise_by, width, height - raise_by))
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
    cell_w, cell_h = fig_w * width / ncols, fig_h * height / nrows
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
