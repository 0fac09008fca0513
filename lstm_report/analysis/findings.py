"""Pure numpy: health findings of one layer, each with a severity, a stable code and a sentence."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstm_report.analysis.norms import row_norms
from lstm_report.cells.base import GateWeights
from lstm_report.model.analyses import Finding, Severity, severity_rank
from lstm_report.model.checks import Checks
from lstm_report.model.layers import GATE_NAMES, RecurrentLayer
from lstm_report.model.mechanism import ProbeActivity
from lstm_report.model.stats import Dynamics, GateSpectra, GateStats, Verification

MAX_LISTED = 8
"""Findings name at most this many units; the rest are counted."""


def _units(idx: list[int] | np.ndarray) -> str:
    idx = [int(i) for i in idx]
    shown = ", ".join(str(i) for i in idx[:MAX_LISTED])
    more = f" and {len(idx) - MAX_LISTED} more" if len(idx) > MAX_LISTED else ""
    return f"{shown}{more}"


def _parts(gates: tuple[GateWeights, ...]) -> list[np.ndarray]:
    """Each unit's incoming weights over all gates, as (rows, units) blocks (W, U, b per gate,
    in that order): the columns of the (units, n) matrix that ``unit_vectors`` concatenates."""
    parts = []
    for g in gates:
        parts += [np.asarray(g.W), np.asarray(g.U)]
        parts += [np.asarray(b)[None, :] for b in (g.b, g.b_rec) if b is not None]
    return parts


def unit_vectors(gates: tuple[GateWeights, ...]) -> np.ndarray:
    """(units, n) matrix: each unit's incoming weights over all gates (W, U and b columns)."""
    return np.concatenate([np.asarray(p, np.float64).T for p in _parts(gates)], axis=1)


@dataclass(frozen=True)
class UnitGram:
    """Each unit's incoming weight vector, summarised without building the (units, n) matrix
    of them (67 MiB in float64 for 1024 units): per unit a power-of-two scale and the norm
    of the scaled vector (float64), and the Gram matrix of the scaled vectors in float32,
    accumulated one gate matrix at a time (half the time of float64: 0.5 s a 1024-unit layer
    before). Cosines near a threshold are recomputed in float64 from the weights (``parts``)
    by ``duplicate_pairs``, so the findings are those of the float64 Gram matrix."""

    scale: np.ndarray
    """(units,) a power of two within a factor 2 of the unit's largest |w| (1 if none)."""
    scaled_norm: np.ndarray
    """(units,) ‖v_j / scale_j‖, in float64."""
    gram: np.ndarray
    """(units, units) ⟨v_j/scale_j, v_k/scale_k⟩ in float32, within ``error`` of the exact
    value relative to ‖v_j/scale_j‖·‖v_k/scale_k‖."""
    error: float
    """A bound of the float32 Gram matrix's error relative to the product of the norms."""
    parts: tuple[np.ndarray, ...] = ()
    """The (rows, units) blocks of the vectors (views of the weights), for rechecks."""

    @property
    def norms(self) -> np.ndarray:
        return np.asarray(self.scale * self.scaled_norm)


def unit_gram(gates: tuple[GateWeights, ...]) -> UnitGram:
    parts = _parts(gates)
    units = parts[0].shape[1]
    m = np.zeros(units)
    for p in parts:
        if p.size:
            m = np.maximum(m, np.max(np.abs(p), axis=0))
    scale = np.where((m > 0) & np.isfinite(m), 2.0 ** (np.frexp(m)[1] - 1), 1.0)
    sumsq = np.zeros(units)
    gram = np.zeros((units, units), np.float32)
    n = 0
    with np.errstate(over="ignore", under="ignore"):  # float64 weights near 1e200: inf
        scale32 = scale.astype(np.float32)
    exact32 = bool(np.all(scale32 == scale))  # powers of two: unless beyond float32's range
    # Where no product can overflow or underflow, the products of the weights themselves,
    # scaled afterwards, are those of the scaled weights (the scales are powers of two),
    # and BLAS reads each gate's block of the Keras matrix in place: no scaled copy (16 MiB
    # at 2048², at the 2×LSTM(2048) report's peak).
    live = m[m > 0]
    in_place = (
        exact32
        and all(p.dtype == np.float32 for p in parts)
        and (not live.size or (live.max() <= 2.0**40 and live.min() >= 2.0**-40))
    )
    for p in parts:
        # One gate matrix at a time; entries below 2. float32 weights divided by a power of
        # two in float32 give exactly their float64 quotients (rounded once either way).
        if in_place or (p.dtype == np.float32 and exact32):
            y32 = p if in_place else p / scale32
            # Squares summed in float64 straight from float32 (einsum casts in small
            # buffers): the same sums as from a float64 copy, without its 32 MiB at 2048².
            sumsq += np.einsum("ij,ij->j", y32, y32, dtype=np.float64)
        else:
            y = np.asarray(p, np.float64) / scale
            y32 = y.astype(np.float32)
            sumsq += np.einsum("ij,ij->j", y, y)
            del y
        gram += y32.T @ y32  # numpy uses the symmetric product (ssyrk) for y.T @ y
        n += p.shape[0]
    if in_place:
        sumsq /= scale * scale
        gram /= scale32[:, None]
        gram /= scale32[None, :]
    # |fl(x·y) − x·y| ≤ γ_n·‖x‖‖y‖ for any order of summation (Higham, 3.1), γ_n ≈ n·ε,
    # plus the rounding of x and y to float32 (ε each) and of the parts' sums: 2·(n + 8)·ε
    # is a deterministic bound, about 1e-3 at 8,000 weights per unit.
    error = 2.0 * (n + 8) * float(np.finfo(np.float32).eps)
    return UnitGram(scale, np.sqrt(sumsq), gram, error, tuple(parts))


def dead_units(vectors: np.ndarray | UnitGram, threshold: float) -> np.ndarray:
    norms = vectors.norms if isinstance(vectors, UnitGram) else row_norms(vectors)
    return np.flatnonzero(norms < threshold)


RECHECK_MAX = 4096
"""Pairs near the threshold recomputed in float64 one by one; above this many (a layer of
near-copies), the float64 Gram matrix instead."""


def duplicate_pairs(
    vectors: np.ndarray | UnitGram, threshold: float
) -> list[tuple[int, int, float]]:
    """Pairs of units (j < k) whose incoming weight vectors have cosine similarity > threshold."""
    if not isinstance(vectors, UnitGram):
        norms = row_norms(vectors)
        live = norms > 0
        unit = np.zeros_like(vectors)
        unit[live] = vectors[live] / norms[live, None]
        cos = unit @ unit.T
        j, k = np.nonzero(np.triu(cos > threshold, k=1))
        return [(int(a), int(b), float(cos[a, b])) for a, b in zip(j, k)]
    r = vectors.scaled_norm
    r = np.where(r > 0, r, 1.0)  # a zero vector's row of the Gram matrix is 0: cosine 0
    cos32 = vectors.gram / r[:, None].astype(np.float32)
    cos32 /= r[None, :].astype(np.float32)
    # Candidates: every pair whose float32 cosine could be above the threshold (the division
    # adds a few ε32 to the bound).
    near = np.triu(cos32 > threshold - vectors.error - 1e-6, k=1)
    j, k = np.nonzero(near)
    if j.size > RECHECK_MAX:
        exact = _gram64(vectors) / r[:, None] / r[None, :]
        cos = exact[j, k]
    else:
        cos = np.array([_dot64(vectors, int(a), int(b)) for a, b in zip(j, k)]) / (r[j] * r[k])
    keep = cos > threshold
    return [(int(a), int(b), float(c)) for a, b, c in zip(j[keep], k[keep], cos[keep])]


def _dot64(v: UnitGram, a: int, b: int) -> float:
    """⟨v_a/scale_a, v_b/scale_b⟩ in float64."""
    total = 0.0
    for p in v.parts:
        x = np.asarray(p[:, a], np.float64) / v.scale[a]
        y = np.asarray(p[:, b], np.float64) / v.scale[b]
        total += float(x @ y)
    return total


def _gram64(v: UnitGram) -> np.ndarray:
    """The float64 Gram matrix of the scaled vectors, one gate matrix at a time."""
    gram = np.zeros((v.scale.size, v.scale.size))
    for p in v.parts:
        y = np.asarray(p, np.float64) / v.scale
        gram += y.T @ y
    return gram


def unstable_message(d: Dynamics) -> str:
    if not math.isfinite(d.largest):
        return (
            f"the {d.state} state overflows on the probe (its Lyapunov exponents are not "
            "numbers): the state explodes."
        )
    return (
        f"the largest Lyapunov exponent of the {d.state} state on the probe is "
        f"{d.largest:+.3g} ± {d.lyapunov_spread[0]:.2g} per step (mean ± spread over "
        f"{d.sequences} sequences): nearby trajectories diverge, so the state is chaotic "
        "or exploding and its output depends on input details far back."
    )


def radius_context(d: Dynamics | None) -> str:
    """What a large ρ(U_g) means for this layer, by what the probe showed (if any)."""
    if d is None:
        return (
            "The spectral radius of a gate's recurrent pre-activation does not by itself "
            "mean exploding dynamics (the state is squashed and gated); give the model a "
            "probe to measure whether its state grows (Lyapunov exponents)."
        )
    if d.unstable:
        return "On the probe the state does diverge: see the unstable-dynamics finding."
    return (
        f"On the probe the state does not diverge: the largest Lyapunov exponent of its "
        f"{d.state} state is {d.largest:+.3g} per step."
    )


Found = tuple[Severity, str, str]
"""A finding before it is placed: severity, code, message."""


def layer_findings(
    *,
    model: str,
    w: RecurrentLayer,
    anchor: str,
    gates: tuple[GateWeights, ...],
    stats: tuple[GateStats, ...],
    spectra: tuple[GateSpectra, ...],
    verification: Verification | None,
    activity: ProbeActivity | None,
    checks: Checks,
    dynamics: Dynamics | None = None,
) -> tuple[Finding, ...]:
    """The health findings of one layer, most severe first."""
    found: list[Found] = []
    nonfinite = _nonfinite(stats)
    if nonfinite is not None:
        found.append(nonfinite)
    mismatch = _mismatch(w, verification)
    if mismatch is not None:
        found.append(mismatch)
    if dynamics is not None and dynamics.unstable:
        found.append(("warning", "unstable-dynamics", unstable_message(dynamics)))
    found += _radius_findings(spectra, checks, dynamics)
    if nonfinite is None:
        found += _unit_findings(w, gates, checks)
    if activity is not None:
        found += _saturation_findings(w, activity, checks)
    out = [Finding(sev, code, model, w.label, message, anchor) for sev, code, message in found]
    return tuple(sorted(out, key=lambda f: severity_rank(f.severity)))


def verification_finding(
    model: str, w: RecurrentLayer, anchor: str, verification: Verification
) -> Finding | None:
    """The finding a failed verification gives (None where it passed or could not run)."""
    mismatch = _mismatch(w, verification)
    if mismatch is None:
        return None
    severity, code, message = mismatch
    return Finding(severity, code, model, w.label, message, anchor)


def _nonfinite(stats: tuple[GateStats, ...]) -> Found | None:
    message = nonfinite_message(
        [
            (f"{kind}_{g.gate}", st.nonfinite)
            for g in stats
            for kind, st in (("W", g.W), ("U", g.U), ("b", g.b), ("b_rec", g.b_rec))
            if st is not None
        ]
    )
    return None if message is None else ("error", "nonfinite-weights", message)


def nonfinite_message(counts: list[tuple[str, int]]) -> str | None:
    """The nonfinite-weights finding's message from (array, non-finite entries) pairs, or
    None where every entry is finite; the LSTM's and the ConvLSTM's finding alike."""
    bad = [(name, n) for name, n in counts if n]
    if not bad:
        return None
    total = sum(n for _, n in bad)
    where = ", ".join(f"{name} ({n})" for name, n in bad)
    return (
        f"{total} non-finite weight{'s' if total != 1 else ''} (NaN or Inf) in {where}; the "
        "layer's output is undefined and its norms cannot be computed."
    )


def _mismatch(w: RecurrentLayer, verification: Verification | None) -> Found | None:
    if verification is None or verification.max_abs_error is None or verification.ok:
        return None
    return (
        "error",
        "verification-mismatch",
        f"the numpy replay from the per-gate matrices differs from {w.framework} by up to "
        f"{verification.max_abs_error:.3g} (tolerance {verification.tolerance:g}) on "
        f"{verification.inputs} inputs: the decomposition does not reproduce this layer.",
    )


def _radius_findings(
    spectra: tuple[GateSpectra, ...], checks: Checks, dynamics: Dynamics | None
) -> list[Found]:
    out: list[Found] = []
    for sp in spectra:
        if sp.U is not None and sp.U.spectral_radius is not None:
            if sp.U.spectral_radius > checks.spectral_radius_max:
                # Information only: ρ(U_g) bounds the linear part of one gate's input at
                # h = 0, while h is squashed by tanh and gated; healthy trained models
                # exceed 1.5 routinely. Whether the state grows is what the probe measures.
                out.append(
                    (
                        "info",
                        "large-spectral-radius",
                        f"U_{sp.gate} ({GATE_NAMES[sp.gate]} gate) has spectral radius "
                        f"{sp.U.spectral_radius:.3g} (> {checks.spectral_radius_max:g}). "
                        + radius_context(dynamics),
                    )
                )
    return out


def _unit_findings(
    w: RecurrentLayer, gates: tuple[GateWeights, ...], checks: Checks
) -> list[Found]:
    out: list[Found] = []
    vectors = unit_gram(gates)
    dead = dead_units(vectors, checks.dead_unit_norm)
    if dead.size:
        out.append(
            (
                "warning",
                "dead-units",
                f"{dead.size} of {w.units} units have near-zero incoming weights across all "
                f"gates (L2 norm < {checks.dead_unit_norm:g}): units {_units(dead)}.",
            )
        )
    pairs = duplicate_pairs(vectors, checks.duplicate_cosine)
    if pairs:
        shown = ", ".join(f"{a}~{b} ({c:.4f})" for a, b, c in pairs[:MAX_LISTED])
        more = f" and {len(pairs) - MAX_LISTED} more" if len(pairs) > MAX_LISTED else ""
        out.append(
            (
                "warning",
                "duplicate-units",
                f"{len(pairs)} pairs of units have nearly identical incoming weights "
                f"(cosine > {checks.duplicate_cosine:g}): {shown}{more}.",
            )
        )
    return out


def _saturation_findings(w: RecurrentLayer, activity: ProbeActivity, checks: Checks) -> list[Found]:
    out: list[Found] = []
    for ga in activity.gates:
        frac = np.maximum(np.asarray(ga.unit_left), np.asarray(ga.unit_right))
        stuck = np.flatnonzero(frac >= checks.saturation_fraction)
        if stuck.size:
            out.append(
                (
                    "warning",
                    "saturated-units",
                    f"{stuck.size} of {w.units} units have the {GATE_NAMES[ga.gate]} gate "
                    f"saturated on at least {checks.saturation_fraction:.0%} of probe steps: "
                    f"units {_units(stuck)}.",
                )
            )
    return out
