"""Pure numpy: singular values, eigenvalues, spectral radius and stable rank per gate.

Up to EXACT_MAX units every spectrum is complete and exact (LAPACK SVD and eigenvalues).
Above it, what the report shows is computed, not more (measured in docs/speed.md; the
methods in docs/algorithms.md): all singular values from the eigenvalues of the smaller Gram
matrix (half the time of an SVD), and only the LEADING_EIGENVALUES largest eigenvalues by
magnitude, by a restarted Arnoldi method (a quarter of the time of all eigenvalues at 1024
units, and the gap grows with the size). The spectral radius is the first of those, ‖A‖₂ the first
singular value; both agree with the exact ones to the tolerances stated in the Spectrum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from threading import Lock
from typing import TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from lstm_report.analysis.norms import scale_of
from lstm_report.cells.base import GateWeights
from lstm_report.model.stats import GateSpectra, Spectrum

T = TypeVar("T")

EXACT_MAX = 256
"""Largest side (units for eigenvalues, the shorter side for singular values) whose spectrum
is computed in full by dense LAPACK. At 256 all eigenvalues take 27 ms, at 512 0.29 s and at
1024 0.87 s per matrix (single-threaded), against 0.1 s and 0.27 s for the leading 64."""

LEADING_EIGENVALUES = 64
"""How many eigenvalues of a large U_g are computed: the largest by magnitude."""

ARNOLDI_TOL = 1e-6
"""Each leading eigenvalue θ comes with a unit vector v, ‖U·v − θ·v‖ ≤ ARNOLDI_TOL·|θ|: θ is
an exact eigenvalue of a matrix within that distance of U (checked, not estimated). 1e-6:
the weights are float32, so U itself is only known to about 6e-8 per entry, a backward
error of the same order (ε₃₂·‖U‖_F ≈ 1e-6·|θ| at 1024 units), and the page shows 4 digits.
1e-10 cost 0.29 s against 0.20 s per 1024² U_g (one BLAS thread, measured), and moved the
spectral radius no more (1e-15 relative, against numpy's eigvals)."""

_GRAM = Lock()
"""Held while a Gram matrix of the pool's jobs is formed and decomposed (spectra_jobs)."""


def spectrum(a: np.ndarray, *, eigen: bool, exact_max: int = EXACT_MAX) -> Spectrum | None:
    """The spectrum of one matrix, or None if it has non-finite entries."""
    x = _finite(a)
    if x is None:
        return None
    ev = _eigen(x, exact_max) if eigen else None
    return _assemble(x.shape, _singular(x, exact_max), ev)


def _finite(a: np.ndarray) -> np.ndarray | None:
    x = np.asarray(a, dtype=np.float64)
    return x if x.ndim == 2 and np.isfinite(x).all() else None


def _singular(x: np.ndarray, exact_max: int) -> tuple[np.ndarray, str]:
    """All singular values, descending, and how: "svd" (exact) or "gram" (large)."""
    if min(x.shape) == 0:
        return np.zeros(0), "svd"
    if min(x.shape) <= exact_max:
        return np.linalg.svd(np.asarray(x, np.float64), compute_uv=False), "svd"
    return gram_singular_values(x), "gram"


def _eigen(x: np.ndarray, exact_max: int) -> tuple[np.ndarray, str] | None:
    """Eigenvalues in canonical order and how: all ("dense"), or the largest by magnitude
    ("arnoldi") above exact_max units; None for a matrix that is not square or empty."""
    if x.shape[0] != x.shape[1] or not x.size:
        return None
    ev = leading_eigenvalues(x, LEADING_EIGENVALUES) if x.shape[0] > exact_max else None
    method = "arnoldi"
    if ev is None:  # small, or the iteration did not converge: all of them, exactly
        ev, method = np.linalg.eigvals(x), "dense"
    # A canonical order, so the output does not depend on LAPACK's or the iteration's.
    return ev[np.lexsort((ev.imag, ev.real))], method


def _assemble(
    shape: tuple[int, ...], singular: tuple[np.ndarray, str], eigen: tuple[np.ndarray, str] | None
) -> Spectrum:
    sv, method = singular
    top = float(sv[0]) if sv.size else 0.0
    r = sv / top if top > 0 else sv  # scaled first: finite for weights near 1e200 too
    stable = float(np.sum(r * r)) if top > 0 else None
    ev, eigen_method = eigen if eigen is not None else (None, None)
    return Spectrum(
        singular_values=tuple(float(s) for s in sv),
        stable_rank=stable,
        eigenvalues=None if ev is None else tuple(complex(z) for z in ev),
        spectral_radius=None if ev is None else float(np.max(np.abs(ev))),
        singular_method=method,
        eigen_method=eigen_method,
        eigen_total=None if ev is None else int(shape[0]),
        eigen_tolerance=ARNOLDI_TOL if eigen_method == "arnoldi" else None,
    )


def _scaled(x: np.ndarray) -> tuple[np.ndarray, float]:
    """x / s and s, a power of two (so exact) that keeps products of entries far from
    overflow and underflow; x itself (no copy: 8 MiB at 1024²) where they are already."""
    m = max(float(x.max()), -float(x.min())) if x.size else 0.0
    if 2.0**-400 < m < 2.0**400:
        return x, 1.0
    s = scale_of(x)
    return x / s, s


def gram_singular_values(a: np.ndarray) -> np.ndarray:
    """All singular values of a (descending), from the eigenvalues of the smaller of a·aᵀ
    and aᵀ·a, in float64. The Gram matrix squares the condition: σ_i comes out within about
    n·ε·σ₁²/σ_i, so σ₁ and the leading values to ~1e-13 relative, and values below
    √(n·ε)·σ₁ (about 1e-7·σ₁ at 1024) are at the rounding floor.

    One product of the whole float64 copy, freed before the eigenvalues (which copy the
    Gram matrix): the same peak memory as accumulating blocks of rows into it (each block's
    product was a full-size temporary), and 0.09 instead of 0.12 s at 1024 units (one
    syrk of depth 1024 against eight of depth 128: 0.024 against 0.062 s)."""
    y = a if a.shape[1] <= a.shape[0] else a.T  # gram = yᵀ·y, the smaller side squared
    m = max(float(a.max()), -float(a.min()))
    s = 1.0 if 2.0**-400 < m < 2.0**400 else scale_of(np.asarray(a, np.float64))
    x = np.asarray(y, np.float64)
    if s != 1.0:
        x = x / s  # a power of two: exact
    g = x.T @ x  # the symmetric product (syrk)
    del x
    lam = np.linalg.eigvalsh(g)[::-1]
    return np.sqrt(np.clip(lam, 0.0, None)) * s


def leading_eigenvalues(x: np.ndarray, k: int) -> np.ndarray | None:
    """The k largest eigenvalues of square x by magnitude (k − 1 where the k-th would split a
    complex-conjugate pair), or None if the iteration does not converge (the caller then
    computes all of them). Deterministic: seeded start vectors."""
    n = x.shape[0]
    if k + 2 >= n:
        return None
    y, s = _scaled(x)
    ev = _thick_restart_arnoldi(y, k + 1)  # one more, to see whether the k-th has its pair
    if ev is None:
        return None
    ev = ev * s
    # Largest first; ties in magnitude broken by a fixed rule.
    ev = ev[np.lexsort((-ev.imag, -ev.real, -np.abs(ev)))]
    keep = ev[:k]
    last = keep[-1]
    if last.imag != 0 and not np.any(keep[:-1] == np.conj(last)):
        keep = keep[:-1]  # the k-th's conjugate is the (k+1)-th: keep pairs whole
    return keep


MAX_RESTARTS = 300


def _thick_restart_arnoldi(a: np.ndarray, k: int) -> np.ndarray | None:
    """At least the k largest eigenvalues of a by magnitude (complex pairs whole), each with
    a residual ‖a·v − θ·v‖ ≤ ARNOLDI_TOL·|θ| (checked on the Ritz vectors themselves).

    Arnoldi with thick restarts (Stewart's Krylov–Schur, restarted from Ritz vectors:
    Wu & Simon; Morgan): a Krylov basis V of m vectors (twice classical Gram–Schmidt),
    the Ritz values of H = Vᵀ·a·V, then a restart that keeps the leading half of them.
    Numpy only: as fast as scipy's ARPACK (0.35 s against 0.32–0.5 s of CPU for the 64 largest
    of a 1024² matrix), without the 30 MiB of memory and 0.2 s that importing scipy costs.
    """
    n = a.shape[0]
    # The basis: at k = 65 (1024 units, the benchmark's 8 U_g) 2.45 s of CPU against 3.33 s
    # with k + 96 vectors (more restarts) and 2.5 to 2.7 s with 64 or 128 more (dearer ones).
    # At 2048 units a matrix-vector product costs four times as much, and 96 more vectors
    # pay: 2.6 s against 3.2 s per U_g of the 2×LSTM(2048) benchmark (measured on a loaded machine).
    m = min(n - 1, 2 * k + 96 * max(1, n // 1024))
    v = np.zeros((n, m + 1))
    h = np.zeros((m + 1, m))
    rng = np.random.default_rng(0)
    start = rng.uniform(-1.0, 1.0, n)
    v[:, 0] = start / np.linalg.norm(start)
    norm = 0.0  # the largest column of H seen: a lower bound of ‖a‖
    first = 0
    for _ in range(MAX_RESTARTS):
        norm = _extend(a, v, h, first, norm, rng)
        theta, y = np.linalg.eig(h[:m, :m])
        order = np.lexsort((-theta.imag, -theta.real, -np.abs(theta)))
        theta, y = theta[order], y[:, order]
        want = k + 1 if theta[k - 1].imag > 0 else k  # the k-th with its conjugate
        floor = np.maximum(np.abs(theta[:want]), _EPS * norm)
        if np.all(np.abs(h[m, :m] @ y[:, :want]) <= ARNOLDI_TOL / 2 * floor):
            # The estimate holds if the restarts kept the Krylov relation; check it directly.
            ritz = v[:, :m] @ y[:, :want]
            # a times the real and imaginary parts: a @ ritz would make a complex copy of a
            # (16 MiB at 1024 units, twice the memory of the whole iteration).
            image = a @ ritz.real + 1j * (a @ ritz.imag)
            residual = np.linalg.norm(image - ritz * theta[:want], axis=0)
            if np.all(residual <= ARNOLDI_TOL * floor):
                return np.asarray(theta[:want])
            return None
        first = _restart(v, h, theta, y, k)
    return None


def _extend(
    a: np.ndarray, v: np.ndarray, h: np.ndarray, first: int, norm: float, rng: np.random.Generator
) -> float:
    """Grow the Krylov basis v (n, m + 1) and H (m + 1, m) in place from column ``first``
    to m; returns the largest column of H seen (``norm`` so far)."""
    n, m = v.shape[0], h.shape[1]
    for j in range(first, m):
        w = a @ v[:, j]
        basis = v[:, : j + 1]
        c1 = basis.T @ w
        w -= basis @ c1
        c2 = basis.T @ w  # twice is enough (Kahan, Parlett)
        w -= basis @ c2
        h[: j + 1, j] += c1 + c2
        beta = float(np.linalg.norm(w))
        norm = max(norm, float(np.linalg.norm(h[: j + 1, j])), beta)
        if beta > 1e-12 * norm:
            h[j + 1, j] = beta
            v[:, j + 1] = w / beta
            continue
        # An invariant subspace (its Ritz values are exact): go on from a new direction
        # orthogonal to it, seeded so that reruns agree.
        h[j + 1, j] = 0.0
        w = np.asarray(rng.uniform(-1.0, 1.0, size=n))
        w -= basis @ (basis.T @ w)
        w -= basis @ (basis.T @ w)
        v[:, j + 1] = w / np.linalg.norm(w)
    return norm


def _restart(v: np.ndarray, h: np.ndarray, theta: np.ndarray, y: np.ndarray, k: int) -> int:
    """Thick restart in place: the p leading Ritz vectors (pairs whole), as an orthonormal
    real basis, with H reduced to them; returns p, where the basis grows again."""
    m = h.shape[1]
    p = k + (m - k) // 2
    if theta[p - 1].imag > 0:
        p += 1
    cols = []
    for t, z in zip(theta[:p], y[:, :p].T):
        if t.imag > 0:
            cols += [z.real, z.imag]
        elif t.imag == 0:
            cols.append(z.real)
    q = np.linalg.qr(np.stack(cols, axis=1))[0]
    p = q.shape[1]
    coupling = h[m, :m] @ q
    v[:, :p] = v[:, :m] @ q
    v[:, p] = v[:, m]
    hp = q.T @ h[:m, :m] @ q
    h[:] = 0.0
    h[:p, :p] = hp
    h[p, :p] = coupling
    return p


_EPS = float(np.finfo(np.float64).eps)


PARALLEL_MIN = 128
"""Units from which the decompositions run on two threads (LAPACK releases the GIL)."""


def gate_spectra(gates: tuple[GateWeights, ...]) -> tuple[GateSpectra, ...]:
    """Spectra of every W_g and U_g. The decompositions are independent; on large layers
    they run on two threads (``spectra_pool``), which roughly halves the wall time on two
    cores (LAPACK and BLAS release the GIL; the Arnoldi iteration holds it only between
    its numpy calls)."""
    if gates and gates[0].U.shape[0] >= PARALLEL_MIN:
        with spectra_pool() as pool:
            return spectra_jobs(gates, pool)()
    return spectra_jobs(gates, None)()


def _ready(value: T) -> Callable[[], T]:
    return lambda: value


@contextmanager
def spectra_pool() -> Iterator[ThreadPoolExecutor]:
    """Two threads for the decompositions, one BLAS thread each: two single-threaded LAPACK
    calls side by side beat one multi-threaded call at a time (measured: 3.8 s vs 5.4 s,
    1024 units). BLAS stays single-threaded in the whole process meanwhile, so the caller
    can go on with other work on the two cores while they run."""
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(2) as pool:
        yield pool


def spectra_jobs(
    gates: tuple[GateWeights, ...], pool: ThreadPoolExecutor | None
) -> Callable[[], tuple[GateSpectra, ...]]:
    """Start the spectra of every W_g and U_g on pool (None: compute them now); returns
    what waits for them. Each job makes its own float64 copy where it needs one, so at
    most two are alive at a time. The eigenvalues, the longest jobs, go first, each
    followed by a singular-value job, and the Gram matrices are formed one at a time: a
    Gram job holds twice the memory of an Arnoldi job (the float64 copy, then the Gram
    matrix and LAPACK's copy of it), and two side by side were the peak of the
    2×LSTM(2048) report (403 MiB against 194 MiB of weights)."""
    n = len(gates)
    mats = [g.W for g in gates] + [g.U for g in gates]

    def singular(a: np.ndarray) -> tuple[np.ndarray, str] | None:
        if a.ndim != 2 or not np.isfinite(a).all():
            return None
        if min(a.shape) <= EXACT_MAX:
            return _singular(a, EXACT_MAX)
        with _GRAM:
            return _singular(a, EXACT_MAX)  # float64 where it decomposes, not before

    def eigen(a: np.ndarray) -> tuple[np.ndarray, str] | None:
        x = _finite(a)
        return None if x is None else _eigen(x, EXACT_MAX)

    get_ev: list[Callable[[], tuple[np.ndarray, str] | None]]
    get_sv: list[Callable[[], tuple[np.ndarray, str] | None]]
    if pool is not None:
        eigs, svs = [], []
        for k in range(n):  # E(U_0), S(U_0), E(U_1), S(U_1), ..., then S(W_g)
            eigs.append(pool.submit(eigen, mats[n + k]))
            svs.append(pool.submit(singular, mats[n + k]))
        svs = [pool.submit(singular, a) for a in mats[:n]] + svs
        get_ev = [f.result for f in eigs]
        get_sv = [f.result for f in svs]
    else:
        sv_now = [singular(a) for a in mats]
        ev_now = [eigen(a) for a in mats[n:]]
        get_sv = [_ready(r) for r in sv_now]
        get_ev = [_ready(r) for r in ev_now]

    def collect() -> tuple[GateSpectra, ...]:
        ev = [f() for f in get_ev]
        sv = [f() for f in get_sv]
        done = [
            None if s is None else _assemble(a.shape, s, ev[k - n] if k >= n else None)
            for k, (a, s) in enumerate(zip(mats, sv))
        ]
        return tuple(
            GateSpectra(gate=g.gate, W=done[k], U=done[n + k]) for k, g in enumerate(gates)
        )

    return collect


def spectral_radius(u: np.ndarray, exact_max: int = EXACT_MAX) -> float | None:
    """ρ(u) of a square matrix: exact up to EXACT_MAX units, else the largest eigenvalue
    magnitude found by the Arnoldi iteration (as in ``spectrum``). None with non-finite
    entries, and for a matrix that is not square (U_g of an LSTM with a projection, which
    ``spectrum`` gives no eigenvalues either)."""
    x = np.asarray(u, np.float64)
    if x.ndim != 2 or x.shape[0] != x.shape[1] or not np.isfinite(x).all():
        return None
    if not x.size:
        return 0.0
    ev = leading_eigenvalues(x, 2) if x.shape[0] > exact_max else None  # 2: a pair whole
    if ev is None or not ev.size:
        ev = np.linalg.eigvals(x)
    return float(np.max(np.abs(ev)))
