"""Pure numpy: singular values, eigenvalues, spectral radius and stable rank per gate."""

from __future__ import annotations

import numpy as np

from lstm_report.gates import GateWeights
from lstm_report.model import GateSpectra, Spectrum


def spectrum(a: np.ndarray, *, eigen: bool) -> Spectrum | None:
    """The spectrum of one matrix, or None if it has non-finite entries."""
    x = np.asarray(a, dtype=np.float64)
    if x.ndim != 2 or not np.isfinite(x).all():
        return None
    sv = np.linalg.svd(x, compute_uv=False) if min(x.shape) else np.zeros(0)
    top = float(sv[0]) if sv.size else 0.0
    stable = float(np.sum(sv * sv) / (top * top)) if top > 0 else None
    eigenvalues = radius = None
    if eigen and x.shape[0] == x.shape[1] and x.size:
        ev = np.linalg.eigvals(x)
        # A canonical order, so the output does not depend on LAPACK's.
        ev = ev[np.lexsort((ev.imag, ev.real))]
        eigenvalues = tuple(complex(z) for z in ev)
        radius = float(np.max(np.abs(ev)))
    return Spectrum(
        singular_values=tuple(float(s) for s in sv),
        stable_rank=stable,
        eigenvalues=eigenvalues,
        spectral_radius=radius,
    )


def gate_spectra(gates: tuple[GateWeights, ...]) -> tuple[GateSpectra, ...]:
    return tuple(
        GateSpectra(gate=g.gate, W=spectrum(g.W, eigen=False), U=spectrum(g.U, eigen=True))
        for g in gates
    )
