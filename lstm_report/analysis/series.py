"""Pure numpy: cheap per-gate figures of every checkpoint of a run, in order."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstm_report.analysis.compare import delta
from lstm_report.analysis.memory import timescales
from lstm_report.analysis.norms import fro
from lstm_report.analysis.spectra import spectral_radius
from lstm_report.model.layers import ModelWeights, RecurrentLayer
from lstm_report.model.training import Checkpoint, GatePoint, LayerPoint, Series


def _fro(a: np.ndarray | None) -> float | None:
    if a is None:
        return None
    x = np.asarray(a, np.float64)
    return fro(x) if np.isfinite(x).all() else None


def layer_point(w: RecurrentLayer, before: RecurrentLayer | None) -> LayerPoint:
    """One layer at one checkpoint: norms, U_g spectral radius, median forget timescale and
    the change since ``before`` (the same layer at the previous checkpoint, or None)."""
    gates = w.cell.gates
    pg = (
        before.cell.gates
        if before is not None
        and before.cell_kind == w.cell_kind
        and before.kernel.shape == w.kernel.shape
        and before.recurrent_kernel.shape == w.recurrent_kernel.shape
        else None
    )
    per_gate = []
    for k, g in enumerate(gates):
        change = None
        if pg is not None:
            a = np.concatenate([np.ravel(pg[k].W), np.ravel(pg[k].U)])
            b = np.concatenate([np.ravel(g.W), np.ravel(g.U)])
            change = delta(a, b).relative
        point = GatePoint(_fro(g.W), _fro(g.U), _fro(g.bias), spectral_radius(g.U), change)
        per_gate.append((g.gate, point))
    t = timescales(w, gates)
    taus = [v for v in (t.resting_tau if t else ()) if v is not None]
    median = float(np.median(taus)) if taus else None
    return LayerPoint(w.name, w.direction, tuple(per_gate), median)


def checkpoint_figures(
    path: Path | str,
    weights: ModelWeights,
    previous: ModelWeights | None,
    keep: set[tuple[str, str]],
    label: str | None = None,
) -> Checkpoint:
    """Norms, U_g spectral radius, median forget timescale and the change since the last one."""
    prev = {(w.name, w.direction): w for w in previous.layers} if previous is not None else {}
    layers = tuple(
        layer_point(w, prev.get((w.name, w.direction)))
        for w in weights.layers
        if (w.name, w.direction) in keep
    )
    return Checkpoint(path=str(path), label=label or Path(path).stem, layers=layers)


def series_json(s: Series) -> dict[str, Any]:
    def layer(p: LayerPoint) -> dict[str, Any]:
        gates = {g: dataclasses.asdict(point) for g, point in p.gates}
        median = p.tau_median
        return {"name": p.name, "direction": p.direction, "gates": gates, "tau_median": median}

    return {
        "checkpoints": [
            {"path": c.path, "name": c.label, "layers": [layer(p) for p in c.layers]}
            for c in s.checkpoints
        ]
    }


def layer_keys(s: Series) -> Sequence[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for c in s.checkpoints:
        for layer in c.layers:
            seen[(layer.name, layer.direction)] = None
    return list(seen)
