"""The forget-gate memory time constants of a layer's units, at rest and on the probe."""

from __future__ import annotations

import numpy as np

from lstm_report.figures.chart import (
    NARROW,
    Chart,
    LegendEntry,
    Line,
    Tick,
    legend_room,
    panel,
    row,
    side_legend,
    ticks_at,
)
from lstm_report.figures.encode import EmbeddedFigure
from lstm_report.figures.scales import (
    Scale,
    label_room,
    log_limits,
    log_tick_labels,
    nice_limits,
    steps,
    tick_label,
)
from lstm_report.figures.svg import draw
from lstm_report.model.analyses import LayerAnalysis
from lstm_report.model.layers import GATE_NAMES


def memory_chart(la: LayerAnalysis) -> EmbeddedFigure | None:
    """Histogram of forget-gate time constants τ = 1/(1 − f), at rest and on the probe."""
    t = la.timescales
    if t is None:
        return None
    g = t.gate
    series = [(f"at rest: {g} = act(b_{g})", t.resting_tau, "#D55E00")]
    if t.probe_tau is not None:
        series.append((f"on the probe: mean {g}", t.probe_tau, "#0072B2"))
    finite = [v for _, taus, _ in series for v in taus if v is not None]
    if not finite:
        return None
    hi = max(max(finite), 2.0)
    bins = np.geomspace(1.0, hi * 1.05, 30)
    counts = []
    for _, taus, _ in series:
        vals = np.array([v for v in taus if v is not None], np.float64)
        counts.append(np.histogram(vals, bins=bins)[0])
    top = float(max(c.max() for c in counts))
    y0, y1, yv = nice_limits(0.0, top * 1.05, 4, integer=True, zero=True)
    x0, x1, xv = log_limits(1.0, hi * 1.05)
    labels = [tick_label(v, yv) for v in yv]
    entries = [LegendEntry(label, color) for label, _, color in series]
    width = NARROW + legend_room(entries)
    ((x, y, w, h),) = row(
        1, width, 260.0, left=label_room(labels), right=legend_room(entries), bottom=46.0, top=14.0
    )
    sx, sy = Scale(x0, x1, x, x + w, log=True), Scale(y0, y1, y + h, y)
    lines = tuple(
        Line(steps(sx, sy, bins, c), color, 1.2) for (_, _, color), c in zip(series, counts)
    )
    p = panel(
        (x, y, w, h),
        xlabel=f"memory time constant τ = 1/(1 − {g}) [steps]",
        ylabel="units",
        xticks=[Tick(round(sx(v), 1), s) for v, s in zip(xv, log_tick_labels(xv))],
        yticks=ticks_at(sy, yv),
        lines=lines,
    )
    return draw(
        Chart(width, 260.0, (p,), legend=side_legend(width, y, entries)),
        f"Histogram of the {GATE_NAMES[g]}-gate memory time constants of {la.weights.label}",
    )
