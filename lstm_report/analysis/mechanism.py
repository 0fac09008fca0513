"""Pure numpy: a layer's fixed and slow points, its slow manifold, and the units that carry
the answer.

Fixed points (Sussillo & Barak 2013): with the input held at x* (zero, or the probe's
mean), minimise q(s) = ½‖F(s, x*) − s‖² over the full state (cells/jacobian.py), from states
the probe's own trajectories visit, with Adam (gradient (F − s)·(J − I), by one vjp); then
refine each candidate by Newton steps on F(s) − s = 0 (the full Jacobian for a small state,
GMRES on J·v products above SMALL_STATE). A point is ``fixed`` when q per state value is
below FIXED_Q after refinement, ``slow`` when q is below SLOW_SHARE of the typical q along
the probe. Eigenvalues of J there: exact for a small state, else the Ritz values of an
Arnoldi run (the largest in magnitude converge first).

Slow manifold (Maheswaranathan et al. 2019): the principal directions of the slow points;
its dimension counts, when the points also share that many eigenvalues near 1. Whether the
probe's inputs drive it: analysis/slow_drive.py, at the point nearest the points' centre.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from lstm_report.analysis.slow_drive import NEAR_ONE, input_drive
from lstm_report.analysis.state_map import (
    FIXED_Q,
    SMALL_STATE,
    eigenvalues,
    newton,
    residual_q,
    step_work,
)
from lstm_report.cells.base import CellWeights
from lstm_report.cells.jacobian import CellMap, cell_map
from lstm_report.model.mechanism import FixedPoint, Mechanism, Plane, SlowManifold

STARTS = 64
"""Starting states sampled along the probe's trajectories (before deduplication)."""
TRAJECTORIES = 16
"""Probe sequences whose trajectories the starts are drawn from (and the picture shows)."""
ITERATIONS = 300
"""Adam steps on q at most..."""
MIN_ITERATIONS = 40
"""...and at least, whatever SEARCH_WORK says."""
SEARCH_WORK = 1.1e10
"""Multiply-adds of the Adam search per layer above which it takes fewer steps (an
LSTM(256): 64 starts × 300 steps, in float32; an LSTM(1024) gets MIN_ITERATIONS: the
search is limited, and says so)."""
LEARNING_RATE = 0.02
REFINE = 12
"""Candidates refined by Newton steps, the slowest first."""
SLOW_SHARE = 1e-3
"""q below this share of the median q at the starting states (the typical speed along the
probe with the input held): a slow point."""
DEDUP = 0.02
"""Points closer than this share of the trajectories' RMS spread are one point."""
MAX_POINTS = 12
"""Points reported (fixed ones first), each with its eigenvalues."""
MANIFOLD_SHARE = 0.9


def fixed_points(
    cell: CellWeights, x: np.ndarray, *, inputs: str = "zero", seed: int = 0
) -> Mechanism:
    """Fixed and slow points of ``cell`` with its input held at zero or at the mean of x
    (sequences, steps, input_dim), from states along x's trajectories."""
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        return _fixed_points(cell, np.asarray(x), inputs, seed)


def _fixed_points(cell: CellWeights, x: np.ndarray, inputs: str, seed: int) -> Mechanism:
    m = cell_map(cell, np.float64)
    n = m.state_size
    rng = np.random.default_rng(seed)
    seqs = x[:TRAJECTORIES]
    if cell.direction == "backward":
        seqs = seqs[:, ::-1]
    traj = _trajectories(m, seqs)  # (S, T, n)
    x_star = np.zeros(cell.input_dim) if inputs == "zero" else x.reshape(-1, x.shape[-1]).mean(0)
    zx = m.project(x_star)
    starts, tol = _starts(traj, rng)
    typical = float(np.median(residual_q(m, starts, zx)))
    iterations, limited = _budget(cell, len(starts))
    # A large state is searched in float32 (twice as fast), refined in float64.
    fast = m if n <= SMALL_STATE else cell_map(cell, np.float32)
    found = _adam(fast, starts.astype(fast.dtype), zx.astype(fast.dtype), iterations)
    pts, pq, fixed = _refined(m, found.astype(np.float64), zx, typical, tol)
    shown = pts[:MAX_POINTS]
    points = [_point(m, s, qs, is_fixed, zx, rng) for s, qs, is_fixed in zip(shown, pq, fixed)]
    manifold = slow_manifold(pts, points)
    if manifold is not None:
        centre = shown[np.argmin(np.linalg.norm(shown - pts.mean(0), axis=1))]
        drive = input_drive(m, centre, zx, traj, m.project(seqs), rng)
        manifold = replace(manifold, input_drive=drive)
    return Mechanism(
        inputs=inputs,
        fixed_points=tuple(points),
        slow_manifold=manifold,
        starts=len(starts),
        iterations=iterations,
        typical_q=typical,
        plane=_plane(traj, shown, pts),
        limited=limited,
    )


def _starts(traj: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Starting states drawn along the trajectories, and the distance under which two
    points are one (DEDUP of the trajectories' RMS spread)."""
    n = traj.shape[-1]
    pool = traj.reshape(-1, n)
    pool = pool[np.all(np.isfinite(pool), axis=1)]
    spread = (
        float(np.sqrt(np.mean(np.sum((pool - pool.mean(0)) ** 2, axis=1)))) if len(pool) else 0.0
    )
    tol = max(DEDUP * spread, 1e-9)
    pick = rng.choice(len(pool), size=min(STARTS * 2, len(pool)), replace=False)
    starts = _dedup(pool[np.sort(pick)], np.zeros(len(pick)), 1e-12 + 1e-6 * spread)[:STARTS]
    if len(starts) == 0:
        starts = np.zeros((1, n))
    return starts, tol


def _budget(cell: CellWeights, starts: int) -> tuple[int, str | None]:
    """The optimiser steps the search takes within SEARCH_WORK, and why fewer, if so."""
    cost = 2 * step_work(cell)
    iterations = int(min(ITERATIONS, max(MIN_ITERATIONS, SEARCH_WORK // (cost * starts))))
    if iterations >= ITERATIONS:
        return iterations, None
    return iterations, (
        f"the search took {iterations} optimiser steps from {starts} starts "
        f"(not {ITERATIONS}), to bound its cost"
    )


def _refined(
    m: CellMap, found: np.ndarray, zx: np.ndarray, typical: float, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The slow candidates among ``found``, the slowest REFINE refined by Newton steps,
    fixed ones first: (points, q, is fixed)."""
    n = m.state_size
    q = residual_q(m, found, zx)
    slow_q = SLOW_SHARE * typical
    keep = np.isfinite(q) & (q <= max(slow_q, FIXED_Q * n))
    order = np.argsort(q[keep], kind="stable")
    cand, cq = found[keep][order], q[keep][order]
    cand, cq = _dedup_with_q(cand, cq, tol)
    refined, rq = [], []
    for i, (s, qs) in enumerate(zip(cand, cq)):
        if i < REFINE:
            s, qs = newton(m, s, zx, qs, tol)
        refined.append(s)
        rq.append(qs)
    pts = np.array(refined).reshape(-1, n)
    pq = np.array(rq)
    fixed = pq / n < FIXED_Q
    order = np.lexsort((np.linalg.norm(pts, axis=1) if len(pts) else pq, ~fixed))
    pts, pq, fixed = pts[order], pq[order], fixed[order]
    return _dedup_kinds(pts, pq, fixed, tol)


def _point(
    m: CellMap, s: np.ndarray, qs: float, is_fixed: bool, zx: np.ndarray, rng: np.random.Generator
) -> FixedPoint:
    """One point as reported, with the eigenvalues of the Jacobian there."""
    eig = eigenvalues(m, s, zx, rng)
    return FixedPoint(
        kind="fixed" if is_fixed else "slow",
        norm=float(np.linalg.norm(s)),
        residual=float(np.sqrt(2.0 * qs)),
        eigenvalues=tuple((float(v.real), float(v.imag)) for v in eig),
        stable=bool(np.all(np.abs(eig) < 1.0)),
        q=float(qs),
    )


def _trajectories(m: CellMap, x: np.ndarray) -> np.ndarray:
    n, steps, _ = x.shape
    zx = m.project(x)
    out = np.zeros((n, steps, m.state_size))
    s = np.zeros((n, m.state_size))
    for t in range(steps):
        s = m.step_z(s, zx[:, t])
        out[:, t] = s
    return out


def _adam(m: CellMap, s: np.ndarray, zx: np.ndarray, iterations: int) -> np.ndarray:
    """Adam on q for every start at once (the gradient of q is r·(J − I), r = F(s) − s)."""
    s = s.copy()
    z = np.broadcast_to(zx, (s.shape[0], zx.shape[-1]))
    mom, var = np.zeros_like(s), np.zeros_like(s)
    b1, b2 = 0.9, 0.999
    for t in range(1, iterations + 1):
        r = m.step_z(s, z) - s
        grad = m.vjp_z(s, z, r[:, None, :])[:, 0] - r
        mom = b1 * mom + (1 - b1) * grad
        var = b2 * var + (1 - b2) * grad * grad
        lr = LEARNING_RATE * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * t / iterations)))
        s -= lr * (mom / (1 - b1**t)) / (np.sqrt(var / (1 - b2**t)) + 1e-12)
    return s


def _dedup(points: np.ndarray, q: np.ndarray, tol: float) -> np.ndarray:
    return _dedup_with_q(points, q, tol)[0]


def _dedup_with_q(points: np.ndarray, q: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy, in the given order: a point within tol of one kept is dropped."""
    kept: list[int] = []
    for i, p in enumerate(points):
        if not kept or np.min(np.linalg.norm(points[kept] - p, axis=1)) > tol:
            kept.append(i)
    return points[kept], q[kept]


def _dedup_kinds(
    pts: np.ndarray, q: np.ndarray, fixed: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kept: list[int] = []
    for i, p in enumerate(pts):
        if not kept or np.min(np.linalg.norm(pts[kept] - p, axis=1)) > tol:
            kept.append(i)
    return pts[kept], q[kept], fixed[kept]


def slow_manifold(pts: np.ndarray, points: list[FixedPoint]) -> SlowManifold | None:
    """The principal directions of the slow and fixed points explaining MANIFOLD_SHARE of
    their spread, when the reported points share that many eigenvalues within NEAR_ONE of
    1; None for fewer than 3 points, no spread, or eigenvalues that do not agree."""
    if len(pts) < 3 or not points:
        return None
    centred = pts - pts.mean(0)
    sv = np.linalg.svd(centred, compute_uv=False) ** 2
    total = float(sv.sum())
    if total <= 0:
        return None
    share = np.cumsum(sv) / total
    dim = int(np.searchsorted(share, MANIFOLD_SHARE * (1 - 1e-12))) + 1
    near = []
    for p in points:
        lam = np.array([complex(re, im) for re, im in p.eigenvalues])
        dist = np.abs(lam - 1.0)
        if int(np.sum(dist < NEAR_ONE)) < dim:
            return None
        near.append(float(np.abs(lam[np.argmin(dist)])))
    return SlowManifold(
        dimension=dim, explained=float(share[dim - 1]), eigenvalue_near_one=float(np.median(near))
    )


def _plane(traj: np.ndarray, shown: np.ndarray, every: np.ndarray) -> Plane | None:
    flat = traj.reshape(-1, traj.shape[-1])
    if len(flat) < 3 or not np.all(np.isfinite(flat)):
        return None
    mean = flat.mean(0)
    centred = flat - mean
    total = float(np.sum(centred**2))
    if centred.shape[1] < 2 or total <= 0:
        return None
    axes = _top_directions(centred, 2)
    # A fixed sign: the largest entry of each axis is positive (reruns draw the same picture).
    axes = axes * np.sign(axes[np.arange(2), np.argmax(np.abs(axes), axis=1)])[:, None]
    var = np.sum((centred @ axes.T) ** 2, axis=0) / total

    def project(p: np.ndarray) -> np.ndarray:
        return np.asarray((p.reshape(-1, len(mean)) - mean) @ axes.T)

    return Plane(
        trajectories=tuple(project(t) for t in traj[:8]),
        points=project(shown),
        slow=project(every),
        explained=(float(var[0]), float(var[1])),
    )


def _top_directions(a: np.ndarray, k: int) -> np.ndarray:
    """The k leading right singular vectors of a (rows), exactly for a small a, else by a
    seeded block power iteration (a full SVD of 1,600 states of an LSTM(1024) took 3 s)."""
    if min(a.shape) <= 256:
        return np.asarray(np.linalg.svd(a, full_matrices=False)[2][:k])
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(a.shape[1], k + 6)))[0]
    for _ in range(12):
        q = np.linalg.qr(a.T @ (a @ q))[0]
    small = a @ q  # the leading directions lie in span(q): finish with the small SVD
    vt = np.linalg.svd(small, full_matrices=False)[2]
    return np.asarray((q @ vt.T).T[:k])
