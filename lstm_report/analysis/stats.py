"""Pure numpy statistics of weight arrays and input-feature importance."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from lstm_report.analysis.norms import float64_blocks, max_abs, row_norms, scale_of
from lstm_report.cells.base import GateWeights
from lstm_report.model.stats import FeatureImportance, GateSpectra, GateStats, MatrixStats, Spectrum


def matrix_stats(a: np.ndarray, *, top_singular: float | None = None) -> MatrixStats:
    """Norms and moments of one array, computed in float64.

    ``l1`` is the entrywise sum of |w| (the companion of the Frobenius norm), ``spectral``
    the largest singular value. Any non-finite entry makes every norm and moment
    undefined: they are None (shown as "n/a"), and ``nonfinite`` counts the culprits.
    ``top_singular`` reuses a largest singular value already computed for the spectra.
    """
    shape = tuple(int(s) for s in a.shape)
    a = np.asarray(a)
    nonfinite = int(a.size - np.count_nonzero(np.isfinite(a)))
    if nonfinite or a.size == 0:
        return MatrixStats(shape, None, None, None, None, None, nonfinite, None)
    # Moments and norms of x / scale, times the scale (a power of two: exact), so finite
    # data gives finite numbers; summed in float64 a block of rows at a time, not from a
    # float64 copy of the whole array (it and |x| were 64 MiB at 2048², on top of the
    # spectra's, at the 2×LSTM(2048) report's peak).
    scale = scale_of(a)
    total = l1 = sumsq = 0.0
    for xs in _scaled_blocks(a, scale):
        total += float(xs.sum())
        l1 += float(np.abs(xs).sum())
        sumsq += float(np.sum(xs * xs))
    mean = total / a.size
    dev = sum(float(np.sum((xs - mean) ** 2)) for xs in _scaled_blocks(a, scale))
    spectral = None
    if a.ndim == 2:
        if top_singular is not None:
            spectral = top_singular
        elif min(a.shape):
            spectral = float(np.linalg.svd(np.asarray(a, np.float64), compute_uv=False)[0])
        else:
            spectral = 0.0
    with np.errstate(over="ignore"):  # only a norm beyond the largest float: inf, as it is
        fro_norm = float(scale * np.sqrt(sumsq))
    return MatrixStats(
        shape=shape,
        fro=fro_norm,
        l1=l1 * scale,
        max_abs=max_abs(a),
        mean=mean * scale,
        std=float(np.sqrt(dev / a.size)) * scale,
        nonfinite=0,
        spectral=spectral,
    )


def _scaled_blocks(a: np.ndarray, scale: float) -> Iterator[np.ndarray]:
    """a / scale in float64, a block of rows at a time (norms.float64_blocks)."""
    for x in float64_blocks(a):
        yield x / scale if scale != 1.0 else x


def _top(sp: Spectrum | None) -> float | None:
    return sp.singular_values[0] if sp is not None and sp.singular_values else None


def gate_stats(
    gates: Sequence[GateWeights], spectra: Sequence[GateSpectra] | None = None
) -> tuple[GateStats, ...]:
    """Statistics of every W_g, U_g and b_g (reusing the spectra's SVDs where given)."""
    sp = list(spectra) if spectra is not None else [None] * len(gates)
    return tuple(
        GateStats(
            gate=g.gate,
            W=matrix_stats(g.W, top_singular=_top(s.W) if s else None),
            U=matrix_stats(g.U, top_singular=_top(s.U) if s else None),
            b=None if g.b is None else matrix_stats(g.b),
            b_rec=None if g.b_rec is None else matrix_stats(g.b_rec),
        )
        for g, s in zip(gates, sp)
    )


def feature_importance(
    kernel: np.ndarray, gates: Sequence[GateWeights], names: Sequence[str]
) -> tuple[FeatureImportance, ...]:
    """Per input feature: L2 norm of its kernel row (all gates), and of each gate's row.

    Returned in input order; ``rank`` 1 is the largest. A row with non-finite weights
    has no value (None) and ranks last.
    """
    k = np.asarray(kernel, dtype=np.float64)
    finite_rows = np.asarray(np.isfinite(k).all(axis=1))
    total = row_norms(k)
    per_gate = [row_norms(g.W) for g in gates]
    values: list[float | None] = [
        float(total[j]) if bool(finite_rows[j]) else None for j in range(k.shape[0])
    ]
    order = sorted(range(len(values)), key=lambda j: (values[j] is None, -(values[j] or 0.0), j))
    ranks = {j: r + 1 for r, j in enumerate(order)}
    return tuple(
        FeatureImportance(
            index=j,
            name=names[j],
            value=values[j],
            per_gate=tuple(
                float(pg[j]) if np.isfinite(np.asarray(g.W)[j]).all() else None
                for g, pg in zip(gates, per_gate)
            ),
            rank=ranks[j],
        )
        for j in range(k.shape[0])
    )
