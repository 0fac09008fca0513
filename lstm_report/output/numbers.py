"""The headline numbers of one report, computed from its ReportData.

What a reviewer compares runs by: the sweep index's columns, the Markdown summary's table
and ``--fail-if``. Each number is the one the JSON states (docs/json.md): a non-finite value
counts as none, as the JSON writes it null. The site index reads pages written earlier, so
it reads the same numbers from their JSON (site/numbers.py).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lstm_report.analysis.takeaways import headline_models
from lstm_report.model.analyses import ModelAnalysis
from lstm_report.model.report import ReportData
from lstm_report.model.training import Comparison


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
    """The analysed layer sections: LSTMs and GRUs (a direction each), and ConvLSTMs."""
    lstm_params: int
    """The parameters of the analysed layers, ConvLSTMs included (JSON ``lstm_params``)."""
    errors: int
    warnings: int
    findings: int
    largest_radius: float | None
    top_input: TopInput | None
    memory_tau: float | None
    """Median forget-gate timescale τ (steps) over the units of the headline model (a
    ConvLSTM's filters among them, at rest)."""
    memory_on_probe: bool
    change: Change | None


def finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def top_input(models: Sequence[ModelAnalysis]) -> TopInput | None:
    """Measured importance where a model has it, else the largest input weight norm."""
    for m in models:
        imp = m.input_importance
        ranked = [f for f in (imp.features if imp else ()) if finite(f.value) is not None]
        if ranked:
            best = max(ranked, key=lambda f: f.value)
            return TopInput(m.name, best.name, float(best.value), True)
    for m in models:
        for la in m.layers:
            norms = [f for f in la.features or () if finite(f.value) is not None]
            if norms:
                top = min(norms, key=lambda f: f.rank)
                return TopInput(m.name, top.name, float(top.value or 0.0), False)
    return None


def memory_tau(model: ModelAnalysis) -> tuple[float | None, bool]:
    """Median τ over the model's units (on the probe where a layer has one, else at rest)
    and its ConvLSTMs' filters (at rest: σ(b_f) per filter)."""
    taus: list[float] = []
    on_probe = False
    for la in model.layers:
        t = la.timescales
        if t is None:
            continue
        values = t.probe_tau
        if values is not None:
            on_probe = True
        else:
            values = t.resting_tau or ()
        taus += [v for v in (finite(x) for x in values) if v is not None]
    for c in model.conv_layers:
        taus += [v for v in (finite(float(x)) for x in c.timescales) if v is not None]
    return (statistics.median(taus) if taus else None), on_probe


def largest_change(comparisons: Sequence[Comparison]) -> Change | None:
    """The largest change of any W_g, U_g or bias over every comparison (as the takeaway)."""
    best: Change | None = None
    for c in comparisons:
        for ld in c.layers:
            for g in ld.gates:
                for matrix, delta in (("W", g.W), ("U", g.U), ("b", g.b), ("b_rec", g.b_rec)):
                    value = None if delta is None else finite(delta.change)
                    if value is not None and (best is None or value > best.value):
                        label = ld.name + (" (backward)" if ld.direction == "backward" else "")
                        best = Change(value, c.baseline, c.candidate, label, g.gate, matrix)
    return best


def numbers(report: ReportData) -> Numbers:
    """The headline numbers of a report."""
    models = report.models
    layers = [la for m in models for la in m.layers]
    radii = [
        r
        for la in layers
        for sp in la.spectra
        if sp.U is not None
        for r in [finite(sp.U.spectral_radius)]
        if r is not None
    ]
    heads = headline_models(report)
    tau, on_probe = (None, False)
    for m in heads:
        tau, on_probe = memory_tau(m)
        if tau is not None:
            break
    severities = [f.severity for f in report.findings]
    return Numbers(
        models=len(models),
        layers=sum(m.layer_count for m in models),
        lstm_params=sum(int(m.recurrent_params or 0) for m in models),
        errors=severities.count("error"),
        warnings=severities.count("warning"),
        findings=len(severities),
        largest_radius=max(radii) if radii else None,
        top_input=top_input(heads),
        memory_tau=tau,
        memory_on_probe=on_probe,
        change=largest_change(report.comparisons),
    )
