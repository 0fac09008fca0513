"""Pure numpy: a layer's dynamics along the probe, and how far back the model's answer reaches.

Lyapunov exponents (Benettin et al., 1980): drive the layer with the probe's own inputs and
carry k orthonormal tangent directions of the full state along with it (J_t·Q, analytic
Jacobians: cells/jacobian.py), re-orthonormalised by a QR decomposition every step; after
a burn-in, the mean of log |R_jj| per step is the j-th exponent. Above 0, nearby
trajectories diverge: the state is chaotic or explodes. Below, perturbations die out.

Jacobian decay: ‖∂h_T/∂h_(T−k)‖ for every k, by pulling adjoint rows of h_T back one step
at a time (v·J_t), each sequence once.

Memory horizon: from the per-step occlusion importance, the smallest number of final
steps that carry 90% of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from lstm_report.cells.base import CellWeights
from lstm_report.cells.jacobian import CellMap, cell_map
from lstm_report.model.mechanism import MemoryHorizon
from lstm_report.model.stats import Dynamics

EXPONENTS = 8
"""Lyapunov exponents computed at most (fewer for a smaller state)."""

MAX_SEQUENCES = 64
"""Probe sequences used at most (the first ones)..."""

MIN_SEQUENCES = 8
"""...and at least (where the probe has them), whatever WORK says."""

WORK = 7e9
"""Multiply-adds of the tangent and adjoint products per layer, above which fewer
sequences are used: 16 sequences of 100 steps through an LSTM(256), 0.5 s on one core
(64 of them would be 2 s a layer)."""

BURN_IN = 20
"""Steps at most before the exponents are accumulated (and at most a quarter of them)."""

EXACT_DIRECTIONS = 16
"""For an h of at most this size the decay is exact (every unit vector pulled back); a
larger h uses EXPONENTS random orthonormal directions."""

LOG_FLOOR = float(np.log(np.finfo(np.float64).tiny))
"""log |R_jj| of a direction the map sends to exactly 0 (log 0 has no number)."""

PARALLEL_WORK = 5e8
"""Multiply-adds of a layer above which its sequences are split between two threads."""

FLOAT64_STATE = 128
"""States of at most this many values are followed in float64."""

HORIZON_SHARE = 0.9


def layer_dynamics(
    cell: CellWeights, x: np.ndarray, *, dtype: type | None = None, seed: int = 0
) -> Dynamics:
    """Lyapunov exponents and Jacobian decay of ``cell`` driven by x (sequences, steps,
    input_dim), in input time order (a backward cell reads it from the end), from a zero
    state. AnalysisError if the cell cannot be differentiated here.

    ``dtype`` None: float64 for a state of at most FLOAT64_STATE values (the same numbers
    on every processor, to the golden snapshot's 1e-5), float32 above (twice as fast)."""
    if dtype is None:
        size = cell.output_dim + (cell.units if cell.kind == "LSTM" else 0)
        dtype = np.float64 if size <= FLOAT64_STATE else np.float32
    m = cell_map(cell, dtype)
    x = np.asarray(x)[: sequences_for(cell, x.shape[0], x.shape[1])]
    if cell.direction == "backward":
        x = x[:, ::-1]
    n, steps, _ = x.shape
    k = min(EXPONENTS, m.state_size)
    burn = min(BURN_IN, steps // 4)
    rng = np.random.default_rng(seed)
    frames = np.linalg.qr(rng.normal(size=(n, m.state_size, k)))[0]  # orthonormal columns
    rows = _rows(m.h_size)
    start = (
        np.eye(m.h_size)
        if rows == m.h_size
        else np.linalg.qr(rng.normal(size=(m.h_size, rows)))[0].T
    )
    # Random draws first, then the work: the numbers do not depend on how it is split.
    chunks = [slice(0, n)]
    if n >= 2 and sequences_for(cell, n, steps) * _work(cell, steps) >= PARALLEL_WORK:
        chunks = [slice(0, n // 2), slice(n // 2, n)]
    # One BLAS thread: the products are small and many, and two threads waiting on each
    # other on busy cores took ten times as long (7 s against 0.7 s for an LSTM(256));
    # a large layer's sequences go in two halves to two threads instead.
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        # errstate: an exploding state (an unbounded activation) gives inf and NaN, and
        # exponents that are not numbers: Dynamics.unstable says so.
        if len(chunks) == 1:
            parts = [_sequences(m, x, frames, start, burn)]
        else:
            with ThreadPoolExecutor(len(chunks)) as pool:
                parts = list(
                    pool.map(lambda c: _sequences(m, x[c], frames[c], start, burn), chunks)
                )
    exponents = np.concatenate([e for e, _ in parts])
    gains = np.concatenate([g for _, g in parts])
    return Dynamics(
        lyapunov=tuple(float(v) for v in exponents.mean(axis=0)),
        lyapunov_spread=tuple(float(v) for v in exponents.std(axis=0)),
        jacobian_decay=tuple(float(v) for v in np.sqrt(np.median(gains, axis=0))),
        sequences=n,
        steps=steps,
        burn_in=burn,
        directions=rows,
        state="h" if cell.kind == "GRU" else "(h, c)",
    )


def _sequences(
    m: CellMap, x: np.ndarray, frames: np.ndarray, start: np.ndarray, burn: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence of x: the exponents (descending) and the squared decay gains."""
    n, steps, _ = x.shape
    zx = m.project(x)
    tangents: np.ndarray = np.swapaxes(frames, 1, 2).astype(
        m.dtype
    )  # (n, k, size): a direction a row
    states = np.zeros((n, steps + 1, m.state_size), m.dtype)
    logs = np.zeros((n, tangents.shape[1]))
    for t in range(steps):
        states[:, t + 1], v = m.jvp_z(states[:, t], zx[:, t], tangents)
        q, r = np.linalg.qr(np.swapaxes(v, 1, 2))
        tangents = np.swapaxes(q, 1, 2)
        if t >= burn:
            grow = np.abs(np.diagonal(r, axis1=1, axis2=2)).astype(np.float64)
            with np.errstate(divide="ignore"):
                logs += np.maximum(np.log(grow), LOG_FLOOR)
    exponents = -np.sort(-logs / (steps - burn), axis=1)
    return exponents, _gains(m, states, zx, start)


def sequences_for(cell: CellWeights, sequences: int, steps: int) -> int:
    """How many of the probe's sequences the dynamics of ``cell`` are measured on."""
    most = max(MIN_SEQUENCES, min(MAX_SEQUENCES, int(WORK // _work(cell, steps))))
    return min(sequences, most)


def _work(cell: CellWeights, steps: int) -> int:
    """Multiply-adds of the tangent and adjoint products for one sequence."""
    size = cell.output_dim + (cell.units if cell.kind == "LSTM" else 0)
    rows = min(EXPONENTS, size) + _rows(cell.output_dim)
    gates = 4 if cell.kind == "LSTM" else 3
    return max(1, steps * rows * cell.output_dim * gates * cell.units)


def _rows(p: int) -> int:
    """Adjoint rows behind the decay for an h of size p: all p, or a few random ones."""
    return p if p <= EXACT_DIRECTIONS else min(EXPONENTS, p)


def _gains(m: CellMap, states: np.ndarray, zx: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per sequence, ‖∂h_T/∂h_(T−k)‖_F² / p for k = 1..T−1, p the size of h: (n, T − 1).

    Rows a of the adjoint start as unit vectors of h (all p of them: exact) or as R < p
    random orthonormal ones, for which E Σ‖a·M‖² over the rows is R/p·‖M‖_F²; either way
    the value is Σ‖a·M‖² / R."""
    n, steps = zx.shape[0], zx.shape[1]
    p, rows = m.h_size, start.shape[0]
    adj: np.ndarray = np.zeros((n, rows, m.state_size), m.dtype)
    adj[:, :, :p] = start
    out = np.empty((n, max(steps - 1, 0)))
    for t in range(steps - 1, 0, -1):  # step t maps states[:, t] to states[:, t + 1]
        adj = m.vjp_z(states[:, t], zx[:, t], adj)
        out[:, steps - 1 - t] = np.sum(np.asarray(adj[:, :, :p], np.float64) ** 2, axis=(1, 2))
    return out / rows


def memory_horizon(
    per_step: Sequence[float],
    share: float = HORIZON_SHARE,
    per_lag: Sequence[float] | None = None,
) -> MemoryHorizon | None:
    """The smallest k such that the last k steps carry ``share`` of the summed per-step
    importance; with ``per_lag`` (a sequence target), such that the distances below k do.
    None if there is none to share (no steps, or all zero or not finite)."""
    by = "step" if per_lag is None else "lag"
    v = np.asarray(per_step if per_lag is None else per_lag, np.float64)
    total = float(v.sum()) if v.size else 0.0
    if not v.size or not np.isfinite(v).all() or total <= 0:
        return None
    # by step: reversed, so that the k-th entry is k steps back from the answer
    near = np.cumsum(v[::-1] if per_lag is None else v)
    k = int(np.searchsorted(near, share * total * (1 - 1e-12))) + 1
    return MemoryHorizon(steps=min(k, v.size), of=int(v.size), share=share, by=by)
