"""Spectra that scale (issue 13): exact up to EXACT_MAX units, what is shown above it,
checked against numpy's exact answers; and the findings' unit Gram matrix against the
concatenated unit vectors it replaces."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from lstm_report.analysis.findings import (
    dead_units,
    duplicate_pairs,
    unit_gram,
    unit_vectors,
)
from lstm_report.analysis.layer import analyse_layer
from lstm_report.analysis.spectra import (
    ARNOLDI_TOL,
    EXACT_MAX,
    LEADING_EIGENVALUES,
    gate_spectra,
    spectral_radius,
    spectrum,
)
from lstm_report.model.layers import RecurrentLayer
from lstm_report.output.layer_json import spectrum_json
from tests.helpers import REPO

SMALL = 48
"""exact_max for the tests of the large-matrix path: matrices of 100-200 keep them quick."""


def exact_top(a: np.ndarray, k: int) -> np.ndarray:
    ev = np.linalg.eigvals(a)
    return ev[np.argsort(-np.abs(ev), kind="stable")][:k]


def known_spectrum(n: int, outside: list[complex], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """U = Q diag(d) Q⁻¹ (real): d a disc of radius 0.6 plus the given eigenvalues outside
    the unit circle (complex ones with their conjugates); Q random, so U is not normal."""
    rng = np.random.default_rng(seed)
    extra: list[complex] = []
    for z in outside:
        extra += [z, z.conjugate()] if z.imag else [z]
    m = n - len(extra)
    pairs = m // 2
    r = 0.6 * np.sqrt(rng.uniform(size=pairs))
    t = rng.uniform(0, np.pi, size=pairs)
    inside = r * np.exp(1j * t)
    reals = rng.uniform(-0.6, 0.6, size=m - 2 * pairs)
    # A real block-diagonal matrix with those eigenvalues, then a random similarity.
    d = np.zeros((n, n))
    k = 0
    for z in list(inside) + [z for z in outside if z.imag]:
        d[k : k + 2, k : k + 2] = [[z.real, z.imag], [-z.imag, z.real]]
        k += 2
    for x in list(reals) + [z.real for z in outside if not z.imag]:
        d[k, k] = x
        k += 1
    assert k == n
    q = rng.normal(size=(n, n)) + 3 * np.eye(n)
    u = q @ d @ np.linalg.inv(q)
    every = np.concatenate([inside, inside.conj(), reals, np.array(extra)])
    return u, every


def test_small_matrices_are_exact_and_unchanged() -> None:
    rng = np.random.default_rng(0)
    for n in (5, EXACT_MAX):
        a = rng.normal(size=(n, n)) / np.sqrt(n)
        sp = spectrum(a, eigen=True)
        assert sp is not None
        assert sp.singular_values == tuple(np.linalg.svd(a, compute_uv=False))
        ev = np.linalg.eigvals(a)
        assert sp.eigenvalues == tuple(complex(z) for z in ev[np.lexsort((ev.imag, ev.real))])
        assert sp.spectral_radius == float(np.max(np.abs(ev)))
        assert (sp.singular_method, sp.eigen_method, sp.eigen_total) == ("svd", "dense", n)
        assert sp.eigen_tolerance is None
        assert spectrum_json(sp, recurrent=True)["computed"] == {
            "singular_values": {"method": "svd", "count": n, "of": n},
            "eigenvalues": {
                "method": "dense",
                "which": "all",
                "count": n,
                "of": n,
                "tolerance": None,
            },
        }
        assert sp.what == f"all {n} singular values (SVD); all {n} eigenvalues"
    w = RecurrentLayer.from_keras_arrays(
        "l", "forward", rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), None
    )
    w.recurrent_kernel[0, 2] = np.nan  # U_f
    assert analyse_layer(w, None, "a").spectra_computed == (
        "U_i: all 2 singular values (SVD); all 2 eigenvalues",
        "U_f: nothing (non-finite weights)",
        "U_c: all 2 singular values (SVD); all 2 eigenvalues",
        "U_o: all 2 singular values (SVD); all 2 eigenvalues",
        "W_g: all 2 singular values (SVD)",
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_large_random_matrix_against_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 160
    a = rng.normal(size=(n, n)) / np.sqrt(n)
    sp = spectrum(a, eigen=True, exact_max=SMALL)
    assert sp is not None and sp.eigenvalues is not None and sp.spectral_radius is not None
    assert (sp.singular_method, sp.eigen_method, sp.eigen_total) == ("gram", "arnoldi", n)
    exact_sv = np.linalg.svd(a, compute_uv=False)
    sv = np.asarray(sp.singular_values)
    assert sv.size == n and np.all(np.diff(sv) <= 0)
    np.testing.assert_allclose(sv[:20], exact_sv[:20], rtol=1e-12)
    np.testing.assert_allclose(sv, exact_sv, rtol=0, atol=1e-7 * exact_sv[0])
    assert sp.stable_rank == pytest.approx(np.sum(exact_sv**2) / exact_sv[0] ** 2, rel=1e-12)
    # the largest by magnitude, all of them, conjugate pairs whole
    ev = np.asarray(sp.eigenvalues)
    assert len(ev) in (LEADING_EIGENVALUES - 1, LEADING_EIGENVALUES)
    top = exact_top(a, len(ev))
    canon = top[np.lexsort((top.imag, top.real))]
    np.testing.assert_allclose(ev, canon, rtol=0, atol=1e-8)
    for z in ev:
        assert np.min(np.abs(ev - np.conj(z))) == 0.0
    rho = np.max(np.abs(np.linalg.eigvals(a)))
    assert sp.spectral_radius == pytest.approx(rho, rel=1e-10)
    assert sp.eigen_tolerance == ARNOLDI_TOL


@pytest.mark.parametrize(
    ("outside", "rho"),
    [([1.3], 1.3), ([1.1 * np.exp(0.7j)], 1.1), ([1.05, 0.8 + 0.9j, -1.2], abs(0.8 + 0.9j))]
    + [([], None)],
)
def test_known_spectrum_is_found(outside: list[complex], rho: float | None) -> None:
    u, every = known_spectrum(200, outside, seed=len(outside))
    sp = spectrum(u, eigen=True, exact_max=SMALL)
    assert sp is not None and sp.eigenvalues is not None and sp.eigen_method == "arnoldi"
    exact = np.max(np.abs(every)) if rho is None else rho
    assert sp.spectral_radius == pytest.approx(exact, rel=1e-9)
    ev = np.asarray(sp.eigenvalues)
    for z in outside:  # every eigenvalue outside the unit circle is there, pairs whole
        for w in {z, z.conjugate()}:
            assert np.min(np.abs(ev - w)) < 1e-8
    np.testing.assert_allclose(
        np.sort(np.abs(ev))[::-1], np.sort(np.abs(every))[::-1][: len(ev)], atol=1e-8
    )


def test_keras_like_orthogonal_block_and_degenerate_matrices() -> None:
    rng = np.random.default_rng(4)
    n = 150
    q, _ = np.linalg.qr(rng.normal(size=(4 * n, n)))
    block = np.ascontiguousarray(q[:n].T) * 2.0  # rows of an orthogonal (n, 4n), like Keras
    for a in (
        block,
        np.zeros((n, n)),  # invariant Krylov spaces: restarted from new directions
        np.eye(n),
        np.diag(np.arange(n, dtype=np.float64)),
        np.outer(rng.normal(size=n), rng.normal(size=n)),  # rank one
    ):
        sp = spectrum(a, eigen=True, exact_max=SMALL)
        assert sp is not None and sp.spectral_radius is not None
        rho = np.max(np.abs(np.linalg.eigvals(a)))
        assert sp.spectral_radius == pytest.approx(rho, rel=1e-9, abs=1e-12)
        exact_sv = np.linalg.svd(a, compute_uv=False)
        assert sp.singular_values[0] == pytest.approx(exact_sv[0], rel=1e-12, abs=1e-300)
        np.testing.assert_allclose(sp.singular_values, exact_sv, rtol=0, atol=1e-7 * exact_sv[0])


def test_rectangular_and_huge_weights() -> None:
    rng = np.random.default_rng(6)
    a = rng.normal(size=(70, 130))
    for b in (a, a.T, a * 1e200):
        sp = spectrum(b, eigen=True, exact_max=SMALL)  # not square: no eigenvalues
        assert sp is not None and sp.eigenvalues is None and sp.eigen_method is None
        assert len(sp.singular_values) == 70 and sp.singular_method == "gram"
        exact = np.linalg.svd(b, compute_uv=False)
        np.testing.assert_allclose(sp.singular_values[:10], exact[:10], rtol=1e-12)
        assert "eigenvalues" not in spectrum_json(sp, recurrent=True)["computed"]
    u, _ = known_spectrum(120, [1.5], seed=9)
    sp = spectrum(u * 1e200, eigen=True, exact_max=SMALL)
    assert sp is not None and sp.spectral_radius == pytest.approx(1.5e200, rel=1e-9)
    assert np.isfinite(sp.singular_values).all() and sp.stable_rank is not None


def test_reruns_are_identical() -> None:
    u, _ = known_spectrum(180, [1.2, 1.1j], seed=3)
    a = spectrum(u, eigen=True, exact_max=SMALL)
    b = spectrum(u.copy(), eigen=True, exact_max=SMALL)
    assert a == b


def test_large_layer_states_what_was_computed() -> None:
    rng = np.random.default_rng(7)
    units = EXACT_MAX + 44
    w = RecurrentLayer.from_keras_arrays(
        "big",
        "forward",
        rng.normal(0, 0.05, (12, 4 * units)).astype(np.float32),
        rng.normal(0, 1 / np.sqrt(units), (units, 4 * units)).astype(np.float32),
        rng.normal(0, 0.1, 4 * units).astype(np.float32),
        reads_input=True,
    )
    gates = w.cell.gates
    first = gate_spectra(gates)
    assert gate_spectra(gates) == first  # threads, but the same answer every time
    for sp, g in zip(first, gates):
        assert sp.U is not None and sp.W is not None
        u = np.asarray(g.U, np.float64)
        assert sp.U.spectral_radius == pytest.approx(
            np.max(np.abs(np.linalg.eigvals(u))), rel=1e-10
        )
        assert sp.U.singular_values[0] == pytest.approx(np.linalg.norm(u, 2), rel=1e-12)
        assert sp.W.singular_method == "svd" and sp.W.eigen_method is None
        c: Any = spectrum_json(sp.U, recurrent=True)["computed"]
        assert c["singular_values"] == {"method": "gram", "count": units, "of": units}
        assert c["eigenvalues"]["method"] == "arnoldi"
        assert c["eigenvalues"]["which"] == "largest_magnitude"
        assert c["eigenvalues"]["count"] == len(sp.U.eigenvalues or ())
        assert c["eigenvalues"]["of"] == units and c["eigenvalues"]["tolerance"] == ARNOLDI_TOL
        assert spectral_radius(g.U) == pytest.approx(sp.U.spectral_radius, rel=1e-10)
    la = analyse_layer(w, None, "a")
    lines = la.spectra_computed
    assert len(lines) == 2
    assert lines[0].startswith(
        f"U_g: all {units} singular values (from the Gram matrix); the largest"
    )
    assert f"of {units} eigenvalues by magnitude (Arnoldi, relative residual ≤ 1e-6;" in lines[0]
    assert lines[1] == "W_g: all 12 singular values (SVD)"
    assert la.gates[0].U.spectral == first[0].U.singular_values[0]


def test_spectral_radius_small_is_exact() -> None:
    rng = np.random.default_rng(8)
    u = rng.normal(size=(30, 30))
    assert spectral_radius(u) == float(np.max(np.abs(np.linalg.eigvals(u))))
    assert spectral_radius(np.array([[np.inf]])) is None
    assert spectral_radius(np.zeros((0, 0))) == 0.0
    for outside in ([1.1 * np.exp(0.7j)], [1.3], []):  # the top is a pair, a real one, inside
        u, every = known_spectrum(150, outside, seed=5)
        assert spectral_radius(u, exact_max=SMALL) == pytest.approx(np.max(np.abs(every)), rel=1e-9)
    assert spectral_radius(np.zeros((150, 150)), exact_max=SMALL) == 0.0


def _layer(units: int, rng: np.random.Generator, scale: float = 1.0) -> RecurrentLayer:
    k = rng.normal(size=(6, 4 * units)) * scale
    rk = rng.normal(size=(units, 4 * units)) * scale
    b = rng.normal(size=4 * units) * scale
    for j in range(4):  # unit 5 = 2 × unit 3; unit 9 is dead; unit 11 nearly copies 0
        sl = slice(j * units, (j + 1) * units)
        for arr in (k[:, sl], rk[:, sl]):
            arr[:, 5] = 2 * arr[:, 3]
            arr[:, 9] = 0
            arr[:, 11] = arr[:, 0] + 1e-3 * scale
        b[sl][5], b[sl][9], b[sl][11] = 2 * b[sl][3], 0, b[sl][0]
    return RecurrentLayer.from_keras_arrays("l", "forward", k, rk, b)


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e150])
def test_unit_gram_matches_concatenated_vectors(scale: float) -> None:
    gates = _layer(20, np.random.default_rng(10), scale).cell.gates
    vectors, gram = unit_vectors(gates), unit_gram(gates)
    assert np.array_equal(dead_units(gram, 1e-3 * scale), dead_units(vectors, 1e-3 * scale))
    assert list(dead_units(gram, 1e-3 * scale)) == [9]
    for threshold in (0.99, 0.999999):
        want, got = duplicate_pairs(vectors, threshold), duplicate_pairs(gram, threshold)
        assert [(a, b) for a, b, _ in got] == [(a, b) for a, b, _ in want]
        assert [c for *_, c in got] == pytest.approx([c for *_, c in want], rel=1e-12)
    assert (3, 5) in [(a, b) for a, b, _ in duplicate_pairs(gram, 0.99)]
    assert (0, 11) in [(a, b) for a, b, _ in duplicate_pairs(gram, 0.99)]
    assert (0, 11) not in [(a, b) for a, b, _ in duplicate_pairs(gram, 1 - 1e-12)]


def test_a_pickled_layer_carries_each_weight_once() -> None:
    # A layer sent to another process must not carry the cached cell's views as copies too.
    import pickle

    w = _layer(64, np.random.default_rng(11))
    assert w.cell.units == 64  # the cell is cached now
    sent = pickle.dumps(w, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(sent) < 1.1 * (w.kernel.nbytes + w.recurrent_kernel.nbytes + w.bias.nbytes)
    back = pickle.loads(sent)
    for a, b in zip(w.cell.gates, back.cell.gates):
        assert np.array_equal(a.W, b.W) and np.array_equal(a.U, b.U)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_cli_fixes_the_mmap_threshold() -> None:
    # What it saves is measured by benchmarks/bench_report.py (peak memory); here, that
    # glibc takes the setting, in a process of its own (it is process-wide).
    code = "from lstm_report.malloc import map_large_blocks; print(map_large_blocks())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    assert out.strip() == "True"


@pytest.mark.parametrize("recheck_max", [4096, 0])
def test_duplicate_pairs_recheck_near_the_threshold_in_float64(
    recheck_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Gram matrix is float32; pairs whose cosines differ from the threshold by less than
    # float32 can tell must still come out as the float64 cosines decide.
    import lstm_report.analysis.findings as findings

    monkeypatch.setattr(findings, "RECHECK_MAX", recheck_max)
    rng = np.random.default_rng(3)
    layer = _layer(16, rng)
    gates = layer.cell.gates
    vectors = unit_vectors(gates)
    # Units 1, 2: copies of unit 0 nudged so that their cosines with it are 1 − ~3e-10 and
    # 1 − ~3e-9, both 1 in float32.
    for unit, eps in ((1, 2.5e-5), (2, 8e-5)):
        for arr in (layer.kernel, layer.recurrent_kernel):
            for j in range(4):
                arr[:, j * 16 + unit] = arr[:, j * 16] + eps * rng.normal(size=arr.shape[0])
        for j in range(4):
            layer.bias[j * 16 + unit] = layer.bias[j * 16]
    gates = layer.cell.gates
    vectors, gram = unit_vectors(gates), unit_gram(gates)
    assert gram.gram.dtype == np.float32
    cos = duplicate_pairs(vectors, 0.0)
    c01 = next(c for a, b, c in cos if (a, b) == (0, 1))
    c02 = next(c for a, b, c in cos if (a, b) == (0, 2))
    assert c02 < c01 < 1 and np.float32(c01) == np.float32(c02) == 1
    threshold = (c01 + c02) / 2
    want, got = duplicate_pairs(vectors, threshold), duplicate_pairs(gram, threshold)
    assert [(a, b) for a, b, _ in got] == [(a, b) for a, b, _ in want]
    assert (0, 1) in [(a, b) for a, b, _ in got] and (0, 2) not in [(a, b) for a, b, _ in got]
    assert [c for *_, c in got] == pytest.approx([c for *_, c in want], rel=1e-12)


def _leading_by_numpy(a: np.ndarray, k: int) -> np.ndarray:
    ev = np.linalg.eigvals(a)
    return np.sort(np.abs(ev))[::-1][:k]


def test_clustered_magnitudes_against_numpy() -> None:
    # Issue 27: eigenvalues packed near the edge (a 1 + 1e-3·j ladder of complex pairs and
    # reals), as trained recurrent matrices have them: the leading magnitudes agree with
    # numpy's exact ones to the stated residual, or all of them were computed exactly.
    rng = np.random.default_rng(11)
    n = 120
    d = np.zeros((n, n))
    for j in range(0, 60, 2):
        r, t = 1.0 + 1e-3 * j, 0.1 + 0.05 * j
        d[j : j + 2, j : j + 2] = [[r * np.cos(t), r * np.sin(t)], [-r * np.sin(t), r * np.cos(t)]]
    d[60:, 60:] = np.diag(rng.uniform(-0.9, 0.9, n - 60))
    q = rng.normal(size=(n, n)) + 4 * np.eye(n)
    u = q @ d @ np.linalg.inv(q)
    sp = spectrum(u, eigen=True, exact_max=SMALL)
    assert sp is not None and sp.eigenvalues is not None
    got = np.sort(np.abs(np.asarray(sp.eigenvalues)))[::-1]
    np.testing.assert_allclose(got, _leading_by_numpy(u, got.size), rtol=1e-8)
    assert sp.spectral_radius == pytest.approx(1.058, rel=1e-9)


def test_near_defective_matrix_is_exact_or_within_its_backward_error() -> None:
    # A 6×6 Jordan block at 1.2 perturbed by 1e-12 (eigenvalues spread by ~1e-2 around
    # 1.2: ill-conditioned, the hard case for any iteration) inside a random contraction.
    n = 100
    rng = np.random.default_rng(5)
    a = np.diag(rng.uniform(-0.5, 0.5, n))
    a[:6, :6] = 1.2 * np.eye(6) + np.diag(np.ones(5), 1)
    a[5, 0] = 1e-12
    q = np.linalg.qr(rng.normal(size=(n, n)))[0]
    u = q @ a @ q.T
    sp = spectrum(u, eigen=True, exact_max=SMALL)
    assert sp is not None and sp.eigenvalues is not None
    exact = np.linalg.eigvals(u)
    if sp.eigen_method == "dense":
        np.testing.assert_allclose(np.sort(np.abs(sp.eigenvalues)), np.sort(np.abs(exact)))
    else:
        # Within the backward error: each θ is an eigenvalue of U + E, ‖E‖ ≤ 1e-6·|θ|,
        # which moves a 6-fold defective eigenvalue by up to (1.2e-6)^(1/6) ≈ 0.103.
        for z in sp.eigenvalues:
            assert np.min(np.abs(exact - z)) <= 0.11
    assert sp.spectral_radius == pytest.approx(1.2, abs=0.11)


def test_an_iteration_that_does_not_converge_falls_back_to_all_eigenvalues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lstm_report.analysis.spectra as spectra_module

    u, _ = known_spectrum(150, [1.3, 1.1j], seed=2)
    monkeypatch.setattr(spectra_module, "MAX_RESTARTS", 0)  # no iteration converges
    sp = spectrum(u, eigen=True, exact_max=SMALL)
    assert sp is not None and sp.eigen_method == "dense" and sp.eigen_total == 150
    assert sp.eigenvalues is not None and len(sp.eigenvalues) == 150
    np.testing.assert_allclose(
        np.sort(np.abs(sp.eigenvalues)), np.sort(np.abs(np.linalg.eigvals(u))), rtol=1e-12
    )
    assert "all 150 eigenvalues" in sp.what
