"""Heatmaps of weight matrices: a panel per gate on one colour scale centred on zero,
pooled to at most one cell per pixel, and the colour bar beside them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lstm_report.figures.chart import WIDTH, Chart, ColorBar, Raster, Tick, panel, row, ticks_at
from lstm_report.figures.encode import (
    MAX_CELLS,
    POOLING,
    EmbeddedFigure,
    finite_max_abs,
    heat_png,
    lut_png,
    png_uri,
    pool_max_abs,
)
from lstm_report.figures.scales import (
    FONT,
    Scale,
    fitting_ticks,
    inner_ticks,
    label_room,
    text_width,
    tick_label,
)
from lstm_report.figures.svg import draw
from lstm_report.model.layers import GATE_NAMES


def index_axis(
    n: int, shown: int, a: float, b: float, vertical: bool = False
) -> tuple[Scale, list[Tick]]:
    """An image axis of n rows or columns shown as ``shown`` pixels: each pixel spans a block
    of the original indices, ticks at whole indices, as many as fit."""
    block = -(-n // shown)
    scale = Scale(-0.5, shown * block - 0.5, a, b)
    if n > 1:
        vals = fitting_ticks(0, n - 1, abs(scale(n - 1) - scale(0)), True, vertical)
    else:
        vals = [0.0]
    return scale, [Tick(round(scale(v), 1), tick_label(v, vals)) for v in vals]


def colorbar(x: float, y: float, h: float, vmax: float, label: str) -> ColorBar:
    """A vertical colour bar for the scale ±vmax, ticks on round numbers inside it."""
    scale = Scale(-vmax, vmax, y + h, y)
    vals = inner_ticks(-vmax, vmax, 5)
    ticks = ticks_at(scale, vals)
    widest = max((text_width(t.label) for t in ticks), default=0.0)
    label_at = x + 12.0 + 8.0 + widest + 4.0 + FONT * 0.6
    return ColorBar(x, y, 12.0, h, label, label_at, ticks, png_uri(lut_png()))


def colorbar_room(vmax: float, label: str) -> float:
    """Width a colour bar takes with its gap, ticks, tick labels and label."""
    vals = inner_ticks(-vmax, vmax, 5)
    widest = max((text_width(tick_label(v, vals)) for v in vals), default=0.0)
    return 14.0 + 12.0 + 8.0 + widest + 6.0 + FONT + 4.0


def _row_names(row_labels: Sequence[str] | None, n_rows: int) -> tuple[list[str] | None, float]:
    """The names on the rows (None: index ticks instead), and the room left of the panels."""
    # Rows are never pooled this few; names stay on them even when the units are pooled.
    if row_labels is None or n_rows > 32:
        return None, label_room([str(n_rows - 1)])
    names = [str(n) for n in row_labels]
    return names, min(400.0, max((text_width(n) for n in names), default=0.0) + 16.0)


def heatmaps(
    mats: Sequence[np.ndarray],
    family: str,
    row_labels: Sequence[str] | None,
    layer: str,
    gates: Sequence[str] = ("i", "f", "c", "o"),
    rows_are: str = "input feature",
    *,
    inputs: bool | None = None,
    columns_are: str = "unit",
    recurrent_rows: str = "from unit (previous h)",
) -> tuple[EmbeddedFigure, str | None]:
    """One panel per gate, one colour scale centred on zero shared by all of them.

    A panel shows at most one cell per pixel (and MAX_CELLS): larger matrices are pooled,
    so that the browser only ever scales a heatmap up and no strong weight falls between
    the screen's pixels. ``inputs``: rows are inputs (``rows_are``), not ``recurrent_rows``
    (None: W or ΔW are, U is not)."""
    vmax = finite_max_abs(mats)
    n_rows, n_cols = mats[0].shape
    if inputs is None:
        inputs = family.endswith("W")  # W or ΔW: rows are input features
    height = 260.0 if not inputs else min(450.0, max(180.0, 90.0 + 16.0 * n_rows))
    names, left = _row_names(row_labels if inputs else None, n_rows)
    labelled = names is not None
    bar_label = "change" if family.startswith("Δ") else "weight"
    right = colorbar_room(vmax, bar_label)
    # the gap holds a last tick label ("1000") and the next panel's first ("0")
    boxes = row(len(gates), WIDTH, height, left=left, right=right, gap=24.0, bottom=46.0)
    _, _, w, h = boxes[0]
    shown = [pool_max_abs(m, min(MAX_CELLS, int(h)), min(MAX_CELLS, int(w))) for m in mats]
    rows, cols = shown[0].shape
    pooled_note = None
    if shown[0].shape != mats[0].shape:
        pooled_note = f"{family} matrices of {n_rows}×{n_cols} shown as {rows}×{cols} ({POOLING})"
    panels = []
    for k, (box, gate, m) in enumerate(zip(boxes, gates, shown)):
        x, y, w, h = box
        sx, xticks = index_axis(n_cols, cols, x, x + w)
        sy, yticks = index_axis(n_rows, rows, y, y + h, vertical=True)
        if names is not None:
            yticks = [Tick(round(sy(j), 1), name) for j, name in enumerate(names)]
        panels.append(
            panel(
                box,
                title=f"{family} · {GATE_NAMES[gate]} gate ({gate})",
                xlabel=columns_are if cols == n_cols else f"{columns_are} (pooled)",
                ylabel="" if k or labelled else (rows_are if inputs else recurrent_rows),
                xticks=xticks,
                yticks=yticks,
                ytick_labels=k == 0,
                raster=Raster(png_uri(heat_png(m, vmax)), x, y, w, h, m, vmax),
                frame=True,
            )
        )
    x, y, w, h = boxes[-1]
    chart = Chart(WIDTH, height, tuple(panels), (colorbar(x + w + 14.0, y, h, vmax, bar_label),))
    return draw(chart, _alt(family, gates, layer, inputs, vmax)), pooled_note


def _alt(family: str, gates: Sequence[str], layer: str, inputs: bool, vmax: float) -> str:
    """The text that stands in for a row of heatmaps."""
    names_text = ", ".join(f"{family}_{g}" for g in gates)
    return (
        f"Heatmaps of the {'input' if inputs else 'recurrent'} weights {names_text} of "
        f"{layer}, blue negative, red positive, shared scale ±{vmax:.3g}"
    )
