"""One recurrent layer analysed: statistics, spectra, memory, probe activity, dynamics,
fixed points and its health findings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from lstm_report.analysis.dynamics import layer_dynamics
from lstm_report.analysis.findings import layer_findings, verification_finding
from lstm_report.analysis.mechanism import fixed_points
from lstm_report.analysis.memory import timescales
from lstm_report.analysis.probing import LayerRun
from lstm_report.analysis.spectra import gate_spectra
from lstm_report.analysis.stats import feature_importance, gate_stats, matrix_stats
from lstm_report.cells.base import memory_gate
from lstm_report.errors import AnalysisError
from lstm_report.model.analyses import LayerAnalysis, ModelAnalysis, severity_rank
from lstm_report.model.checks import Checks
from lstm_report.model.layers import RecurrentLayer
from lstm_report.model.mechanism import Mechanism
from lstm_report.model.stats import Dynamics, GateSpectra, GateStats, MatrixStats, Verification

KEPT_SEQUENCES = 32
"""Probe inputs a layer keeps for verification: enough to expose any mix-up."""


def analyse_layer(
    w: RecurrentLayer,
    names: Sequence[str] | None,
    anchor: str,
    *,
    model: str = "",
    checks: Checks = Checks(),
    run: LayerRun | None = None,
    pending: Callable[[], tuple[GateSpectra, ...]] | None = None,
    dynamics: str | None = "zero",
) -> LayerAnalysis:
    """Everything about one layer: statistics, spectra, memory, probe activity, dynamics,
    fixed points, findings. ``pending`` waits for spectra already started
    (``spectra_jobs``); ``dynamics``: the input the fixed points hold (zero or mean), None
    for no dynamics at all."""
    gates = w.cell.gates
    spectra = gate_spectra(gates) if pending is None else pending()
    stats = gate_stats(gates, spectra)
    features = None
    if w.reads_input and names is not None and len(names) == w.input_dim:
        features = feature_importance(w.kernel, gates, names)
    activity = run.activity if run is not None else None
    forget = None  # the memory gate's mean on the probe: f (LSTM) or z (GRU)
    if activity is not None:
        keep = memory_gate(gates).gate
        forget = np.asarray(next(a for a in activity.gates if a.gate == keep).unit_mean)
    la = LayerAnalysis(
        weights=w,
        gates=stats,
        features=features,
        anchor=anchor,
        spectra=spectra,
        timescales=timescales(w, gates, forget),
        activity=activity,
        probe_inputs=None if run is None or run.inputs is None else run.inputs[:KEPT_SEQUENCES],
        projection=None if w.cell.P is None else matrix_stats(w.cell.P),
        dynamics=None if dynamics is None else probe_dynamics(w, run, stats),
        peepholes=peephole_stats(w.cell.peepholes),
    )
    if la.dynamics is not None and run is not None and run.inputs is not None:
        la = replace(la, mechanism=probe_mechanism(w, run.inputs, dynamics or "zero"))
    return with_findings(la, model, checks)


def probe_mechanism(w: RecurrentLayer, x: np.ndarray, inputs: str) -> Mechanism | None:
    """Fixed and slow points of the layer with its input held at zero or at the probe's
    mean (None where the search cannot run: a cell without a derivative here)."""
    try:
        return fixed_points(w.cell, x, inputs=inputs)
    except AnalysisError:
        return None


def probe_dynamics(
    w: RecurrentLayer, run: LayerRun | None, stats: Sequence[GateStats]
) -> Dynamics | None:
    """Lyapunov exponents and Jacobian decay of the layer driven by its probe inputs; None
    without them, with non-finite weights, or an activation without a derivative here."""
    if run is None or run.inputs is None or run.inputs.ndim != 3 or run.inputs.shape[1] == 0:
        return None
    parts = [m for g in stats for m in (g.W, g.U, g.b, g.b_rec) if m is not None]
    if any(m.nonfinite for m in parts):
        return None
    try:
        return layer_dynamics(w.cell, run.inputs)
    except AnalysisError:
        return None


def peephole_stats(peepholes: np.ndarray | None) -> tuple[tuple[str, MatrixStats], ...]:
    """Statistics of each peephole vector, P_i, P_f, P_o (empty without peepholes)."""
    if peepholes is None:
        return ()
    return tuple((f"P_{g}", matrix_stats(row)) for g, row in zip("ifo", peepholes))


def with_findings(la: LayerAnalysis, model: str, checks: Checks) -> LayerAnalysis:
    """The layer with its health findings, from what has been computed about it so far."""
    findings = layer_findings(
        model=model,
        w=la.weights,
        anchor=la.anchor,
        gates=la.weights.cell.gates,
        stats=la.gates,
        spectra=la.spectra,
        verification=la.verification,
        activity=la.activity,
        checks=checks,
        dynamics=la.dynamics,
    )
    return replace(la, findings=findings)


def with_verification(la: LayerAnalysis, model: str, v: Verification | None) -> LayerAnalysis:
    """The layer with its verification against Keras (verify.verify_model) and the finding
    a mismatch gives, beside the findings already computed (None: not verified)."""
    if v is None:
        return la
    found = verification_finding(model, la.weights, la.anchor, v)
    findings = la.findings
    if found is not None:  # after the errors already found, as layer_findings orders them
        findings = tuple(sorted((*findings, found), key=lambda f: severity_rank(f.severity)))
    return replace(la, verification=v, findings=findings)


def with_verifications(
    ma: ModelAnalysis, verifications: Sequence[Verification | None]
) -> ModelAnalysis:
    """Every layer of a model with its verification (one per layer, in order)."""
    layers = tuple(with_verification(la, ma.name, v) for la, v in zip(ma.layers, verifications))
    return replace(ma, layers=layers)
