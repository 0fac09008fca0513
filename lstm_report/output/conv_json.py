"""The JSON of a ConvLSTM layer (``models[].conv_layers[]``, docs/json.md)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lstm_report.model.conv_layers import ArrayStats, ConvGateStats, ConvLayerAnalysis


def _stats(s: ArrayStats | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "size": s.size,
        "mean": s.mean,
        "std": s.std,
        "norm": s.norm,
        "max_abs": s.max_abs,
        "nonfinite": s.nonfinite,
    }


def _nested(a: np.ndarray) -> Any:
    return np.asarray(a, dtype=np.float64).tolist()


def _gate(g: ConvGateStats) -> dict[str, Any]:
    return {
        "gate": g.gate,
        "kernel": _stats(g.K),
        "recurrent_kernel": _stats(g.R),
        "bias": _stats(g.b),
        "kernel_tap_norms": _nested(g.K_tap_norms),
        "recurrent_tap_norms": _nested(g.R_tap_norms),
        "recurrent_tap_top_singular": _nested(g.R_tap_top_singular),
    }


def conv_layer_json(a: ConvLayerAnalysis) -> dict[str, Any]:
    """One ConvLSTM's entry; timescales are null where infinite (σ(b_f) = 1)."""
    w, c = a.layer, a.layer.cell
    return {
        "name": w.name,
        "kind": w.kind,
        "filters": w.filters,
        "in_channels": w.in_channels,
        "kernel_size": list(w.kernel_size),
        "strides": list(c.strides),
        "padding": c.padding,
        "dilation_rate": list(c.dilation),
        "activation": c.activation,
        "recurrent_activation": c.recurrent_activation,
        "return_sequences": w.return_sequences,
        "go_backwards": w.go_backwards,
        "reads_input": w.reads_input,
        "params": w.params,
        "gates": [_gate(g) for g in a.gates],
        "forget_at_rest": [float(f) for f in a.forget_at_rest],
        "timescales": [float(t) if math.isfinite(t) else None for t in a.timescales],
    }
