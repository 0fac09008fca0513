"""Pure numpy: what changed between two models, layer by layer and gate by gate."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lstm_report.analysis.norms import cosine, fro, scale_of
from lstm_report.cells.base import GateWeights
from lstm_report.errors import ConfigError
from lstm_report.model.analyses import ModelAnalysis
from lstm_report.model.layers import RecurrentLayer
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


def compare_layers(a: RecurrentLayer, b: RecurrentLayer, anchor: str, where: str) -> LayerDelta:
    for arr in ("kernel", "recurrent_kernel"):
        sa, sb = getattr(a, arr).shape, getattr(b, arr).shape
        if sa != sb:
            raise ConfigError(
                f"{where}: layer {a.label!r} has {arr} shape {sa} in the baseline but {sb} "
                "in the candidate; they cannot be compared"
            )
    if a.cell_kind != b.cell_kind or a.reset_after != b.reset_after:
        raise ConfigError(
            f"{where}: layer {a.label!r} is a {a.kind} in the baseline but a {b.kind} in the "
            "candidate; they cannot be compared"
        )
    ga, gb = a.cell.gates, b.cell.gates
    if any(
        (x.b is None) != (y.b is None) or (x.b_rec is None) != (y.b_rec is None)
        for x, y in zip(ga, gb)
    ):
        raise ConfigError(f"{where}: layer {a.label!r} has a bias on one side only")
    if a.output_dim != b.output_dim:
        raise ConfigError(f"{where}: layer {a.label!r} has a projection on one side only")
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


Side = tuple[str, Sequence[RecurrentLayer]]
"""One side of a comparison: its name (a model, or ``model@checkpoint``) and its layers."""


def side(m: ModelAnalysis) -> Side:
    """A model's analysed layers as one side of a comparison."""
    return m.name, tuple(la.weights for la in m.layers)


MATCHED_BY = ("name", "position", "mapping")
"""How a comparison paired its layers (``comparisons[k].matched_by`` in the JSON)."""


def compare_models(
    base: Side,
    cand: Side,
    index: int,
    where: str,
    layers: Sequence[tuple[str, str]] | None = None,
) -> Comparison:
    """Pair the layers and compare each pair; shapes must agree. Pairs: those ``layers``
    maps (baseline name -> candidate name, directions following) and the rest by name; else
    by name and direction; where no name matches, by position if both models have the same
    recurrent layers in order (kinds, units, input sizes, directions). Raises ConfigError
    when nothing can be paired."""
    left = {(w.name, w.direction): w for w in base[1]}
    right = {(w.name, w.direction): w for w in cand[1]}
    if layers is not None:
        pairs, matched_by = _mapped(base, cand, layers, f"{where}.layers"), "mapping"
    else:
        pairs = [(w, right[key]) for key, w in left.items() if key in right]
        matched_by = "name"
        if not pairs and _layout(base[1]) == _layout(cand[1]) and base[1]:
            pairs, matched_by = list(zip(base[1], cand[1])), "position"
    if not pairs:
        raise ConfigError(
            f"{where}: no layer of {base[0]!r} matches one of {cand[0]!r} by name, nor by "
            f"position (the recurrent layers differ); {base[0]!r} has {_listing(base[1])}, "
            f"{cand[0]!r} has {_listing(cand[1])}; say which is which with "
            f"{where}.layers: {{BASELINE_LAYER: CANDIDATE_LAYER}}"
        )
    anchor = f"cmp{index}"
    deltas = tuple(compare_layers(a, b, f"{anchor}-l{j}", where) for j, (a, b) in enumerate(pairs))
    used_left = {(a.name, a.direction) for a, _ in pairs}
    used_right = {(b.name, b.direction) for _, b in pairs}

    def label(k: tuple[str, str]) -> str:
        return f"{k[0]} ({k[1]})"

    return Comparison(
        baseline=base[0],
        candidate=cand[0],
        layers=deltas,
        only_baseline=tuple(label(k) for k in left if k not in used_left),
        only_candidate=tuple(label(k) for k in right if k not in used_right),
        anchor=anchor,
        matched_by=matched_by,
    )


def _mapped(
    base: Side, cand: Side, layers: Sequence[tuple[str, str]], where: str
) -> list[tuple[RecurrentLayer, RecurrentLayer]]:
    """The pairs a ``layers:`` mapping names (each direction of a layer with the same
    direction), then the unmapped layers by name."""
    for b, c in layers:
        for name, (model, weights) in ((b, base), (c, cand)):
            names = list(dict.fromkeys(w.name for w in weights))
            if name not in names:
                raise ConfigError(
                    f"{where}.{b}: no analysed layer {name!r} in {model!r} "
                    f"(layers: {', '.join(names) or 'none'})"
                )
    mapping = dict(layers)
    targets = set(mapping.values())
    right = {(w.name, w.direction): w for w in cand[1]}
    pairs = []
    for w in base[1]:
        if w.name in mapping:
            other = right.get((mapping[w.name], w.direction))
        else:  # by name, unless that candidate layer is another's mapped partner
            other = right.get((w.name, w.direction)) if w.name not in targets else None
        if other is not None:
            pairs.append((w, other))
    return pairs


def _layout(layers: Sequence[RecurrentLayer]) -> list[tuple[object, ...]]:
    """What must agree for layers to be paired by position."""
    return [(w.kind, w.reset_after, w.units, w.input_dim, w.direction) for w in layers]


def _listing(layers: Sequence[RecurrentLayer]) -> str:
    shown = [
        f"{w.label if w.wrapper else w.name} ({w.kind}, {w.units} units, {w.input_dim} inputs)"
        for w in layers
    ]
    return ", ".join(shown) if shown else "no analysed recurrent layer"
