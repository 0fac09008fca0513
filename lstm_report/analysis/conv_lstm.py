"""A ConvLSTM layer's numbers without data: per-gate statistics of its kernels, per-tap
norms and largest singular values, each filter's forget gate and timescale at rest."""

from __future__ import annotations

import numpy as np

from lstm_report.analysis.findings import nonfinite_message
from lstm_report.cells.conv_lstm import resting_forget, tap_spectra
from lstm_report.model.analyses import Finding
from lstm_report.model.conv_layers import (
    ArrayStats,
    ConvGateStats,
    ConvLayerAnalysis,
    ConvRecurrentLayer,
)


def array_stats(a: np.ndarray) -> ArrayStats:
    """Count, mean, std, Frobenius norm and largest |value| of a, in float64, and how many
    entries are not finite."""
    x = np.asarray(a, dtype=np.float64).ravel()
    if x.size == 0:
        return ArrayStats(0, 0.0, 0.0, 0.0, 0.0)
    return ArrayStats(
        size=int(x.size),
        mean=float(x.mean()),
        std=float(x.std()),
        norm=float(np.linalg.norm(x)),
        max_abs=float(np.abs(x).max()),
        nonfinite=int(x.size - np.count_nonzero(np.isfinite(x))),
    )


def tap_norms(w: np.ndarray) -> np.ndarray:
    """kernel_size + (a, b) -> kernel_size: the Frobenius norm of each tap's matrix."""
    return np.sqrt(np.square(w.astype(np.float64)).sum(axis=(-2, -1)))


def timescale(forget: np.ndarray) -> np.ndarray:
    """τ = 1/(1 − f) in steps, inf where f is 1 (no decay at rest)."""
    with np.errstate(divide="ignore"):
        return np.where(forget < 1.0, 1.0 / (1.0 - np.minimum(forget, 1.0)), np.inf)


def conv_findings(model: str, a: ConvLayerAnalysis) -> tuple[Finding, ...]:
    """The health findings of one ConvLSTM: non-finite weights, the one check that needs no
    matrix of the layer as a whole (the LSTM's nonfinite-weights finding, worded alike)."""
    message = nonfinite_message(
        [
            (f"{kind}_{g.gate}", s.nonfinite)
            for g in a.gates
            for kind, s in (("K", g.K), ("R", g.R), ("b", g.b))
            if s is not None
        ]
    )
    if message is None:
        return ()
    return (Finding("error", "nonfinite-weights", model, a.layer.name, message, a.anchor),)


def analyse_conv_layer(layer: ConvRecurrentLayer, anchor: str) -> ConvLayerAnalysis:
    """Statistics, tap norms, tap spectra and resting timescales of one ConvLSTM."""
    tops = tap_spectra(layer.cell)
    gates = tuple(
        ConvGateStats(
            gate=g.name,
            K=array_stats(g.K),
            R=array_stats(g.R),
            b=None if g.b is None else array_stats(g.b),
            K_tap_norms=tap_norms(g.K),
            R_tap_norms=tap_norms(g.R),
            R_tap_top_singular=tops[g.name],
        )
        for g in layer.cell.gates
    )
    forget = resting_forget(layer.cell)
    return ConvLayerAnalysis(
        layer=layer,
        gates=gates,
        forget_at_rest=forget,
        timescales=timescale(forget),
        anchor=anchor,
    )
