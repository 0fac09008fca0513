"""A checkpoint's figures, and their JSON form in the cache (validated on reading)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from lstm_report.model.training import GatePoint, LayerPoint
from lstm_report.series.keys import FORMAT

GATE_ORDERS = (("i", "f", "c", "o"), ("z", "r", "h"))
"""The gates an entry may hold per layer, in order: an LSTM's or a GRU's."""

_FIELDS = tuple(f.name for f in fields(GatePoint))

LayerId = tuple[str, str]
"""(layer name, direction)"""


@dataclass(frozen=True)
class CheckpointFigures:
    """What is known of one checkpoint (given its previous one): its recurrent layers, and
    the figures of those computed so far."""

    layers: tuple[LayerId, ...]
    """Every LSTM and GRU of the checkpoint, in model order."""
    points: Mapping[LayerId, LayerPoint]

    def missing(self, wanted: Iterable[LayerId]) -> bool:
        return any(w in self.layers and w not in self.points for w in wanted)

    def merged(self, other: CheckpointFigures) -> CheckpointFigures:
        return CheckpointFigures(self.layers, {**self.points, **other.points})


def _number(x: float | None) -> Any:
    if x is None or math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _float(x: Any) -> float | None:
    if x is None:
        return None
    if type(x) is float:
        return x
    if x in ("nan", "inf", "-inf"):
        return float(x)
    raise ValueError("not a number")


def entry_json(key: str, entry: CheckpointFigures) -> dict[str, Any]:
    points = []
    for (name, direction), p in entry.points.items():
        gates = [[g, [_number(getattr(v, f)) for f in _FIELDS]] for g, v in p.gates]
        points.append(
            {
                "name": name,
                "direction": direction,
                "tau_median": _number(p.tau_median),
                "gates": gates,
            }
        )
    return {
        "format": FORMAT,
        "key": key,
        "layers": [list(x) for x in entry.layers],
        "points": points,
    }


def parse_entry(raw: Any, key: str) -> CheckpointFigures | None:
    """The entry ``raw`` holds, if it is a well-formed entry for ``key``; else None."""
    try:
        if not isinstance(raw, dict) or set(raw) != {"format", "key", "layers", "points"}:
            return None
        if raw["format"] != FORMAT or raw["key"] != key:
            return None
        layers: list[LayerId] = []
        for item in raw["layers"]:
            if not (isinstance(item, list) and len(item) == 2):
                return None
            name, direction = item
            if not (isinstance(name, str) and direction in ("forward", "backward")):
                return None
            layers.append((name, direction))
        if len(set(layers)) != len(layers):
            return None
        points: dict[LayerId, LayerPoint] = {}
        for p in raw["points"]:
            if not isinstance(p, dict) or set(p) != {"name", "direction", "tau_median", "gates"}:
                return None
            ident = (p["name"], p["direction"])
            if ident not in layers or ident in points:
                return None
            if not all(isinstance(g, list) and len(g) == 2 for g in p["gates"]):
                return None
            if tuple(g for g, _ in p["gates"]) not in GATE_ORDERS:
                return None
            gates = []
            for g, values in p["gates"]:
                if not isinstance(values, list) or len(values) != len(_FIELDS):
                    return None
                gates.append((g, GatePoint(*(_float(v) for v in values))))
            points[ident] = LayerPoint(ident[0], ident[1], tuple(gates), _float(p["tau_median"]))
        return CheckpointFigures(tuple(layers), points)
    except (TypeError, ValueError, KeyError):
        return None
