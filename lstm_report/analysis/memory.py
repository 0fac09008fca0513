"""Pure numpy: memory timescales of the gate that keeps the old state, at rest and on data.

An LSTM keeps f·c_prev (forget gate f), a GRU z·h_prev (update gate z, as Keras, PyTorch
and ONNX all define it: h = z·h_prev + (1 − z)·h̃). Either way a unit keeps a fraction g
of its state per step at rest, so its memory decays with time constant τ = 1/(1 − g).
"""

from __future__ import annotations

import numpy as np

from lstm_report.cells.activations import activation_fn
from lstm_report.cells.base import GateWeights, memory_gate
from lstm_report.model.layers import RecurrentLayer
from lstm_report.model.stats import Timescales


def tau(f: np.ndarray) -> tuple[float | None, ...]:
    """τ = 1 / (1 − f) steps: a cell keeps a fraction f per step, so e^(−t/τ)-ish decay."""
    return tuple(float(1.0 / (1.0 - v)) if v < 1.0 else None for v in np.asarray(f, np.float64))


def timescales(
    w: RecurrentLayer, gates: tuple[GateWeights, ...], probe_forget: np.ndarray | None = None
) -> Timescales | None:
    """Resting memory-gate activation g = act(b_g) per unit (the input- and recurrent-side
    biases added; 0 without bias), and τ; ``probe_forget`` is that gate's mean on data."""
    rec = activation_fn(w.recurrent_activation)
    if rec is None:
        return None
    keep = memory_gate(gates)
    b_g = keep.bias
    b = np.zeros(w.units) if b_g is None else np.asarray(b_g, np.float64)
    if not np.isfinite(b).all():
        return None
    f = rec(b)
    shift = None
    if b_g is not None and keep.init_bias is not None:
        shift = float(np.mean(b - keep.init_bias))
    return Timescales(
        resting_keep=tuple(float(v) for v in f),
        resting_tau=tau(f),
        bias_shift=shift,
        probe_keep=None if probe_forget is None else tuple(float(v) for v in probe_forget),
        probe_tau=None if probe_forget is None else tau(probe_forget),
        gate=keep.gate,
        bias=None if b_g is None else tuple(float(v) for v in b),
    )
