"""From matplotlib Figures (and arrays) to data URIs: byte-stable PNG and SVG, shared style."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_CELLS = 256
"""Heatmaps show at most this many rows and columns; larger matrices are pooled."""

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

DIVERGING = "RdBu_r"

RC: dict[Any, Any] = {
    "svg.hashsalt": "lstm-report",
    # Names come from users and files: draw them as literal text, never as mathtext.
    "text.parse_math": False,
    "svg.fonttype": "none",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class EmbeddedFigure:
    """One embedded figure: a data URI and the text that stands in for it."""

    uri: str
    alt: str


def pool_max_abs(a: np.ndarray, max_cells: int = MAX_CELLS) -> np.ndarray:
    """Downsample a 2-D array to at most max_cells per axis, keeping each block's largest |w|.

    Mean pooling would cancel positive and negative weights and hide strong connections;
    the signed value of largest magnitude keeps them visible. NaN counts as largest so
    that non-finite weights stay visible.
    """
    rows, cols = a.shape
    br = -(-rows // max_cells) if rows > max_cells else 1
    bc = -(-cols // max_cells) if cols > max_cells else 1
    if br == 1 and bc == 1:
        return a
    R, C = -(-rows // br), -(-cols // bc)
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


def integer_ticks(axis: Any) -> None:
    """Units, steps and indices are whole numbers: no ticks at 0.5."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def finite_max_abs(arrays: Sequence[np.ndarray]) -> float:
    vmax = 0.0
    for a in arrays:
        f = np.abs(a[np.isfinite(a)])
        if f.size:
            vmax = max(vmax, float(f.max()))
    return vmax or 1.0


def new_figure(
    width: float,
    height: float,
    *,
    left: float = 0.6,
    right: float = 0.15,
    bottom: float = 0.5,
    top: float = 0.3,
    wspace: float = 0.35,
) -> Figure:
    """A Figure with fixed margins (in inches). Fixed, not constrained, layout: it halves
    the drawing time, and our figures' contents are known in advance."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wspace,
    )
    return fig


def png_uri(fig: Figure) -> str:
    """PNG reduced to a 256-colour palette: colour-mapped weights need no more, at a third
    of the bytes (random-looking weights barely compress as RGBA)."""
    import matplotlib
    from PIL import Image

    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="png", metadata={"Software": None})
    buf.seek(0)
    with Image.open(buf) as im:
        pal = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    pal.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def svg_uri(fig: Figure) -> str:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
