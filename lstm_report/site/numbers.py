"""The headline numbers of a page written earlier, read from its JSON data (the contract
in docs/json.md): the site index reads pages, not reports, so that a page built by another
version or machine gives the numbers output.numbers gave the report it was built from."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from lstm_report.output.numbers import Change, Numbers, TopInput, finite


def _headline_models(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The models that speak for themselves: all but those that are only a baseline."""
    comparisons = data.get("comparisons") or []
    baselines = {c["baseline"] for c in comparisons} - {c["candidate"] for c in comparisons}
    models = list(data.get("models") or [])
    return [m for m in models if m["name"] not in baselines] or models


def _top_input(models: Sequence[Mapping[str, Any]]) -> TopInput | None:
    """Measured importance where a model has it, else the largest input weight norm."""
    for m in models:
        imp = m.get("input_importance")
        ranked = [f for f in (imp or {}).get("features") or [] if finite(f["value"]) is not None]
        if ranked:
            best = max(ranked, key=lambda f: f["value"])
            return TopInput(m["name"], best["name"], float(best["value"]), True)
    for m in models:
        for la in m["layers"]:
            ranked = [
                f for f in la.get("feature_importance") or [] if finite(f["value"]) is not None
            ]
            if ranked:
                best = min(ranked, key=lambda f: f["rank"])
                return TopInput(m["name"], best["name"], float(best["value"]), False)
    return None


def _memory_tau(model: Mapping[str, Any]) -> tuple[float | None, bool]:
    """Median τ over the model's units (on the probe where a layer has one, else at rest)
    and its ConvLSTMs' filters (at rest; a page written before them has none)."""
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
        taus += [v for v in (finite(t) for t in values) if v is not None]
    for c in model.get("conv_layers") or []:
        taus += [v for v in (finite(t) for t in c.get("timescales") or []) if v is not None]
    return (statistics.median(taus) if taus else None), on_probe


def _largest_change(data: Mapping[str, Any]) -> Change | None:
    """The largest change of any W_g, U_g or bias over every comparison (as the takeaway)."""
    best: Change | None = None
    for c in data.get("comparisons") or []:
        for la in c["layers"]:
            for gate, mats in la["gates"].items():
                for matrix in ("W", "U", "b", "b_rec"):
                    value = finite((mats.get(matrix) or {}).get("change"))
                    if value is not None and (best is None or value > best.value):
                        label = la["name"]
                        if la.get("direction") == "backward":
                            label += " (backward)"
                        best = Change(value, c["baseline"], c["candidate"], label, gate, matrix)
    return best


def page_numbers(data: Mapping[str, Any]) -> Numbers:
    """The headline numbers of a report's JSON data (output.numbers.numbers of the report
    the page was built from)."""
    models = list(data.get("models") or [])
    layers = [la for m in models for la in m["layers"]]
    findings = list(data.get("findings") or [])
    radii = [
        r
        for la in layers
        for g in (la.get("spectra") or {}).values()
        if g.get("U") is not None
        for r in [finite(g["U"].get("spectral_radius"))]
        if r is not None
    ]
    heads = _headline_models(data)
    tau, on_probe = (None, False)
    for m in heads:
        tau, on_probe = _memory_tau(m)
        if tau is not None:
            break
    return Numbers(
        models=len(models),
        layers=len(layers) + sum(len(m.get("conv_layers") or []) for m in models),
        lstm_params=sum(int(m.get("lstm_params") or 0) for m in models),
        errors=sum(1 for f in findings if f["severity"] == "error"),
        warnings=sum(1 for f in findings if f["severity"] == "warning"),
        findings=len(findings),
        largest_radius=max(radii) if radii else None,
        top_input=_top_input(heads),
        memory_tau=tau,
        memory_on_probe=on_probe,
        change=_largest_change(data),
    )
