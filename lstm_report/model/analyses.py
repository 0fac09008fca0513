"""The analysis of a layer and of a model, its findings, and the answers measured on the probe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from lstm_report.model.conv_layers import ConvLayerAnalysis
from lstm_report.model.layers import OtherLayer, RecurrentLayer
from lstm_report.model.mechanism import Mechanism, MemoryHorizon, ProbeActivity, UnitAblation
from lstm_report.model.stats import (
    Dynamics,
    FeatureImportance,
    GateSpectra,
    GateStats,
    MatrixStats,
    Timescales,
    Verification,
)
from lstm_report.model.training import Series

if TYPE_CHECKING:
    pass


Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
"""Worst first: the one order for sorting findings and headlines and for --fail-on."""


def severity_rank(severity: Severity) -> int:
    """0 for the worst (error); sorts findings and headlines worst first."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Finding:
    """One health finding: severity, a stable code, where, and one sentence."""

    severity: Severity
    code: str
    model: str
    layer: str | None
    message: str
    anchor: str | None = None


@dataclass(frozen=True, eq=False)
class LayerAnalysis:
    weights: RecurrentLayer
    gates: tuple[GateStats, ...]
    features: tuple[FeatureImportance, ...] | None
    """In input order; None when the layer does not read the model input."""
    anchor: str
    """HTML id of the layer's section."""
    spectra: tuple[GateSpectra, ...] = ()
    timescales: Timescales | None = None
    verification: Verification | None = None
    activity: ProbeActivity | None = None
    findings: tuple[Finding, ...] = ()
    probe_inputs: np.ndarray | None = None
    """The first probe sequences this layer was fed, kept for the verification."""
    projection: MatrixStats | None = None
    """Statistics of the projection P of a PyTorch LSTM with proj_size (else None)."""
    dynamics: Dynamics | None = None
    """Lyapunov exponents and Jacobian decay on the probe (None without one)."""
    peepholes: tuple[tuple[str, MatrixStats], ...] = ()
    """("P_i", stats), ("P_f", …), ("P_o", …) of an LSTM with peepholes (else empty)."""
    mechanism: Mechanism | None = None
    """Fixed and slow points with the input held (None without a probe or dynamics)."""
    units: UnitAblation | None = None
    """The units whose ablation changes the answer most (None without a probe)."""

    @property
    def spectra_computed(self) -> tuple[str, ...]:
        """What the spectra hold, one line per matrix family (U_g, W_g), or per matrix where
        the gates were done differently (non-finite weights, an iteration that did not converge)."""
        out = []
        for kind in ("U", "W"):
            said = [(sp.gate, getattr(sp, kind)) for sp in self.spectra]
            done = [s for _, s in said if s is not None]
            ways = {(s.singular_method, s.eigen_method, s.eigen_total) for s in done}
            if len(ways) == 1 and len(done) == len(said):
                counts = sorted({len(s.eigenvalues or ()) for s in done})
                count = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
                out.append(f"{kind}_g: {done[0].describe(count)}")
            else:
                out += [
                    f"{kind}_{g}: {s.what if s else 'nothing (non-finite weights)'}"
                    for g, s in said
                ]
        return tuple(out)

    @property
    def nonfinite(self) -> int:
        total = 0
        for g in self.gates:
            total += g.W.nonfinite + g.U.nonfinite + (g.b.nonfinite if g.b else 0)
            total += g.b_rec.nonfinite if g.b_rec else 0
        return total


@dataclass(frozen=True, eq=False)
class ModelAnalysis:
    name: str
    path: Path
    layers: tuple[LayerAnalysis, ...]
    others: tuple[OtherLayer, ...]
    total_params: int | None
    recurrent_params: int
    """The parameters of the analysed layers: LSTMs, GRUs and ConvLSTMs (JSON lstm_params)."""
    reader: str
    anchor: str
    notes: tuple[str, ...] = ()
    series: Series | None = None
    """Set when the model is a checkpoint series."""
    warnings: tuple[str, ...] = ()
    """The notes that mean part of what was asked for is missing: the CLI prints them."""
    input_importance: InputImportance | None = None
    """Measured on the probe (None without one, or for token-id inputs)."""
    hyper_parameters: tuple[tuple[str, bool | int | float | str], ...] = ()
    """The checkpoint's scalar hyper-parameters (ModelWeights.hyper_parameters)."""
    memory_horizon: MemoryHorizon | None = None
    """From input_importance.per_step (None without it)."""
    shown_path: str = ""
    """The model file as the page names it (config.ModelSpec.shown_path): no local path."""
    conv_layers: tuple[ConvLayerAnalysis, ...] = ()
    """The model's Keras ConvLSTM layers the config selects (analysis/conv_lstm.py)."""
    conv_findings: tuple[Finding, ...] = ()
    """The findings of its ConvLSTM layers (analysis.conv_lstm.conv_findings)."""

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of the model: its ConvLSTMs' (their sections come first), then
        each LSTM or GRU layer's."""
        return self.conv_findings + tuple(f for la in self.layers for f in la.findings)

    @property
    def layer_count(self) -> int:
        """The analysed layer sections: LSTMs and GRUs (a direction each), and ConvLSTMs."""
        return len(self.layers) + len(self.conv_layers)

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of the analysed layers: LSTM, GRU, ConvLSTM1D, ConvLSTM2D, ConvLSTM3D."""
        cells = {la.weights.cell_kind for la in self.layers}
        return frozenset(cells | {c.layer.kind for c in self.conv_layers})


# --- answers measured on the probe ------------------------------------------------------

Target = Literal["model_output", "lstm_output"]
"""What an importance measures the change of: the model's output, or the last LSTM's."""


@dataclass(frozen=True)
class FeatureEffect:
    """How much the target changes when one input feature is taken away."""

    name: str
    value: float
    """Mean squared change of the target over the probe's sequences."""
    low: float
    high: float
    """Bootstrap interval of ``value`` over the sequences (95%)."""


@dataclass(frozen=True)
class InputImportance:
    """Importance of each input feature (and each time step) measured on the probe."""

    method: Literal["occlusion", "permutation"]
    target: Target
    layer: str | None
    """The LSTM whose output is the target (``lstm_output``), else None."""
    sequences: int
    features: tuple[FeatureEffect, ...]
    """In input order."""
    per_step: tuple[float, ...]
    """Mean squared change of the target when one time step (all features) is taken away."""
    target_reason: str | None = None
    """Why the target is not the model's output (``lstm_output``), or how it was reached
    (Keras where numpy stops); None when numpy replayed the whole model."""
    per_token: tuple[FeatureEffect, ...] | None = None
    """Token models: each token's effect (``name`` the token), largest first, at most 20."""
    pad_token: int | None = None
    """Token models: the id every occluded token (or step) is replaced by."""
    probe_sequences: int | None = None
    """The probe's sequences; more than ``sequences`` where fewer were used to keep the
    occlusion within its work budget (importance.sequences_for_work)."""
    per_lag: tuple[float, ...] | None = None
    """Where the target is a sequence aligned with the input's steps (a model returning
    sequences): per distance ℓ = |s − t| between an occluded step t and an output step s,
    the squared changes at that distance, summed over t and s and divided by the steps (so
    they add up to the sum of ``per_step``). None where the target has no time axis."""
