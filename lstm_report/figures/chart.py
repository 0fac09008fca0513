"""Charts as computed geometry: the marks, panels and charts (frozen dataclasses) that
``templates/chart.svg.jinja2`` draws, and the building blocks that place them: the page's
figure widths, plot areas in a row, axes, panels and legends."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lstm_report.figures.scales import FONT, TITLE, Scale, fitting_ticks, text_width, tick_label, xy

WIDTH = 1000.0
"""A full-width figure's width in SVG units (px at 100%)."""
NARROW = 340.0
"""A one-panel figure's width without its legend: its text stays above 9 px on a phone."""
GUIDE = "#888888"
"""Reference lines: zero, an initial bias, the unit circle."""
FAINT = "#cccccc"
"""Lines that only orient: the real and imaginary axes, a diagonal, a faint zero."""


@dataclass(frozen=True)
class Tick:
    """One tick of an axis: where, and its label."""

    at: float
    """Pixel position along the axis."""
    label: str


@dataclass(frozen=True)
class Line:
    """A polyline in pixels, optionally dashed, with optional dots at its points."""

    points: tuple[tuple[float, float], ...]
    color: str
    width: float = 1.0
    dash: str | None = None
    markers: float = 0.0
    """Radius of a dot at every point (0: none)."""


@dataclass(frozen=True)
class Area:
    """A filled polygon (the bars of a histogram)."""

    points: tuple[tuple[float, float], ...]
    color: str
    opacity: float = 0.8


@dataclass(frozen=True)
class Dots:
    """Many dots of one colour, drawn as one path of round zero-length strokes."""

    points: tuple[tuple[float, float], ...]
    color: str
    radius: float
    opacity: float = 0.8


@dataclass(frozen=True)
class Rect:
    """A filled bar."""

    x: float
    y: float
    w: float
    h: float
    color: str


@dataclass(frozen=True)
class Ellipse:
    """An outlined ellipse (the unit circle, an unstable point's ring)."""

    cx: float
    cy: float
    rx: float
    ry: float
    color: str
    dash: str | None = None


@dataclass(frozen=True)
class Note:
    """A line of text in the plot: a count, a message where there is no data."""

    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Raster:
    """A heatmap PNG (data URI) stretched over the plot area, pixels kept square-edged."""

    uri: str
    x: float
    y: float
    w: float
    h: float
    values: np.ndarray | None = field(default=None, compare=False, repr=False)
    """The (pooled) matrix the PNG shows, row 0 at the top, for other renderers."""
    vmax: float = 0.0
    """The colour scale: -vmax blue to +vmax red."""


@dataclass(frozen=True)
class LegendEntry:
    """One legend row: a label and the sample of its colour."""

    label: str
    color: str
    kind: str = "line"
    """The sample drawn: line, dash, dotted or box."""


@dataclass(frozen=True)
class Legend:
    """Entries one under the other, right of the panels (never over the data)."""

    x: float
    y: float
    entries: tuple[LegendEntry, ...]


@dataclass(frozen=True)
class Panel:
    """One set of axes: the plot area, its ticks and labels, and what is drawn in it."""

    x: float
    y: float
    w: float
    h: float
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    xlabel_at: float = 0.0
    """Baseline of the x label (px from the top)."""
    ylabel_at: float = 0.0
    """Centre line of the rotated y label (px from the left)."""
    xticks: tuple[Tick, ...] = ()
    yticks: tuple[Tick, ...] = ()
    ytick_labels: bool = True
    rotate_xticks: bool = False
    raster: Raster | None = None
    areas: tuple[Area, ...] = ()
    rects: tuple[Rect, ...] = ()
    guides: tuple[Line, ...] = ()
    """Reference lines drawn under the data (zero, initial bias, the diagonal)."""
    ellipses: tuple[Ellipse, ...] = ()
    lines: tuple[Line, ...] = ()
    dots: tuple[Dots, ...] = ()
    notes: tuple[Note, ...] = ()
    frame: bool = False
    """A full box (heatmaps); otherwise only the left and bottom axes."""


@dataclass(frozen=True)
class ColorBar:
    """A heatmap's colour scale beside the panels, ticks on round numbers."""

    x: float
    y: float
    w: float
    h: float
    label: str
    label_at: float
    ticks: tuple[Tick, ...]
    uri: str
    """The colour map itself: a PNG of the LUT, one pixel per entry, +vmax at the top (no
    gradient: SVG gradients are referenced by url(#id), which the page's checks refuse)."""


@dataclass(frozen=True)
class Chart:
    """A whole figure: its size, panels, colour bars and legend, in px."""

    width: float
    height: float
    panels: tuple[Panel, ...]
    colorbars: tuple[ColorBar, ...] = ()
    legend: Legend | None = None
    font: float = FONT
    title_font: float = TITLE
    x0: float = 0.0
    """Left edge of the view box: a tile of a wider chart keeps the chart's coordinates."""


def row(
    n: int,
    width: float,
    height: float,
    *,
    left: float = 60.0,
    right: float = 15.0,
    top: float = 30.0,
    bottom: float = 50.0,
    gap: float = 40.0,
) -> list[tuple[float, float, float, float]]:
    """n plot areas side by side: (x, y, w, h) each."""
    w = (width - left - right - gap * (n - 1)) / n
    return [(left + k * (w + gap), top, w, height - top - bottom) for k in range(n)]


def unit_axis(n: int, a: float, b: float) -> tuple[Scale, tuple[Tick, ...]]:
    """Units 0..n-1 along x with a little room at the ends, integer ticks."""
    pad = max(0.5, 0.02 * (n - 1))
    scale = Scale(-pad, n - 1 + pad, a, b)
    vals = fitting_ticks(0, n - 1, abs(scale(n - 1) - scale(0)), True) if n > 1 else [0.0]
    return scale, ticks_at(scale, vals)


def complex_plane(sx: Scale, sy: Scale, lo: float, hi: float) -> tuple[tuple[Line, Line], Ellipse]:
    """The real and imaginary axes across [lo, hi] (faint), and the unit circle (dashed)."""
    guides = (
        Line(xy(sx, sy, [lo, hi], [0, 0]), FAINT, 0.5),
        Line(xy(sx, sy, [0, 0], [lo, hi]), FAINT, 0.5),
    )
    return guides, Ellipse(sx(0), sy(0), sx(1) - sx(0), sy(0) - sy(1), GUIDE, "4 3")


def ticks_at(
    sx: Scale, values: Iterable[float], labels: Sequence[str] | None = None
) -> tuple[Tick, ...]:
    """Ticks at ``values`` along ``sx``, labelled alike (or by ``labels``)."""
    vals = list(values)
    names = labels if labels is not None else [tick_label(v, vals) for v in vals]
    return tuple(Tick(round(sx(v), 1), t) for v, t in zip(vals, names))


def panel(
    box: tuple[float, float, float, float],
    *,
    xticks: Sequence[Tick] = (),
    yticks: Sequence[Tick] = (),
    ytick_labels: bool = True,
    rotate_xticks: bool = False,
    **marks: object,
) -> Panel:
    """A Panel in ``box`` (x, y, w, h), its axis labels placed clear of the tick labels."""
    x, y, w, h = box
    widest = max((text_width(t.label) for t in yticks), default=0.0) if ytick_labels else 0.0
    if rotate_xticks:
        deepest = max((text_width(t.label, FONT - 1) for t in xticks), default=0.0) * 0.71
        xlabel_at = y + h + deepest + 14.0 + FONT
    else:
        xlabel_at = y + h + 31.0
    return Panel(
        x,
        y,
        w,
        h,
        xlabel_at=xlabel_at,
        ylabel_at=x - widest - 12.0 - FONT * 0.4,
        xticks=tuple(xticks),
        yticks=tuple(yticks),
        ytick_labels=ytick_labels,
        rotate_xticks=rotate_xticks,
        **marks,  # type: ignore[arg-type]
    )


LEGEND_ROW = 15.0


def legend_room(entries: Sequence[LegendEntry], font: float = FONT) -> float:
    """Width a legend right of the panels takes: sample, gap, widest label, margin."""
    if not entries:
        return 0.0
    return 12.0 + 20.0 + 6.0 + max(text_width(e.label, font - 1) for e in entries) + 8.0


def side_legend(width: float, top: float, entries: Sequence[LegendEntry]) -> Legend | None:
    """A legend in the right margin that legend_room(entries) reserved, from ``top`` down."""
    if not entries:
        return None
    return Legend(width - legend_room(entries) + 12.0, top, tuple(entries))
