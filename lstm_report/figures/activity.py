"""A layer on the probe: gate activation histograms, per-unit saturation, and the h and c
states over one sequence as heatmaps."""

from __future__ import annotations

import numpy as np

from lstm_report.figures.chart import (
    FAINT,
    WIDTH,
    Chart,
    Dots,
    Line,
    Note,
    Raster,
    panel,
    row,
    ticks_at,
)
from lstm_report.figures.encode import (
    GATE_COLORS,
    MAX_CELLS,
    EmbeddedFigure,
    finite_max_abs,
    heat_png,
    png_uri,
    pool_max_abs,
)
from lstm_report.figures.heatmap import colorbar, colorbar_room, index_axis
from lstm_report.figures.histogram import Hist, hist_panels
from lstm_report.figures.scales import Scale, label_room, tick_label, unique_dots, xy
from lstm_report.figures.svg import draw
from lstm_report.model.analyses import LayerAnalysis
from lstm_report.model.layers import GATE_NAMES

STATE_SLOT = 360.0
"""The width of one state heatmap with its colour bar."""


def activity_charts(
    la: LayerAnalysis,
) -> tuple[EmbeddedFigure | None, EmbeddedFigure | None, EmbeddedFigure | None]:
    """Gate activation histograms, saturation scatter, and h/c heatmaps of one sequence."""
    a = la.activity
    if a is None:
        return None, None, None
    label = la.weights.label
    groups = []
    for ga in a.gates:
        counts = np.asarray(ga.hist_counts, np.float64)
        total = counts.sum() or 1.0
        series = [
            Hist(np.asarray(ga.hist_edges, np.float64), counts / total, GATE_COLORS[ga.gate], "")
        ]
        groups.append(
            (f"{ga.gate} ({GATE_NAMES[ga.gate]}) mean {ga.mean:.2f}", "activation", series)
        )
    hist = draw(
        hist_panels(groups, 220.0, "fraction of values", fill=True),
        f"Distribution of each gate's activations of {label} on the probe data",
    )
    return hist, _saturation(la), _states(la)


def _saturation(la: LayerAnalysis) -> EmbeddedFigure:
    """Per gate, each unit's fraction of probe steps left- against right-saturated."""
    a = la.activity
    assert a is not None
    height = 270.0
    vals = [0.0, 0.25, 0.5, 0.75, 1.0]
    room = label_room([tick_label(v, vals) for v in vals])
    boxes = row(len(a.gates), WIDTH, height, left=room, gap=24.0, bottom=46.0)
    side = min(min(w for _, _, w, _ in boxes), boxes[0][3])
    panels = []
    for k, (box, ga) in enumerate(zip(boxes, a.gates)):
        x, y, w, _ = box
        x += (w - side) / 2 if k else 0.0
        sx, sy = Scale(-0.02, 1.02, x, x + side), Scale(-0.02, 1.02, y + side, y)
        notes: tuple[Note, ...] = ()
        if not any(ga.unit_left) and not any(ga.unit_right):
            notes = (Note(x + side / 2, y + side * 0.45, "no unit saturates"),)
        panels.append(
            panel(
                (x, y, side, side),
                title=f"{ga.gate} ({GATE_NAMES[ga.gate]})",
                xlabel="fraction left-saturated",
                ylabel="fraction right-saturated" if k == 0 else "",
                xticks=ticks_at(sx, vals),
                yticks=ticks_at(sy, vals),
                ytick_labels=k == 0,
                guides=(Line(xy(sx, sy, [0, 1], [1, 0]), FAINT, 0.6),),
                dots=(
                    Dots(
                        unique_dots(xy(sx, sy, ga.unit_left, ga.unit_right)),
                        GATE_COLORS[ga.gate],
                        2.8,
                    ),
                ),
                notes=notes,
            )
        )
    return draw(
        Chart(WIDTH, height, tuple(panels)),
        f"Saturation of each gate of {la.weights.label}: per unit, the fraction of probe steps "
        "left- versus right-saturated",
    )


def _states(la: LayerAnalysis) -> EmbeddedFigure:
    """Heatmaps of h (and c, for an LSTM) over the probe sequence shown, units by steps."""
    a = la.activity
    assert a is not None
    shown = [(a.h, "hidden state h_t")]
    if a.c is not None:  # a GRU has no cell state
        shown.append((a.c, "cell state c_t"))
    width = 2 * STATE_SLOT if len(shown) == 2 else STATE_SLOT
    height = 290.0
    slot = width / len(shown)
    panels, bars = [], []
    for k, (arr, name) in enumerate(shown):
        vmax = finite_max_abs([arr])
        steps_n, units_n = arr.shape
        left = label_room([str(units_n - 1)])
        right = colorbar_room(vmax, "value")
        ((x, y, w, h),) = row(1, slot, height, left=left, right=right, bottom=46.0)
        x += k * slot
        m = pool_max_abs(arr.T, min(MAX_CELLS, int(h)), min(MAX_CELLS, int(w)))
        sx, xticks = index_axis(steps_n, m.shape[1], x, x + w)
        sy, yticks = index_axis(units_n, m.shape[0], y, y + h, vertical=True)
        panels.append(
            panel(
                (x, y, w, h),
                title=f"{name}, sequence {a.sequence}",
                xlabel="step" if m.shape[1] == steps_n else "step (pooled)",
                ylabel="unit" if m.shape[0] == units_n else "unit (pooled)",
                xticks=xticks,
                yticks=yticks,
                raster=Raster(png_uri(heat_png(m, vmax)), x, y, w, h, m, vmax),
                frame=True,
            )
        )
        bars.append(colorbar(x + w + 14.0, y, h, vmax, name.split(" ")[-1].removesuffix("_t")))
    return draw(
        Chart(width, height, tuple(panels), tuple(bars)),
        f"Heatmaps of the {' and '.join(n.split(' ')[0] for _, n in shown)} states of "
        f"{la.weights.label} over probe sequence {a.sequence}",
    )
