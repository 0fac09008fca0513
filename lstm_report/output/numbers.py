"""The headline numbers of one report, read from its JSON data (the contract in docs/json.md).

What a reviewer compares runs by: the sweep index's columns and the Markdown summary's
table. Computed from the JSON, not from ReportData, so that a page built earlier (or by
another machine) gives the same numbers as the one just built.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TopInput:
    """The input a model depends on most."""

    model: str
    feature: str
    value: float
    measured: bool
    """True: occlusion on the probe (``input_importance``); False: weight norms, a hint."""


@dataclass(frozen=True)
class Change:
    """The largest change (RMS of ΔA over the gate's RMS, JSON ``change``) of any W_g, U_g,
    b_g or b_rec_g in a comparison: the takeaway's measure."""

    value: float
    baseline: str
    candidate: str
    layer: str
    gate: str
    matrix: str


@dataclass(frozen=True)
class Numbers:
    """One report's headline numbers; None where the report has nothing to say."""

    models: int
    layers: int
    lstm_params: int
    errors: int
    warnings: int
    findings: int
    largest_radius: float | None
    top_input: TopInput | None
    memory_tau: float | None
    """Median forget-gate timescale τ (steps) over the units of the headline model."""
    memory_on_probe: bool
    change: Change | None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def headline_models(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The models that speak for themselves: all but those that are only a baseline."""
    comparisons = data.get("comparisons") or []
    baselines = {c["baseline"] for c in comparisons} - {c["candidate"] for c in comparisons}
    models = list(data.get("models") or [])
    return [m for m in models if m["name"] not in baselines] or models


def top_input(models: Sequence[Mapping[str, Any]]) -> TopInput | None:
    """Measured importance where a model has it, else the largest input weight norm."""
    for m in models:
        imp = m.get("input_importance")
        ranked = [f for f in (imp or {}).get("features") or [] if _finite(f["value"]) is not None]
        if ranked:
            best = max(ranked, key=lambda f: f["value"])
            return TopInput(m["name"], best["name"], float(best["value"]), True)
    for m in models:
        for la in m["layers"]:
            ranked = [
                f for f in la.get("feature_importance") or [] if _finite(f["value"]) is not None
            ]
            if ranked:
                best = min(ranked, key=lambda f: f["rank"])
                return TopInput(m["name"], best["name"], float(best["value"]), False)
    return None


def memory_tau(model: Mapping[str, Any]) -> tuple[float | None, bool]:
    """Median τ over the model's units (on the probe where a layer has one, else at rest)."""
    taus: list[float] = []
    on_probe = False
    for la in model["layers"]:
        memory = la.get("memory")
        if not memory:
            continue
        values = memory.get("probe_tau")
        if values is not None:
            on_probe = True
        else:
            values = memory.get("resting_tau") or []
        taus += [v for v in (_finite(t) for t in values) if v is not None]
    return (statistics.median(taus) if taus else None), on_probe


def largest_change(data: Mapping[str, Any]) -> Change | None:
    """The largest change of any W_g, U_g or bias over every comparison (as the takeaway)."""
    best: Change | None = None
    for c in data.get("comparisons") or []:
        for la in c["layers"]:
            for gate, mats in la["gates"].items():
                for matrix in ("W", "U", "b", "b_rec"):
                    value = _finite((mats.get(matrix) or {}).get("change"))
                    if value is not None and (best is None or value > best.value):
                        label = la["name"]
                        if la.get("direction") == "backward":
                            label += " (backward)"
                        best = Change(value, c["baseline"], c["candidate"], label, gate, matrix)
    return best


def numbers(data: Mapping[str, Any]) -> Numbers:
    """The headline numbers of a report's JSON data."""
    models = list(data.get("models") or [])
    layers = [la for m in models for la in m["layers"]]
    findings = list(data.get("findings") or [])
    radii = [
        r
        for la in layers
        for g in (la.get("spectra") or {}).values()
        if g.get("U") is not None
        for r in [_finite(g["U"].get("spectral_radius"))]
        if r is not None
    ]
    heads = headline_models(data)
    tau, on_probe = (None, False)
    for m in heads:
        tau, on_probe = memory_tau(m)
        if tau is not None:
            break
    return Numbers(
        models=len(models),
        layers=len(layers),
        lstm_params=sum(int(m.get("lstm_params") or 0) for m in models),
        errors=sum(1 for f in findings if f["severity"] == "error"),
        warnings=sum(1 for f in findings if f["severity"] == "warning"),
        findings=len(findings),
        largest_radius=max(radii) if radii else None,
        top_input=top_input(heads),
        memory_tau=tau,
        memory_on_probe=on_probe,
        change=largest_change(data),
    )
