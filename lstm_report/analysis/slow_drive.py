"""Pure numpy: how much of the probe's input drive lands on a layer's slow directions.

A slow manifold says the state *can* hold a value; it says nothing of whether the inputs
write one there. The drive of step t is what the input adds to the next state, given the
state: d_t = F(s_(t−1), x_t) − F(s_(t−1), x*) along the probe's own trajectories. At a
point s* of the manifold, the spectral projector P onto the eigenvalues of J within
NEAR_ONE of 1 (along the other eigenvectors) splits it into the slow part P·d, which the
map keeps, and the rest, which decays. The share is Σ‖P·d‖² / (Σ‖P·d‖² + Σ‖(I − P)·d‖²)
over the probe: 0 when the inputs never reach the slow modes, 1 when they reach nothing
else.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lstm_report.analysis.state_map import KRYLOV, SMALL_STATE, _arnoldi, _full_jacobian, _jv
from lstm_report.cells.jacobian import CellMap

NEAR_ONE = 0.02
"""An eigenvalue within this of 1 is a slow mode (the slow manifold's own rule)."""


def input_drive(
    m: CellMap,
    centre: np.ndarray,
    zx_held: np.ndarray,
    traj: np.ndarray,
    zx: np.ndarray,
    rng: np.random.Generator,
) -> float | None:
    """The share of the probe's input drive on the slow modes of J at ``centre``: traj
    (S, T, n) the states after each step of the inputs projected into zx (S, T, ·); None
    without slow modes there or without any drive."""
    basis = slow_modes(m, centre, zx_held, rng)
    if basis is None:
        return None
    right, left = basis
    n = m.state_size
    before = np.concatenate([np.zeros((traj.shape[0], 1, n)), traj[:, :-1]], axis=1)
    held = np.broadcast_to(zx_held, zx.shape)
    d = (traj - m.step_z(before, held)).reshape(-1, n)
    d = d[np.all(np.isfinite(d), axis=1)]
    slow = np.real((d @ left.T) @ right.T)  # conjugate pairs: the imaginary parts cancel
    kept, rest = float(np.sum(slow**2)), float(np.sum((d - slow) ** 2))
    if not np.isfinite(kept + rest) or kept + rest <= 0:
        return None
    return kept / (kept + rest)


def slow_modes(
    m: CellMap,
    s: np.ndarray,
    zx: np.ndarray,
    rng: np.random.Generator,
    exact: bool | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Bases of the right (n, k) and left (k, n) invariant subspaces of J at s for the
    eigenvalues within NEAR_ONE of 1, scaled so that left·right = I (left·d are the slow
    coordinates of d, right·(left·d) its slow part); exact for a small state, else from
    Arnoldi runs on J·v and on vᵀ·J (``exact`` forces either)."""
    if m.state_size <= SMALL_STATE if exact is None else exact:
        jac = _full_jacobian(m, s, zx)
        right = _near_one(*np.linalg.eig(jac))
        left = _near_one(*np.linalg.eig(jac.T))
    else:
        right = _ritz(lambda v: _jv(m, s, zx, v), m.state_size, rng)
        left = _ritz(lambda v: _vj(m, s, zx, v), m.state_size, rng)
    k = min(right.shape[1], left.shape[1])
    if k == 0:
        return None
    right, left = right[:, :k], left[:, :k].T
    # left eigenvectors of other eigenvalues are orthogonal to these right ones: scale the
    # left basis so that left·right = I (a pseudo-inverse, should the cluster be defective)
    return right, np.linalg.pinv(left @ right) @ left


def _near_one(lam: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The eigenvectors (columns) of the eigenvalues within NEAR_ONE of 1, nearest first."""
    dist = np.abs(lam - 1.0)
    pick = np.argsort(dist, kind="stable")
    pick = pick[dist[pick] < NEAR_ONE]
    return np.asarray(vectors[:, pick])


def _ritz(
    apply: Callable[[np.ndarray], np.ndarray], n: int, rng: np.random.Generator
) -> np.ndarray:
    V, H = _arnoldi(apply, rng.normal(size=n), KRYLOV)
    k = H.shape[1]
    lam, z = np.linalg.eig(H[:k, :k])
    return _near_one(lam, V[:k].T @ z)


def _vj(m: CellMap, s: np.ndarray, zx: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.asarray(m.vjp_z(s[None], zx[None], v[None, None])[0, 0])
