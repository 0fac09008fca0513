"""Figures: computed geometry rendered as small SVGs, heatmaps as palette PNGs inside them.

One module per family: ``encode`` (colour map, PNG and data URIs, byte-stable), ``chart``
(scales, ticks and marks for ``templates/chart.svg.jinja2``), ``layer`` (one layer's
figures), ``training`` (comparisons and checkpoint series), ``page`` (all of a report's).
"""

from lstm_report.figures.encode import MAX_CELLS, POOLING, EmbeddedFigure, pool_max_abs
from lstm_report.figures.heatmap import heatmaps
from lstm_report.figures.layer import LayerFigures, layer_figures
from lstm_report.figures.page import draw_figures
from lstm_report.figures.training import CompareFigures, comparison_figures, series_figures

__all__ = [
    "MAX_CELLS",
    "POOLING",
    "CompareFigures",
    "EmbeddedFigure",
    "LayerFigures",
    "comparison_figures",
    "draw_figures",
    "heatmaps",
    "layer_figures",
    "pool_max_abs",
    "series_figures",
]
