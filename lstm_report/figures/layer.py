"""Every figure of one layer section, from the figure modules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lstm_report.figures.activity import activity_charts
from lstm_report.figures.biases import biases_chart
from lstm_report.figures.encode import EmbeddedFigure
from lstm_report.figures.heatmap import heatmaps
from lstm_report.figures.histogram import histograms
from lstm_report.figures.mechanism import MechanismFigures, mechanism_figures
from lstm_report.figures.memory import memory_chart
from lstm_report.figures.spectra import spectra_chart
from lstm_report.model.analyses import LayerAnalysis


@dataclass(frozen=True)
class LayerFigures:
    """Every figure of one layer section (None where its data is missing)."""

    heat_W: EmbeddedFigure
    heat_U: EmbeddedFigure
    histograms: EmbeddedFigure
    biases: EmbeddedFigure | None
    pooled: str | None
    """Set when a heatmap was downsampled: which pooling, from what size."""
    spectra: EmbeddedFigure | None = None
    memory: EmbeddedFigure | None = None
    activity: EmbeddedFigure | None = None
    saturation: EmbeddedFigure | None = None
    states: EmbeddedFigure | None = None
    mechanism: MechanismFigures | None = None


def layer_figures(la: LayerAnalysis, row_labels: Sequence[str] | None = None) -> LayerFigures:
    """Every figure of one layer section."""
    gates = la.weights.cell.gates
    label = la.weights.label
    names = row_labels
    if names is None and la.features:
        names = [f.name for f in la.features]
    embedded = la.weights.reads_embedding
    if embedded and names is None:
        names = [f"embedding dimension {k}" for k in range(la.weights.input_dim)]
    letters = [g.gate for g in gates]
    heat_w, note_w = heatmaps(
        [g.W for g in gates],
        "W",
        names,
        label,
        letters,
        rows_are="embedding dimension" if embedded else "input feature",
    )
    heat_u, note_u = heatmaps([g.U for g in gates], "U", None, label, letters)
    pooled = "; ".join(n for n in (note_w, note_u) if n) or None
    hist, sat, states = activity_charts(la)
    return LayerFigures(
        heat_W=heat_w,
        heat_U=heat_u,
        histograms=histograms(gates, label),
        biases=biases_chart(gates, label),
        pooled=pooled,
        spectra=spectra_chart(la),
        memory=memory_chart(la),
        activity=hist,
        saturation=sat,
        states=states,
        mechanism=mechanism_figures(la),
    )
