"""Every figure of a report, drawn in this process (each costs milliseconds; forked drawing
workers cost more than they saved: see the README's benchmark notes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lstm_report.figures.layer import layer_figures
from lstm_report.figures.training import comparison_figures, series_figures
from lstm_report.model import Comparison, LayerAnalysis, Series


def draw_figures(
    layers: Sequence[LayerAnalysis],
    comparisons: Sequence[Comparison] = (),
    series: Sequence[Series] = (),
) -> dict[str, Any]:
    """Figures of every layer, compared layer and series, keyed by anchor."""
    figures: dict[str, Any] = {la.anchor: layer_figures(la) for la in layers}
    figures.update({ld.anchor: comparison_figures(ld) for c in comparisons for ld in c.layers})
    figures.update({s.anchor: series_figures(s) for s in series})
    return figures
