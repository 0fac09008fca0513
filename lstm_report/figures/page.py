"""Every figure of a report, drawn in this process (each costs milliseconds; forked drawing
workers cost more than they saved: see docs/speed.md)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from lstm_report.figures.conv import ConvFigures, conv_figures
from lstm_report.figures.encode import EmbeddedFigure
from lstm_report.figures.importance import step_chart
from lstm_report.figures.layer import LayerFigures, layer_figures
from lstm_report.figures.training import CompareFigures, comparison_figures, series_figures
from lstm_report.model.analyses import LayerAnalysis, ModelAnalysis
from lstm_report.model.training import Comparison, LayerDelta, Series

SeriesFigures = tuple[tuple[str, EmbeddedFigure], ...]
"""A checkpoint series' figures: (layer label, its chart), one per layer."""


@dataclass(frozen=True)
class Figures:
    """Every figure a report's page shows, each family keyed by the anchor of its section.
    Empty where nothing was drawn (the outputs other than the page need no figures)."""

    layers: Mapping[str, LayerFigures] = field(default_factory=dict)
    """By layer anchor (LayerAnalysis.anchor)."""
    compared: Mapping[str, CompareFigures] = field(default_factory=dict)
    """By compared layer's anchor (LayerDelta.anchor)."""
    series: Mapping[str, SeriesFigures] = field(default_factory=dict)
    """By series anchor (Series.anchor)."""
    steps: Mapping[str, EmbeddedFigure] = field(default_factory=dict)
    """The per-step importance chart, by model anchor (only models that have one)."""
    conv: Mapping[str, ConvFigures] = field(default_factory=dict)
    """By ConvLSTM anchor (ConvLayerAnalysis.anchor)."""

    def items(self) -> Iterator[tuple[str, object]]:
        """(section anchor, its figures) in page order: layers, ConvLSTMs, comparisons,
        series, steps; a step chart's section is ``{model anchor}-steps``."""
        yield from self.layers.items()
        yield from self.conv.items()
        yield from self.compared.items()
        yield from self.series.items()
        yield from ((f"{anchor}-steps", fig) for anchor, fig in self.steps.items())


def draw_figures(
    layers: Sequence[LayerAnalysis],
    comparisons: Sequence[Comparison] = (),
    series: Sequence[Series] = (),
    models: Sequence[ModelAnalysis] = (),
) -> Figures:
    """Figures of every layer, compared layer, series and per-step importance. ``models``
    name the rows of the ΔW heatmaps of a comparison's first layers (their input features)."""
    by_name = {m.name: m for m in models}
    compared = {
        ld.anchor: comparison_figures(ld, _feature_rows(by_name, c.candidate, ld))
        for c in comparisons
        for ld in c.layers
    }
    steps = {}
    for m in models:
        imp = m.input_importance
        if imp is not None and imp.per_step:
            fig = step_chart(imp.per_step, m.name)
            if fig is not None:
                steps[m.anchor] = fig
    return Figures(
        layers={la.anchor: layer_figures(la) for la in layers},
        compared=compared,
        series={s.anchor: series_figures(s) for s in series},
        steps=steps,
        conv={c.anchor: conv_figures(c) for m in models for c in m.conv_layers},
    )


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
