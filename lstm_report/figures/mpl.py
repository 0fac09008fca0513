"""A chart (figures/chart.py) as a ``matplotlib.figure.Figure``, for papers.

The same geometry the page's SVG draws: every mark at the chart's own pixel coordinates,
one Axes per panel whose limits are the panel's box (y down, as on screen), heatmaps from
the pooled matrices the page's PNGs show. Matplotlib's object API only: no pyplot, so no
global figure state. Text is literal (``$`` escaped: never mathtext); saved bytes are
stable (no dates, fixed SVG ids). Only ``lstm-report figures`` imports this module.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Polygon, Rectangle

from lstm_report.figures.chart import LEGEND_ROW, Chart, ColorBar, Legend, Line, Panel, Raster
from lstm_report.figures.encode import NONFINITE, diverging_lut

PT = 0.75
"""Points per chart pixel (a CSS px is 1/96 in): an 11 px label is 8.25 pt."""
INK = "#1b1f24"
AXIS = "#333333"
FORMATS = ("pdf", "png", "svg")

RC: dict[str, Any] = {
    "pdf.fonttype": 42,  # TrueType, embedded (not Type 3): editable, searchable text
    "ps.fonttype": 42,
    "svg.fonttype": "path",  # glyphs as paths: the SVG needs no font installed
    "svg.hashsalt": "lstm-report",  # fixed ids: the same figure gives the same bytes
    "font.family": "DejaVu Sans",  # shipped with matplotlib: the same on every machine
    "lines.scale_dashes": False,
    "text.usetex": False,
    "axes.unicode_minus": True,
}

METADATA: dict[str, dict[str, Any]] = {
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": "lstm-report"},
    "svg": {"Date": None, "Creator": "lstm-report"},
    "png": {"Software": "lstm-report"},
}


def literal(text: str) -> str:
    """Text that matplotlib shows as it is: every ``$`` escaped, so no mathtext."""
    return text.replace("$", "\\$")


@contextlib.contextmanager
def settings() -> Iterator[None]:
    """The rc settings that make text editable and bytes stable, for a block."""
    rc: Any = RC  # matplotlib types its keys as literals
    with matplotlib.rc_context(rc):
        yield


def colormap() -> Colormap:
    """The page's diverging map (encode.diverging_lut), non-finite values black."""
    r, g, b = (c / 255.0 for c in NONFINITE)
    cmap = ListedColormap(diverging_lut() / 255.0, name="lstm-report-RdBu_r")
    return cmap.with_extremes(bad=(r, g, b))


def figure(chart: Chart) -> Figure:
    """The chart as a Figure: one Axes per panel and colour bar, and one over the whole
    figure for the legend (all in the chart's pixel coordinates)."""
    W, H = chart.width, chart.height
    fig = Figure(figsize=(W / 96.0, H / 96.0), facecolor="#ffffff")
    for p in chart.panels:
        _panel(fig, chart, p)
    for cb in chart.colorbars:
        _colorbar(fig, chart, cb)
    if chart.legend is not None:
        _legend(_overlay(fig, chart), chart, chart.legend)
    return fig


def save(fig: Figure, fmt: str, dpi: float) -> bytes:
    """The figure's bytes in ``fmt`` (pdf, png or svg), the same on every run."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with settings():
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=METADATA[fmt], facecolor="#ffffff")
    return buf.getvalue()


def _box(fig: Figure, chart: Chart, x: float, y: float, w: float, h: float) -> Axes:
    """An Axes over the box (x, y, w, h) of the chart's pixels, styled as the page's axes."""
    W, H = chart.width, chart.height
    ax = fig.add_axes((((x - chart.x0) / W), 1.0 - (y + h) / H, w / W, h / H))
    _limits(ax, x, y, w, h)
    ax.set_autoscale_on(False)  # the marks never move the box
    ax.set_facecolor("none")
    ax.tick_params(
        direction="out", length=4 * PT, width=0.8 * PT, color=AXIS, labelcolor=INK, pad=2
    )
    for spine in ax.spines.values():
        spine.set_linewidth(0.8 * PT)
        spine.set_color(AXIS)
    return ax


def _limits(ax: Axes, x: float, y: float, w: float, h: float) -> None:
    """The Axes' limits: exactly the box."""
    ax.set_xlim(x, x + w)
    ax.set_ylim(y + h, y)  # y grows downward, as in the geometry


def _overlay(fig: Figure, chart: Chart) -> Axes:
    """An invisible Axes over the whole figure, in the chart's pixels (for the legend)."""
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(chart.x0, chart.x0 + chart.width)
    ax.set_ylim(chart.height, 0.0)
    ax.set_axis_off()
    ax.set_facecolor("none")
    return ax


def _dashes(dash: str | None) -> Any:
    """An SVG dash array ("4 3") as a matplotlib line style."""
    if not dash:
        return "-"
    return (0, tuple(float(v) * PT for v in dash.replace(",", " ").split()))


def _text(ax: Axes, x: float, y: float, text: str, size: float, **kw: Any) -> None:
    """Literal text in the ink colour, never clipped."""
    ax.text(x, y, literal(text), fontsize=size * PT, color=INK, clip_on=False, **kw)


def _line(ax: Axes, line: Line) -> None:
    """A Line: the polyline, and its dots (or a single point as a dot)."""
    xs = [x for x, _ in line.points]
    ys = [y for _, y in line.points]
    if len(line.points) > 1:
        ax.plot(
            xs,
            ys,
            color=line.color,
            linewidth=line.width * PT,
            linestyle=_dashes(line.dash),
            solid_joinstyle="round",
            clip_on=False,
        )
    if line.markers or len(line.points) == 1:
        ax.plot(
            xs,
            ys,
            linestyle="none",
            marker="o",
            markersize=2 * (line.markers or 1.5) * PT,
            markeredgewidth=0,
            color=line.color,
            clip_on=False,
        )


def _ticks(ax: Axes, chart: Chart, p: Panel) -> None:
    """The panel's ticks and labels; spines as the page draws them."""
    ax.set_xticks([t.at for t in p.xticks])
    size = (chart.font - 1 if p.rotate_xticks else chart.font) * PT
    rotation: dict[str, Any] = (
        {"rotation": 45, "ha": "right", "rotation_mode": "anchor"} if p.rotate_xticks else {}
    )
    ax.set_xticklabels([literal(t.label) for t in p.xticks], fontsize=size, **rotation)
    ax.set_yticks([t.at for t in p.yticks])
    if p.ytick_labels:
        ax.set_yticklabels([literal(t.label) for t in p.yticks], fontsize=chart.font * PT)
    else:
        ax.set_yticklabels([])
    if not p.frame:
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)


def _panel(fig: Figure, chart: Chart, p: Panel) -> Axes:
    """One panel's Axes: its marks in the page's drawing order, ticks, then its text."""
    ax = _box(fig, chart, p.x, p.y, p.w, p.h)
    if p.raster is not None:
        _raster(ax, p.raster)
    _marks(ax, p)
    _ticks(ax, chart, p)
    _limits(ax, p.x, p.y, p.w, p.h)  # a tick a hair outside the box widened them
    _labels(ax, chart, p)
    return ax


def _raster(ax: Axes, r: Raster) -> None:
    """A heatmap from the pooled matrix its PNG shows (NaN in the page's non-finite colour)."""
    if r.values is not None:
        vmax = r.vmax or 1.0
        ax.imshow(
            np.ma.masked_invalid(np.asarray(r.values, np.float64)),
            cmap=colormap(),
            norm=Normalize(-vmax, vmax),
            extent=(r.x, r.x + r.w, r.y + r.h, r.y),
            interpolation="nearest",
            aspect="auto",
            origin="upper",
        )


def _marks(ax: Axes, p: Panel) -> None:
    """Areas, bars, guides, ellipses, lines, then dots: the order the SVG draws them in."""
    for a in p.areas:
        ax.add_patch(Polygon(a.points, closed=True, facecolor=a.color, alpha=a.opacity, lw=0))
    for rect in p.rects:
        ax.add_patch(Rectangle((rect.x, rect.y), rect.w, rect.h, facecolor=rect.color, lw=0))
    for g in p.guides:
        _line(ax, g)
    for e in p.ellipses:
        ax.add_patch(
            Ellipse(
                (e.cx, e.cy),
                2 * e.rx,
                2 * e.ry,
                fill=False,
                edgecolor=e.color,
                linewidth=0.8 * PT,
                linestyle=_dashes(e.dash),
                clip_on=False,
            )
        )
    for line in p.lines:
        _line(ax, line)
    for d in p.dots:
        ax.plot(
            [x for x, _ in d.points],
            [y for _, y in d.points],
            linestyle="none",
            marker="o",
            markersize=2 * d.radius * PT,
            markeredgewidth=0,
            color=d.color,
            alpha=d.opacity,
            clip_on=False,
        )


def _labels(ax: Axes, chart: Chart, p: Panel) -> None:
    """The panel's title, axis labels and notes, where the SVG puts them."""
    if p.title:
        _text(ax, p.x + p.w / 2, p.y - 8, p.title, chart.title_font, ha="center", va="baseline")
    if p.xlabel:
        _text(ax, p.x + p.w / 2, p.xlabel_at, p.xlabel, chart.font, ha="center", va="baseline")
    if p.ylabel:
        _text(
            ax,
            p.ylabel_at,
            p.y + p.h / 2,
            p.ylabel,
            chart.font,
            rotation=90,
            rotation_mode="anchor",
            ha="center",
            va="baseline",
        )
    for n in p.notes:
        ha = {"start": "left", "middle": "center", "end": "right"}.get(n.anchor, "center")
        _text(ax, n.x, n.y, n.text, chart.font, ha=ha, va="baseline")


def _colorbar(fig: Figure, chart: Chart, cb: ColorBar) -> Axes:
    """A colour bar's Axes: the map as a column, ticks and label on the right."""
    ax = _box(fig, chart, cb.x, cb.y, cb.w, cb.h)
    column = np.linspace(1.0, -1.0, 256)[:, None]  # +vmax at the top, as the page's bar
    ax.imshow(
        column,
        cmap=colormap(),
        norm=Normalize(-1.0, 1.0),
        extent=(cb.x, cb.x + cb.w, cb.y + cb.h, cb.y),
        interpolation="nearest",
        aspect="auto",
    )
    ax.set_xticks([])
    ax.yaxis.tick_right()
    ax.set_yticks([t.at for t in cb.ticks])
    ax.set_yticklabels([literal(t.label) for t in cb.ticks], fontsize=chart.font * PT)
    _limits(ax, cb.x, cb.y, cb.w, cb.h)
    _text(
        ax,
        cb.label_at,
        cb.y + cb.h / 2,
        cb.label,
        chart.font,
        rotation=90,
        rotation_mode="anchor",
        ha="center",
        va="baseline",
    )
    return ax


def _legend(ax: Axes, chart: Chart, lg: Legend) -> None:
    """The legend's samples and labels, on the overlay Axes."""
    kinds = {"dash": "4 2", "dotted": "1 2"}
    for k, e in enumerate(lg.entries):
        ey = lg.y + k * LEGEND_ROW + 10
        if e.kind == "box":
            ax.add_patch(Rectangle((lg.x, ey - 8), 14, 9, facecolor=e.color, lw=0))
        else:
            ax.plot(
                [lg.x, lg.x + 20],
                [ey - 4, ey - 4],
                color=e.color,
                linewidth=1.5 * PT,
                linestyle=_dashes(kinds.get(e.kind)),
            )
        _text(ax, lg.x + 26, ey, e.label, chart.font - 1, ha="left", va="baseline")


def panel_axes(fig: Figure, chart: Chart) -> Sequence[Axes]:
    """The Axes of the chart's panels, in the chart's order (for checks)."""
    return fig.axes[: len(chart.panels)]
