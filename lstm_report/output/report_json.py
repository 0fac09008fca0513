"""ReportData -> the JSON contract (schema_version 1). Strict JSON: NaN/Inf become null."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from lstm_report.analysis.series import series_json
from lstm_report.figures.page import Figures
from lstm_report.model.analyses import Finding, InputImportance, ModelAnalysis
from lstm_report.model.report import ReportData
from lstm_report.model.training import Comparison, Delta
from lstm_report.output.baseline import saved_comparison_json
from lstm_report.output.conv_json import conv_layer_json
from lstm_report.output.layer_json import layer_json

SCHEMA_VERSION = 1


def _delta(d: Delta | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "delta_fro": d.delta_fro,
        "relative": d.relative,
        "cosine": d.cosine,
        "change": d.change,
    }


def comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "baseline": c.baseline,
        "candidate": c.candidate,
        "matched_by": c.matched_by,
        "layers": [
            {
                "name": ld.name,
                "candidate_name": ld.candidate.name,
                "direction": ld.direction,
                "gates": {
                    g.gate: {
                        "W": _delta(g.W),
                        "U": _delta(g.U),
                        "b": _delta(g.b),
                        **({"b_rec": _delta(g.b_rec)} if g.b_rec is not None else {}),
                    }
                    for g in ld.gates
                },
                "top_units": [{"unit": u, "delta": v} for u, v in ld.top_units],
            }
            for ld in c.layers
        ],
        "only_baseline": list(c.only_baseline),
        "only_candidate": list(c.only_candidate),
    }


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "severity": f.severity,
        "code": f.code,
        "model": f.model,
        "layer": f.layer,
        "message": f.message,
    }


def model_json(m: ModelAnalysis) -> dict[str, Any]:
    return {
        "name": m.name,
        "path": m.shown_path or m.path.name,
        "reader": m.reader,
        "total_params": m.total_params,
        "lstm_params": m.recurrent_params,
        "layers": [layer_json(la) for la in m.layers],
        "not_analysed": [
            {"name": o.name, "kind": o.kind, "units": o.units, "note": o.note} for o in m.others
        ],
        "series": None if m.series is None else series_json(m.series),
        "notes": list(m.notes),
        "input_importance": importance_json(m.input_importance),
        "hyper_parameters": {k: v for k, v in m.hyper_parameters},
        "memory_horizon": (
            None
            if m.memory_horizon is None
            else {
                "steps": m.memory_horizon.steps,
                "of": m.memory_horizon.of,
                "share": m.memory_horizon.share,
                "by": m.memory_horizon.by,
            }
        ),
        "conv_layers": [conv_layer_json(c) for c in m.conv_layers],
    }


def importance_json(imp: InputImportance | None) -> dict[str, Any] | None:
    if imp is None:
        return None
    return {
        "method": imp.method,
        "target": imp.target,
        "layer": imp.layer,
        "sequences": imp.sequences,
        "features": [
            {"name": f.name, "value": f.value, "low": f.low, "high": f.high} for f in imp.features
        ],
        "per_step": list(imp.per_step),
        "target_reason": imp.target_reason,
        "per_token": None
        if imp.per_token is None
        else [
            {"token": f.name, "value": f.value, "low": f.low, "high": f.high} for f in imp.per_token
        ],
        "pad_token": imp.pad_token,
        "probe_sequences": imp.probe_sequences,
        "per_lag": None if imp.per_lag is None else list(imp.per_lag),
    }


def report_json(report: ReportData) -> dict[str, Any]:
    """The whole report as plain JSON-ready data."""
    return {
        "schema_version": SCHEMA_VERSION,
        "title": report.title,
        "generated": report.generated,
        "generator": f"lstm-report {report.version}",
        "models": [model_json(m) for m in report.models],
        "findings": [finding_json(f) for f in report.findings],
        "comparisons": [comparison_json(c) for c in report.comparisons],
        "saved_comparisons": [saved_comparison_json(c) for c in report.saved_comparisons],
        "takeaways": [
            {"code": t.code, "model": t.model, "layer": t.layer, "text": t.text}
            for t in report.takeaways
        ],
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


def plain(data: Any) -> Any:
    """The data exactly as the JSON states it (what the site index reads): the written JSON
    parsed back."""
    return json.loads(dumps(data, indent=None))


class JsonData:
    """The Writer of the JSON contract (``--json``). ``data`` is report_json(report) where
    the caller has it already (the page embeds the same data)."""

    kind = "json"
    suffix = ".json"

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self.data = data

    def write(self, report: ReportData, figures: Figures) -> str:
        return dumps(report_json(report) if self.data is None else self.data)
