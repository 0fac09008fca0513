"""Pure numpy: what changed between two models, layer by layer and gate by gate."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lstm_report.analysis.norms import cosine, fro, scale_of
from lstm_report.errors import ConfigError
from lstm_report.gates import layer_gates
from lstm_report.model import (
    Comparison,
    Delta,
    GateDelta,
    LayerDelta,
    LSTMWeights,
    ModelAnalysis,
)

TOP_UNITS = 5


def delta(a: np.ndarray, b: np.ndarray) -> Delta:
    """Change from a (baseline) to b (candidate), in float64."""
    x = np.asarray(a, np.float64).ravel()
    y = np.asarray(b, np.float64).ravel()
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return Delta(None, None, None)
    # Scaled by the larger magnitude first, so that y - x cannot overflow either.
    s = max(scale_of(x), scale_of(y))
    d = fro(y / s - x / s) * s
    nx = fro(x)
    return Delta(delta_fro=d, relative=d / nx if nx > 0 else None, cosine=cosine(x, y))


def compare_layers(a: LSTMWeights, b: LSTMWeights, anchor: str, where: str) -> LayerDelta:
    for arr in ("kernel", "recurrent_kernel"):
        sa, sb = getattr(a, arr).shape, getattr(b, arr).shape
        if sa != sb:
            raise ConfigError(
                f"{where}: layer {a.label!r} has {arr} shape {sa} in the baseline but {sb} "
                "in the candidate; they cannot be compared"
            )
    if (a.bias is None) != (b.bias is None):
        raise ConfigError(f"{where}: layer {a.label!r} has a bias on one side only")
    ga, gb = layer_gates(a), layer_gates(b)
    gates = tuple(
        GateDelta(
            gate=x.gate,
            W=delta(x.W, y.W),
            U=delta(x.U, y.U),
            b=None if x.b is None or y.b is None else delta(x.b, y.b),
        )
        for x, y in zip(ga, gb)
    )
    u = a.units
    dk = np.asarray(b.kernel, np.float64) - np.asarray(a.kernel, np.float64)
    dr = np.asarray(b.recurrent_kernel, np.float64) - np.asarray(a.recurrent_kernel, np.float64)
    per_col = (dk * dk).sum(axis=0) + (dr * dr).sum(axis=0)
    if a.bias is not None and b.bias is not None:
        per_col = per_col + (np.asarray(b.bias, np.float64) - np.asarray(a.bias, np.float64)) ** 2
    per_unit = np.sqrt(per_col.reshape(4, u).sum(axis=0))  # a unit's columns in all 4 gates
    order = [j for j in np.argsort(-per_unit, kind="stable") if np.isfinite(per_unit[j])]
    top = tuple((int(j), float(per_unit[j])) for j in order[:TOP_UNITS])
    return LayerDelta(a.name, a.direction, gates, top, a, b, anchor)


Side = tuple[str, Sequence[LSTMWeights]]
"""One side of a comparison: its name (a model, or ``model@checkpoint``) and its layers."""


def side(m: ModelAnalysis) -> Side:
    """A model's analysed layers as one side of a comparison."""
    return m.name, tuple(la.weights for la in m.layers)


def compare_models(base: Side, cand: Side, index: int, where: str) -> Comparison:
    """Match layers by name and direction; shapes must agree."""
    left = {(w.name, w.direction): w for w in base[1]}
    right = {(w.name, w.direction): w for w in cand[1]}
    anchor = f"cmp{index}"
    layers = tuple(
        compare_layers(w, right[key], f"{anchor}-l{j}", where)
        for j, (key, w) in enumerate(left.items())
        if key in right
    )

    def label(k: tuple[str, str]) -> str:
        return f"{k[0]} ({k[1]})"

    return Comparison(
        baseline=base[0],
        candidate=cand[0],
        layers=layers,
        only_baseline=tuple(label(k) for k in left if k not in right),
        only_candidate=tuple(label(k) for k in right if k not in left),
        anchor=anchor,
    )
