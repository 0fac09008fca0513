"""Pure numpy: forget-gate memory timescales, at rest and on probe data."""

from __future__ import annotations

import numpy as np

from lstm_report.gates import GateWeights, activation_fn
from lstm_report.model import LSTMWeights, Timescales


def tau(f: np.ndarray) -> tuple[float | None, ...]:
    """τ = 1 / (1 − f) steps: a cell keeps a fraction f per step, so e^(−t/τ)-ish decay."""
    return tuple(float(1.0 / (1.0 - v)) if v < 1.0 else None for v in np.asarray(f, np.float64))


def timescales(
    w: LSTMWeights, gates: tuple[GateWeights, ...], probe_forget: np.ndarray | None = None
) -> Timescales | None:
    """Resting forget activation f = act(b_f) per unit (b_f = 0 without bias), and τ."""
    rec = activation_fn(w.recurrent_activation)
    if rec is None:
        return None
    b_f = gates[1].b
    b = np.zeros(w.units) if b_f is None else np.asarray(b_f, np.float64)
    if not np.isfinite(b).all():
        return None
    f = rec(b)
    return Timescales(
        resting_forget=tuple(float(v) for v in f),
        resting_tau=tau(f),
        bias_shift=None if b_f is None else float(np.mean(b - 1.0)),
        probe_forget=None if probe_forget is None else tuple(float(v) for v in probe_forget),
        probe_tau=None if probe_forget is None else tau(probe_forget),
    )
