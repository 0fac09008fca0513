"""Charts as computed geometry: scales, nice ticks and marks in pixels, frozen dataclasses
that ``templates/chart.svg.jinja2`` draws as a small SVG (through render.env, autoescaped:
every name from a file or a user is text, never markup)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from lstm_report.figures.encode import EmbeddedFigure, Tile, svg_uri
from lstm_report.templating import env

FONT = 11.0
"""Tick labels, legends and notes, in px of the figure's own width (1,000 for a full row)."""
TITLE = 12.0
CHAR = 0.58
"""The advance of an average character, as a fraction of the font size (for margins)."""
MINUS = "\u2212"


# ---- scales and ticks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Data [lo, hi] onto pixels [a, b] (b < a for a y axis: up is smaller y), linear or log."""

    lo: float
    hi: float
    a: float
    b: float
    log: bool = False

    def __call__(self, v: float) -> float:
        return float(self.map(np.asarray([v], np.float64))[0])

    def map(self, v: np.ndarray) -> np.ndarray:
        lo, hi, x = self.lo, self.hi, np.asarray(v, np.float64)
        if self.log:
            lo, hi = math.log10(lo), math.log10(hi)
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.log10(x)
        return self.a + (x - lo) * (self.b - self.a) / ((hi - lo) or 1.0)


def nice_step(span: float, target: int = 5, integer: bool = False) -> float:
    """The round step (1, 2, 2.5 or 5 times a power of ten) giving about ``target`` ticks."""
    raw = span / max(target, 1) if span > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * power >= raw * 0.999 and not (integer and m == 2.5 and power == 1.0):
            step = m * power
            break
    return max(step, 1.0) if integer else step


def nice_limits(
    lo: float, hi: float, target: int = 5, integer: bool = False, zero: bool = False
) -> tuple[float, float, list[float]]:
    """Axis limits on round numbers that cover [lo, hi] (and 0 if ``zero``), and the ticks."""
    if zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        pad = abs(lo) * 0.1 or (1.0 if integer else 0.5)
        lo, hi = (lo, lo + pad) if zero and lo == 0 else (lo - pad, hi + pad)
    step = nice_step(hi - lo, target, integer)
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    n = int(round((last - first) / step))
    ticks = [_clean(first + k * step, step) for k in range(n + 1)]
    return ticks[0], ticks[-1], ticks


def fitting_limits(
    lo: float, hi: float, length: float, zero: bool = False, integer: bool = False
) -> tuple[float, float, list[float]]:
    """nice_limits for a horizontal axis ``length`` px long: as many ticks as fit without
    their labels touching."""
    for target in range(8, 1, -1):
        a, b, vals = nice_limits(lo, hi, target, integer=integer, zero=zero)
        widest = max(text_width(tick_label(v, vals)) for v in vals)
        if len(vals) < 2 or length / (len(vals) - 1) >= widest + 10.0:
            return a, b, vals
    return nice_limits(lo, hi, 2, integer=integer, zero=zero)


def inner_ticks(lo: float, hi: float, target: int = 5, integer: bool = False) -> list[float]:
    """Round ticks inside [lo, hi], for an axis whose limits are fixed (an image's extent)."""
    step = nice_step(hi - lo, target, integer)
    first = math.ceil(lo / step - 1e-9) * step
    n = int(math.floor((hi - first) / step + 1e-9))
    return [_clean(first + k * step, step) for k in range(n + 1)]


def log_limits(lo: float, hi: float) -> tuple[float, float, list[float]]:
    """Log-axis limits on powers of ten covering [lo, hi] (both > 0), and the ticks: the
    decades, and 2 and 5 times them when fewer than three decades are shown."""
    a = math.floor(math.log10(lo) + 1e-9)
    b = math.ceil(math.log10(hi) - 1e-9)
    if b <= a:
        b = a + 1
    every = max(1, math.ceil((b - a) / 6))
    ticks = [10.0**k for k in range(a, b + 1, every)]
    if b - a < 3:
        ticks = sorted(t * m for t in ticks for m in (1, 2, 5) if t * m <= 10.0**b)
    return 10.0**a, 10.0 ** (a + math.ceil((b - a) / every) * every), ticks


def fitting_ticks(
    lo: float, hi: float, length: float, integer: bool = False, vertical: bool = False
) -> list[float]:
    """inner_ticks for an axis ``length`` px long: as many as fit without their labels
    touching (label widths along a horizontal axis, the line height along a vertical one)."""
    best = inner_ticks(lo, hi, 2, integer)
    for target in range(2, 13):
        vals = inner_ticks(lo, hi, target, integer)
        if len(vals) < 2:
            continue
        room = (
            FONT + 10.0 if vertical else max(text_width(tick_label(v, vals)) for v in vals) + 10.0
        )
        spacing = abs(length) * (vals[1] - vals[0]) / ((hi - lo) or 1.0)
        if spacing < room:
            break
        best = vals
    return best


def _clean(v: float, step: float) -> float:
    """Round away float noise (0.30000000000000004 -> 0.3) at the step's precision."""
    digits = max(0, -math.floor(math.log10(step)) + 2)
    v = round(v, digits)
    return 0.0 if v == 0 else v


def tick_label(v: float, ticks: Sequence[float] = ()) -> str:
    """A tick's text: as few decimals as the ticks need, a true minus sign, 1e-05 style for
    very small or large magnitudes."""
    big = max((abs(t) for t in ticks), default=abs(v))
    if v == 0:
        return "0"
    if big >= 1e5 or big < 1e-3:
        text = f"{v:.2g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    else:
        decimals = 0
        while decimals < 6 and any(abs(round(t, decimals) - t) > 1e-9 * max(big, 1) for t in ticks):
            decimals += 1
        text = f"{v:.{decimals}f}"
    return text.replace("-", MINUS)


def text_width(text: str, size: float = FONT) -> float:
    return len(text) * size * CHAR


# ---- marks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    at: float
    """Pixel position along the axis."""
    label: str


@dataclass(frozen=True)
class Line:
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
    x: float
    y: float
    w: float
    h: float
    color: str


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    rx: float
    ry: float
    color: str
    dash: str | None = None


@dataclass(frozen=True)
class Note:
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
    width: float
    height: float
    panels: tuple[Panel, ...]
    colorbars: tuple[ColorBar, ...] = ()
    legend: Legend | None = None
    font: float = FONT
    title_font: float = TITLE
    x0: float = 0.0
    """Left edge of the view box: a tile of a wider chart keeps the chart's coordinates."""


def draw(chart: Chart, alt: str) -> EmbeddedFigure:
    """The chart as an SVG data URI, rendered by the page's one Jinja2 environment, and as
    tiles (one per panel) that the page lets wrap on a narrow screen."""
    text = _render(chart)
    pieces = tiles(chart)
    tiled = tuple(Tile(svg_uri(_render(t)), t.width, t.height) for t in pieces)
    return EmbeddedFigure(svg_uri(text), alt, tiled if len(tiled) > 1 else (), chart=chart)


def _render(chart: Chart) -> str:
    return env.get_template("chart.svg.jinja2").render(chart=chart)


# ---- tiles: panels that reflow ------------------------------------------------------------

TILE_PAD = 6.0
"""Room around a tile's text: neighbouring tiles' edge labels never touch."""
SHORT_LABELS = 40.0
"""Tick labels up to this wide are repeated on every tile (numbers, not feature names)."""


def panel_extent(p: Panel, font: float = FONT, title_font: float = TITLE) -> tuple[float, float]:
    """The horizontal extent [left, right] of everything a panel draws: its box, tick
    labels, axis labels, title and notes (text widths estimated as in the margins)."""
    lo, hi = p.x, p.x + p.w
    if p.ylabel:
        lo = min(lo, p.ylabel_at - font)
    if p.yticks and p.ytick_labels:
        lo = min(lo, p.x - 7.0 - max(text_width(t.label, font) for t in p.yticks))
    for t in p.xticks:
        if p.rotate_xticks:
            lo = min(lo, t.at + 3.0 - text_width(t.label, font - 1) * 0.71 - 2.0)
            hi = max(hi, t.at + 5.0)
        else:
            half = text_width(t.label, font) / 2
            lo, hi = min(lo, t.at - half), max(hi, t.at + half)
    for text, size in ((p.title, title_font), (p.xlabel, font)):
        if text:
            half = text_width(text, size) / 2
            lo, hi = min(lo, p.x + p.w / 2 - half), max(hi, p.x + p.w / 2 + half)
    for n in p.notes:
        w = text_width(n.text, font)
        a = {"start": 0.0, "middle": w / 2, "end": w}.get(n.anchor, w / 2)
        lo, hi = min(lo, n.x - a), max(hi, n.x - a + w)
    return lo - TILE_PAD, hi + TILE_PAD


def tiles(chart: Chart) -> list[Chart]:
    """The chart cut into tiles: one per panel (with the colour bars right of it), and the
    legend on its own. Each tile keeps the chart's coordinates (its view box starts at the
    tile's left edge), so the geometry is computed once for both layouts."""
    if len(chart.panels) < 2 and chart.legend is None:
        return [chart]
    out = []
    panels = sorted(chart.panels, key=lambda p: p.x)
    for k, p in enumerate(panels):
        if p.yticks and not p.ytick_labels:
            # A panel that shared the first one's y labels may land under it: its own.
            if max(text_width(t.label, chart.font) for t in p.yticks) <= SHORT_LABELS:
                p = replace(p, ytick_labels=True)
        lo, hi = panel_extent(p, chart.font, chart.title_font)
        nxt = panels[k + 1].x if k + 1 < len(panels) else math.inf
        bars = tuple(cb for cb in chart.colorbars if p.x < cb.x < nxt)
        for cb in bars:
            widest = max((text_width(t.label, chart.font) for t in cb.ticks), default=0.0)
            hi = max(hi, cb.x + cb.w + 7.0 + widest, cb.label_at + chart.font) + TILE_PAD
        out.append(
            Chart(
                float(math.ceil(hi - lo)),  # whole px: the image is never scaled by a hair
                chart.height,
                (p,),
                bars,
                font=chart.font,
                title_font=chart.title_font,
                x0=lo,
            )
        )
    lg = chart.legend
    if lg is not None:
        widest = max((text_width(e.label, chart.font - 1) for e in lg.entries), default=0.0)
        lo = lg.x - TILE_PAD
        top = lg.y + len(lg.entries) * LEGEND_ROW + 6.0
        out.append(
            Chart(
                float(math.ceil(lg.x + 26.0 + widest + 2 * TILE_PAD - lo)),
                min(chart.height, top),
                (),
                legend=lg,
                font=chart.font,
                title_font=chart.title_font,
                x0=lo,
            )
        )
    return out


# ---- building blocks ----------------------------------------------------------------------


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


def xy(
    sx: Scale, sy: Scale, x: Iterable[float], y: Iterable[float]
) -> tuple[tuple[float, float], ...]:
    """Pixel points of the finite (x, y) pairs, rounded to 0.1 px."""
    px = sx.map(np.asarray(list(x), np.float64))
    py = sy.map(np.asarray(list(y), np.float64))
    ok = np.isfinite(px) & np.isfinite(py)
    return tuple(zip(np.round(px[ok], 1).tolist(), np.round(py[ok], 1).tolist()))


def segments(
    sx: Scale, sy: Scale, x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float]
) -> list[tuple[tuple[float, float], ...]]:
    """Like xy, thinned, but a missing value (NaN, or <= 0 on a log axis) breaks the line,
    as matplotlib does."""
    xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(xs) & np.isfinite(ys)
    if sy.log:
        ok &= ys > 0
    idx = np.flatnonzero(ok)
    if not idx.size:
        return []
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    return [thin(xy(sx, sy, xs[run], ys[run])) for run in runs]


def thin(
    points: tuple[tuple[float, float], ...], tol: float = 0.75
) -> tuple[tuple[float, float], ...]:
    """Drop the points of a line within ``tol`` px of the last one kept (1,024 singular
    values on a 250 px axis): the line moves by less than that, the SVG shrinks."""
    if len(points) < 3:
        return points
    kept = [points[0]]
    for p in points[1:-1]:
        last = kept[-1]
        if abs(p[0] - last[0]) >= tol or abs(p[1] - last[1]) >= tol:
            kept.append(p)
    kept.append(points[-1])
    return tuple(kept)


def unique_dots(points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    """Dots that land on the same pixel are drawn once (thousands of eigenvalues), at whole
    pixels: a dot is 4 to 6 px wide, a shift of half a pixel does not show."""
    seen: dict[tuple[float, float], None] = {}
    for x, y in points:
        seen.setdefault((float(round(x)), float(round(y))), None)
    return tuple(seen)


def steps(
    sx: Scale, sy: Scale, edges: np.ndarray, counts: np.ndarray
) -> tuple[tuple[float, float], ...]:
    """The outline of a histogram: up from zero, across each bin, down to zero."""
    xs = np.repeat(np.asarray(edges, np.float64), 2)
    ys = np.concatenate([[0.0], np.repeat(np.asarray(counts, np.float64), 2), [0.0]])
    return xy(sx, sy, xs, ys)


def ticks_at(
    sx: Scale, values: Iterable[float], labels: Sequence[str] | None = None
) -> tuple[Tick, ...]:
    vals = list(values)
    names = labels if labels is not None else [tick_label(v, vals) for v in vals]
    return tuple(Tick(round(sx(v), 1), t) for v, t in zip(vals, names))


def log_tick_labels(values: Sequence[float]) -> list[str]:
    out = []
    for v in values:
        if 1e-3 <= v < 1e5:
            out.append(f"{v:g}")
        else:
            out.append(f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e"))
    return out


def label_room(labels: Iterable[str]) -> float:
    """Room a y axis needs left of the plot: its widest tick label, the tick, the label."""
    return max((text_width(t) for t in labels), default=0.0) + 12.0 + FONT + 6.0


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
