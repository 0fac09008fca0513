"""A chart as SVG for the page: rendered through the one Jinja2 environment (autoescaped:
every name from a file or a user is text, never markup), and cut into tiles, one per
panel, that reflow on a narrow screen."""

from __future__ import annotations

import math
from dataclasses import replace

from lstm_report.figures.chart import LEGEND_ROW, Chart, Panel
from lstm_report.figures.encode import EmbeddedFigure, Tile, svg_uri
from lstm_report.figures.scales import FONT, TITLE, text_width
from lstm_report.templating import env


def draw(chart: Chart, alt: str) -> EmbeddedFigure:
    """The chart as an SVG data URI, rendered by the page's one Jinja2 environment, and as
    tiles (one per panel) that the page lets wrap on a narrow screen."""
    text = _render(chart)
    pieces = tiles(chart)
    tiled = tuple(Tile(svg_uri(_render(t)), t.width, t.height) for t in pieces)
    return EmbeddedFigure(svg_uri(text), alt, tiled if len(tiled) > 1 else (), chart=chart)


def _render(chart: Chart) -> str:
    """The chart's SVG text from templates/chart.svg.jinja2."""
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
