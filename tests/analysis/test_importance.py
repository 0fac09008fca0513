"""Input importance on the probe, against hand computations and a real Keras model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report import build_report
from lstm_report.analysis import importance
from lstm_report.analysis.importance import (
    bootstrap_interval,
    occlusion_importance,
    sequences_for_work,
)
from lstm_report.cells.kinds import from_keras, replay
from tests.conftest import write_config


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


def test_occluded_copies_go_through_the_model_together_with_the_same_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A real (numpy) LSTM, nonlinear in its inputs: the batched calls give the values of
    # one call per occluded copy, computed here by hand, in fewer calls.
    rng = np.random.default_rng(3)
    cell = from_keras(
        "LSTM",
        rng.normal(0, 0.5, (3, 16)).astype(np.float32),
        rng.normal(0, 0.3, (4, 16)).astype(np.float32),
        np.zeros(16, np.float32),
        name="l",
    )
    x = rng.normal(size=(10, 6, 3)).astype(np.float32)
    calls: list[int] = []

    def forward(v: np.ndarray) -> np.ndarray:
        calls.append(v.shape[0])
        return replay(cell, v, dtype=np.float64).h[:, -1]

    monkeypatch.setattr(importance, "BATCH", 40)  # 4 copies of 10 sequences per call
    imp = occlusion_importance(forward, x, ["a", "b", "c"], target="lstm_output", layer="l")
    assert calls == [40, 40, 20]  # 1 + 3 features + 6 steps = 10 copies
    base = replay(cell, x, dtype=np.float64).h[:, -1]
    mean = x.mean(axis=(0, 1))
    for j, f in enumerate(imp.features):
        z = x.copy()
        z[:, :, j] = mean[j]
        change = np.mean((replay(cell, z, dtype=np.float64).h[:, -1] - base) ** 2, axis=1)
        assert f.value == pytest.approx(change.mean(), rel=1e-9)
    for t, v in enumerate(imp.per_step):
        z = x.copy()
        z[:, t, :] = mean
        change = np.mean((replay(cell, z, dtype=np.float64).h[:, -1] - base) ** 2, axis=1)
        assert v == pytest.approx(change.mean(), rel=1e-9)


def test_sequences_for_work_caps_large_layers_and_keeps_small_probes_whole() -> None:
    def lstm(units: int, inputs: int) -> Any:
        z = np.zeros((inputs, 4 * units), np.float32)
        return from_keras("LSTM", z, np.zeros((units, 4 * units), np.float32), None, name="l")

    small = [lstm(8, 4)]
    assert sequences_for_work(small, 64, 30, 4) == 64
    assert sequences_for_work(small, 1000, 30, 4) == importance.MAX_SEQUENCES
    big = [lstm(256, 16), lstm(256, 256)]
    per = (1 + 16 + 100) * 100 * (4 * 256 * (16 + 256) + 4 * 256 * 512)
    assert per == pytest.approx(9.4e9, rel=0.01)
    assert sequences_for_work(big, 64, 100, 16) == importance.MIN_SEQUENCES
    assert sequences_for_work(big, 3, 100, 16) == 3  # never more than the probe has
    one = [lstm(64, 16)]
    per = (1 + 16 + 100) * 100 * 4 * 64 * (16 + 64)
    assert 8 < int(importance.WORK // per) < 256
    assert sequences_for_work(one, 1000, 100, 16) == int(importance.WORK // per)


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(1)
    small = rng.exponential(size=20)
    large = rng.exponential(size=2000)
    lo_s, hi_s = bootstrap_interval(small, np.random.default_rng(0))
    lo_l, hi_l = bootstrap_interval(large, np.random.default_rng(0))
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 3  # ~1/√100 as wide


def _occlusion_by_keras(model: Any, layer: str, x: np.ndarray) -> list[float]:
    """The same measure, computed by Keras itself on the layer's real output."""
    import keras

    sub = keras.Model(model.inputs, model.get_layer(layer).output)
    base = sub.predict(x, verbose=0).astype(np.float64)
    mean = x.mean(axis=(0, 1))
    out = []
    for j in range(x.shape[2]):
        xo = x.copy()
        xo[:, :, j] = mean[j]
        d = sub.predict(xo, verbose=0).astype(np.float64) - base
        out.append(float(np.mean(np.mean(d.reshape(len(x), -1) ** 2, axis=1))))
    return out


def test_importance_in_the_report_equals_keras(keras: Any, tmp_path: Path) -> None:
    # Two stacked LSTMs, the second bidirectional, and a head: the numpy replay of the whole
    # model gives the same importance as Keras computing the model's output.
    m = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.LSTM(5, return_sequences=True, name="first"),
            keras.layers.Bidirectional(keras.layers.LSTM(4), name="last"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    rng = np.random.default_rng(2)
    m.set_weights([rng.normal(0, 0.6, w.shape).astype(w.dtype) for w in m.get_weights()])
    m.save(tmp_path / "m.keras")
    x = rng.normal(size=(20, 6, 3)).astype(np.float32)
    np.save(tmp_path / "p.npy", x)
    cfg = write_config(
        tmp_path, "models:\n  - {path: m.keras, probe: p.npy, feature_names: [a, b, c]}\n"
    )
    res = build_report(cfg, output=tmp_path / "r.html", json_path=tmp_path / "r.json")
    imp = json.loads((tmp_path / "r.json").read_text())["models"][0]["input_importance"]
    assert (imp["method"], imp["target"], imp["layer"], imp["sequences"]) == (
        "occlusion",
        "model_output",
        None,
        20,
    )
    assert imp["target_reason"] is None
    assert [f["name"] for f in imp["features"]] == ["a", "b", "c"]
    expected = _occlusion_by_keras(m, "head", x)
    assert [f["value"] for f in imp["features"]] == pytest.approx(expected, rel=1e-3, abs=1e-7)
    assert all(f["low"] <= f["value"] <= f["high"] for f in imp["features"])
    html = res.html_path.read_text()
    assert "importance on the probe" in html and "weight norms" in html


def test_weight_norms_can_mislead_where_importance_does_not(tmp_path: Path) -> None:
    # Feature 1 has the largest input weights, but only into units whose output gate is
    # shut (b_o = -30): it cannot change the output. Feature 0 has small weights into an
    # open unit. Weight norms rank feature 1 first; the importance measured on data does not.
    from lstm_report.analysis.layer import analyse_layer
    from lstm_report.analysis.model_importance import measured_importance
    from lstm_report.model.layers import ModelWeights, RecurrentLayer

    u = 2
    kernel = np.zeros((2, 4 * u), np.float32)
    kernel[0, 2 * u + 0] = 0.5  # feature 0 -> candidate of unit 0 (open)
    kernel[1, 2 * u + 1] = 8.0  # feature 1 -> candidate of unit 1 (shut)
    kernel[1, 0 * u + 1] = 8.0
    bias = np.zeros(4 * u, np.float32)
    bias[3 * u + 1] = -30.0  # output gate of unit 1 shut
    w = RecurrentLayer.from_keras_arrays(
        "lstm", "forward", kernel, np.zeros((u, 4 * u), np.float32), bias, reads_input=True
    )
    x = np.random.default_rng(0).normal(size=(50, 8, 2)).astype(np.float32)
    la = analyse_layer(w, ["small", "large"], "a")
    assert la.features is not None
    assert [f.rank for f in la.features] == [2, 1]  # weight norms: "large" first
    imp, why = measured_importance(ModelWeights("m", Path("m.keras"), (w,)), x, ["small", "large"])
    assert why is None and imp is not None
    small, large = imp.features
    assert small.low > 0 and small.value > 1000 * large.value  # data: "small" matters


def test_importance_on_the_model_output_when_keras_runs_the_model(
    keras: Any, tmp_path: Path
) -> None:
    # Read through Keras, the model itself runs: the target is its output (the Dense head
    # included), and the numbers equal occlusion computed on model.predict.
    m = keras.Sequential(
        [keras.Input((5, 2)), keras.layers.LSTM(3, name="lstm"), keras.layers.Dense(2, name="head")]
    )
    rng = np.random.default_rng(5)
    m.set_weights([rng.normal(0, 0.7, w.shape).astype(w.dtype) for w in m.get_weights()])
    m.save(tmp_path / "m.keras")
    x = rng.normal(size=(12, 5, 2)).astype(np.float32)
    np.save(tmp_path / "p.npy", x)
    cfg = write_config(tmp_path, "models:\n  - {path: m.keras, probe: p.npy, reader: keras}\n")
    res = build_report(cfg, output=tmp_path / "r.html", json_path=tmp_path / "r.json")
    imp = json.loads((tmp_path / "r.json").read_text())["models"][0]["input_importance"]
    assert (imp["target"], imp["layer"]) == ("model_output", None)
    base = m.predict(x, verbose=0).astype(np.float64)
    mean = x.mean(axis=(0, 1))
    for j, f in enumerate(imp["features"]):
        xo = x.copy()
        xo[:, :, j] = mean[j]
        d = m.predict(xo, verbose=0).astype(np.float64) - base
        assert f["value"] == pytest.approx(np.mean(np.mean(d**2, axis=1)), rel=1e-6)
    assert "the model's prediction" in res.html_path.read_text()


def test_per_token_keeps_the_20_largest_by_hand() -> None:
    """Issue 23 item 3: y = Σ_t w[id_t] over 35 token ids (pad 4 among them): blanking token
    k changes y by −count_k·(w[k] − w[pad]), so its effect is mean over sequences of that
    squared. per_token lists the 20 largest, sorted, the pad token never, with a name
    where the vocabulary has one and the id where it does not."""
    rng = np.random.default_rng(8)
    vocab = 35
    w = rng.normal(size=vocab)
    ids = rng.integers(0, vocab, size=(50, 12))
    pad = 4

    def forward(v: np.ndarray) -> np.ndarray:
        return np.asarray(w[np.asarray(v)].sum(axis=1, keepdims=True), np.float64)

    names = tuple(f"t{k}" for k in range(30))  # ids 30..34 have no name
    imp = importance.token_importance(forward, ids, pad=pad, target="model_output", names=names)
    counts = np.stack([(ids == k).sum(axis=1) for k in range(vocab)])  # (vocab, sequences)
    effect = np.mean((counts * (w - w[pad])[:, None]) ** 2, axis=1)
    order = [k for k in np.argsort(-effect, kind="stable") if k != pad][: importance.MAX_TOKENS]
    assert importance.MAX_TOKENS == 20 and len(imp.per_token) == 20
    assert [t.name for t in imp.per_token] == [names[k] if k < 30 else str(k) for k in order]
    assert [t.value for t in imp.per_token] == pytest.approx(effect[order], rel=1e-9)
    assert all(t.low <= t.value <= t.high for t in imp.per_token)
    assert imp.pad_token == pad and f"t{pad}" not in {t.name for t in imp.per_token}
    # per position: every token at step t blanked
    by_step = [np.mean((w[ids[:, t]] - w[pad]) ** 2) for t in range(12)]
    assert imp.per_step == pytest.approx(by_step, rel=1e-9)


def test_a_sequence_target_measures_memory_by_distance_not_by_step() -> None:
    # y_s = 2·x_(s−3)[0] (zero for s < 3): every step's occlusion changes the output 3 steps
    # later, so the per-step importance is flat (the last steps are cut off, nothing more)
    # and says nothing about memory; the distances say 3, the horizon 4 (lags 0..3).
    from lstm_report.analysis.dynamics import memory_horizon

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 12, 2)).astype(np.float32)

    def shifted(z: np.ndarray) -> np.ndarray:
        y = np.zeros((z.shape[0], z.shape[1], 1), np.float64)
        y[:, 3:, 0] = 2.0 * z[:, :-3, 0]
        return y

    imp = occlusion_importance(shifted, x, ("a", "b"), target="model_output")
    assert imp.per_lag is not None and len(imp.per_lag) == 12
    assert np.argmax(imp.per_lag) == 3 and max(imp.per_lag[:3] + imp.per_lag[4:]) == 0.0
    mean = x.mean(axis=(0, 1))
    # by hand: occluding step t < 9 changes y_(t+3) by 2·(mean − x_t); summed, over 12 steps
    want = sum(np.mean((2.0 * (mean[0] - x[:, t, 0].astype(np.float64))) ** 2) for t in range(9))
    assert imp.per_lag[3] == pytest.approx(want / 12, rel=1e-9)
    assert sum(imp.per_lag) == pytest.approx(sum(imp.per_step), rel=1e-9)
    h = memory_horizon(imp.per_step, per_lag=imp.per_lag)
    assert h is not None and (h.steps, h.of, h.by) == (4, 12, "lag")
    # the same dependence read off the per-step importance: "memory" spans 9 of 12 steps
    by_step = memory_horizon(imp.per_step)
    assert by_step is not None and by_step.steps >= 9


def test_a_single_prediction_has_no_distances() -> None:
    x = np.random.default_rng(1).normal(size=(8, 10, 2)).astype(np.float32)
    imp = occlusion_importance(lambda z: z[:, -4, :1] * 3.0, x, ("a", "b"), target="model_output")
    assert imp.per_lag is None
    assert np.argmax(imp.per_step) == 6


def test_a_token_model_that_answers_per_step_is_measured_by_distance() -> None:
    # y_s = (id at s − 2 == 3): blanking position t to the pad 0 changes y_(t+2) only where
    # that token was a 3; by distance all of it is at 2, and the horizon is 3.
    from lstm_report.analysis.dynamics import memory_horizon
    from lstm_report.analysis.importance import token_importance

    ids = np.random.default_rng(5).integers(1, 5, size=(20, 9))

    def tagger(z: np.ndarray) -> np.ndarray:
        y = np.zeros((z.shape[0], z.shape[1], 1))
        y[:, 2:, 0] = z[:, :-2] == 3
        return y

    imp = token_importance(tagger, ids, pad=0, target="model_output")
    assert imp.per_lag is not None and np.argmax(imp.per_lag) == 2
    assert sum(imp.per_lag) == pytest.approx(sum(imp.per_step), rel=1e-12)
    # by hand: a 3 at t < 7 flips y_(t+2) from 1 to 0; mean over sequences, divided by 9 steps
    want = np.sum(ids[:, :7] == 3) / 20 / 9
    assert imp.per_lag[2] == pytest.approx(want, rel=1e-12)
    h = memory_horizon(imp.per_step, per_lag=imp.per_lag)
    assert h is not None and (h.steps, h.by) == (3, "lag")
