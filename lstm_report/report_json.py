"""ReportData -> the JSON contract (schema_version 1). Strict JSON: NaN/Inf become null."""

from __future__ import annotations

import json
import math
from typing import Any

from lstm_report.model import GATES, LayerAnalysis, MatrixStats, ModelAnalysis, ReportData

SCHEMA_VERSION = 1


def stats_json(st: MatrixStats | None) -> dict[str, Any] | None:
    if st is None:
        return None
    out: dict[str, Any] = {
        "shape": list(st.shape),
        "fro": st.fro,
        "l1": st.l1,
        "max_abs": st.max_abs,
        "mean": st.mean,
        "std": st.std,
        "nonfinite": st.nonfinite,
    }
    if st.is_matrix:
        out["spectral"] = st.spectral
    return out


def layer_json(la: LayerAnalysis) -> dict[str, Any]:
    w = la.weights
    return {
        "name": w.name,
        "direction": w.direction,
        "kind": "LSTM",
        "units": w.units,
        "input_dim": w.input_dim,
        "wrapper": w.wrapper,
        "activation": w.activation,
        "recurrent_activation": w.recurrent_activation,
        "use_bias": w.use_bias,
        "go_backwards": w.go_backwards,
        "reads_input": w.reads_input,
        "params": w.params,
        "gates": {
            g.gate: {"W": stats_json(g.W), "U": stats_json(g.U), "b": stats_json(g.b)}
            for g in la.gates
        },
        "feature_importance": (
            [
                {
                    "name": f.name,
                    "value": f.value,
                    "rank": f.rank,
                    "per_gate": dict(zip(GATES, f.per_gate)),
                }
                for f in la.features
            ]
            if la.features is not None
            else None
        ),
    }


def model_json(m: ModelAnalysis) -> dict[str, Any]:
    return {
        "name": m.name,
        "path": str(m.path),
        "reader": m.reader,
        "total_params": m.total_params,
        "lstm_params": m.lstm_params,
        "layers": [layer_json(la) for la in m.layers],
        "not_analysed": [{"name": o.name, "kind": o.kind, "units": o.units} for o in m.others],
        "notes": list(m.notes),
    }


def report_json(report: ReportData) -> dict[str, Any]:
    """The whole report as plain JSON-ready data."""
    return {
        "schema_version": SCHEMA_VERSION,
        "title": report.title,
        "generated": report.generated,
        "generator": f"lstm-report {report.version}",
        "models": [model_json(m) for m in report.models],
        "headlines": [
            {"severity": h.severity, "text": h.text, "anchor": h.anchor} for h in report.headlines
        ],
    }


def _clean(value: Any) -> Any:
    # Belt and braces: no float that JSON cannot carry gets through.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def dumps(data: Any, *, indent: int | None = 2) -> str:
    """Strict JSON text (``allow_nan=False``), non-finite floats written as null."""
    return json.dumps(_clean(data), indent=indent, ensure_ascii=False, allow_nan=False) + "\n"
