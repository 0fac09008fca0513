"""Compare with a saved report: a side of ``compare:`` (or ``build --baseline``) that names a
report's JSON written earlier (read by output/saved_report.py).

The JSON keeps numbers, not weights: per-gate statistics, spectra, timescales, probe
activations, importance and findings can be compared; what needs both sets of weights
(‖ΔA‖_F, cosine, the units that changed most, the heatmaps of ΔW and ΔU) needs the old model
file (model.report.NEEDS_MODEL).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from lstm_report.model.report import (
    NEEDS_MODEL,
    SavedComparison,
    SavedFinding,
    SavedLayer,
    SavedRow,
)

STATISTICS = (
    ("fro", "‖{m}‖_F"),
    ("spectral", "‖{m}‖_2"),
    ("max_abs", "max |{m}|"),
    ("mean", "mean {m}"),
    ("std", "std {m}"),
)


# -- comparing ------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _median(values: Any) -> float | None:
    if not isinstance(values, list):
        return None
    finite = [v for v in (_num(x) for x in values) if v is not None]
    return statistics.median(finite) if finite else None


def layer_numbers(la: Mapping[str, Any]) -> dict[str, tuple[str, float | None]]:
    """Every number a layer's JSON keeps that a comparison shows: key -> (label, value)."""
    out: dict[str, tuple[str, float | None]] = {}
    for gate, mats in (la.get("gates") or {}).items():
        for mat, st in mats.items():
            if not isinstance(st, Mapping):
                continue
            for stat, label in STATISTICS:
                if stat in st:
                    out[f"gates.{gate}.{mat}.{stat}"] = (
                        label.format(m=f"{mat}_{gate}"),
                        _num(st[stat]),
                    )
    for gate, mats in (la.get("spectra") or {}).items():
        u, w = mats.get("U"), mats.get("W")
        if isinstance(u, Mapping):
            out[f"spectra.{gate}.U.spectral_radius"] = (
                f"ρ(U_{gate})",
                _num(u.get("spectral_radius")),
            )
            out[f"spectra.{gate}.U.stable_rank"] = (
                f"stable rank of U_{gate}",
                _num(u.get("stable_rank")),
            )
        if isinstance(w, Mapping):
            out[f"spectra.{gate}.W.stable_rank"] = (
                f"stable rank of W_{gate}",
                _num(w.get("stable_rank")),
            )
    memory = la.get("memory")
    if isinstance(memory, Mapping):
        out["memory.resting_tau.median"] = (
            "median τ at rest (steps)",
            _median(memory.get("resting_tau")),
        )
        if memory.get("probe_tau") is not None:
            out["memory.probe_tau.median"] = (
                "median τ on the probe (steps)",
                _median(memory.get("probe_tau")),
            )
    for gate, act in (la.get("activations") or {}).items():
        out[f"activations.{gate}.mean"] = (
            f"mean activation of gate {gate} on the probe",
            _num(act.get("mean")),
        )
    for f in la.get("feature_importance") or []:
        out[f"feature_importance.{f['name']}.value"] = (
            f"input weight norm of {f['name']}",
            _num(f.get("value")),
        )
    return out


def _rows(
    a: Mapping[str, tuple[str, float | None]], b: Mapping[str, tuple[str, float | None]]
) -> tuple[SavedRow, ...]:
    keys = list(a) + [k for k in b if k not in a]
    return tuple(
        SavedRow(k, (a.get(k) or b[k])[0], a[k][1] if k in a else None, b[k][1] if k in b else None)
        for k in keys
    )


def _importance(m: Mapping[str, Any]) -> dict[str, tuple[str, float | None]]:
    imp = m.get("input_importance") or {}
    return {
        f"input_importance.{f['name']}.value": (
            f"importance of {f['name']} (occlusion on the probe)",
            _num(f.get("value")),
        )
        for f in imp.get("features") or []
    }


def _label(la: Mapping[str, Any]) -> str:
    return f"{la['name']} ({la['direction']})" if la.get("wrapper") else str(la["name"])


def _findings(
    findings: Sequence[Mapping[str, Any]], model: str
) -> dict[tuple[str | None, str], list[SavedFinding]]:
    """A model's findings by (layer, check)."""
    out: dict[tuple[str | None, str], list[SavedFinding]] = {}
    for f in findings:
        if f["model"] == model:
            sf = SavedFinding(f.get("layer"), f["code"], f["severity"], f["message"])
            out.setdefault((sf.layer, sf.code), []).append(sf)
    return out


Side = tuple[str, Mapping[str, Any], Sequence[Mapping[str, Any]]]
"""One side: its label, the model's JSON, and the findings of its report."""


def compare_saved(
    base: Side, cand: Side, index: int, saved: Sequence[str], sources: Sequence[tuple[str, str]]
) -> SavedComparison:
    """Compare the numbers of two models' JSON, layers matched by name and direction."""
    (bl, bm, bf), (cl, cm, cf) = base, cand
    left = {(la["name"], la["direction"]): la for la in bm["layers"]}
    right = {(la["name"], la["direction"]): la for la in cm["layers"]}
    anchor = f"saved{index}"
    layers = tuple(
        SavedLayer(
            name=key[0],
            direction=key[1],
            label=_label(la),
            rows=_rows(layer_numbers(la), layer_numbers(right[key])),
            anchor=f"{anchor}-l{j}",
        )
        for j, (key, la) in enumerate(left.items())
        if key in right
    )
    before, after = _findings(bf, bm["name"]), _findings(cf, cm["name"])
    return SavedComparison(
        baseline=bl,
        candidate=cl,
        baseline_model=bm["name"],
        candidate_model=cm["name"],
        saved=tuple(saved),
        sources=tuple(sources),
        layers=layers,
        importance=_rows(_importance(bm), _importance(cm)),
        new_findings=tuple(f for k, fs in after.items() if k not in before for f in fs),
        resolved_findings=tuple(f for k, fs in before.items() if k not in after for f in fs),
        kept_findings=tuple(f for k, fs in after.items() if k in before for f in fs),
        only_baseline=tuple(f"{k[0]} ({k[1]})" for k in left if k not in right),
        only_candidate=tuple(f"{k[0]} ({k[1]})" for k in right if k not in left),
        anchor=anchor,
    )


# -- JSON -----------------------------------------------------------------------------------


def _row_json(r: SavedRow) -> dict[str, Any]:
    return {
        "key": r.key,
        "label": r.label,
        "baseline": r.baseline,
        "candidate": r.candidate,
        "delta": r.delta,
        "relative": r.relative,
    }


def _finding_json(f: SavedFinding) -> dict[str, Any]:
    return {"layer": f.layer, "code": f.code, "severity": f.severity, "message": f.message}


def saved_comparison_json(c: SavedComparison) -> dict[str, Any]:
    """The JSON of a comparison with a saved report (``saved_comparisons[i]``)."""
    return {
        "baseline": c.baseline,
        "candidate": c.candidate,
        "baseline_model": c.baseline_model,
        "candidate_model": c.candidate_model,
        "saved": list(c.saved),
        "sources": {side: text for side, text in c.sources},
        "layers": [
            {"name": la.name, "direction": la.direction, "values": [_row_json(r) for r in la.rows]}
            for la in c.layers
        ],
        "importance": [_row_json(r) for r in c.importance],
        "findings": {
            "new": [_finding_json(f) for f in c.new_findings],
            "resolved": [_finding_json(f) for f in c.resolved_findings],
            "kept": [_finding_json(f) for f in c.kept_findings],
        },
        "only_baseline": list(c.only_baseline),
        "only_candidate": list(c.only_candidate),
        "compared": list(c.compared),
        "not_compared": list(c.not_compared),
        "needs_model": list(NEEDS_MODEL),
    }
