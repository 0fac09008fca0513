"""Data onto pixels: scales, axis limits and ticks on round numbers, their labels, the text
widths that margins are made of, and the pixel points of lines, dots and histogram steps."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

FONT = 11.0
"""Tick labels, legends and notes, in px of the figure's own width (1,000 for a full row)."""
TITLE = 12.0
CHAR = 0.58
"""The advance of an average character, as a fraction of the font size (for margins)."""
MINUS = "\u2212"


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
        """Pixels of the data values (not finite where a log axis meets a value <= 0)."""
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
    """A tick's text: as few decimals as the ticks need, a true minus sign, 1e-5 style for
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
    """The estimated width of ``text`` in px at font ``size``."""
    return len(text) * size * CHAR


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


def log_tick_labels(values: Sequence[float]) -> list[str]:
    """Labels of log-axis ticks: 0.01, 1, 100; 1e-5 style outside 1e-3..1e5."""
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
