"""The whole model replayed in numpy from the file (analysis/model_replay.py), against the
real keras.Model's own output on the same inputs (within 1e-5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.analysis.model_replay import ModelReplay, ReplayStopped, replay_problem
from lstm_report.config.schema import ModelSpec
from lstm_report.readers.dispatch import read_model

TOL = 1e-5


def _read(path: Path) -> Any:
    return read_model(ModelSpec(index=0, path=path, name=path.name), "direct")


def _agree(keras: Any, model: Any, x: np.ndarray, tmp_path: Path, suffix: str = ".keras") -> None:
    path = tmp_path / f"m{suffix}"
    model.save(path)
    weights = _read(path)
    assert replay_problem(weights) is None, replay_problem(weights)
    want = np.asarray(model(x, training=False), np.float64)
    got = ModelReplay(weights).output(x)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) < TOL


def _seq(keras: Any, shape: tuple[int, ...], *layers: Any) -> Any:
    return keras.Sequential([keras.Input(shape), *layers])


def _x(n: int = 6, steps: int = 12, features: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, steps, features)).astype(np.float32)


def _norm(keras: Any, x: np.ndarray) -> Any:
    layer = keras.layers.Normalization()
    layer.adapt(x * 3.0 + 1.0)
    return layer


CASES: dict[str, Callable[[Any, np.ndarray], list[Any]]] = {
    "normalization-conv-causal-dilated": lambda k, x: [
        _norm(k, x),
        k.layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"),
        k.layers.LSTM(5),
        k.layers.Dense(2),
    ],
    "conv-same-strided-rescaling": lambda k, x: [
        k.layers.Rescaling(0.5, offset=0.1),
        k.layers.Conv1D(4, 4, strides=2, padding="same"),
        k.layers.GRU(5, return_sequences=True),
        k.layers.TimeDistributed(k.layers.Dense(2, activation="tanh")),
    ],
    "conv-valid-pool-flatten": lambda k, x: [
        k.layers.Conv1D(4, 3, padding="valid"),
        k.layers.MaxPooling1D(2),
        k.layers.LSTM(3, return_sequences=True),
        k.layers.AveragePooling1D(2, padding="same"),
        k.layers.Flatten(),
        k.layers.Dense(1, activation="sigmoid"),
    ],
    "noise-layernorm-batchnorm-stacked": lambda k, x: [
        k.layers.GaussianNoise(0.3),
        k.layers.LayerNormalization(),
        k.layers.LSTM(6, return_sequences=True, go_backwards=True),
        k.layers.SpatialDropout1D(0.5),
        k.layers.BatchNormalization(),
        k.layers.GRU(4, return_sequences=True),
        k.layers.Dropout(0.5),
        k.layers.GlobalAveragePooling1D(),
        k.layers.Activation("softmax"),
    ],
    "bidirectional-global-max": lambda k, x: [
        k.layers.Bidirectional(k.layers.LSTM(4, return_sequences=True), merge_mode="mul"),
        k.layers.Bidirectional(k.layers.GRU(3, return_sequences=True), merge_mode="ave"),
        k.layers.GlobalMaxPooling1D(),
        k.layers.Dense(2, activation="softmax"),
    ],
    "bidirectional-sum-concat": lambda k, x: [
        k.layers.Bidirectional(k.layers.GRU(3, return_sequences=True), merge_mode="sum"),
        k.layers.Bidirectional(k.layers.LSTM(4)),
        k.layers.Dense(1),
    ],
    "masking": lambda k, x: [
        k.layers.Masking(0.0),
        k.layers.LSTM(4, return_sequences=True),
        k.layers.Bidirectional(k.layers.GRU(3, return_sequences=True)),
        k.layers.Dense(2),
    ],
}


def _padded(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[0, 8:] = 0.0  # post-padding
    x[1, :3] = 0.0  # pre-padding
    x[2, 5] = 0.0  # a hole
    return x


@pytest.mark.parametrize("case", sorted(CASES))
def test_sequential_models_agree_with_keras(keras: Any, tmp_path: Path, case: str) -> None:
    x = _x()
    if case == "masking":
        x = _padded(x)
    model = _seq(keras, x.shape[1:], *CASES[case](keras, x))
    # BatchNormalization and Normalization with non-trivial statistics
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.linspace(-1, 1, layer.moving_mean.shape[0]))
            layer.moving_variance.assign(np.linspace(0.5, 2, layer.moving_mean.shape[0]))
    _agree(keras, model, x, tmp_path)


def test_legacy_h5_agrees_with_keras(keras: Any, tmp_path: Path) -> None:
    x = _x()
    model = _seq(keras, x.shape[1:], *CASES["normalization-conv-causal-dilated"](keras, x))
    _agree(keras, model, x, tmp_path, ".h5")


def test_embedding_mask_zero_and_functional_merges(keras: Any, tmp_path: Path) -> None:
    ids = np.random.default_rng(1).integers(1, 20, size=(6, 10))
    ids[0, 6:] = 0
    ids[1, :4] = 0
    inp = keras.Input((10,), dtype="int32")
    e = keras.layers.Embedding(20, 5, mask_zero=True)(inp)
    a = keras.layers.LSTM(4, return_sequences=True)(e)
    b = keras.layers.Bidirectional(keras.layers.GRU(3), merge_mode="concat")(a)
    c = keras.layers.LSTM(6)(e)
    d = keras.layers.GlobalAveragePooling1D()(a)
    d = keras.layers.Dense(6)(d)
    merged = keras.layers.Concatenate()([b, keras.layers.Add()([c, d])])
    m = keras.layers.Multiply()([merged, merged])
    out = keras.layers.Dense(3, activation="softmax")(m)
    model = keras.Model(inp, out)
    _agree(keras, model, ids, tmp_path)


def test_normalization_with_mean_in_config_and_invert(keras: Any, tmp_path: Path) -> None:
    x = _x()
    model = _seq(
        keras,
        x.shape[1:],
        keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.25, 1.0]),
        keras.layers.Normalization(mean=0.5, variance=2.0, invert=True),
        keras.layers.LSTM(3),
    )
    _agree(keras, model, x, tmp_path)


def test_a_layer_numpy_does_not_replay_stops_the_replay_and_is_named(
    keras: Any, tmp_path: Path
) -> None:
    x = _x()
    model = _seq(
        keras,
        x.shape[1:],
        keras.layers.LSTM(4, return_sequences=True),
        keras.layers.Conv1DTranspose(2, 3),
        keras.layers.Flatten(),
        keras.layers.Dense(1),
    )
    path = tmp_path / "m.keras"
    model.save(path)
    weights = _read(path)
    layer, why = replay_problem(weights) or (None, "")
    assert layer == model.layers[1].name and "Conv1DTranspose" in why
    with pytest.raises(ReplayStopped) as info:
        ModelReplay(weights).output(x)
    assert info.value.layer == model.layers[1].name
    # the layers before it still compute, and agree with Keras
    lstm = model.layers[0].name
    got = ModelReplay(weights).values(x, lstm)[lstm][0]
    sub = keras.Model(model.inputs, model.layers[0].output)
    assert np.max(np.abs(got - np.asarray(sub(x)))) < TOL


def test_relu_softmax_layers_average_and_subtract_agree_with_keras(
    keras: Any, tmp_path: Path
) -> None:
    """The layer classes of the replay's set no other case here uses."""
    x = _x()
    inp = keras.Input(x.shape[1:])
    a = keras.layers.LSTM(4, return_sequences=True)(inp)
    a = keras.layers.ReLU(max_value=0.3, negative_slope=0.1, threshold=0.05)(a)
    b = keras.layers.GRU(4, return_sequences=True, go_backwards=True)(inp)
    avg = keras.layers.Average()([a, b])
    sub = keras.layers.Subtract()([a, b])
    merged = keras.layers.Concatenate()([avg, sub])
    out = keras.layers.Softmax(axis=1)(keras.layers.TimeDistributed(keras.layers.Dense(2))(merged))
    _agree(keras, keras.Model(inp, out), x, tmp_path)


def test_a_bidirectional_without_merge_stops_the_replay_and_is_named(
    keras: Any, tmp_path: Path
) -> None:
    """merge_mode=None returns the two halves apart: outside the set, named."""
    x = _x()
    inp = keras.Input(x.shape[1:])
    fw, bw = keras.layers.Bidirectional(keras.layers.LSTM(3), merge_mode=None, name="bi")(inp)
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([fw, bw]))
    path = tmp_path / "m.keras"
    keras.Model(inp, out).save(path)
    weights = _read(path)
    with pytest.raises(ReplayStopped) as info:
        ModelReplay(weights).output(x)
    assert info.value.layer == "bi" and "merge_mode 'None'" in str(info.value)
