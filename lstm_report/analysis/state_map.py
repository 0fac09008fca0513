"""Numerics on a cell's state map F(s, x): the speed q, Newton steps towards F(s) = s,
the eigenvalues of its Jacobian, and the cost of one step (cells/jacobian.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lstm_report.cells.base import CellWeights
from lstm_report.cells.jacobian import CellMap

NEWTON_STEPS = 6
SMALL_STATE = 128
"""States of at most this many values get full Jacobians (exact eigenvalues, Newton by a
dense solve); larger ones use J·v products only."""
KRYLOV = 48
"""Arnoldi vectors for the eigenvalues and for each GMRES solve of a large state."""
FIXED_Q = 1e-10
"""q / state size below this after refinement: a fixed point."""
EIGENVALUES = 10


def step_work(cell: CellWeights) -> int:
    """Multiply-adds of one step of the cell's recurrent matrices, per sequence."""
    return cell.output_dim * _gates(cell) * cell.units


def step_macs(cell: CellWeights) -> int:
    """Multiply-adds of one step of one sequence through the cell: x·W and h·U."""
    return _gates(cell) * cell.units * (cell.input_dim + cell.output_dim)


def _gates(cell: CellWeights) -> int:
    return 4 if cell.kind == "LSTM" else 3


def residual_q(m: CellMap, s: np.ndarray, zx: np.ndarray) -> np.ndarray:
    """q(s) = ½‖F(s, x*) − s‖² of each state of s, the input projected into zx."""
    r = m.step_z(s, np.broadcast_to(zx, (*s.shape[:-1], zx.shape[-1]))) - s
    return np.asarray(0.5 * np.sum(r * r, axis=-1))


def newton(
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
        nq = float(residual_q(m, nxt, zx))
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


def eigenvalues(m: CellMap, s: np.ndarray, zx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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
