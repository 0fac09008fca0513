"""Keras ConvLSTM1D/2D/3D cells in numpy (lstm_report/cells/conv_lstm.py), against Keras'
own layers built here (keras is a dependency of the project)."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_report.cells.conv_lstm import (
    conv,
    from_keras_conv_lstm,
    replay_conv_lstm,
    resting_forget,
    tap_spectra,
)
from lstm_report.errors import AnalysisError

CASES = [
    ("ConvLSTM1D", (6, 7, 2), dict(kernel_size=3, padding="same")),
    ("ConvLSTM1D", (5, 9, 2), dict(kernel_size=2, padding="valid", dilation_rate=2)),
    ("ConvLSTM2D", (4, 6, 5, 2), dict(kernel_size=(3, 2), padding="valid", strides=(2, 1))),
    ("ConvLSTM2D", (4, 5, 5, 1), dict(kernel_size=3, padding="same")),
    ("ConvLSTM3D", (3, 4, 4, 3, 1), dict(kernel_size=2, padding="same")),
]


@pytest.mark.parametrize(("cls", "shape", "kw"), CASES)
def test_replay_matches_keras(cls: str, shape: tuple[int, ...], kw: dict) -> None:
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(3)
    layer = getattr(keras.layers, cls)(filters=3, return_sequences=True, **kw)
    x = np.random.default_rng(3).normal(size=(2, *shape)).astype(np.float32)
    want = np.asarray(layer(x))
    kernel, rec, bias = layer.get_weights()
    bias = np.random.default_rng(4).normal(size=bias.shape).astype(np.float32)
    layer.set_weights([kernel, rec, bias])
    want = np.asarray(layer(x))
    cell = from_keras_conv_lstm(
        kernel,
        rec,
        bias,
        name=layer.name,
        strides=layer.strides,
        padding=layer.padding,
        dilation_rate=layer.dilation_rate,
    )
    got = replay_conv_lstm(cell, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    # the gates are the kernel's four blocks in Keras' order i, f, c, o
    np.testing.assert_array_equal(cell.gate("f").K, kernel[..., 3:6])
    np.testing.assert_array_equal(cell.gate("o").R, rec[..., 9:12])


def test_conv_is_tensorflows_cross_correlation() -> None:
    """One output by hand: the window times the kernel, summed, no flip."""
    x = np.arange(10, dtype=float).reshape(1, 10, 1)
    w = np.array([1.0, 0.0, -2.0]).reshape(3, 1, 1)
    out = conv(x, w, strides=(1,), padding="valid", dilation=(1,))
    assert out.shape == (1, 8, 1)
    assert out[0, 0, 0] == 0 * 1 + 1 * 0 + 2 * -2
    same = conv(x, w, strides=(1,), padding="same", dilation=(1,))
    assert same[0, 0, 0] == 0 * 1 + 1 * -2  # padded by one zero before


def test_resting_forget_and_tap_spectra() -> None:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 2, 8))
    rec = rng.normal(size=(3, 3, 2, 8))
    bias = np.zeros(8)
    bias[2:4] = [1.0, -1.0]  # b_f of the two filters
    cell = from_keras_conv_lstm(kernel, rec, bias, name="c", padding="same")
    np.testing.assert_allclose(resting_forget(cell), 1 / (1 + np.exp([-1.0, 1.0])))
    spectra = tap_spectra(cell)
    assert spectra["f"].shape == (3, 3)
    assert spectra["f"][1, 2] == pytest.approx(np.linalg.norm(rec[1, 2, :, 2:4], 2))


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(AnalysisError, match="not kernel_size"):
        from_keras_conv_lstm(np.zeros((3, 2, 8)), np.zeros((3, 2, 6)), None, name="c")
