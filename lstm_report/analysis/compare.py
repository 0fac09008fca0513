"""Pure numpy: what changed between two models, layer by layer and gate by gate."""

from __future__ import annotations

import math

import numpy as np

from lstm_report.analysis.norms import cosine, fro, scale_of
from lstm_report.cells.base import GateWeights
from lstm_report.model.analyses import ModelAnalysis
from lstm_report.model.layers import RecurrentLayer
from lstm_report.model.plan import LayerPairs, Side
from lstm_report.model.training import Comparison, Delta, GateDelta, LayerDelta

TOP_UNITS = 5


def delta(a: np.ndarray, b: np.ndarray, gate_rms: float | None = None) -> Delta:
    """Change from a (baseline) to b (candidate), in float64; ``change`` in units of
    ``gate_rms`` (gate_scale of the gate the arrays belong to), where it is given."""
    x = np.asarray(a, np.float64).ravel()
    y = np.asarray(b, np.float64).ravel()
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return Delta(None, None, None)
    # Scaled by the larger magnitude first, so that y - x cannot overflow either.
    s = max(scale_of(x), scale_of(y))
    d = fro(y / s - x / s) * s
    nx = fro(x)
    change = None
    if gate_rms is not None and gate_rms > 0 and math.isfinite(gate_rms) and x.size:
        change = d / math.sqrt(x.size) / gate_rms
    return Delta(
        delta_fro=d, relative=d / nx if nx > 0 else None, cosine=cosine(x, y), change=change
    )


def gate_scale(before: GateWeights, after: GateWeights) -> float | None:
    """The RMS of all of a gate's parameters (W, U and its biases), before and after
    together: the unit of ``Delta.change``. Pooled over the gate, so that biases started at
    zero (or near it) are not measured against their own tiny norm; over both sides, so
    that the measure is symmetric. None where a value is not finite."""
    norms, count = [], 0
    for side in (before, after):
        for arr in (side.W, side.U, side.b, side.b_rec):
            if arr is not None:
                a = np.asarray(arr, np.float64)
                if not np.isfinite(a).all():
                    return None
                norms.append(fro(a))
                count += a.size
    return math.hypot(*norms) / math.sqrt(count) if count else None


def compare_layers(a: RecurrentLayer, b: RecurrentLayer, anchor: str) -> LayerDelta:
    """How layer ``a`` of the baseline changed into ``b`` of the candidate (the pair
    checked by config.resolve.check_pair)."""
    ga, gb = a.cell.gates, b.cell.gates
    gates = tuple(
        GateDelta(
            gate=x.gate,
            W=delta(x.W, y.W, rms),
            U=delta(x.U, y.U, rms),
            b=None if x.b is None or y.b is None else delta(x.b, y.b, rms),
            b_rec=None if x.b_rec is None or y.b_rec is None else delta(x.b_rec, y.b_rec, rms),
        )
        for x, y in zip(ga, gb)
        for rms in [gate_scale(x, y)]
    )
    per_unit = np.zeros(a.units)  # a unit's incoming weights in every gate
    for x, y in zip(ga, gb):
        for p, q in ((x.W, y.W), (x.U, y.U), (x.b, y.b), (x.b_rec, y.b_rec)):
            if p is not None and q is not None:
                d = np.asarray(q, np.float64) - np.asarray(p, np.float64)
                per_unit += (d * d).reshape(-1, a.units).sum(axis=0)
    per_unit = np.sqrt(per_unit)
    order = [j for j in np.argsort(-per_unit, kind="stable") if np.isfinite(per_unit[j])]
    top = tuple((int(j), float(per_unit[j])) for j in order[:TOP_UNITS])
    return LayerDelta(a.name, a.direction, gates, top, a, b, anchor)


def side(m: ModelAnalysis) -> Side:
    """A model's analysed layers as one side of a comparison."""
    return m.name, tuple(la.weights for la in m.layers)


MATCHED_BY = ("name", "position", "mapping")
"""How a comparison paired its layers (``comparisons[k].matched_by`` in the JSON)."""


def compare_models(base: Side, cand: Side, index: int, pairs: LayerPairs) -> Comparison:
    """Compare each pair of layers (config.resolve.pair_layers) of two models."""
    left = {(w.name, w.direction): w for w in base[1]}
    right = {(w.name, w.direction): w for w in cand[1]}
    anchor = f"cmp{index}"
    deltas = tuple(compare_layers(a, b, f"{anchor}-l{j}") for j, (a, b) in enumerate(pairs.pairs))
    used_left = {(a.name, a.direction) for a, _ in pairs.pairs}
    used_right = {(b.name, b.direction) for _, b in pairs.pairs}

    def label(k: tuple[str, str]) -> str:
        return f"{k[0]} ({k[1]})"

    return Comparison(
        baseline=base[0],
        candidate=cand[0],
        layers=deltas,
        only_baseline=tuple(label(k) for k in left if k not in used_left),
        only_candidate=tuple(label(k) for k in right if k not in used_right),
        anchor=anchor,
        matched_by=pairs.matched_by,
    )
