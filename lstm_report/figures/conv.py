"""A ConvLSTM layer's kernels as small multiples: one heatmap panel per gate, each tap's
matrix stacked as a block of rows (figures/heatmap.py)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from lstm_report.figures.encode import EmbeddedFigure
from lstm_report.figures.heatmap import heatmaps
from lstm_report.model.conv_layers import ConvLayerAnalysis


@dataclass(frozen=True)
class ConvFigures:
    """The input kernels K_g and the recurrent kernels R_g of one ConvLSTM."""

    heat_K: EmbeddedFigure
    heat_R: EmbeddedFigure
    pooled_note: str | None = None


def tap_rows(kernel: np.ndarray) -> np.ndarray:
    """kernel_size + (a, b) -> (taps·a, b): tap after tap (row-major), a rows each."""
    return kernel.reshape(-1, kernel.shape[-1])


def _row_names(kernel_size: tuple[int, ...], channels: int, what: str) -> list[str]:
    return [
        f"tap {','.join(map(str, tap))} · {what} {c}"
        for tap in product(*(range(k) for k in kernel_size))
        for c in range(channels)
    ]


def conv_figures(a: ConvLayerAnalysis) -> ConvFigures:
    """Heatmaps of every K_g and R_g of the layer, one colour scale per family."""
    w = a.layer
    letters = [g.name for g in w.cell.gates]
    heat_k, note_k = heatmaps(
        [tap_rows(g.K) for g in w.cell.gates],
        "K",
        _row_names(w.kernel_size, w.in_channels, "channel"),
        w.name,
        letters,
        rows_are="kernel tap · input channel",
        inputs=True,
        columns_are="filter",
    )
    heat_r, note_r = heatmaps(
        [tap_rows(g.R) for g in w.cell.gates],
        "R",
        _row_names(w.kernel_size, w.filters, "filter"),
        w.name,
        letters,
        rows_are="kernel tap · filter of h",
        inputs=True,
        columns_are="filter",
    )
    pooled = "; ".join(n for n in (note_k, note_r) if n) or None
    return ConvFigures(heat_K=heat_k, heat_R=heat_r, pooled_note=pooled)
