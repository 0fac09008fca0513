"""The decomposition, proven: a numpy LSTM built from the per-gate matrices equals Keras."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lstm_report.cells.kinds import replay
from lstm_report.cells.lstm import split_keras_lstm
from lstm_report.errors import AnalysisError
from lstm_report.model.layers import RecurrentLayer


def _weights_of(layer: Any, **extra: Any) -> RecurrentLayer:
    cell = layer.cell
    return RecurrentLayer.from_keras_arrays(
        name=layer.name,
        direction="backward" if layer.go_backwards else "forward",
        kernel=np.asarray(cell.kernel.numpy()),
        recurrent_kernel=np.asarray(cell.recurrent_kernel.numpy()),
        bias=np.asarray(cell.bias.numpy()) if cell.use_bias else None,
        activation=cell.activation.__name__,
        recurrent_activation=cell.recurrent_activation.__name__,
        go_backwards=layer.go_backwards,
        **extra,
    )


def _random_layer(keras: Any, units: int, input_dim: int, **kwargs: Any) -> Any:
    layer = keras.layers.LSTM(units, return_sequences=True, **kwargs)
    layer.build((None, None, input_dim))
    rng = np.random.default_rng(units * 31 + input_dim)
    layer.set_weights([rng.normal(0, 0.6, w.shape).astype("float32") for w in layer.get_weights()])
    return layer


def test_split_matches_hand_slicing() -> None:
    u, d = 3, 2
    kernel = np.arange(d * 4 * u, dtype=float).reshape(d, 4 * u)
    rk = np.arange(u * 4 * u, dtype=float).reshape(u, 4 * u) + 1000
    bias = np.arange(4 * u, dtype=float) + 5000
    gates = split_keras_lstm(kernel, rk, bias, where="LSTM", unit_forget_bias=True)
    assert [g.gate for g in gates] == ["i", "f", "c", "o"]
    # the forget gate is the second block of `units` columns: columns 3, 4, 5
    np.testing.assert_array_equal(gates[1].W, kernel[:, [3, 4, 5]])
    np.testing.assert_array_equal(gates[3].U, rk[:, [9, 10, 11]])
    np.testing.assert_array_equal(gates[2].b, [5006.0, 5007.0, 5008.0])
    # and the four gates put back together are the original arrays
    np.testing.assert_array_equal(np.concatenate([g.W for g in gates], axis=1), kernel)
    np.testing.assert_array_equal(np.concatenate([g.U for g in gates], axis=1), rk)


def test_split_without_bias() -> None:
    gates = split_keras_lstm(
        np.zeros((2, 8)), np.zeros((2, 8)), None, where="LSTM", unit_forget_bias=True
    )
    assert all(g.b is None for g in gates)


@pytest.mark.parametrize(
    ("kernel", "rk", "bias", "match"),
    [
        ((3, 12), (3, 11), (12,), r"recurrent kernel shape \(3, 11\) is not \(units, 4\*units\)"),
        ((3, 8), (3, 12), (12,), r"kernel shape \(3, 8\) is not \(input_dim, 12\)"),
        ((3, 12), (3, 12), (9,), r"bias shape \(9,\) is not \(12,\)"),
        ((3, 12), (12,), None, "must be 2-D"),
    ],
)
def test_split_rejects_non_lstm(kernel: tuple, rk: tuple, bias: tuple | None, match: str) -> None:
    with pytest.raises(AnalysisError, match=match):
        split_keras_lstm(
            np.zeros(kernel), np.zeros(rk), None if bias is None else np.zeros(bias), where="x"
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"go_backwards": True},
        {"use_bias": False},
        {"activation": "relu", "recurrent_activation": "hard_sigmoid"},
        {"activation": "softsign", "recurrent_activation": "sigmoid", "go_backwards": True},
    ],
    ids=["default", "go_backwards", "no_bias", "relu_hard_sigmoid", "softsign_backwards"],
)
def test_replay_equals_keras(keras: Any, kwargs: dict[str, Any]) -> None:
    layer = _random_layer(keras, units=5, input_dim=3, **kwargs)
    x = np.random.default_rng(0).normal(size=(4, 9, 3)).astype("float32")
    expected = np.asarray(layer(x))
    trace = replay(_weights_of(layer).cell, x, order="read")
    assert trace.h.shape == expected.shape
    np.testing.assert_allclose(trace.h, expected, atol=2e-5, rtol=0)


def test_replay_catches_a_wrong_gate_order(keras: Any) -> None:
    # A test that could not fail would prove nothing: swap f and c and the replay must disagree.
    layer = _random_layer(keras, units=4, input_dim=2)
    w = _weights_of(layer)
    u = w.units
    perm = np.r_[0:u, 2 * u : 3 * u, u : 2 * u, 3 * u : 4 * u]
    swapped = RecurrentLayer.from_keras_arrays(
        name="x",
        direction="forward",
        kernel=w.kernel[:, perm],
        recurrent_kernel=w.recurrent_kernel[:, perm],
        bias=w.bias[perm],  # type: ignore[index]
    )
    x = np.random.default_rng(1).normal(size=(2, 6, 2)).astype("float32")
    assert np.max(np.abs(replay(swapped.cell, x, order="read").h - np.asarray(layer(x)))) > 1e-2


def test_replay_both_halves_of_bidirectional(keras: Any) -> None:
    bi = keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=True), merge_mode="concat"
    )
    x = np.random.default_rng(2).normal(size=(3, 5, 4)).astype("float32")
    bi.build((None, 5, 4))
    rng = np.random.default_rng(3)
    bi.set_weights([rng.normal(0, 0.7, w.shape).astype("float32") for w in bi.get_weights()])
    out = np.asarray(bi(x))
    fwd = replay(_weights_of(bi.forward_layer).cell, x, order="read").h
    bwd = replay(_weights_of(bi.backward_layer).cell, x, order="read").h
    # Bidirectional flips the backward half's outputs back into input order before concatenating.
    np.testing.assert_allclose(out[..., :3], fwd, atol=2e-5)
    np.testing.assert_allclose(out[..., 3:], bwd[:, ::-1], atol=2e-5)


def test_replay_refuses_unknown_activation() -> None:
    w = RecurrentLayer.from_keras_arrays(
        name="x",
        direction="forward",
        kernel=np.zeros((1, 4)),
        recurrent_kernel=np.zeros((1, 4)),
        bias=None,
        activation="my_custom",
    )
    with pytest.raises(AnalysisError, match="cannot replay activation 'my_custom'"):
        replay(w.cell, np.zeros((1, 2, 1)), order="read")


def test_a_layer_refuses_arrays_that_are_not_an_lstms() -> None:
    # The layer's cell splits through the same check: zero units are not an LSTM either.
    with pytest.raises(AnalysisError, match=r"^l: recurrent kernel shape \(0, 0\) is not"):
        RecurrentLayer.from_keras_arrays("l", "forward", np.zeros((3, 0)), np.zeros((0, 0)), None)
