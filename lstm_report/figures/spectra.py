"""A layer's spectra: the singular values of every W_g and U_g, and the eigenvalues of each
U_g in the complex plane against the unit circle."""

from __future__ import annotations

import numpy as np

from lstm_report.figures.chart import (
    WIDTH,
    Chart,
    Dots,
    LegendEntry,
    Line,
    Panel,
    Tick,
    complex_plane,
    legend_room,
    panel,
    row,
    side_legend,
    ticks_at,
)
from lstm_report.figures.encode import GATE_COLORS, EmbeddedFigure
from lstm_report.figures.scales import (
    Scale,
    fitting_ticks,
    inner_ticks,
    label_room,
    log_limits,
    log_tick_labels,
    nice_limits,
    segments,
    tick_label,
    unique_dots,
    xy,
)
from lstm_report.figures.svg import draw
from lstm_report.model.analyses import LayerAnalysis
from lstm_report.model.layers import GATE_NAMES

SvSeries = list[tuple[str, np.ndarray]]
"""(gate, its singular values) of one side, W or U."""
SvAxis = tuple[float, float, list[float], list[str], bool]
"""A y axis of singular values: limits, ticks, their labels, whether it is logarithmic."""


def spectra_chart(la: LayerAnalysis) -> EmbeddedFigure | None:
    """Singular values of W_g and U_g, and the eigenvalues of U_g with the unit circle."""
    if not la.spectra or all(sp.U is None and sp.W is None for sp in la.spectra):
        return None
    height = 300.0
    svs = _singular_values(la)
    y_axes = {side: _sv_axis(series) for side, series in svs.items()}
    room = max(label_room(a[3]) for a in y_axes.values())
    gates_shown = list(dict.fromkeys(g for side in ("W", "U") for g, _ in svs[side]))
    gates_shown += [sp.gate for sp in la.spectra if sp.gate not in gates_shown]
    entries = [LegendEntry(f"{g} ({GATE_NAMES[g]})", GATE_COLORS[g]) for g in gates_shown]
    right = legend_room(entries)
    boxes = row(3, WIDTH, height, left=room, right=right, gap=room + 10.0, bottom=46.0)
    panels = [
        _sv_panel(box, side, svs[side], y_axes[side]) for box, side in zip(boxes[:2], ("W", "U"))
    ]
    panels.append(_eigen_panel(la, boxes[2]))
    # The room is reserved for every gate shown; the legend names those with U's values.
    legend = [LegendEntry(f"{g} ({GATE_NAMES[g]})", GATE_COLORS[g]) for g, _ in svs["U"]]
    return draw(
        Chart(WIDTH, height, tuple(panels), legend=side_legend(WIDTH, 30.0, legend)),
        f"Singular values of every W_g and U_g of {la.weights.label}, and the eigenvalues of "
        "each U_g in the complex plane with the unit circle",
    )


def _singular_values(la: LayerAnalysis) -> dict[str, SvSeries]:
    """The singular values of W and of U, per gate, where the analysis computed them."""
    return {
        side: [
            (sp.gate, np.asarray(s.singular_values, np.float64))
            for sp in la.spectra
            for s in [sp.W if side == "W" else sp.U]
            if s is not None and s.singular_values
        ]
        for side in ("W", "U")
    }


def _sv_axis(series: SvSeries) -> SvAxis:
    """A log axis over the positive values; a linear 0..1 where there is none."""
    pos = np.concatenate([v[np.isfinite(v) & (v > 0)] for _, v in series] + [np.zeros(0)])
    if pos.size:
        y0, y1, yv = log_limits(float(pos.min()), float(pos.max()))
        return y0, y1, yv, log_tick_labels(yv), True
    y0, y1, yv = nice_limits(0.0, 1.0, 4)
    return y0, y1, yv, [tick_label(v, yv) for v in yv], False


def _sv_panel(
    box: tuple[float, float, float, float], side: str, series: SvSeries, axis: SvAxis
) -> Panel:
    """One side's singular values by index, a line per gate."""
    x, y, w, h = box
    y0, y1, yv, ylabels, log = axis
    n = max((v.size for _, v in series), default=1)
    pad = max(0.5, 0.02 * (n - 1))
    sx = Scale(1 - pad, n + pad, x, x + w)
    xv = fitting_ticks(1, n, sx(n) - sx(1), True) if n > 1 else [1.0]
    sy = Scale(y0, y1, y + h, y, log=log)
    lines = [
        Line(pts, GATE_COLORS[gate], 1.0, None, 1.2 if v.size <= 32 else 0.0)
        for gate, v in series
        for pts in segments(sx, sy, np.arange(1, v.size + 1), v)
    ]
    return panel(
        box,
        title=f"singular values of {side}, per gate",
        xlabel="index",
        xticks=ticks_at(sx, xv),
        yticks=[Tick(round(sy(v), 1), t) for v, t in zip(yv, ylabels)],
        lines=tuple(lines),
    )


def _eigen_panel(la: LayerAnalysis, box: tuple[float, float, float, float]) -> Panel:
    """Eigenvalues in the complex plane, equal scales, the unit circle dashed."""
    x, y, w, h = box
    side = min(w, h)
    x += (w - side) / 2
    evs = [
        (sp.gate, np.asarray(sp.U.eigenvalues, np.complex128))
        for sp in la.spectra
        if sp.U is not None and sp.U.eigenvalues is not None
    ]
    reach = 1.0
    for _, ev in evs:
        ok = ev[np.isfinite(ev)]
        if ok.size:
            reach = max(reach, float(np.abs(ok.real).max()), float(np.abs(ok.imag).max()))
    # Equal scales around the origin, just wide enough for the circle and every eigenvalue.
    lo, hi = -reach * 1.08, reach * 1.08
    vals = inner_ticks(lo, hi, 4)
    sx, sy = Scale(lo, hi, x, x + side), Scale(lo, hi, y + side, y)
    dots = tuple(
        Dots(unique_dots(xy(sx, sy, ev.real, ev.imag)), GATE_COLORS[gate], 2.2) for gate, ev in evs
    )
    guides, circle = complex_plane(sx, sy, lo, hi)
    return panel(
        (x, y, side, side),
        title="eigenvalues of U (unit circle dashed)",
        xlabel="real",
        ylabel="imaginary",
        xticks=ticks_at(sx, vals),
        yticks=ticks_at(sy, vals),
        guides=guides,
        ellipses=(circle,),
        dots=dots,
    )
