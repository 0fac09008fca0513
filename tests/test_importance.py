"""Input importance on the probe, against hand computations and a real Keras model."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_report.analysis.importance import bootstrap_interval, occlusion_importance


def test_occlusion_of_a_linear_model_by_hand() -> None:
    # y = 3·x0 summed over steps: occluding x0 changes y by 3·Σ_t (x0_t − mean)²-ish;
    # x1 is unused, so its importance is exactly zero.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5, 2)).astype(np.float32)

    def forward(v: np.ndarray) -> np.ndarray:
        return 3.0 * np.asarray(v, np.float64)[:, :, 0].sum(axis=1, keepdims=True)

    imp = occlusion_importance(forward, x, ["a", "b"], target="model_output")
    mean0 = x[:, :, 0].astype(np.float64).mean()
    expected = np.mean((3.0 * (x[:, :, 0] - mean0).sum(axis=1)) ** 2)
    a, b = imp.features
    assert (a.name, b.name) == ("a", "b")
    assert a.value == pytest.approx(expected, rel=1e-5)
    assert b.value == 0.0 and b.low == 0.0 and b.high == 0.0
    assert a.low <= a.value <= a.high
    # per step: occluding step t changes y by 3·(x0_t − mean0)
    by_step = [np.mean((3.0 * (x[:, t, 0] - mean0)) ** 2) for t in range(5)]
    assert imp.per_step == pytest.approx(by_step, rel=1e-5)
    assert imp.sequences == 40 and imp.method == "occlusion"


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(1)
    small = rng.exponential(size=20)
    large = rng.exponential(size=2000)
    lo_s, hi_s = bootstrap_interval(small, np.random.default_rng(0))
    lo_l, hi_l = bootstrap_interval(large, np.random.default_rng(0))
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 3  # ~1/√100 as wide
