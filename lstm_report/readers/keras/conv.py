"""Keras ConvLSTM1D/2D/3D layers from their stored arrays and config, checked against both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lstm_report.cells.conv_lstm import from_keras_conv_lstm
from lstm_report.errors import AnalysisError, CorruptModelError
from lstm_report.model.conv_layers import ConvRecurrentLayer
from lstm_report.readers.keras.topology import FoundLayer

CONV_KINDS = frozenset({"ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"})


def _ints(v: Any, rank: int, what: str, where: str) -> tuple[int, ...]:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,) * rank
    if isinstance(v, Sequence) and len(v) == rank and all(type(x) is int for x in v):
        return tuple(v)
    raise CorruptModelError(f"{where}: {what} {v!r} is not {rank} integers")


def conv_layer(found: FoundLayer, arrays: list[np.ndarray], where: str) -> ConvRecurrentLayer:
    """One ConvLSTM (not a Bidirectional's half) from its arrays kernel, recurrent kernel,
    bias; CorruptModelError where they disagree with each other or with the config."""
    cfg: Mapping[str, Any] = found.config
    kind = found.class_name
    rank = int(kind[-2])
    bias_used = bool(cfg.get("use_bias", True))
    if len(arrays) != (3 if bias_used else 2):
        raise CorruptModelError(
            f"{where}: {found.path} ({kind}) has {len(arrays)} weight arrays, expected "
            f"{3 if bias_used else 2}"
        )
    kernel, rec = arrays[0], arrays[1]
    bias = arrays[2] if bias_used else None
    if kernel.ndim != rank + 2:
        raise CorruptModelError(f"{where}: {found.path} ({kind}): kernel {kernel.shape}")
    size = _ints(cfg.get("kernel_size", kernel.shape[:rank]), rank, "kernel_size", where)
    filters = cfg.get("filters", kernel.shape[-1] // 4)
    if size != kernel.shape[:rank] or rec.shape[:rank] != size or kernel.shape[-1] != 4 * filters:
        raise CorruptModelError(
            f"{where}: {found.path} ({kind}): config says {filters} filters of size {size}, "
            f"weights are {kernel.shape}, {rec.shape}"
        )
    try:
        cell = from_keras_conv_lstm(
            kernel,
            rec,
            bias,
            name=found.path,
            strides=_ints(cfg.get("strides", 1), rank, "strides", where),
            padding=str(cfg.get("padding", "valid")).lower(),
            dilation_rate=_ints(cfg.get("dilation_rate", 1), rank, "dilation_rate", where),
            activation=str(cfg.get("activation", "tanh")),
            recurrent_activation=str(cfg.get("recurrent_activation", "sigmoid")),
        )
    except AnalysisError as exc:
        raise CorruptModelError(f"{where}: {exc}") from exc
    return ConvRecurrentLayer(
        name=found.path,
        kind=kind,
        cell=cell,
        return_sequences=bool(cfg.get("return_sequences", False)),
        go_backwards=bool(cfg.get("go_backwards", False)),
        reads_input=found.reads_input,
        source=found.source,
    )
