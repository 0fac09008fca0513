"""Model file -> ModelWeights. One module per way of reading."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lstm_report.config import ModelSpec
from lstm_report.model import ModelWeights
from lstm_report.readers.files import check_safe, inspect_file


def read_model(spec: ModelSpec) -> ModelWeights:
    """Read one configured model: recognise the file, refuse unsafe ones, extract the LSTMs."""
    where = f"{spec.key} ({spec.name})"
    info = inspect_file(spec.path, where=where)
    check_safe(info, where=where, unsafe=spec.unsafe)
    from lstm_report.readers import keras_reader

    return keras_reader.read(info, name=spec.name, where=where, unsafe=spec.unsafe)


def keras_inputs(spec: ModelSpec) -> Callable[[str, np.ndarray], np.ndarray]:
    """Computes a layer's input with Keras, for probe data behind non-LSTM layers."""
    from lstm_report.readers import keras_reader

    return keras_reader.layer_inputs(spec.path, unsafe=spec.unsafe)
