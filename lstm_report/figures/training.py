"""Figures across training: what changed between two models, and a checkpoint series."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lstm_report.analysis.series import layer_keys
from lstm_report.figures.chart import (
    NARROW,
    WIDTH,
    Chart,
    LegendEntry,
    Line,
    Rect,
    Tick,
    legend_room,
    panel,
    row,
    side_legend,
    ticks_at,
)
from lstm_report.figures.encode import GATE_COLORS, EmbeddedFigure
from lstm_report.figures.heatmap import heatmaps
from lstm_report.figures.histogram import density, hist_panels
from lstm_report.figures.scales import (
    FONT,
    Scale,
    label_room,
    nice_limits,
    segments,
    text_width,
    tick_label,
)
from lstm_report.figures.svg import draw
from lstm_report.model.layers import GATE_NAMES
from lstm_report.model.training import LayerDelta, Series


@dataclass(frozen=True)
class CompareFigures:
    delta_W: EmbeddedFigure
    delta_U: EmbeddedFigure
    histograms: EmbeddedFigure
    relative: EmbeddedFigure


def comparison_figures(ld: LayerDelta, row_labels: Sequence[str] | None = None) -> CompareFigures:
    """Delta heatmaps (ΔW rows named by row_labels: the input features), before/after
    histograms, and relative change per gate of one layer."""
    ga, gb = ld.baseline.cell.gates, ld.candidate.cell.gates
    label = ld.label
    letters = [g.gate for g in ga]
    dW, _ = heatmaps(
        [np.asarray(y.W, np.float64) - x.W for x, y in zip(ga, gb)],
        "ΔW",
        row_labels,
        label,
        letters,
    )
    dU, _ = heatmaps(
        [np.asarray(y.U, np.float64) - x.U for x, y in zip(ga, gb)], "ΔU", None, label, letters
    )
    groups = []
    for x, y in zip(ga, gb):
        series = []
        for arrs, color, name in (
            ((x.W, x.U), "#999999", "before"),
            ((y.W, y.U), "#0072B2", "after"),
        ):
            vals = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrs])
            h = density(vals, color, name, None)
            if h is not None:
                series.append(h)
        groups.append((f"gate {x.gate} ({GATE_NAMES[x.gate]}): W and U", "weight", series))
    entries = [LegendEntry("before", "#999999"), LegendEntry("after", "#0072B2")]
    hist = draw(
        hist_panels(groups, 220.0, "density", legend_entries=entries),
        f"Histograms of the weights of each gate of {label}, before and after",
    )
    return CompareFigures(dW, dU, hist, _relative(ld, letters))


def _relative(ld: LayerDelta, letters: list[str]) -> EmbeddedFigure:
    """Grouped bars: the change (Delta.change) of W, U and b(_rec) of every gate, from zero."""
    fams = ["W", "U"] + [f for f in ("b", "b_rec") if getattr(ld.gates[0], f) is not None]
    colors = {"W": "#0072B2", "U": "#E69F00", "b": "#555555", "b_rec": "#AAAAAA"}
    changes = {
        fam: [getattr(g, fam).change if getattr(g, fam) is not None else None for g in ld.gates]
        for fam in fams
    }
    finite = [v for vs in changes.values() for v in vs if v is not None and math.isfinite(v)]
    y0, y1, yv = nice_limits(0.0, max(finite, default=1.0) * 1.05, 5, zero=True)
    labels = [tick_label(v, yv) for v in yv]
    entries = [LegendEntry(f, colors[f], "box") for f in fams]
    # narrow enough to stay legible on a phone (the legend is a tile of its own)
    width, height = NARROW + legend_room(entries), 260.0
    ((x, y, w, h),) = row(
        1, width, height, left=label_room(labels), right=legend_room(entries), bottom=46.0, top=14.0
    )
    sx, sy = Scale(-0.5, len(letters) - 0.5, x, x + w), Scale(y0, y1, y + h, y)
    bar = 0.8 / len(fams)
    rects = []
    for k, fam in enumerate(fams):
        for j, v in enumerate(changes[fam]):
            if v is None or not math.isfinite(v):
                continue
            left = sx(j + (k - len(fams) / 2) * bar)
            top = sy(max(v, y0))
            rects.append(Rect(left, top, sx(j + bar) - sx(j), sy(y0) - top, colors[fam]))
    xticks = [Tick(round(sx(j), 1), g) for j, g in enumerate(letters)]
    p = panel(
        (x, y, w, h),
        xlabel="gate",
        ylabel="change: RMS ΔA / gate's RMS",
        xticks=xticks,
        yticks=ticks_at(sy, yv),
        rects=tuple(rects),
    )
    return draw(
        Chart(width, height, (p,), legend=side_legend(width, y, entries)),
        f"Change of W, U and b per gate of {ld.label} (RMS of the change over the gate's RMS "
        "weight): which gate learned",
    )


def series_figures(series: Series) -> tuple[tuple[str, EmbeddedFigure], ...]:
    """Per layer of a checkpoint series: norms, U_g spectral radius, median τ, change."""
    out = []
    labels = [c.label for c in series.checkpoints]
    x = np.arange(len(labels))
    for name, direction in layer_keys(series):
        rows = [c.layer(name, direction) for c in series.checkpoints]

        def pick(gate: str, field: str) -> np.ndarray:
            """One field of one gate across the checkpoints (NaN where the layer is missing)."""
            values = [None if r is None else getattr(r.gate(gate), field) for r in rows]
            return np.array([np.nan if v is None else v for v in values], float)

        first = next(r for r in rows if r is not None)
        gates = [g for g, _ in first.gates]
        tau = np.array(
            [np.nan if r is None or r.tau_median is None else r.tau_median for r in rows]
        )
        # (title, [(values, colour, dashed)], legend entries)
        panels_data = [
            (
                "norm of U (solid) and W (dashed)",
                [(pick(g, "U_fro"), GATE_COLORS[g], False) for g in gates]
                + [(pick(g, "W_fro"), GATE_COLORS[g], True) for g in gates],
                [LegendEntry(f"{GATE_NAMES[g]} ({g})", GATE_COLORS[g]) for g in gates],
            ),
            (
                "spectral radius of U",
                [(pick(g, "U_spectral_radius"), GATE_COLORS[g], False) for g in gates],
                [],
            ),
            ("median memory τ at rest [steps]", [(tau, GATE_COLORS["f"], False)], []),
            (
                "relative change since previous",
                [(pick(g, "relative_change"), GATE_COLORS[g], False) for g in gates],
                [],
            ),
        ]
        label = (
            f"{name} ({direction})"
            if direction == "backward" or any(k == (name, "backward") for k in layer_keys(series))
            else name
        )
        alt = (
            f"Per-gate norms, spectral radii, memory timescale and change of {label} "
            f"across {len(labels)} checkpoints"
        )
        out.append((label, _series_chart(labels, x, panels_data, alt)))
    return tuple(out)


def _series_chart(
    labels: list[str],
    x: np.ndarray,
    panels_data: list[tuple[str, list[tuple[np.ndarray, str, bool]], list[LegendEntry]]],
    alt: str,
) -> EmbeddedFigure:
    """Four line panels over the checkpoints, every y axis from zero (a drift of 0.03 must
    not look like a cliff), the checkpoints' labels slanted under each."""
    limits = []
    for _, lines, _ in panels_data:
        vals = np.concatenate([v[np.isfinite(v)] for v, _, _ in lines] + [np.zeros(1)])
        limits.append(nice_limits(0.0, float(vals.max()) * 1.05, 4, zero=True))
    room = max(label_room([tick_label(v, yv) for v in yv]) for _, _, yv in limits)
    deepest = max((text_width(t, FONT - 1) for t in labels), default=0.0) * 0.71
    bottom = min(160.0, deepest + 34.0)
    height = 200.0 + bottom
    entries = [e for _, _, es in panels_data for e in es]
    boxes = row(4, WIDTH, height, left=room, right=legend_room(entries), gap=room, bottom=bottom)
    panels = []
    for box, (title, lines, _), (y0, y1, yv) in zip(boxes, panels_data, limits):
        bx, by, bw, bh = box
        pad = max(0.3, 0.04 * (len(labels) - 1))
        sx, sy = Scale(-pad, len(labels) - 1 + pad, bx, bx + bw), Scale(y0, y1, by + bh, by)
        step = max(1, math.ceil(len(labels) * (FONT + 2) / bw))
        xticks = [Tick(round(sx(j), 1), labels[j]) for j in range(0, len(labels), step)]
        marks = tuple(
            Line(
                pts,
                color,
                0.9 if dashed else 1.2,
                "4 2" if dashed else None,
                0.0 if dashed else 2.0,
            )
            for values, color, dashed in lines
            for pts in segments(sx, sy, x, values)
        )
        panels.append(
            panel(
                box,
                title=title,
                xticks=xticks,
                yticks=ticks_at(sy, yv),
                rotate_xticks=True,
                lines=marks,
            )
        )
    chart = Chart(
        WIDTH,
        height,
        tuple(panels),
        legend=side_legend(WIDTH, 30.0, entries),
        font=FONT - 0.5,  # its smallest text (legend, slanted labels): 9.5 px at 100%
        title_font=FONT,
    )
    return draw(chart, alt)
