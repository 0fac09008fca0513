"""Issue 25 item 10: the numbers of a Keras ConvLSTM1D, 2D and 3D, read from a saved file,
against Keras itself: the replay of the cell as read against the layer's output, and every
per-gate statistic against slices of get_weights() taken here by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_report.analysis.conv_lstm import analyse_conv_layer
from lstm_report.cells.conv_lstm import replay_conv_lstm
from lstm_report.config.schema import ModelSpec
from lstm_report.model.conv_layers import ConvRecurrentLayer
from lstm_report.readers.dispatch import read_model
from tests.conftest import CONV_SHAPES, ConvSaved

KINDS = list(CONV_SHAPES)


def _read(saved: ConvSaved, reader: str = "direct") -> ConvRecurrentLayer:
    mw = read_model(ModelSpec(index=0, path=saved.path, name="m"), reader=reader)
    (c,) = mw.conv_layers
    assert mw.layers == () and mw.others == ()
    return c


@pytest.mark.parametrize("kind", KINDS)
def test_replay_of_the_cell_read_matches_keras(kind: str, conv_models: dict) -> None:
    saved = conv_models[kind]
    c = _read(saved)
    got = replay_conv_lstm(c.cell, saved.x)
    assert got.shape == saved.h.shape
    np.testing.assert_allclose(got, saved.h, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", ["direct", "keras"])
def test_per_gate_numbers_are_slices_of_get_weights(
    kind: str, reader: str, conv_models: dict
) -> None:
    saved = conv_models[kind]
    kernel, rec, bias = (np.asarray(a, np.float64) for a in saved.arrays)
    shape, kw = CONV_SHAPES[kind]
    rank, F, channels = len(shape) - 2, kw["filters"], shape[-1]
    ks = kw["kernel_size"]
    ks = (ks,) * rank if isinstance(ks, int) else tuple(ks)
    # Keras' layout: kernel kernel_size + (in, 4F), recurrent kernel kernel_size + (F, 4F)
    assert kernel.shape == ks + (channels, 4 * F) and rec.shape == ks + (F, 4 * F)
    assert bias.shape == (4 * F,)
    c = _read(saved, reader)
    assert (c.kind, c.filters, c.kernel_size, c.in_channels) == (kind, F, ks, channels)
    assert c.params == kernel.size + rec.size + bias.size
    a = analyse_conv_layer(c, "x")
    assert [g.gate for g in a.gates] == ["i", "f", "c", "o"]
    last = tuple(k - 1 for k in ks)  # the last tap: a slice no off-by-one can hit by chance
    for k, g in enumerate(a.gates):
        cols = slice(k * F, (k + 1) * F)
        K, R, b = kernel[..., cols], rec[..., cols], bias[cols]
        for got, want in ((g.K, K), (g.R, R), (g.b, b)):
            assert got is not None and got.size == want.size and got.nonfinite == 0
            assert got.mean == pytest.approx(want.sum() / want.size, rel=1e-9)
            assert got.std == pytest.approx(np.sqrt(((want - want.mean()) ** 2).mean()), rel=1e-9)
            assert got.norm == pytest.approx(np.sqrt((want**2).sum()), rel=1e-9)
            assert got.max_abs == pytest.approx(np.abs(want).max(), rel=1e-9)
        assert g.K_tap_norms.shape == ks and g.R_tap_top_singular.shape == ks
        assert g.K_tap_norms[last] == pytest.approx(np.sqrt((K[last] ** 2).sum()))
        assert g.R_tap_norms[last] == pytest.approx(np.sqrt((R[last] ** 2).sum()))
        top = np.sqrt(np.linalg.eigvalsh(R[last].T @ R[last]).max())  # σ_max by hand
        assert g.R_tap_top_singular[last] == pytest.approx(top)
    b_f = bias[F : 2 * F]
    sig = 1 / (1 + np.exp(-b_f))
    np.testing.assert_allclose(a.forget_at_rest, sig, rtol=1e-12)
    np.testing.assert_allclose(a.timescales, 1 / (1 - sig), rtol=1e-12)
