"""Every figure of a report, drawn in this process (each costs milliseconds; forked drawing
workers cost more than they saved: see docs/speed.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lstm_report.figures.importance import step_chart
from lstm_report.figures.layer import layer_figures
from lstm_report.figures.training import comparison_figures, series_figures
from lstm_report.model.analyses import LayerAnalysis, ModelAnalysis
from lstm_report.model.training import Comparison, LayerDelta, Series


def draw_figures(
    layers: Sequence[LayerAnalysis],
    comparisons: Sequence[Comparison] = (),
    series: Sequence[Series] = (),
    models: Sequence[ModelAnalysis] = (),
) -> dict[str, Any]:
    """Figures of every layer, compared layer and series, keyed by anchor. ``models`` name
    the rows of the ΔW heatmaps of a comparison's first layers (their input features)."""
    figures: dict[str, Any] = {la.anchor: layer_figures(la) for la in layers}
    by_name = {m.name: m for m in models}
    for c in comparisons:
        for ld in c.layers:
            figures[ld.anchor] = comparison_figures(ld, _feature_rows(by_name, c.candidate, ld))
    figures.update({s.anchor: series_figures(s) for s in series})
    for m in models:
        imp = m.input_importance
        if imp is not None and imp.per_step:
            figures[f"{m.anchor}-steps"] = step_chart(imp.per_step, m.name)
    return figures


def _feature_rows(
    by_name: Mapping[str, ModelAnalysis], side: str, ld: LayerDelta
) -> tuple[str, ...] | None:
    """The input feature names of a compared layer, from the candidate's model (a side is a
    model's name, or ``model@checkpoint``); None where its inputs are not the features."""
    model = by_name.get(side) or by_name.get(side.rpartition("@")[0])
    for la in model.layers if model is not None else ():
        if (la.weights.name, la.weights.direction) == (ld.name, ld.direction) and la.features:
            names = tuple(f.name for f in la.features)
            return names if len(names) == ld.candidate.input_dim else None
    return None
