"""The frozen stage data of a whole model's graph: what the numpy replay of the model
(analysis/model_replay.py) runs, as a reader found it in the file (readers/keras/graph.py,
readers/onnx/whole_graph.py). Plain data: nothing here runs or reads anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IDENTITY_LAYERS = frozenset(
    {
        "InputLayer",
        "Dropout",
        "SpatialDropout1D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "Identity",
    }
)
"""Keras layers that return their input at inference (the readers' topology walk and the
numpy replay both go through them)."""


@dataclass(frozen=True, eq=False)
class GraphLayer:
    """One layer of a Keras model, with the arrays numpy needs to compute it."""

    name: str
    """Its path: names of enclosing nested models and the layer, joined by ``/``."""
    class_name: str
    config: Mapping[str, Any]
    inputs: tuple[str, ...]
    """Names of the layers whose outputs it reads, in call order (``""``: the model input)."""
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Arrays by role (``kernel``, ``bias``, ``gamma``, ``moving_mean``, ...)."""
    mask_from: str | None = None
    """The layer whose output is the mask it is called with (Keras 3 records it)."""


@dataclass(frozen=True, eq=False)
class ModelGraph:
    """A whole model, in an order where every layer comes after the layers it reads.

    ``stop`` names the first layer numpy cannot compute, with why (None: the whole graph
    is known). The layers up to it can still be computed."""

    layers: tuple[GraphLayer, ...]
    output: str
    """The layer whose output is the model's prediction."""
    stop: str | None = None
    stop_layer: str | None = None
    """The name of the layer ``stop`` is about."""
    onnx: bytes | None = None
    """For an ONNX file: the serialized model, run by onnx's reference evaluator."""
    onnx_batch_first: bool = True
    note: str | None = None
    """How the prediction is taken, where the report should say it (e.g. which output)."""
