"""Block Krylov against the report's spectra methods, on Keras-like matrices (issue 27).

    PYTHONPATH=. python benchmarks/bench_block_krylov.py [--units 1024]

For U_g (a gate's block of an orthogonal-initialised recurrent kernel) and W_g (glorot
uniform), single-threaded CPU seconds of: the report's thick-restart Arnoldi (the 65 largest
eigenvalues, residuals ≤ 1e-10·|θ|), the same with a block of b vectors per step (BLAS-3:
U read once per block), all singular values from the Gram matrix (the report's), and the 64
largest singular values by randomized block Krylov (Musco & Musco) with Rayleigh–Ritz,
grown until every residual ‖A·v − σ·u‖ ≤ tol·σ₁ or half the side. The block versions are
kept here, as the measurement behind docs/speed.md, not in the report: they cost more.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from lstm_report.analysis import spectra

TOL = spectra.ARNOLDI_TOL


def _orth_block(
    w: np.ndarray, basis: np.ndarray, rng: np.random.Generator, norm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """w = basis·c + q·r with q orthonormal and orthogonal to basis (CGS2, then QR);
    columns that vanish (an invariant subspace) restart in new random directions."""
    c = basis.T @ w
    w = w - basis @ c
    c2 = basis.T @ w
    w -= basis @ c2
    c += c2
    q, r = np.linalg.qr(w)
    bad = np.abs(np.diag(r)) <= 1e-12 * max(norm, float(np.abs(r).max(initial=0.0)))
    if bad.any():
        r[bad, :] = 0.0
        z = rng.uniform(-1.0, 1.0, (q.shape[0], int(bad.sum())))
        full = np.concatenate([basis, q[:, ~bad]], axis=1)
        for _ in range(2):
            z -= full @ (full.T @ z)
        q[:, bad] = np.linalg.qr(z)[0]
    return q, c, r


def block_krylov_schur(a: np.ndarray, k: int, block: int, extra: int) -> int | None:
    """Restarts until the k largest eigenvalues converge (None: not within 300)."""
    n, b = a.shape[0], block
    m = min(n - b, 2 * k + extra)
    v = np.zeros((n, m + 2 * b))
    h = np.zeros((m + 2 * b, m + b))
    rng = np.random.default_rng(0)
    v[:, :b] = np.linalg.qr(rng.uniform(-1.0, 1.0, (n, b)))[0]
    norm, first = 0.0, 0
    for restart in range(300):
        j = first
        while j < m:
            q, c, r = _orth_block(a @ v[:, j : j + b], v[:, : j + b], rng, norm)
            h[: j + b, j : j + b] += c
            h[j + b : j + 2 * b, j : j + b] = r
            v[:, j + b : j + 2 * b] = q
            norm = max(norm, float(np.abs(c).max()), float(np.abs(r).max()))
            j += b
        theta, y = np.linalg.eig(h[:j, :j])
        order = np.lexsort((-theta.imag, -theta.real, -np.abs(theta)))
        theta, y = theta[order], y[:, order]
        want = k + 1 if theta[k - 1].imag > 0 else k
        est = np.linalg.norm(h[j : j + b, :j] @ y[:, :want], axis=0)
        if np.all(est <= TOL / 2 * np.abs(theta[:want])):
            return restart
        p = k + (j - k) // 2
        p += 1 if theta[p - 1].imag > 0 else 0
        cols: list[np.ndarray] = []
        for t, z in zip(theta[:p], y[:, :p].T):
            cols += [z.real, z.imag] if t.imag > 0 else [z.real] if t.imag == 0 else []
        qq = np.linalg.qr(np.stack(cols, axis=1))[0]
        p = qq.shape[1]
        coupling = h[j : j + b, :j] @ qq
        v[:, :p] = v[:, :j] @ qq
        v[:, p : p + b] = v[:, j : j + b]
        hp = qq.T @ h[:j, :j] @ qq
        h[:] = 0.0
        h[:p, :p], h[p : p + b, :p] = hp, coupling
        first = p
    return None


def block_krylov_svd(a: np.ndarray, k: int, block: int, tol: float) -> tuple[int, float]:
    """Columns of the basis used, and the largest relative residual at the end."""
    rng = np.random.default_rng(0)
    last = np.linalg.qr(a @ rng.uniform(-1.0, 1.0, (a.shape[1], block)))[0]
    blocks = [last]
    while True:
        basis = np.concatenate(blocks, axis=1)
        ub, s, vt = np.linalg.svd(basis.T @ a, full_matrices=False)
        res = np.linalg.norm(a @ vt[:k].T - (basis @ ub[:, :k]) * s[:k], axis=0) / s[0]
        if res.max() <= tol or basis.shape[1] + block > min(a.shape) // 2:
            return basis.shape[1], float(res.max())
        w = a @ (a.T @ last)
        for _ in range(2):
            w -= basis @ (basis.T @ w)
        last = np.linalg.qr(w)[0]
        blocks.append(last)


def cpu(fn: Callable[[], object]) -> tuple[float, object]:
    c = time.process_time()
    out = fn()
    return time.process_time() - c, out


def main() -> None:
    from threadpoolctl import threadpool_limits

    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=1024)
    n = ap.parse_args().units
    rng = np.random.default_rng(0)
    u = np.linalg.qr(rng.normal(size=(4 * n, n)))[0].T[:, :n].copy()  # Keras' orthogonal
    lim = np.sqrt(6.0 / (n + 4 * n))
    w = rng.uniform(-lim, lim, (n, n))
    with threadpool_limits(limits=1, user_api="blas"):
        t, ev = cpu(lambda: spectra._thick_restart_arnoldi(u, 65))
        print(f"U_g {n}²: Arnoldi, 65 largest eigenvalues: {t:.2f} s (converged: {ev is not None})")
        for b, extra in ((4, 96), (8, 160), (16, 224)):
            t, r = cpu(lambda: block_krylov_schur(u, 65, b, extra))
            print(f"U_g {n}²: block Arnoldi b = {b}, basis 2k + {extra}: {t:.2f} s ({r} restarts)")
        for name, a in (("U_g", u), ("W_g", w)):
            t, _ = cpu(lambda: spectra.gram_singular_values(a))
            print(f"{name} {n}²: all singular values from the Gram matrix: {t:.2f} s")
            for b in (48, 80):
                t, (cols, res) = cpu(lambda: block_krylov_svd(a, 64, b, 1e-6))
                print(
                    f"{name} {n}²: block Krylov SVD b = {b}, 64 largest: {t:.2f} s, "
                    f"{cols} columns, largest residual {res:.1e}·σ₁ (asked: 1e-6)"
                )


if __name__ == "__main__":
    main()
