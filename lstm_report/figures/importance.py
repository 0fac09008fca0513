"""The occlusion importance of each time step of a model's probe, as bars."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lstm_report.figures.chart import Chart, Rect, panel, row, ticks_at, unit_axis
from lstm_report.figures.encode import EmbeddedFigure
from lstm_report.figures.scales import Scale, label_room, nice_limits, tick_label
from lstm_report.figures.svg import draw

STEP_WIDTH = 380.0
"""The per-step importance chart: one panel, legible on a phone."""


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
    sx, xticks = unit_axis(v.size, x, x + w)
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
