"""Pure numpy: cheap per-gate figures of every checkpoint of a run, in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstm_report.analysis.compare import delta
from lstm_report.analysis.memory import timescales
from lstm_report.analysis.norms import fro
from lstm_report.gates import layer_gates
from lstm_report.model import ModelWeights


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint's figures: per layer (name, direction), per gate."""

    path: str
    label: str
    layers: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Series:
    model: str
    checkpoints: tuple[Checkpoint, ...]
    anchor: str


def _radius(u: np.ndarray) -> float | None:
    x = np.asarray(u, np.float64)
    if not np.isfinite(x).all():
        return None
    return float(np.max(np.abs(np.linalg.eigvals(x)))) if x.size else 0.0


def _fro(a: np.ndarray | None) -> float | None:
    if a is None:
        return None
    x = np.asarray(a, np.float64)
    return fro(x) if np.isfinite(x).all() else None


def checkpoint_figures(
    path: Path | str,
    weights: ModelWeights,
    previous: ModelWeights | None,
    keep: set[tuple[str, str]],
    label: str | None = None,
) -> Checkpoint:
    """Norms, U_g spectral radius, median forget timescale and the change since the last one."""
    prev = {(w.name, w.direction): w for w in previous.lstms} if previous is not None else {}
    layers = []
    for w in weights.lstms:
        key = (w.name, w.direction)
        if key not in keep:
            continue
        gates = layer_gates(w)
        before = prev.get(key)
        pg = (
            layer_gates(before)
            if before is not None and before.kernel.shape == w.kernel.shape
            else None
        )
        per_gate = {}
        for k, g in enumerate(gates):
            change = None
            if pg is not None:
                a = np.concatenate([np.ravel(pg[k].W), np.ravel(pg[k].U)])
                b = np.concatenate([np.ravel(g.W), np.ravel(g.U)])
                change = delta(a, b).relative
            per_gate[g.gate] = {
                "W_fro": _fro(g.W),
                "U_fro": _fro(g.U),
                "b_fro": _fro(g.b),
                "U_spectral_radius": _radius(g.U),
                "relative_change": change,
            }
        t = timescales(w, gates)
        taus = [v for v in (t.resting_tau if t else ()) if v is not None]
        layers.append(
            {
                "name": w.name,
                "direction": w.direction,
                "gates": per_gate,
                "tau_median": float(np.median(taus)) if taus else None,
            }
        )
    return Checkpoint(path=str(path), label=label or Path(path).stem, layers=tuple(layers))


def series_json(s: Series) -> dict[str, Any]:
    return {
        "checkpoints": [
            {"path": c.path, "name": c.label, "layers": list(c.layers)} for c in s.checkpoints
        ]
    }


def layer_keys(s: Series) -> Sequence[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for c in s.checkpoints:
        for layer in c.layers:
            seen[(layer["name"], layer["direction"])] = None
    return list(seen)
