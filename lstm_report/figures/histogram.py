"""Histograms of a layer's values: bins placed clear of far outliers (counted at the
edges), a row of panels each with its own range, a line per gate."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from lstm_report.analysis.norms import float64_blocks
from lstm_report.cells.base import GateWeights
from lstm_report.figures.chart import (
    WIDTH,
    Area,
    Chart,
    LegendEntry,
    Line,
    Note,
    legend_room,
    panel,
    row,
    side_legend,
    ticks_at,
)
from lstm_report.figures.encode import GATE_COLORS, EmbeddedFigure
from lstm_report.figures.scales import (
    FONT,
    Scale,
    fitting_limits,
    label_room,
    nice_limits,
    steps,
    tick_label,
)
from lstm_report.figures.svg import draw
from lstm_report.model.layers import GATE_NAMES

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
    vals = _joined(arrays)  # our own copy: partitioned in place
    if not vals.size:
        return None
    full_lo, full_hi = float(vals.min()), float(vals.max())  # NaN if any is NaN
    if not (np.isfinite(full_lo) and np.isfinite(full_hi)):  # only then a mask
        vals = vals[np.isfinite(vals)]
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
    # Min and max of the values within one span, without copying them out (at 2048² the
    # copy and two masks were 96 MiB at the report's peak).
    first = float(np.min(vals, where=vals >= lo - span, initial=np.inf))
    last = float(np.max(vals, where=vals <= hi + span, initial=-np.inf))
    return BinRange(first, last)


def _joined(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """All values of arrays in one new flat array, each copied straight into its place (a
    gate's block of a Keras matrix is a strided view: raveling it first made a second copy
    of everything, 128 MiB at 2048², the 2×LSTM(2048) report's peak)."""
    out = np.empty(sum(a.size for a in arrays), np.result_type(*arrays))
    at = 0
    for a in arrays:
        np.copyto(out[at : at + a.size].reshape(a.shape), a)
        at += a.size
    return out


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
    # In float64 a block at a time: the counts add up, bin for bin, to those of the whole
    # float64 copy (32 MiB at 2048², on top of the other figures', at the report's peak).
    rng = None if span is None else (span.lo, span.hi)
    if rng is not None and not rng[1] > rng[0]:
        rng = None  # one value: numpy widens it to ±0.5
    counted = rng is not None
    if rng is None:  # the finite values' own range, as numpy takes it
        ends = [(float(b.min()), float(b.max())) for b in _finite_blocks(vals) if b.size]
        if not ends:
            return None
        rng = (min(e[0] for e in ends), max(e[1] for e in ends))
    counts = np.zeros(bins, np.int64)
    edges: np.ndarray = np.zeros(bins + 1)
    below = above = total = 0
    for b in _finite_blocks(vals):
        c, edges = np.histogram(b, bins=bins, range=rng)
        counts += c
        total += b.size
        if counted:
            below += int(np.count_nonzero(b < rng[0]))
            above += int(np.count_nonzero(b > rng[1]))
    if not total:
        return None
    return Hist(edges, counts / (total * np.diff(edges)), color, label, below, above)


def _finite_blocks(vals: np.ndarray) -> Iterator[np.ndarray]:
    """The finite values of vals, flattened, in float64 blocks (norms.float64_blocks)."""
    for block in float64_blocks(vals):
        b = block.ravel()
        yield b if np.isfinite(b).all() else b[np.isfinite(b)]


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
