"""The bias of every unit, a line per gate, unit_forget_bias' start marked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lstm_report.cells.base import GateWeights
from lstm_report.figures.chart import (
    GUIDE,
    NARROW,
    Chart,
    LegendEntry,
    Line,
    legend_room,
    panel,
    row,
    side_legend,
    ticks_at,
    unit_axis,
)
from lstm_report.figures.encode import GATE_COLORS, EmbeddedFigure
from lstm_report.figures.scales import Scale, label_room, nice_limits, segments, tick_label, xy
from lstm_report.figures.svg import draw
from lstm_report.model.layers import GATE_NAMES


def biases_chart(gates: Sequence[GateWeights], layer: str) -> EmbeddedFigure | None:
    """Bias per unit (b + b_rec where a gate has two), one series per gate; the dotted line
    marks unit_forget_bias' start at 1 (LSTMs)."""
    first = gates[0].bias
    if first is None:
        return None
    n = first.shape[0]
    values = [np.asarray(g.bias, np.float64) for g in gates]
    finite = np.concatenate([v[np.isfinite(v)] for v in values] + [np.zeros(1)])
    inits = [g.init_bias for g in gates if g.init_bias is not None]
    lo = float(min(finite.min(), *inits)) if inits else float(finite.min())
    hi = float(max(finite.max(), *inits)) if inits else float(finite.max())
    pad = 0.05 * (hi - lo)  # a line along the top or bottom stays clear of the frame
    y0, y1, yv = nice_limits(lo - pad, hi + pad, 5)
    labels = [tick_label(v, yv) for v in yv]
    entries = [LegendEntry(f"{GATE_NAMES[g.gate]} ({g.gate})", GATE_COLORS[g.gate]) for g in gates]
    entries += [
        LegendEntry(f"start of b_{g.gate}", GATE_COLORS[g.gate], "dotted")
        for g in gates
        if g.init_bias is not None
    ]
    width = NARROW + legend_room(entries)
    ((x, y, w, h),) = row(
        1, width, 260.0, left=label_room(labels), right=legend_room(entries), bottom=46.0, top=14.0
    )
    sx, xticks = unit_axis(n, x, x + w)
    sy = Scale(y0, y1, y + h, y)
    guides = [Line(xy(sx, sy, [sx.lo, sx.hi], [0.0, 0.0]), GUIDE, 0.5)]
    for g in gates:
        if g.init_bias is not None:
            pts = xy(sx, sy, [sx.lo, sx.hi], [g.init_bias] * 2)
            guides.append(Line(pts, GATE_COLORS[g.gate], 0.8, "1 2"))
    marker = 1.6 if n <= 64 else 0.0
    lines = [
        Line(pts, GATE_COLORS[g.gate], 0.9, None, marker)
        for g, v in zip(gates, values)
        for pts in segments(sx, sy, np.arange(n), v)
    ]
    p = panel(
        (x, y, w, h),
        xlabel="unit",
        ylabel="bias",
        xticks=xticks,
        yticks=ticks_at(sy, yv),
        guides=tuple(guides),
        lines=tuple(lines),
    )
    chart = Chart(width, 260.0, (p,), legend=side_legend(width, y, entries))
    return draw(chart, f"Bias of every unit for each gate of {layer}")
