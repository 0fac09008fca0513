"""Figures: matplotlib (object API, never pyplot) to byte-stable data URIs.

One module per family: ``encode`` (PNG/SVG, style), ``layer`` (one layer's figures),
``training`` (comparisons and checkpoint series), ``workers`` (the drawing processes).
"""

from lstm_report.figures.encode import MAX_CELLS, POOLING, EmbeddedFigure, pool_max_abs
from lstm_report.figures.layer import LayerFigures, heatmaps, layer_figures
from lstm_report.figures.training import CompareFigures, comparison_figures, series_figures
from lstm_report.figures.workers import Workers, draw_figures

__all__ = [
    "MAX_CELLS",
    "POOLING",
    "CompareFigures",
    "EmbeddedFigure",
    "LayerFigures",
    "Workers",
    "comparison_figures",
    "draw_figures",
    "heatmaps",
    "layer_figures",
    "pool_max_abs",
    "series_figures",
]
