"""Across training: comparisons of two models and checkpoint series."""

from __future__ import annotations

from dataclasses import dataclass

from lstm_report.model.layers import RecurrentLayer

# --- across training: comparisons and checkpoint series ---------------------------------


@dataclass(frozen=True)
class Delta:
    """Change of one matrix: ‖ΔA‖_F, ‖ΔA‖_F / ‖A_baseline‖_F, cosine(A_baseline, A_candidate)."""

    delta_fro: float | None
    relative: float | None
    cosine: float | None
    """None where a norm is zero (or a value is not finite): the ratio is undefined."""
    change: float | None = None
    """RMS(ΔA) / the RMS of all of the gate's parameters before and after (compare.gate_scale):
    the one measure the page, the takeaway and the headline numbers use. Finite where the
    baseline is zero (biases a layer starts at 0), symmetric in the two models."""


@dataclass(frozen=True)
class GateDelta:
    """The change of one gate's W, U and biases between two models."""

    gate: str
    W: Delta
    U: Delta
    b: Delta | None
    b_rec: Delta | None = None


@dataclass(frozen=True, eq=False)
class LayerDelta:
    """One layer matched in two models, and how its gates changed."""

    name: str
    direction: str
    gates: tuple[GateDelta, ...]
    top_units: tuple[tuple[int, float], ...]
    """Units whose incoming weights (all gates) changed most: (unit, ‖Δ‖)."""
    baseline: RecurrentLayer
    candidate: RecurrentLayer
    anchor: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.direction})" if self.baseline.wrapper else self.name


@dataclass(frozen=True, eq=False)
class Comparison:
    """Two models (or checkpoints) compared layer by layer: ``baseline`` -> ``candidate``."""

    baseline: str
    candidate: str
    layers: tuple[LayerDelta, ...]
    only_baseline: tuple[str, ...]
    only_candidate: tuple[str, ...]
    anchor: str
    matched_by: str = "name"
    """How the layers were paired: ``name``, ``position`` or ``mapping`` (config ``layers:``)."""


@dataclass(frozen=True)
class GatePoint:
    """One gate at one checkpoint: norms, spectral radius of U, change since the last one."""

    W_fro: float | None
    U_fro: float | None
    b_fro: float | None
    U_spectral_radius: float | None
    relative_change: float | None
    """‖Δ[W U]‖_F / ‖[W U] before‖_F since the previous checkpoint (None for the first)."""


@dataclass(frozen=True)
class LayerPoint:
    """One layer (name, direction) at one checkpoint."""

    name: str
    direction: str
    gates: tuple[tuple[str, GatePoint], ...]
    """(gate name, its figures), in the cell's gate order."""
    tau_median: float | None

    def gate(self, name: str) -> GatePoint:
        return dict(self.gates)[name]


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint's figures: per layer (name, direction), per gate."""

    path: str
    label: str
    layers: tuple[LayerPoint, ...]

    def layer(self, name: str, direction: str) -> LayerPoint | None:
        return next((p for p in self.layers if (p.name, p.direction) == (name, direction)), None)


@dataclass(frozen=True)
class Series:
    """A model's checkpoints in training order, with each one's figures."""

    model: str
    checkpoints: tuple[Checkpoint, ...]
    anchor: str
