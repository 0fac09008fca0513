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
its dimension counts, when the points also share that many eigenvalues near 1.

Unit ablation: one unit's output zeroed at every step (also where the state feeds back),
the mean squared change of the target (the model's prediction where it can be replayed),
per sequence, with a bootstrap interval over the sequences.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lstm_report.cells.base import CellWeights
from lstm_report.cells.jacobian import CellMap, cell_map
from lstm_report.model.mechanism import (
    FixedPoint,
    Mechanism,
    Plane,
    SlowManifold,
    UnitAblation,
    UnitEffect,
)

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

NEWTON_STEPS = 6
REFINE = 12
"""Candidates refined by Newton steps, the slowest first."""

SMALL_STATE = 128
"""States of at most this many values get full Jacobians (exact eigenvalues, Newton by a
dense solve); larger ones use J·v products only."""

KRYLOV = 48
"""Arnoldi vectors for the eigenvalues and for each GMRES solve of a large state."""

FIXED_Q = 1e-10
"""q / state size below this after refinement: a fixed point."""

SLOW_SHARE = 1e-3
"""q below this share of the median q at the starting states (the typical speed along the
probe with the input held): a slow point."""

DEDUP = 0.02
"""Points closer than this share of the trajectories' RMS spread are one point."""

EIGENVALUES = 10
MAX_POINTS = 12
"""Points reported (fixed ones first), each with its eigenvalues."""

MANIFOLD_SHARE = 0.9
NEAR_ONE = 0.02

ABLATION_WORK = 1.6e10
"""Multiply-adds of the ablation replays per layer; above it the units are screened on
fewer sequences first."""

ABLATION_SEQUENCES = 32
CANDIDATES = 20
MIN_SEQUENCES = 2
"""The candidates of a screened layer are measured on at least this many sequences."""
SCREEN_SEQUENCES = 4
"""Sequences of the output-only screen of a layer too large to rerun once per unit."""
TOP_UNITS = 10
BOOTSTRAP = 1000


# --- fixed points --------------------------------------------------------------------------


def fixed_points(
    cell: CellWeights, x: np.ndarray, *, inputs: str = "zero", seed: int = 0
) -> Mechanism:
    """Fixed and slow points of ``cell`` with its input held at zero or at the mean of x
    (sequences, steps, input_dim), from states along x's trajectories."""
    from threadpoolctl import threadpool_limits  # a dependency; imported when used

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
    pool = traj.reshape(-1, n)
    pool = pool[np.all(np.isfinite(pool), axis=1)]
    x_star = np.zeros(cell.input_dim) if inputs == "zero" else x.reshape(-1, x.shape[-1]).mean(0)
    zx = m.project(x_star)
    spread = (
        float(np.sqrt(np.mean(np.sum((pool - pool.mean(0)) ** 2, axis=1)))) if len(pool) else 0.0
    )
    tol = max(DEDUP * spread, 1e-9)
    pick = rng.choice(len(pool), size=min(STARTS * 2, len(pool)), replace=False)
    starts = _dedup(pool[np.sort(pick)], np.zeros(len(pick)), 1e-12 + 1e-6 * spread)[:STARTS]
    if len(starts) == 0:
        starts = np.zeros((1, n))
    q0 = _q(m, starts, zx)
    typical = float(np.median(q0))
    cost = 2 * _step_work(cell)
    iterations = int(min(ITERATIONS, max(MIN_ITERATIONS, SEARCH_WORK // (cost * len(starts)))))
    limited = None
    if iterations < ITERATIONS:
        limited = (
            f"the search took {iterations} optimiser steps from {len(starts)} starts "
            f"(not {ITERATIONS}), to bound its cost"
        )
    # A large state is searched in float32 (twice as fast), refined in float64.
    fast = m if n <= SMALL_STATE else cell_map(cell, np.float32)
    found = _adam(fast, starts.astype(fast.dtype), zx.astype(fast.dtype), iterations)
    found = found.astype(np.float64)
    q = _q(m, found, zx)
    slow_q = SLOW_SHARE * typical
    keep = np.isfinite(q) & (q <= max(slow_q, FIXED_Q * n))
    order = np.argsort(q[keep], kind="stable")
    cand, cq = found[keep][order], q[keep][order]
    cand, cq = _dedup_with_q(cand, cq, tol)
    refined, rq = [], []
    for i, (s, qs) in enumerate(zip(cand, cq)):
        if i < REFINE:
            s, qs = _newton(m, s, zx, qs, tol)
        refined.append(s)
        rq.append(qs)
    pts = np.array(refined).reshape(-1, n)
    pq = np.array(rq)
    fixed = pq / n < FIXED_Q
    order = np.lexsort((np.linalg.norm(pts, axis=1) if len(pts) else pq, ~fixed))
    pts, pq, fixed = pts[order], pq[order], fixed[order]
    pts, pq, fixed = _dedup_kinds(pts, pq, fixed, tol)
    shown = pts[:MAX_POINTS]
    points = []
    for s, qs, is_fixed in zip(shown, pq, fixed):
        eig = _eigenvalues(m, s, zx, rng)
        points.append(
            FixedPoint(
                kind="fixed" if is_fixed else "slow",
                norm=float(np.linalg.norm(s)),
                residual=float(np.sqrt(2.0 * qs)),
                eigenvalues=tuple((float(v.real), float(v.imag)) for v in eig),
                stable=bool(np.all(np.abs(eig) < 1.0)),
                q=float(qs),
            )
        )
    manifold = slow_manifold(pts, points)
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


def _step_work(cell: CellWeights) -> int:
    gates = 4 if cell.kind == "LSTM" else 3
    return cell.output_dim * gates * cell.units


def _trajectories(m: CellMap, x: np.ndarray) -> np.ndarray:
    n, steps, _ = x.shape
    zx = m.project(x)
    out = np.zeros((n, steps, m.state_size))
    s = np.zeros((n, m.state_size))
    for t in range(steps):
        s = m.step_z(s, zx[:, t])
        out[:, t] = s
    return out


def _q(m: CellMap, s: np.ndarray, zx: np.ndarray) -> np.ndarray:
    r = m.step_z(s, np.broadcast_to(zx, (*s.shape[:-1], zx.shape[-1]))) - s
    return np.asarray(0.5 * np.sum(r * r, axis=-1))


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


def _newton(
    m: CellMap, s: np.ndarray, zx: np.ndarray, q: float, tol: float
) -> tuple[np.ndarray, float]:
    """Newton steps on F(s) − s = 0; kept only while q falls and the point stays within
    ``tol`` of where it started (a slow point is not pulled to a far fixed point)."""
    start, best, best_q = s, s, q
    for _ in range(NEWTON_STEPS):
        r = m.step_z(best, zx) - best
        if m.state_size <= SMALL_STATE:
            a = _full_jacobian(m, best, zx) - np.eye(m.state_size)
            delta = np.linalg.lstsq(a, -r, rcond=None)[0]
        else:
            delta = _gmres(lambda v: _jv(m, best, zx, v) - v, -r)
        nxt = best + delta
        nq = float(_q(m, nxt, zx))
        if not np.isfinite(nq) or nq >= best_q or np.linalg.norm(nxt - start) > tol:
            break
        best, best_q = nxt, nq
        if best_q / m.state_size < FIXED_Q * 1e-6:
            break
    return best, best_q


def _full_jacobian(m: CellMap, s: np.ndarray, zx: np.ndarray) -> np.ndarray:
    eye = np.eye(m.state_size)
    _, jv = m.jvp_z(s[None], zx[None], eye[None])
    return np.asarray(jv[0].T)


def _jv(m: CellMap, s: np.ndarray, zx: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.asarray(m.jvp_z(s[None], zx[None], v[None, None])[1][0, 0])


def _arnoldi(
    apply: Callable[[np.ndarray], np.ndarray], v0: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """k steps of Arnoldi: V (j + 1, n) orthonormal rows and H (j + 1, j), j ≤ k."""
    n = v0.size
    V = np.zeros((k + 1, n))
    H = np.zeros((k + 1, k))
    V[0] = v0 / np.linalg.norm(v0)
    for j in range(k):
        w = apply(V[j])
        for _ in range(2):  # twice: orthogonal to the last digit
            c = V[: j + 1] @ w
            w = w - c @ V[: j + 1]
            H[: j + 1, j] += c
        H[j + 1, j] = np.linalg.norm(w)
        if H[j + 1, j] <= 1e-14 * max(1.0, float(np.abs(H[: j + 1, j]).max())):
            return V[: j + 1], H[: j + 1, : j + 1]
        V[j + 1] = w / H[j + 1, j]
    return V, H


def _gmres(apply: Callable[[np.ndarray], np.ndarray], b: np.ndarray) -> np.ndarray:
    beta = float(np.linalg.norm(b))
    if beta == 0:
        return np.zeros_like(b)
    V, H = _arnoldi(apply, b, min(KRYLOV, b.size))
    e1 = np.zeros(H.shape[0])
    e1[0] = beta
    y = np.linalg.lstsq(H, e1, rcond=None)[0]
    return np.asarray(y @ V[: H.shape[1]])


def _eigenvalues(m: CellMap, s: np.ndarray, zx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The EIGENVALUES largest-magnitude eigenvalues of J at s, descending |λ| (ties by
    angle, so conjugate pairs come in a fixed order)."""
    if m.state_size <= SMALL_STATE:
        eig = np.linalg.eigvals(_full_jacobian(m, s, zx))
    else:
        V, H = _arnoldi(lambda v: _jv(m, s, zx, v), rng.normal(size=m.state_size), KRYLOV)
        k = H.shape[1]
        eig = np.linalg.eigvals(H[:k, :k])
    eig = np.where(np.abs(eig.imag) < 1e-12, eig.real + 0j, eig)
    order = np.lexsort((-eig.imag, -np.round(np.abs(eig), 12)))
    return eig[order][:EIGENVALUES]


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


# --- unit ablation -------------------------------------------------------------------------


def ablated_outputs(
    cell: CellWeights, x: np.ndarray, units: np.ndarray, dtype: type = np.float32
) -> np.ndarray:
    """The cell's h over x (sequences, steps, input_dim) with h[unit] zeroed after every
    step, for each of ``units`` (−1: none): (len(units), sequences, steps, output_dim), in
    input time order."""
    m = cell_map(cell, dtype)
    xs = x[:, ::-1] if cell.direction == "backward" else x
    n, steps, _ = xs.shape
    k = len(units)
    zx = m.project(xs)  # (n, steps, gates·u)
    s: np.ndarray = np.zeros((k, n, m.state_size), dtype)
    out: np.ndarray = np.zeros((k, n, steps, m.h_size), dtype)
    rows = np.arange(k)[units >= 0]
    cols = units[units >= 0]
    for t in range(steps):
        s = m.step_z(s, np.broadcast_to(zx[:, t], (k, n, zx.shape[-1])))
        s[rows, :, cols] = 0.0
        out[:, :, t] = s[..., : m.h_size]
    return out[:, :, ::-1] if cell.direction == "backward" else out


def unit_ablation(
    cell: CellWeights,
    x: np.ndarray,
    head: Callable[[np.ndarray], np.ndarray],
    *,
    target: str,
    reason: str | None = None,
    tau: tuple[float | None, ...] | None = None,
    saturated: np.ndarray | None = None,
    seed: int = 0,
) -> UnitAblation:
    """Mean squared change of ``head`` (the layer's h sequences (batch, steps, h) -> the
    target, batch first) when one unit's output is zeroed at every step, per unit, over the
    sequences of x; the TOP_UNITS largest with a bootstrap 95% interval over sequences.
    ``tau``, ``saturated``: per unit, the memory-gate timescale and the largest share of
    probe steps any of its gates saturates on, carried onto the cards."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    h = cell.output_dim
    run = max(1, x.shape[1] * _step_work(cell))
    every = ABLATION_WORK / 2 / run / (h + 1)
    seqs = int(min(x.shape[0], ABLATION_SEQUENCES))
    screened = None
    screen = "ablation"
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        if every >= seqs:
            units = np.arange(h)
        else:
            if every >= 1:
                screened = int(every)
                scores = _effects(cell, x[:screened], head, np.arange(h))[0].mean(axis=1)
            else:
                # Too large to rerun the layer once per unit: screen by zeroing each unit
                # in the layer's output alone (not fed back), a run of the head only.
                screened, screen = int(min(seqs, SCREEN_SEQUENCES)), "output"
                scores = _output_effects(cell, x[:screened], head).mean(axis=1)
            many = TOP_UNITS if screen == "output" else CANDIDATES  # fewer: each is costly
            units = np.sort(np.argsort(-scores, kind="stable")[: min(many, h)])
            fits = int(ABLATION_WORK / 2 / run / (len(units) + 1))
            seqs = int(min(seqs, max(MIN_SEQUENCES, fits)))
        values, base = _effects(cell, x[:seqs], head, units)
        activity = np.mean(np.abs(np.asarray(base, np.float64)), axis=(0, 1))
    mean = values.mean(axis=1)
    boots = rng.integers(0, seqs, size=(BOOTSTRAP, seqs))
    order = np.argsort(-mean, kind="stable")[:TOP_UNITS]
    out = []
    for i in order:
        resampled = values[i][boots].mean(axis=1)
        unit = int(units[i])
        out.append(
            UnitEffect(
                unit=unit,
                value=float(mean[i]),
                low=float(np.percentile(resampled, 2.5)),
                high=float(np.percentile(resampled, 97.5)),
                tau=None if tau is None or unit >= len(tau) else tau[unit],
                mean_activity=float(activity[unit]),
                saturated=None if saturated is None else float(saturated[unit]),
            )
        )
    return UnitAblation(
        units=tuple(out),
        target=target,
        reason=reason,
        sequences=seqs,
        screened=screened,
        screen=screen if screened is not None else None,
    )


def _output_effects(
    cell: CellWeights, x: np.ndarray, head: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """(units, sequences): the mean squared change of head when one unit is zeroed in the
    layer's output only (the recurrence runs unchanged): the screen of a very large layer."""
    base_h = ablated_outputs(cell, x, np.array([-1]))[0]
    base = np.asarray(head(base_h), np.float64).reshape(x.shape[0], -1)
    h = base_h.shape[-1]
    block = max(1, int(4096 // max(1, x.shape[0])))
    out = []
    for lo in range(0, h, block):
        units = np.arange(lo, min(h, lo + block))
        hs = np.repeat(base_h[None], len(units), axis=0)
        hs[np.arange(len(units)), :, :, units] = 0.0
        k, n = hs.shape[:2]
        y = np.asarray(head(hs.reshape(k * n, *hs.shape[2:])), np.float64).reshape(k, n, -1)
        out.append(np.mean((y - base[None]) ** 2, axis=2))
    return np.concatenate(out, axis=0)


def _effects(
    cell: CellWeights,
    x: np.ndarray,
    head: Callable[[np.ndarray], np.ndarray],
    units: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(len(units), sequences): the mean squared change of head per sequence, per unit,
    in blocks of units (two threads for a large layer); and the layer's h unablated."""
    block = max(1, int(4096 // max(1, x.shape[0])))
    base_h = ablated_outputs(cell, x, np.array([-1]))[0]
    base = np.asarray(head(base_h), np.float64)

    def one(chunk: np.ndarray) -> np.ndarray:
        hs = ablated_outputs(cell, x, chunk)
        k, n = hs.shape[:2]
        y = np.asarray(head(hs.reshape(k * n, *hs.shape[2:])), np.float64)
        y = y.reshape(k, n, -1)
        return np.asarray(np.mean((y - base.reshape(1, n, -1)) ** 2, axis=2))

    chunks = [units[i : i + block] for i in range(0, len(units), block)]
    if len(chunks) >= 2 and len(units) * x.shape[0] * x.shape[1] * _step_work(cell) > 5e8:
        with ThreadPoolExecutor(2) as pool:
            parts = list(pool.map(one, chunks))
    else:
        parts = [one(c) for c in chunks]
    return np.concatenate(parts, axis=0), base_h
