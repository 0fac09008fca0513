"""The config resolved against a model: what the analysis of it and its comparisons do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lstm_report.model.conv_layers import ConvRecurrentLayer
from lstm_report.model.layers import RecurrentLayer


@dataclass(frozen=True)
class ModelPlan:
    """One model's config entry, checked against what was read (config.resolve)."""

    name: str
    path: Path
    shown_path: str
    """How the page, the JSON and the Markdown name the file."""
    layers: tuple[RecurrentLayer, ...]
    """The LSTMs and GRUs to analyse, in model order."""
    feature_names: tuple[str, ...] | None
    """The input features' names, checked against what reads them (None: none shown)."""
    names_given: bool = False
    """Whether the config named the features (a warning where no layer shows them)."""
    probe_sequence: int | None = None
    """Which probe sequence the state heatmaps show (None: no probe configured)."""
    dynamics: str | None = "zero"
    """The input the fixed points hold (zero or mean); None: no dynamics at all."""
    pad_token: int = 0
    vocabulary: tuple[str, ...] | None = None
    conv_layers: tuple[ConvRecurrentLayer, ...] = ()
    """The Keras ConvLSTM layers to analyse, in model order (all by default, as layers)."""


Side = tuple[str, Sequence[RecurrentLayer]]
"""One side of a comparison: its name (a model, or ``model@checkpoint``) and its layers."""


@dataclass(frozen=True)
class LayerPairs:
    """Which layer of a comparison's baseline goes with which of its candidate."""

    pairs: tuple[tuple[RecurrentLayer, RecurrentLayer], ...]
    matched_by: str
    """``name``, ``position`` or ``mapping`` (``comparisons[k].matched_by`` in the JSON)."""
