"""What was computed from one layer's weights: statistics, spectra, timescales, dynamics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lstm_report.model.mechanism import UNSTABLE_MARGIN

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class MatrixStats:
    """Summary statistics of one weight array. None means "not available"."""

    shape: tuple[int, ...]
    fro: float | None
    l1: float | None
    max_abs: float | None
    mean: float | None
    std: float | None
    nonfinite: int
    spectral: float | None = None
    """Largest singular value; matrices only (None for a bias vector)."""

    @property
    def is_matrix(self) -> bool:
        return len(self.shape) == 2


@dataclass(frozen=True)
class GateStats:
    gate: str
    W: MatrixStats
    U: MatrixStats
    b: MatrixStats | None
    b_rec: MatrixStats | None = None
    """The recurrent-side bias, where the layer has one (PyTorch, ONNX, Keras reset_after)."""


@dataclass(frozen=True)
class FeatureImportance:
    """L2 norm of one input feature's kernel row: over all gates, and per gate."""

    index: int
    name: str
    value: float | None
    per_gate: tuple[float | None, ...]
    """In the layer's gate order (i, f, c, o; z, r, h)."""
    rank: int
    """1 = most important."""


@dataclass(frozen=True)
class Spectrum:
    """Singular values (descending) of one matrix; eigenvalues too for a square U_g."""

    singular_values: tuple[float, ...]
    stable_rank: float | None
    """‖A‖²_F / ‖A‖²_2: how many directions carry the matrix's energy."""
    eigenvalues: tuple[complex, ...] | None = None
    """All of them (eigen_method "dense"), or the largest by magnitude ("arnoldi"); sorted by
    real, then imaginary part."""
    spectral_radius: float | None = None
    singular_method: str = "svd"
    """How the (always all) singular values were computed: "svd" (LAPACK, exact) or "gram"
    (eigenvalues of the smaller Gram matrix: leading values exact to ~1e-13 relative, values
    below about 1e-7·σ₁ at the rounding floor)."""
    eigen_method: str | None = None
    """"dense" (all eigenvalues, LAPACK), "arnoldi" (the largest by magnitude, restarted
    Arnoldi), or
    None where no eigenvalues were computed (W_g)."""
    eigen_total: int | None = None
    """How many eigenvalues the matrix has (its side), of which ``eigenvalues`` holds all or
    the largest."""
    eigen_tolerance: float | None = None
    """For "arnoldi" eigenvalues: each θ has a unit vector v with ‖A·v − θ·v‖ ≤ this·|θ|;
    None where they are exact."""

    @property
    def what(self) -> str:
        """What was computed, in words: "all 1024 singular values (SVD); the largest 64 of 1024
        eigenvalues by magnitude (Arnoldi, relative residual ≤ 1e-6)"."""
        return self.describe(str(len(self.eigenvalues or ())))

    def describe(self, eigen_count: str) -> str:
        """``what``, with the number of eigenvalues given (a range for several gates)."""
        n = len(self.singular_values)
        how = "SVD" if self.singular_method == "svd" else "from the Gram matrix"
        out = f"all {n} singular values ({how})"
        if self.eigen_method == "dense":
            out += f"; all {eigen_count} eigenvalues"
        elif self.eigen_method is not None:
            out += (
                f"; the largest {eigen_count} of {self.eigen_total} eigenvalues by magnitude "
                f"(Arnoldi, relative residual ≤ {_power(self.eigen_tolerance)}; one fewer "
                "where the next would split a complex-conjugate pair)"
            )
        return out


@dataclass(frozen=True)
class GateSpectra:
    gate: str
    W: Spectrum | None
    U: Spectrum | None
    """None when the matrix has non-finite weights."""


@dataclass(frozen=True)
class Verification:
    """Numpy replay from the per-gate matrices against the Keras layer's own output."""

    max_abs_error: float | None
    inputs: str
    """``probe`` or ``random``."""
    tolerance: float
    error: str | None = None
    """Why the layer could not be verified (then max_abs_error is None)."""

    @property
    def ok(self) -> bool:
        return self.max_abs_error is not None and self.max_abs_error <= self.tolerance


@dataclass(frozen=True)
class Timescales:
    """Memory-gate timescales: resting f = act(b_f) and τ = 1/(1 − f) steps, per unit.

    The memory gate keeps the old state: an LSTM's forget gate f, a GRU's update gate z
    (h = z·h_prev + (1 − z)·h̃). The fields keep their LSTM names for both.
    """

    resting_keep: tuple[float, ...]
    resting_tau: tuple[float | None, ...]
    """None where f = 1 (the unit never forgets at rest)."""
    bias_shift: float | None
    """Mean of b_f − 1: how far training moved the unit_forget_bias start (LSTMs only)."""
    probe_keep: tuple[float, ...] | None = None
    probe_tau: tuple[float | None, ...] | None = None
    gate: str = "f"
    """The memory gate's letter: f (LSTM) or z (GRU)."""
    bias: tuple[float, ...] | None = None
    """The memory gate's bias per unit (b + b_rec where there are two), None without bias."""


@dataclass(frozen=True)
class Dynamics:
    """How the layer's full state ((h, c) for an LSTM, h for a GRU) responds to a small
    perturbation while the probe's own inputs drive it (analysis/dynamics.py)."""

    lyapunov: tuple[float, ...]
    """The k largest Lyapunov exponents (natural log of growth per step, descending), the
    mean over the probe's sequences; k = min(8, state size)."""
    lyapunov_spread: tuple[float, ...]
    """Their standard deviation from sequence to sequence (0 for one sequence)."""
    jacobian_decay: tuple[float, ...]
    """For k = 1..T−1: the median over sequences of ‖∂h_T/∂h_(T−k)‖_F / √(size of h), the
    root-mean-square gain of a perturbation of h k steps before the end (1: kept whole)."""
    sequences: int
    steps: int
    burn_in: int
    """Steps run before the exponents are accumulated (the QR frame aligns meanwhile)."""
    directions: int
    """Adjoint directions of h behind jacobian_decay: the size of h (exact), or fewer,
    random and orthonormal (an unbiased estimate of the squared norm)."""
    state: str
    """``(h, c)`` or ``h``."""

    @property
    def largest(self) -> float:
        return self.lyapunov[0]

    @property
    def unstable(self) -> bool:
        """The largest exponent is above 0 by more than its spread over the sequences (or
        not a number: the state overflowed on the probe)."""
        if not (math.isfinite(self.lyapunov[0]) and math.isfinite(self.lyapunov_spread[0])):
            return True
        return self.lyapunov[0] - self.lyapunov_spread[0] > UNSTABLE_MARGIN


def _power(x: float | None) -> str:
    """1e-06 as "1e-6": the way a page writes a tolerance."""
    return f"{x:g}".replace("e-0", "e-").replace("e+0", "e+")
