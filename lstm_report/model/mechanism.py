"""A layer's mechanism as computed: fixed points, slow manifold, unit ablation, probe activity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    pass


UNSTABLE_MARGIN = 1e-3
"""Per step: below this a positive largest exponent is taken as neutral (a state kept
exactly, f = 1), not as growth: e^(0.001·t) is 1.1 after 100 steps."""


@dataclass(frozen=True)
class FixedPoint:
    kind: str
    """``fixed`` or ``slow``."""
    norm: float
    residual: float
    """‖F(s*) − s*‖."""
    eigenvalues: tuple[tuple[float, float], ...]
    """The EIGENVALUES largest in magnitude, (re, im), descending |λ|."""
    stable: bool
    """All |λ| < 1 (of those computed)."""
    q: float


@dataclass(frozen=True)
class SlowManifold:
    dimension: int
    explained: float
    """Share of the slow points' spread the ``dimension`` principal directions explain."""
    eigenvalue_near_one: float
    """The median over the points of |λ| of their eigenvalue nearest 1."""
    input_drive: float | None = None
    """The share of the probe's input drive that lands on the slow modes, at the point
    nearest the points' centre (analysis/slow_drive.py); None where it was not measured."""


@dataclass(frozen=True, eq=False)
class Plane:
    """The picture's coordinates: the first two principal components of the trajectories."""

    trajectories: tuple[np.ndarray, ...]
    """(steps, 2) per probe sequence shown."""
    points: np.ndarray
    """(len(fixed_points), 2): the reported points."""
    slow: np.ndarray
    """(k, 2): every slow or fixed point found (the manifold is drawn through them)."""
    explained: tuple[float, float]


@dataclass(frozen=True, eq=False)
class Mechanism:
    """A layer's fixed points with the input held, and its slow manifold."""

    inputs: str
    """``zero`` or ``mean``: what x* is."""
    fixed_points: tuple[FixedPoint, ...]
    slow_manifold: SlowManifold | None
    starts: int
    iterations: int
    typical_q: float
    plane: Plane | None
    limited: str | None = None
    """How the search was cut short for a large layer (None: the full search)."""


@dataclass(frozen=True)
class UnitEffect:
    unit: int
    value: float
    low: float
    high: float
    tau: float | None
    """The unit's memory-gate timescale τ (on the probe where there is one)."""
    mean_activity: float
    """Mean |h| of the unit over the measured sequences and steps."""
    saturated: float | None
    """The largest share of probe steps any of the unit's gates is saturated on (None
    for a projected LSTM, whose outputs are not its units)."""


@dataclass(frozen=True)
class UnitAblation:
    units: tuple[UnitEffect, ...]
    """The TOP_UNITS largest effects, descending."""
    target: str
    """``model_output`` or ``layer_output`` (the layer's own output: see ``reason``)."""
    reason: str | None
    """Why the target is the layer's output (None for the model's)."""
    sequences: int
    screened: int | None
    """Sequences every unit was first screened on (None: all measured on ``sequences``)."""
    screen: str | None = None
    """How they were screened: ``ablation`` (the same measurement on fewer sequences) or
    ``output`` (a layer too large to rerun per unit: each unit zeroed in the layer's output
    alone, not fed back); None when not screened."""


@dataclass(frozen=True)
class MemoryHorizon:
    """How far back the model's answer reaches on the probe (from the per-step importance)."""

    steps: int
    """The smallest k such that the last k time steps carry ``share`` of the summed
    per-step importance."""
    of: int
    """The sequence length T."""
    share: float = 0.9
    by: str = "step"
    """``step``: the last k steps before the answer (the target is one prediction);
    ``lag``: the inputs within k steps of each output (the target is a sequence)."""


@dataclass(frozen=True)
class GateActivity:
    """One gate's activations over all probe sequences and steps."""

    gate: str
    mean: float
    left_saturated: float
    right_saturated: float
    """Fractions over all sequences, steps and units."""
    unit_mean: tuple[float, ...]
    unit_left: tuple[float, ...]
    unit_right: tuple[float, ...]
    """Per unit: mean activation, fraction of steps saturated left / right."""
    hist_edges: tuple[float, ...]
    hist_counts: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class ProbeActivity:
    """What the layer did on the probe data."""

    gates: tuple[GateActivity, ...]
    sequences: int
    steps: int
    sequence: int
    """Index of the sequence whose states are kept for the heatmaps."""
    h: np.ndarray
    c: np.ndarray | None
    """(steps, units) hidden and cell states of that sequence, in input time order (a GRU
    has no cell state: None)."""
    source: str
    """``numpy`` (replayed from upstream layers) or ``keras`` (upstream run through Keras)."""
