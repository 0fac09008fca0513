"""Figures of one layer: heatmaps, histograms, biases, spectra, memory, probe activity."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lstm_report.cells.base import GateWeights
from lstm_report.figures.chart import (
    FONT,
    Area,
    Chart,
    ColorBar,
    Dots,
    Ellipse,
    LegendEntry,
    Line,
    Note,
    Panel,
    Raster,
    Rect,
    Scale,
    Tick,
    draw,
    fitting_limits,
    fitting_ticks,
    inner_ticks,
    label_room,
    legend_room,
    log_limits,
    log_tick_labels,
    nice_limits,
    panel,
    row,
    segments,
    side_legend,
    steps,
    text_width,
    tick_label,
    ticks_at,
    unique_dots,
    xy,
)
from lstm_report.figures.encode import (
    GATE_COLORS,
    MAX_CELLS,
    POOLING,
    EmbeddedFigure,
    finite_max_abs,
    heat_png,
    lut_png,
    png_uri,
    pool_max_abs,
)
from lstm_report.figures.mechanism import MechanismFigures, mechanism_figures
from lstm_report.model.analyses import LayerAnalysis
from lstm_report.model.layers import GATE_NAMES

WIDTH = 1000.0
"""A full-width figure's width in SVG units (px at 100%)."""
NARROW = 340.0
"""A one-panel figure's width without its legend: its text stays above 9 px on a phone."""
STEP_WIDTH = 380.0
"""The per-step importance chart: one panel, legible on a phone."""
STATE_SLOT = 360.0
"""The width of one state heatmap with its colour bar."""
GUIDE = "#888888"
FAINT = "#cccccc"


@dataclass(frozen=True)
class LayerFigures:
    heat_W: EmbeddedFigure
    heat_U: EmbeddedFigure
    histograms: EmbeddedFigure
    biases: EmbeddedFigure | None
    pooled: str | None
    """Set when a heatmap was downsampled: which pooling, from what size."""
    spectra: EmbeddedFigure | None = None
    memory: EmbeddedFigure | None = None
    activity: EmbeddedFigure | None = None
    saturation: EmbeddedFigure | None = None
    states: EmbeddedFigure | None = None
    mechanism: MechanismFigures | None = None


# ---- heatmaps -------------------------------------------------------------------------------


def _index_axis(
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


def heatmaps(
    mats: Sequence[np.ndarray],
    family: str,
    row_labels: Sequence[str] | None,
    layer: str,
    gates: Sequence[str] = ("i", "f", "c", "o"),
    rows_are: str = "input feature",
) -> tuple[EmbeddedFigure, str | None]:
    """One panel per gate, one colour scale centred on zero shared by all of them.

    A panel shows at most one cell per pixel (and MAX_CELLS): larger matrices are pooled,
    so that the browser only ever scales a heatmap up and no strong weight falls between
    the screen's pixels."""
    vmax = finite_max_abs(mats)
    n_rows, n_cols = mats[0].shape
    inputs = family.endswith("W")  # W or ΔW: rows are input features
    height = 260.0 if not inputs else min(450.0, max(180.0, 90.0 + 16.0 * n_rows))
    # Rows are never pooled this few; names stay on them even when the units are pooled.
    labelled = inputs and row_labels is not None and n_rows <= 32
    names = [str(n) for n in row_labels or ()] if labelled else []
    bar_label = "change" if family.startswith("Δ") else "weight"
    if labelled:
        left = min(400.0, max((text_width(n) for n in names), default=0.0) + 16.0)
    else:
        left = label_room([str(n_rows - 1)])
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
        sx, xticks = _index_axis(n_cols, cols, x, x + w)
        sy, yticks = _index_axis(n_rows, rows, y, y + h, vertical=True)
        if labelled:
            yticks = [Tick(round(sy(j), 1), name) for j, name in enumerate(names)]
        panels.append(
            panel(
                box,
                title=f"{family} · {GATE_NAMES[gate]} gate ({gate})",
                xlabel="unit" if cols == n_cols else "unit (pooled)",
                ylabel=""
                if k or labelled
                else (rows_are if family.endswith("W") else "from unit (previous h)"),
                xticks=xticks,
                yticks=yticks,
                ytick_labels=k == 0,
                raster=Raster(png_uri(heat_png(m, vmax)), x, y, w, h, m, vmax),
                frame=True,
            )
        )
    x, y, w, h = boxes[-1]
    chart = Chart(WIDTH, height, tuple(panels), (colorbar(x + w + 14.0, y, h, vmax, bar_label),))
    what = "input" if family.endswith("W") else "recurrent"
    names_text = ", ".join(f"{family}_{g}" for g in gates)
    alt = (
        f"Heatmaps of the {what} weights {names_text} of "
        f"{layer}, blue negative, red positive, shared scale ±{vmax:.3g}"
    )
    return draw(chart, alt), pooled_note


# ---- histograms -----------------------------------------------------------------------------


OUTLIER_SPAN = 8.0
"""The bins cover every value, unless the full range is this many times the central 99%:
then they cover the central 99% and the values outside are counted at the edges."""
MANY = 1000
"""Fewer values than this always get the full range (a percentile of 16 biases is noise)."""


@dataclass(frozen=True)
class BinRange:
    """Where a panel's bins go: [lo, hi], and how many values fall below and above it."""

    lo: float
    hi: float
    below: int = 0
    above: int = 0


def bin_range(arrays: Sequence[np.ndarray]) -> BinRange | None:
    """The full range of the finite values; or, where a few far outliers would squash the
    rest into one bin, the range of the values within one central span (0.5th to 99.5th
    percentile) of the central 99%, the others counted. None where no value is finite."""
    vals = np.concatenate([np.ravel(a) for a in arrays])  # our own copy: partitioned in place
    finite = np.isfinite(vals)
    if not finite.all():
        vals = vals[finite]
    del finite
    if not vals.size:
        return None
    full_lo, full_hi = float(vals.min()), float(vals.max())
    if vals.size < MANY:
        return BinRange(full_lo, full_hi)
    # In the weights' own precision: the range only places the bins, and float32 halves
    # the time of the partition on a large layer.
    lo, hi = (float(v) for v in np.percentile(vals, [0.5, 99.5], overwrite_input=True))
    if not hi > lo or (full_hi - full_lo) <= OUTLIER_SPAN * (hi - lo):
        return BinRange(full_lo, full_hi)
    # The bins reach the last values within one central span of it; only those beyond
    # are outliers (the central 99% alone would leave 1% of ordinary values outside).
    span = hi - lo
    inside = vals[(vals >= lo - span) & (vals <= hi + span)]
    return BinRange(float(inside.min()), float(inside.max()))


@dataclass(frozen=True, eq=False)
class Hist:
    """One histogram series: bin edges, heights, and how it is drawn."""

    edges: np.ndarray
    heights: np.ndarray
    color: str
    label: str
    below: int = 0
    above: int = 0
    """Values left and right of the edges: counted, never drawn into the edge bins."""


def density(
    vals: np.ndarray, color: str, label: str, span: BinRange | None, bins: int = 40
) -> Hist | None:
    """A density histogram of the finite values over ``span`` (their own range if None):
    the area of the bars is the fraction of the values inside it."""
    v = np.asarray(vals, np.float64).ravel()
    finite = np.isfinite(v)
    if not finite.all():
        v = v[finite]
    del finite
    if not v.size:
        return None
    rng = None if span is None else (span.lo, span.hi)
    if rng is not None and not rng[1] > rng[0]:
        rng = None  # one value: numpy widens it to ±0.5
    counts, edges = np.histogram(v, bins=bins, range=rng)
    below = above = 0
    if rng is not None:
        below, above = int(np.count_nonzero(v < rng[0])), int(np.count_nonzero(v > rng[1]))
    return Hist(edges, counts / (v.size * np.diff(edges)), color, label, below, above)


def _outside_notes(
    box: tuple[float, float, float, float], series: Sequence[Hist]
) -> tuple[Note, ...]:
    """Counts of the values left and right of the bins, in the panel's top corners."""
    x, y, w, _ = box
    below, above = sum(s.below for s in series), sum(s.above for s in series)
    notes = []
    if below:
        notes.append(Note(x + 4.0, y + FONT, f"◂ {below:,} beyond", "start"))
    if above:
        notes.append(Note(x + w - 4.0, y + FONT, f"{above:,} beyond ▸", "end"))
    return tuple(notes)


def hist_panels(
    groups: Sequence[tuple[str, str, Sequence[Hist]]],
    height: float,
    ylabel: str,
    *,
    fill: bool = False,
    legend_entries: Sequence[LegendEntry] = (),
) -> Chart:
    """A row of histogram panels: (title, x label, series) each, y from zero, own scales."""
    limits = []
    for _, _, series in groups:
        lo = min((float(s.edges[0]) for s in series), default=0.0)
        hi = max((float(s.edges[-1]) for s in series), default=1.0)
        top = max((float(np.max(s.heights)) for s in series if s.heights.size), default=1.0)
        limits.append((lo, hi, nice_limits(0.0, top * 1.05, 4, zero=True)))
    labels = [[tick_label(v, yv) for v in yv] for _, _, (_, _, yv) in limits]
    room = max(label_room(ls) for ls in labels)
    right = max(15.0, legend_room(legend_entries))
    boxes = row(len(groups), WIDTH, height, left=room, right=right, gap=room - 8.0, bottom=46.0)
    panels = []
    for k, (box, (title, xlabel, series), (lo, hi, (y0, y1, yv))) in enumerate(
        zip(boxes, groups, limits)
    ):
        x, y, w, h = box
        x0, x1, xv = fitting_limits(lo, hi, w)
        sx, sy = Scale(x0, x1, x, x + w), Scale(y0, y1, y + h, y)
        outlines = tuple(steps(sx, sy, s.edges, s.heights) for s in series)
        panels.append(
            panel(
                box,
                title=title,
                xlabel=xlabel,
                ylabel=ylabel if k == 0 else "",
                xticks=ticks_at(sx, xv),
                yticks=ticks_at(sy, yv),
                areas=tuple(Area(o, s.color) for o, s in zip(outlines, series)) if fill else (),
                lines=()
                if fill
                else tuple(Line(o, s.color, 1.2) for o, s in zip(outlines, series)),
                notes=_outside_notes(box, series),
            )
        )
    return Chart(WIDTH, height, tuple(panels), legend=side_legend(WIDTH, 30.0, legend_entries))


FAMILIES = (
    ("W", "input weights W"),
    ("U", "recurrent weights U"),
    ("b", "biases b"),
    ("b_rec", "recurrent biases b_rec"),
)


def histogram_chart(gates: Sequence[GateWeights]) -> Chart:
    """One panel per family (W, U, b, b_rec), each with its own range and density axis, a
    line per gate: a few biases never set the scale of the matrices, nor the matrices' range
    clip the biases. Every value is drawn where it is, or counted at an edge."""
    groups = []
    for fam, title in FAMILIES:
        arrays = [(g.gate, getattr(g, fam)) for g in gates if getattr(g, fam) is not None]
        span = bin_range([a for _, a in arrays]) if arrays else None
        if span is None:
            continue
        per_gate = max(a.size for _, a in arrays)
        bins = 40 if fam in ("W", "U") else int(np.clip(2 * np.sqrt(per_gate), 8, 40))
        series = [
            h
            for gate, a in arrays
            for h in [density(a, GATE_COLORS[gate], gate, span, bins)]
            if h is not None
        ]
        clipped = any(h.below or h.above for h in series)
        groups.append(
            (title, "value (outliers counted at the edges)" if clipped else "value", series)
        )
    entries = [LegendEntry(f"{GATE_NAMES[g.gate]} ({g.gate})", GATE_COLORS[g.gate]) for g in gates]
    return hist_panels(groups, 220.0, "density", legend_entries=entries)


def histograms(gates: Sequence[GateWeights], layer: str) -> EmbeddedFigure:
    """The distribution of each gate's W_g, U_g and b_g values."""
    return draw(
        histogram_chart(gates),
        f"Histograms of the weights of {layer}: W, U and b each on its own axes, a line per gate",
    )


# ---- line charts ----------------------------------------------------------------------------


def _unit_axis(n: int, a: float, b: float) -> tuple[Scale, tuple[Tick, ...]]:
    """Units 0..n-1 along x with a little room at the ends, integer ticks."""
    pad = max(0.5, 0.02 * (n - 1))
    scale = Scale(-pad, n - 1 + pad, a, b)
    vals = fitting_ticks(0, n - 1, abs(scale(n - 1) - scale(0)), True) if n > 1 else [0.0]
    return scale, ticks_at(scale, vals)


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
    sx, xticks = _unit_axis(n, x, x + w)
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


def spectra_chart(la: LayerAnalysis) -> EmbeddedFigure | None:
    """Singular values of W_g and U_g, and the eigenvalues of U_g with the unit circle."""
    if not la.spectra or all(sp.U is None and sp.W is None for sp in la.spectra):
        return None
    height = 300.0
    sv_panels = []
    svs = {
        side: [
            (sp.gate, np.asarray(s.singular_values, np.float64))
            for sp in la.spectra
            for s in [sp.W if side == "W" else sp.U]
            if s is not None and s.singular_values
        ]
        for side in ("W", "U")
    }
    y_axes = {}
    for side, series in svs.items():
        pos = np.concatenate([v[np.isfinite(v) & (v > 0)] for _, v in series] + [np.zeros(0)])
        if pos.size:
            lo, hi = float(pos.min()), float(pos.max())
            y0, y1, yv = log_limits(lo, hi)
            y_axes[side] = (y0, y1, yv, log_tick_labels(yv), True)
        else:
            y0, y1, yv = nice_limits(0.0, 1.0, 4)
            y_axes[side] = (y0, y1, yv, [tick_label(v, yv) for v in yv], False)
    room = max(label_room(a[3]) for a in y_axes.values())
    gates_shown = list(dict.fromkeys(g for side in ("W", "U") for g, _ in svs[side]))
    gates_shown += [sp.gate for sp in la.spectra if sp.gate not in gates_shown]
    entries = [LegendEntry(f"{g} ({GATE_NAMES[g]})", GATE_COLORS[g]) for g in gates_shown]
    right = legend_room(entries)
    boxes = row(3, WIDTH, height, left=room, right=right, gap=room + 10.0, bottom=46.0)
    for box, side in zip(boxes[:2], ("W", "U")):
        x, y, w, h = box
        y0, y1, yv, ylabels, log = y_axes[side]
        n = max((v.size for _, v in svs[side]), default=1)
        pad = max(0.5, 0.02 * (n - 1))
        sx = Scale(1 - pad, n + pad, x, x + w)
        xv = fitting_ticks(1, n, sx(n) - sx(1), True) if n > 1 else [1.0]
        sy = Scale(y0, y1, y + h, y, log=log)
        lines = [
            Line(pts, GATE_COLORS[gate], 1.0, None, 1.2 if v.size <= 32 else 0.0)
            for gate, v in svs[side]
            for pts in segments(sx, sy, np.arange(1, v.size + 1), v)
        ]
        entries = (
            [
                LegendEntry(f"{gate} ({GATE_NAMES[gate]})", GATE_COLORS[gate])
                for gate, _ in svs[side]
            ]
            if side == "U"
            else []
        )
        sv_panels.append(
            panel(
                box,
                title=f"singular values of {side}, per gate",
                xlabel="index",
                xticks=ticks_at(sx, xv),
                yticks=[Tick(round(sy(v), 1), t) for v, t in zip(yv, ylabels)],
                lines=tuple(lines),
            )
        )
    sv_panels.append(_eigen_panel(la, boxes[2]))
    return draw(
        Chart(WIDTH, height, tuple(sv_panels), legend=side_legend(WIDTH, 30.0, entries)),
        f"Singular values of every W_g and U_g of {la.weights.label}, and the eigenvalues of "
        "each U_g in the complex plane with the unit circle",
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
    guides = (
        Line(xy(sx, sy, [lo, hi], [0, 0]), FAINT, 0.5),
        Line(xy(sx, sy, [0, 0], [lo, hi]), FAINT, 0.5),
    )
    circle = Ellipse(sx(0), sy(0), sx(1) - sx(0), sy(0) - sy(1), GUIDE, "4 3")
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


def step_geometry(values: Sequence[float]) -> Chart | None:
    """Occlusion importance per time step: a bar per step from zero, a y axis on round
    numbers and step ticks, so that step 16 is read off the axis, not counted."""
    v = np.asarray(values, np.float64)
    if not v.size:
        return None
    finite = v[np.isfinite(v)]
    top = float(finite.max()) if finite.size else 0.0
    y0, y1, yv = nice_limits(0.0, top * 1.05 if top > 0 else 1.0, 4, zero=True)
    labels = [tick_label(t, yv) for t in yv]
    width, height = STEP_WIDTH, 220.0
    ((x, y, w, h),) = row(1, width, height, left=label_room(labels), bottom=46.0, top=14.0)
    sx, xticks = _unit_axis(v.size, x, x + w)
    sy = Scale(y0, y1, y + h, y)
    bar = max(0.5, (sx(1) - sx(0)) * 0.8)
    rects = tuple(
        Rect(sx(j) - bar / 2, sy(val), bar, sy(y0) - sy(val), "#0072B2")
        for j, val in enumerate(v.tolist())
        if math.isfinite(val) and val > y0
    )
    p = panel(
        (x, y, w, h),
        xlabel="time step (0 = first)",
        ylabel="mean squared change",
        xticks=xticks,
        yticks=ticks_at(sy, yv),
        rects=rects,
    )
    return Chart(width, height, (p,))


def step_chart(values: Sequence[float], model: str) -> EmbeddedFigure | None:
    """The per-step importance of a model's probe as a figure."""
    chart = step_geometry(values)
    if chart is None:
        return None
    v = np.asarray(values, np.float64)
    at = int(np.nanargmax(v)) if np.isfinite(v).any() else 0
    return draw(
        chart,
        f"Importance of each of the {v.size} time steps of {model} on the probe: the mean "
        "squared change of the target when that step is replaced by its probe mean, largest "
        f"{v[at]:.3g} at step {at}",
    )


# ---- probe activity -------------------------------------------------------------------------


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
        sx, xticks = _index_axis(steps_n, m.shape[1], x, x + w)
        sy, yticks = _index_axis(units_n, m.shape[0], y, y + h, vertical=True)
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


def layer_figures(la: LayerAnalysis, row_labels: Sequence[str] | None = None) -> LayerFigures:
    """Every figure of one layer section."""
    gates = la.weights.cell.gates
    label = la.weights.label
    names = row_labels
    if names is None and la.features:
        names = [f.name for f in la.features]
    embedded = la.weights.reads_embedding
    if embedded and names is None:
        names = [f"embedding dimension {k}" for k in range(la.weights.input_dim)]
    letters = [g.gate for g in gates]
    heat_w, note_w = heatmaps(
        [g.W for g in gates],
        "W",
        names,
        label,
        letters,
        rows_are="embedding dimension" if embedded else "input feature",
    )
    heat_u, note_u = heatmaps([g.U for g in gates], "U", None, label, letters)
    pooled = "; ".join(n for n in (note_w, note_u) if n) or None
    hist, sat, states = activity_charts(la)
    return LayerFigures(
        heat_W=heat_w,
        heat_U=heat_u,
        histograms=histograms(gates, label),
        biases=biases_chart(gates, label),
        pooled=pooled,
        spectra=spectra_chart(la),
        memory=memory_chart(la),
        activity=hist,
        saturation=sat,
        states=states,
        mechanism=mechanism_figures(la),
    )
