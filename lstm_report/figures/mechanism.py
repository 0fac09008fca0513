"""Figures of a layer's mechanism: trajectories and fixed points in the plane of their first
two principal components, the eigenvalues at each point against the unit circle, and one
small activity trace per unit card.

Each figure is narrow (at most PLANE_WIDTH units wide) so that its 11-unit text stays above 9 CSS
px when the page is 390 px wide."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstm_report.figures.chart import (
    FAINT,
    GUIDE,
    Chart,
    Dots,
    Ellipse,
    Line,
    Note,
    complex_plane,
    panel,
    ticks_at,
)
from lstm_report.figures.encode import EmbeddedFigure
from lstm_report.figures.scales import (
    Scale,
    inner_ticks,
    label_room,
    nice_limits,
    thin,
    tick_label,
    unique_dots,
    xy,
)
from lstm_report.figures.svg import draw
from lstm_report.model.analyses import LayerAnalysis
from lstm_report.model.mechanism import Mechanism, Plane

PLANE_WIDTH = 330.0
"""The state-plane and eigenvalue figures: no legend beside them, so narrower than NARROW."""
TRAJECTORY = "#9aa5b1"
STABLE = "#0072B2"
UNSTABLE = "#D55E00"
SLOW = "#009E73"
MANIFOLD = "#CC79A7"


@dataclass(frozen=True)
class MechanismFigures:
    """The mechanism figures of one layer section."""

    plane: EmbeddedFigure | None
    eigenvalues: EmbeddedFigure | None
    traces: tuple[tuple[int, EmbeddedFigure], ...]
    """Per unit card (its unit), the unit's h over the shown probe sequence."""


def mechanism_figures(la: LayerAnalysis) -> MechanismFigures:
    """The mechanism figures of one layer (each None or empty where nothing was computed)."""
    return MechanismFigures(_plane(la), _eigen(la), _traces(la))


def _plane(la: LayerAnalysis) -> EmbeddedFigure | None:
    """The probe's trajectories, fixed and slow points in their principal-component plane."""
    mech = la.mechanism
    if mech is None or mech.plane is None:
        return None
    pl = mech.plane
    pts = [t for t in pl.trajectories] + [pl.points, pl.slow]
    allp = np.concatenate([p for p in pts if len(p)])
    allp = allp[np.all(np.isfinite(allp), axis=1)]
    if not len(allp):
        return None
    x0, x1, xv = nice_limits(float(allp[:, 0].min()), float(allp[:, 0].max()), 4)
    y0, y1, yv = nice_limits(float(allp[:, 1].min()), float(allp[:, 1].max()), 4)
    labels = [tick_label(v, yv) for v in yv]
    left = label_room(labels)
    width, height = PLANE_WIDTH, 330.0
    box = (left, 24.0, width - left - 14.0, height - 24.0 - 74.0)
    x, y, w, h = box
    sx, sy = Scale(x0, x1, x, x + w), Scale(y0, y1, y + h, y)
    lines, dots, ellipses = _plane_marks(mech, pl, sx, sy)
    ex, ey = pl.explained
    ll, ld, le, ln = _bottom_legend(
        width,
        height - 24.0,
        [
            ("stable fixed point", "dot", STABLE),
            ("unstable (hollow)", "ring", UNSTABLE),
            ("slow point", "small", SLOW),
            ("slow manifold", "line", MANIFOLD),
        ],
    )
    p = panel(
        box,
        title="probe trajectories, input held",
        xlabel=f"PC 1 ({ex:.0%} of the variance)",
        ylabel=f"PC 2 ({ey:.0%})",
        xticks=ticks_at(sx, xv),
        yticks=ticks_at(sy, yv),
        lines=tuple(lines + ll),
        dots=tuple(dots + ld),
        ellipses=ellipses + tuple(le),
        notes=tuple(ln),
    )
    return draw(
        Chart(width, height, (p,)),
        f"The probe's state trajectories of {la.weights.label} in the plane of their first two "
        "principal components, with its fixed and slow points (inputs held at "
        f"{mech.inputs})",
    )


def _plane_marks(
    mech: Mechanism, pl: Plane, sx: Scale, sy: Scale
) -> tuple[list[Line], list[Dots], tuple[Ellipse, ...]]:
    """The trajectories and the slow manifold, the slow and stable points, the unstable
    points as rings."""
    lines = [Line(thin(xy(sx, sy, t[:, 0], t[:, 1])), TRAJECTORY, 0.8) for t in pl.trajectories]
    if mech.slow_manifold is not None and len(pl.slow) >= 2:
        # The manifold through the slow points, along their principal direction in the plane.
        c = pl.slow.mean(0)
        d = np.linalg.svd(pl.slow - c, full_matrices=False)[2][0]
        s = (pl.slow - c) @ d
        ends = np.stack([c + s.min() * d, c + s.max() * d])
        lines.append(Line(xy(sx, sy, ends[:, 0], ends[:, 1]), MANIFOLD, 2.0))
    dots = []
    kinds = [(p.kind, p.stable) for p in mech.fixed_points]
    slow_xy = [pl.points[i] for i, (k, _) in enumerate(kinds) if k == "slow"]
    if len(pl.slow):
        dots.append(Dots(unique_dots(xy(sx, sy, pl.slow[:, 0], pl.slow[:, 1])), SLOW, 2.0, 1.0))
    if slow_xy:
        a = np.array(slow_xy)
        dots.append(Dots(unique_dots(xy(sx, sy, a[:, 0], a[:, 1])), SLOW, 2.5, 1.0))
    stable = np.array([pl.points[i] for i, (k, st) in enumerate(kinds) if k == "fixed" and st])
    if len(stable):
        dots.append(Dots(xy(sx, sy, stable[:, 0], stable[:, 1]), STABLE, 5.0, 1.0))
    ellipses = tuple(
        Ellipse(px, py, 5.0, 5.0, UNSTABLE)
        for i, (k, st) in enumerate(kinds)
        if k == "fixed" and not st
        for px, py in xy(sx, sy, [pl.points[i][0]], [pl.points[i][1]])
    )
    return lines, dots, ellipses


Marks = tuple[list[Line], list[Dots], list[Ellipse], list[Note]]


def _bottom_legend(width: float, y: float, items: list[tuple[str, str, str]]) -> Marks:
    """A legend under the plot, two entries a row, as marks of the plot's own panel (a
    second panel would become a tile of its own)."""
    lines: list[Line] = []
    dots: list[Dots] = []
    ellipses: list[Ellipse] = []
    notes: list[Note] = []
    col = (width - 20.0) / 2
    for k, (label, kind, color) in enumerate(items):
        cx = 14.0 + (k % 2) * col
        cy = y + (k // 2) * 16.0
        if kind == "line":
            lines.append(Line(((cx - 6, cy - 4), (cx + 8, cy - 4)), color, 2.0))
        elif kind == "ring":
            ellipses.append(Ellipse(cx, cy - 4, 4.0, 4.0, color))
        else:
            dots.append(Dots(((cx, cy - 4),), color, 4.0 if kind == "dot" else 2.5, 1.0))
        notes.append(Note(cx + 14, cy, label, "start"))
    return lines, dots, ellipses, notes


def _eigen(la: LayerAnalysis) -> EmbeddedFigure | None:
    """The Jacobian's largest eigenvalues at each fixed and slow point, with the unit circle."""
    mech = la.mechanism
    if mech is None or not mech.fixed_points:
        return None
    lam = [np.array([complex(*e) for e in p.eigenvalues]) for p in mech.fixed_points]
    reach = max(1.0, max(float(np.abs(v).max()) for v in lam if v.size))
    lo, hi = -reach * 1.08, reach * 1.08
    vals = inner_ticks(lo, hi, 4)
    labels = [tick_label(v, vals) for v in vals]
    left = label_room(labels)
    width = PLANE_WIDTH
    side = width - left - 14.0
    height = side + 24.0 + 74.0
    x, y = left, 24.0
    sx, sy = Scale(lo, hi, x, x + side), Scale(lo, hi, y + side, y)
    dots = []
    # Slow points' eigenvalues first: the fixed points' are drawn over them.
    for p, v in sorted(zip(mech.fixed_points, lam), key=lambda pv: pv[0].kind != "slow"):
        color = SLOW if p.kind == "slow" else (STABLE if p.stable else UNSTABLE)
        dots.append(Dots(unique_dots(xy(sx, sy, v.real, v.imag)), color, 2.6, 0.8))
    guides, circle = complex_plane(sx, sy, lo, hi)
    ll, ld, le, ln = _bottom_legend(
        width,
        height - 24.0,
        [
            ("stable fixed point", "dot", STABLE),
            ("unstable fixed point", "dot", UNSTABLE),
            ("slow point", "dot", SLOW),
            ("unit circle", "line", GUIDE),
        ],
    )
    chart_panel = panel(
        (x, y, side, side),
        title=f"eigenvalues at the {len(lam)} points",
        xlabel="real",
        ylabel="imaginary",
        xticks=ticks_at(sx, vals),
        yticks=ticks_at(sy, vals),
        guides=guides,
        ellipses=(circle, *le),
        dots=tuple(dots + ld),
        lines=tuple(ll),
        notes=tuple(ln),
    )
    return draw(
        Chart(width, height, (chart_panel,)),
        f"The largest eigenvalues of the Jacobian of {la.weights.label} at each fixed and slow "
        "point, in the complex plane with the unit circle",
    )


def _traces(la: LayerAnalysis) -> tuple[tuple[int, EmbeddedFigure], ...]:
    """Per unit card, the unit's h over the probe sequence shown."""
    a, units = la.activity, la.units
    if a is None or units is None:
        return ()
    out = []
    for e in units.units:
        if e.unit >= a.h.shape[1]:
            continue
        v = np.asarray(a.h[:, e.unit], np.float64)
        if not np.all(np.isfinite(v)):
            continue
        y0, y1, yv = nice_limits(min(float(v.min()), 0.0), max(float(v.max()), 0.0), 3)
        labels = [tick_label(t, yv) for t in yv]
        left = label_room(labels)
        width, height = 320.0, 120.0
        box = (left, 10.0, width - left - 12.0, height - 10.0 - 44.0)
        x, y, w, h = box
        steps = np.arange(v.size)
        sx = Scale(0.0, max(1.0, float(v.size - 1)), x, x + w)
        sy = Scale(y0, y1, y + h, y)
        xv = inner_ticks(0.0, float(v.size - 1), 4)
        p = panel(
            box,
            xlabel=f"step of probe sequence {a.sequence}",
            ylabel="h",
            xticks=ticks_at(sx, xv),
            yticks=ticks_at(sy, yv),
            guides=(Line(xy(sx, sy, [0, v.size - 1], [0, 0]), FAINT, 0.6),),
            lines=(Line(thin(xy(sx, sy, steps, v)), STABLE, 1.2),),
        )
        out.append(
            (
                e.unit,
                draw(
                    Chart(width, height, (p,)),
                    f"h of unit {e.unit} of {la.weights.label} over probe sequence {a.sequence}",
                ),
            )
        )
    return tuple(out)
