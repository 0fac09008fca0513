"""Model file -> ModelWeights. One module per way of reading."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from lstm_report.config.schema import ModelSpec
from lstm_report.errors import ConfigError
from lstm_report.model.layers import ModelWeights
from lstm_report.readers.files import check_safe, inspect_file
from lstm_report.readers.formats import FRAMEWORK_FORMATS
from lstm_report.readers.frameworks import read_framework
from lstm_report.readers.keras import direct
from lstm_report.readers.keras import load as keras_reader


def read_model(spec: ModelSpec, reader: str | None = None) -> ModelWeights:
    """Read one configured model: recognise the file, extract its LSTMs and GRUs.

    PyTorch and ONNX files are read by their own readers (readers/frameworks.py). For Keras
    files the direct reader (h5py, no TensorFlow, runs nothing from the file) is used where it
    can read the file; Keras, in safe mode, for everything else or when asked for.
    """
    where = _where(spec)
    choice = reader or spec.reader
    info = inspect_file(spec.path, where=where)
    if info.format in FRAMEWORK_FORMATS:
        if choice == "keras":
            raise ConfigError(
                f"{spec.key}.reader: Keras cannot read {spec.path.name} (a {info.format} file); "
                "use reader: auto"
            )
        return read_framework(
            spec.path,
            info.format,
            name=spec.name,
            where=where,
            allow_external_data=spec.external_data == "allow",
        )
    notes: tuple[str, ...] = ()
    if choice in ("auto", "direct"):
        assume = direct.Activations(**dict(spec.activations))
        try:
            return direct.read(info, name=spec.name, where=where, assume=assume)
        except direct.DirectReadError as exc:
            if choice == "direct":
                raise
            notes = (f"read with Keras: the direct reader could not ({exc})",)
    check_safe(info, where=where, unsafe=spec.unsafe)
    weights = keras_reader.read(info, name=spec.name, where=where, unsafe=spec.unsafe)
    return replace(weights, notes=weights.notes + notes) if notes else weights


def keras_inputs(spec: ModelSpec) -> Callable[[str | None, np.ndarray], np.ndarray]:
    """Computes a layer's input with Keras, for probe data behind non-LSTM layers (and,
    for layer None, the model's output)."""
    compute = keras_reader.layer_inputs(spec.path, unsafe=spec.unsafe)
    checked_once: list[bool] = []

    def checked(name: str | None, x: np.ndarray) -> np.ndarray:
        # Keras is about to load the model: the same safety check as the Keras reader,
        # once per model (the file is read again only for the first layer that needs it).
        if not checked_once:
            where = _where(spec)
            check_safe(inspect_file(spec.path, where=where), where=where, unsafe=spec.unsafe)
            checked_once.append(True)
        return compute(name, x)

    return checked


def _where(spec: ModelSpec) -> str:
    """models[0] (file.keras), or models[0] (name, file.keras): errors always name the file."""
    file = spec.path.name
    return f"{spec.key} ({file})" if spec.name == file else f"{spec.key} ({spec.name}, {file})"
