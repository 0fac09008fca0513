"""Arrays to byte-stable images: pooling, the diverging colour map, palette PNGs, data URIs."""

from __future__ import annotations

import base64
import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote

import numpy as np

from lstm_report.figures.chart import Chart

MAX_CELLS = 256
"""Heatmaps show at most this many rows and columns (and no more than their panel has
pixels); larger matrices are pooled."""

POOLING = "max-|w| pooling"
"""How large matrices are downsampled: each block shows its weight of largest magnitude."""

GATE_COLORS = {
    "i": "#0072B2",
    "f": "#D55E00",
    "c": "#009E73",
    "o": "#CC79A7",
    "z": "#D55E00",  # the memory gate in the forget gate's colour
    "r": "#0072B2",
    "h": "#009E73",  # the candidate in the candidate's colour
}
"""Okabe-Ito colours: distinguishable with the common colour-vision deficiencies."""

RDBU_R = (
    "#053061",
    "#2166ac",
    "#4393c3",
    "#92c5de",
    "#d1e5f0",
    "#f7f7f7",
    "#fddbc7",
    "#f4a582",
    "#d6604d",
    "#b2182b",
    "#67001f",
)
"""ColorBrewer's RdBu, reversed (blue negative, red positive): the colour map's anchors,
evenly spaced from -max|w| to +max|w| (matplotlib's ``RdBu_r``)."""

LUT_SIZE = 256
NONFINITE = (0, 0, 0)
"""NaN and ±inf weights are black: no colour of the map."""


@dataclass(frozen=True)
class Tile:
    """One piece of a figure that may wrap onto the next line: a data URI and its size in
    px at 100% (the page lays tiles out side by side, and one under the other on a phone)."""

    uri: str
    width: float
    height: float


@dataclass(frozen=True)
class EmbeddedFigure:
    """One embedded figure: a data URI and the text that stands in for it."""

    uri: str
    alt: str
    tiles: tuple[Tile, ...] = ()
    """The figure cut into panels the page shows instead of ``uri`` (none: one image)."""
    chart: Chart | None = field(default=None, compare=False, repr=False)
    """The chart it was drawn from, for other renderers (figures/mpl.py)."""


@lru_cache(maxsize=1)
def diverging_lut() -> np.ndarray:
    """The 256 colours (uint8 RGB rows) of the diverging map, interpolated linearly between
    the anchors as matplotlib's LinearSegmentedColormap does."""
    anchors = np.array([[int(c[k : k + 2], 16) for k in (1, 3, 5)] for c in RDBU_R], float) / 255
    at = np.linspace(0.0, 1.0, len(RDBU_R))
    x = np.linspace(0.0, 1.0, LUT_SIZE)
    rgb = np.stack([np.interp(x, at, anchors[:, k]) for k in range(3)], axis=1)
    lut = np.round(rgb * 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def colour_indices(m: np.ndarray, vmax: float) -> np.ndarray:
    """Each value's entry in the LUT (0..255) on the scale ±vmax, or -1 where not finite.

    As matplotlib maps: v -> (v + vmax) / 2vmax, clipped to [0, 1], times 256, floored,
    with 1.0 in the last entry."""
    a = np.asarray(m, np.float64)
    finite = np.isfinite(a)
    with np.errstate(invalid="ignore", over="ignore"):
        x = (np.where(finite, a, 0.0) + vmax) / (2.0 * vmax)
    idx = np.clip(np.floor(np.clip(x, 0.0, 1.0) * LUT_SIZE), 0, LUT_SIZE - 1).astype(np.int16)
    return np.where(finite, idx, -1)


def heat_png(m: np.ndarray, vmax: float) -> bytes:
    """A PNG of ``m`` at one pixel per value, colour-mapped on ±vmax.

    A palette PNG of the colours that occur (random-looking weights barely compress as RGB);
    RGB only when a matrix needs all 256 map colours and black. No time or text chunks:
    the same matrix gives the same bytes."""
    from PIL import Image  # Pillow: only a heatmap needs it

    idx = colour_indices(m, vmax)
    lut = diverging_lut()
    used, inverse = np.unique(idx, return_inverse=True)
    colours = np.array([NONFINITE if k < 0 else lut[k] for k in used], np.uint8).reshape(-1, 3)
    if len(used) <= 256:
        im = Image.fromarray(inverse.reshape(idx.shape).astype(np.uint8), "P")
        im.putpalette(colours.tobytes())
    else:
        im = Image.fromarray(colours[inverse.reshape(idx.shape)], "RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=zlib.Z_BEST_COMPRESSION)
    return buf.getvalue()


@lru_cache(maxsize=1)
def lut_png() -> bytes:
    """The colour map as a 1×256 PNG, its last entry (+vmax) at the top: a colour bar."""
    column = np.linspace(1.0, -1.0, LUT_SIZE)[:, None]  # entries 255 .. 0
    return heat_png(column, 1.0)


def png_uri(data: bytes) -> str:
    """PNG bytes as a base64 data URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


SVG_SAFE = " /=:;,+()-._~!*$@?[]{}|^"
"""What an SVG data URI keeps as it is: never %, #, quotes, <, > or & (the URI is safe in
an HTML attribute as it stands, so autoescaping leaves it alone), nor line breaks."""


def svg_uri(text: str) -> str:
    """SVG as a percent-encoded data URI: a quarter smaller than base64 for our charts, and
    a heatmap's PNG inside is not base64-encoded a second time."""
    return "data:image/svg+xml," + quote(text, safe=SVG_SAFE)


def pool_max_abs(
    a: np.ndarray, max_cells: int = MAX_CELLS, max_cols: int | None = None
) -> np.ndarray:
    """Downsample a 2-D array to at most max_cells per axis (max_cols columns, if given),
    keeping each block's largest |w|.

    Mean pooling would cancel positive and negative weights and hide strong connections;
    the signed value of largest magnitude keeps them visible. NaN counts as largest so
    that non-finite weights stay visible. Ties (+w and −w, zeros) go to the first in the
    block, row by row.
    """
    rows, cols = a.shape
    max_cols = max_cells if max_cols is None else max_cols
    br = -(-rows // max_cells) if rows > max_cells else 1
    bc = -(-cols // max_cols) if cols > max_cols else 1
    if br == 1 and bc == 1:
        return a
    R, C = -(-rows // br), -(-cols // bc)
    out = np.empty((R, C))
    # A strip of block rows at a time: a few MiB of temporaries instead of five float64
    # copies of the matrix (40 MiB at 1024×1024, the report's peak memory).
    step = max(1, POOL_STRIP_CELLS // (br * C * bc))
    for r0 in range(0, R, step):
        r1 = min(R, r0 + step)
        out[r0:r1] = _pool_strip(a[r0 * br : r1 * br], br, bc, C)
    return out


POOL_STRIP_CELLS = 1 << 16
"""Weights pooled at a time."""


def _pool_strip(a: np.ndarray, br: int, bc: int, C: int) -> np.ndarray:
    """pool_max_abs of whole block rows (the last may be short): the block's max or min,
    whichever is larger in magnitude; blocks where they tie, or strips with non-finite
    values, by the general rule (``_pool_first``)."""
    rows, cols = a.shape
    R = -(-rows // br)
    if a.dtype.kind == "f" and np.isfinite(a).all():
        padded = np.zeros((R * br, C * bc), a.dtype)  # a zero never beats a weight
        padded[:rows, :cols] = a
        blocks = padded.reshape(R, br, C, bc)
        hi, lo = blocks.max(axis=(1, 3)), blocks.min(axis=(1, 3))
        if not np.any(hi == -lo):  # no tie (nor an all-zero block)
            return np.where(hi > -lo, hi, lo).astype(np.float64)
    return _pool_first(a, br, bc, C)


def _pool_first(a: np.ndarray, br: int, bc: int, C: int) -> np.ndarray:
    """The first value of largest |w| in each block (NaN largest), padding never chosen."""
    rows, cols = a.shape
    R = -(-rows // br)
    padded = np.full((R * br, C * bc), np.nan if a.dtype.kind == "f" else 0, dtype=np.float64)
    padded[:rows, :cols] = a
    blocks = padded.reshape(R, br, C, bc).transpose(0, 2, 1, 3).reshape(R, C, br * bc)
    mag = np.abs(blocks)
    pad_mask = np.zeros((R * br, C * bc), bool)
    pad_mask[rows:, :] = True
    pad_mask[:, cols:] = True
    pad_blocks = pad_mask.reshape(R, br, C, bc).transpose(0, 2, 1, 3).reshape(R, C, br * bc)
    mag = np.where(np.isnan(mag), np.inf, mag)  # a real NaN weight wins its block
    mag = np.where(pad_blocks, -1.0, mag)  # padding never wins
    idx = np.argmax(mag, axis=2)
    return np.take_along_axis(blocks, idx[..., None], axis=2)[..., 0]


def finite_max_abs(arrays: Sequence[np.ndarray]) -> float:
    """The largest finite magnitude in the arrays (1.0 where there is none): a colour scale."""
    vmax = 0.0
    for a in arrays:
        if a.size and np.isfinite(a).all():  # no copy of a large matrix
            vmax = max(vmax, float(a.max()), -float(a.min()))
            continue
        f = np.abs(a[np.isfinite(a)])
        if f.size:
            vmax = max(vmax, float(f.max()))
    return vmax or 1.0
