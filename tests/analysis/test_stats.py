"""Every statistic against an independent numpy computation."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_report.analysis.stats import feature_importance, matrix_stats
from lstm_report.cells.lstm import split_keras_lstm


def test_matrix_stats_match_numpy() -> None:
    a = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    st = matrix_stats(a)
    x = a.astype(np.float64)
    assert st.shape == (7, 5)
    assert st.fro == pytest.approx(np.linalg.norm(x, "fro"), rel=1e-12)
    assert st.spectral == pytest.approx(np.linalg.norm(x, 2), rel=1e-12)
    assert st.l1 == pytest.approx(np.abs(x).sum(), rel=1e-12)
    assert st.max_abs == pytest.approx(np.abs(x).max())
    assert st.mean == pytest.approx(x.mean(), rel=1e-12)
    assert st.std == pytest.approx(x.std(), rel=1e-12)
    assert st.nonfinite == 0


def test_hand_computed_values() -> None:
    st = matrix_stats(np.array([[3.0, 0.0], [0.0, -4.0]]))
    assert (st.fro, st.spectral, st.l1, st.max_abs, st.mean) == (5.0, 4.0, 7.0, 4.0, -0.25)


def test_vector_has_no_spectral_norm() -> None:
    st = matrix_stats(np.array([1.0, -2.0, 2.0]))
    assert st.spectral is None and not st.is_matrix
    assert st.fro == 3.0


def test_nonfinite_weights_are_counted_not_crashed_on() -> None:
    a = np.ones((3, 3))
    a[0, 0] = np.nan
    a[2, 1] = np.inf
    st = matrix_stats(a)
    assert st.nonfinite == 2
    assert st.fro is None and st.spectral is None and st.mean is None and st.max_abs is None


def test_feature_importance_by_hand() -> None:
    u = 2
    kernel = np.zeros((3, 4 * u))
    kernel[0, :] = 1.0  # norm sqrt(8)
    kernel[1, 2:4] = [3.0, 4.0]  # only the forget gate: norm 5
    kernel[2, 7] = -0.5
    gates = split_keras_lstm(
        kernel, np.zeros((u, 4 * u)), None, where="LSTM", unit_forget_bias=True
    )
    feats = feature_importance(kernel, gates, ["a", "b", "c"])
    assert [f.name for f in feats] == ["a", "b", "c"]  # input order
    assert feats[0].value == pytest.approx(np.sqrt(8))
    assert feats[1].value == pytest.approx(5.0)
    assert feats[1].per_gate == pytest.approx((0.0, 5.0, 0.0, 0.0))
    assert feats[0].per_gate == pytest.approx((np.sqrt(2),) * 4)
    assert feats[2].per_gate == pytest.approx((0.0, 0.0, 0.0, 0.5))
    assert [f.rank for f in feats] == [2, 1, 3]


def test_feature_importance_with_nonfinite_row() -> None:
    kernel = np.ones((2, 4))
    kernel[1, 0] = np.nan
    feats = feature_importance(
        kernel,
        split_keras_lstm(kernel, np.ones((1, 4)), None, where="LSTM", unit_forget_bias=True),
        ["a", "b"],
    )
    assert feats[1].value is None and feats[1].rank == 2
    assert feats[1].per_gate[0] is None and feats[1].per_gate[1] == pytest.approx(1.0)


def test_huge_finite_weights_give_finite_norms() -> None:
    # ±1e200 squares to inf; the norms themselves are ordinary floats (by hand: 1e200·√n).
    from lstm_report.analysis.compare import delta
    from lstm_report.analysis.spectra import spectrum

    a = np.full((4, 8), 1e200)
    a[::2, ::3] = -1e200
    st = matrix_stats(a)
    assert st.fro == pytest.approx(1e200 * np.sqrt(32), rel=1e-12)
    assert st.l1 == pytest.approx(32e200, rel=1e-12)
    n_neg = int((a < 0).sum())
    assert st.mean == pytest.approx((32 - 2 * n_neg) / 32 * 1e200, rel=1e-12)
    assert st.std == pytest.approx(np.std(a / 1e200) * 1e200, rel=1e-12)
    sp = spectrum(a, eigen=False)
    assert sp is not None and sp.stable_rank == pytest.approx(
        np.sum(np.linalg.svd(a / 1e200, compute_uv=False) ** 2)
        / np.linalg.svd(a / 1e200, compute_uv=False)[0] ** 2
    )
    kernel = np.full((2, 8), 1e200)
    feats = feature_importance(
        kernel,
        split_keras_lstm(kernel, np.ones((2, 8)), None, where="LSTM", unit_forget_bias=True),
        ["a", "b"],
    )
    assert feats[0].value == pytest.approx(1e200 * np.sqrt(8), rel=1e-12)
    assert feats[0].per_gate[0] == pytest.approx(1e200 * np.sqrt(2), rel=1e-12)
    d = delta(a, -a)
    assert d.delta_fro == pytest.approx(2e200 * np.sqrt(32), rel=1e-12)
    assert d.relative == pytest.approx(2.0) and d.cosine == pytest.approx(-1.0)


def test_max_abs_without_a_copy_equals_numpy() -> None:
    from lstm_report.analysis.norms import max_abs

    rng = np.random.default_rng(5)
    cases = [
        rng.normal(size=(64, 32)).astype(np.float32),
        -np.abs(rng.normal(size=50)),
        np.array([-0.0, -0.0]),
        np.array([0.0, -3.0, 3.0]),
        np.array([1.0, np.nan]),
        np.array([-np.inf, 1.0]),
        np.array([np.inf, -1.0]),
        np.array([-7, 2], dtype=np.int8),
        np.array([1e308, -1.7e308]),
    ]
    for a in cases:
        want = float(np.max(np.abs(a.astype(np.float64))))
        got = max_abs(a)
        assert got == want or (np.isnan(got) and np.isnan(want))
        assert np.signbit(got) == np.signbit(want)


def test_stats_of_a_strided_gate_block_larger_than_a_block_match_numpy() -> None:
    # matrix_stats sums a block of rows at a time (BLOCK entries): a gate's view of a Keras
    # matrix of 700 × 4·500 float32 weights is 350,000 entries, two blocks and a part.
    from lstm_report.analysis.norms import BLOCK

    rng = np.random.default_rng(3)
    kernel = (rng.normal(0.2, 0.7, (700, 2000)) ** 3).astype(np.float32)
    view = kernel[:, 500:1000]
    assert view.size > BLOCK and not view.flags["C_CONTIGUOUS"]
    x = view.astype(np.float64)
    s = matrix_stats(view, top_singular=1.0)
    assert s.fro == pytest.approx(np.linalg.norm(x), rel=1e-13)
    assert s.l1 == pytest.approx(np.abs(x).sum(), rel=1e-13)
    assert s.mean == pytest.approx(x.mean(), rel=1e-12)
    assert s.std == pytest.approx(x.std(), rel=1e-12)
    assert s.max_abs == float(np.max(np.abs(x)))
