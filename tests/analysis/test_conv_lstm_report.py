"""Keras ConvLSTM layers in the report: read from real files (built here), every number
checked against numpy by hand, then on the page and in the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.analysis.conv_lstm import analyse_conv_layer
from lstm_report.cli import main
from lstm_report.config.schema import ModelSpec
from lstm_report.errors import CorruptModelError
from lstm_report.figures.conv import tap_rows
from lstm_report.readers.dispatch import read_model
from lstm_report.readers.keras.conv import conv_layer
from lstm_report.readers.keras.topology import FoundLayer


def _model(keras: Any, path: Path) -> list[np.ndarray]:
    """A ConvLSTM2D (kernel 3×2, 2 → 3 filters) feeding an LSTM; random biases."""
    inp = keras.Input((4, 5, 6, 2))
    conv = keras.layers.ConvLSTM2D(
        3, (3, 2), strides=(1, 2), padding="same", return_sequences=True, name="conv"
    )
    h = conv(inp)
    h = keras.layers.Reshape((4, 5 * 3 * 3))(h)
    h = keras.layers.LSTM(2, name="lstm")(h)
    model = keras.Model(inp, keras.layers.Dense(1)(h))
    kernel, rec, bias = conv.get_weights()
    bias = np.random.default_rng(5).normal(size=bias.shape).astype(np.float32)
    conv.set_weights([kernel, rec, bias])
    model.save(path)
    return [kernel, rec, bias]


@pytest.mark.parametrize(
    ("suffix", "reader"), [(".keras", "direct"), (".h5", "direct"), (".keras", "keras")]
)
def test_read_and_analysed_as_numpy_says(
    keras: Any, tmp_path: Path, suffix: str, reader: str
) -> None:
    path = tmp_path / f"conv{suffix}"
    kernel, rec, bias = _model(keras, path)
    mw = read_model(ModelSpec(index=0, path=path, name="m"), reader=reader)
    assert [w.name for w in mw.layers] == ["lstm"] and mw.others == ()
    (c,) = mw.conv_layers
    assert (c.name, c.kind, c.filters, c.kernel_size, c.in_channels) == (
        "conv",
        "ConvLSTM2D",
        3,
        (3, 2),
        2,
    )
    assert c.cell.strides == (1, 2) and c.cell.padding == "same" and c.reads_input
    assert c.params == kernel.size + rec.size + bias.size
    a = analyse_conv_layer(c, "x")
    for k, g in enumerate(a.gates):
        assert g.gate == "ifco"[k]
        K, R, b = (arr[..., 3 * k : 3 * k + 3].astype(np.float64) for arr in (kernel, rec, bias))
        assert g.K.mean == pytest.approx(K.mean()) and g.K.std == pytest.approx(K.std())
        assert g.R.norm == pytest.approx(np.sqrt((R**2).sum()))
        assert g.b is not None and g.b.max_abs == pytest.approx(np.abs(b).max())
        assert g.K_tap_norms.shape == (3, 2)
        assert g.K_tap_norms[2, 1] == pytest.approx(np.linalg.norm(K[2, 1]))
        assert g.R_tap_norms[0, 1] == pytest.approx(np.linalg.norm(R[0, 1]))
        assert g.R_tap_top_singular[1, 0] == pytest.approx(np.linalg.svd(R[1, 0])[1][0])
    b_f = bias[3:6].astype(np.float64)
    sig = 1 / (1 + np.exp(-b_f))
    np.testing.assert_allclose(a.forget_at_rest, sig)
    np.testing.assert_allclose(a.timescales, 1 / (1 - sig))


def test_on_the_page_and_in_the_json(keras: Any, tmp_path: Path) -> None:
    path = tmp_path / "conv.keras"
    kernel, rec, bias = _model(keras, path)
    out, js = tmp_path / "r.html", tmp_path / "r.json"
    assert main(["build", str(path), "-o", str(out), "--json", str(js), "-q", "--no-dynamics"]) == 0
    m = json.loads(js.read_text(encoding="utf-8"))["models"][0]
    assert m["not_analysed"] == []
    (c,) = m["conv_layers"]
    assert (c["kind"], c["filters"], c["kernel_size"], c["strides"]) == (
        "ConvLSTM2D",
        3,
        [3, 2],
        [1, 2],
    )
    assert [g["gate"] for g in c["gates"]] == ["i", "f", "c", "o"]
    o = c["gates"][3]
    assert o["recurrent_kernel"]["std"] == pytest.approx(rec[..., 9:12].astype(np.float64).std())
    assert np.asarray(o["kernel_tap_norms"]).shape == (3, 2)
    sig = 1 / (1 + np.exp(-bias[3:6].astype(np.float64)))
    assert c["timescales"] == pytest.approx(list(1 / (1 - sig)))
    html = out.read_text(encoding="utf-8")
    assert 'class="layer conv-layer"' in html and "ConvLSTM2D, 3 filters" in html
    assert "no spectral radius is given" in html
    assert "Figures: the kernels" in html and "Heatmaps of the input weights K_i, K_f" in html


def test_kernels_as_small_multiples() -> None:
    """A tap's matrix is a block of rows: row tap·in + channel of K_g is K_g[tap, channel]."""
    rng = np.random.default_rng(1)
    k = rng.normal(size=(3, 2, 2, 8))
    rows = tap_rows(k[..., 2:4])
    assert rows.shape == (12, 2)
    np.testing.assert_array_equal(rows[(1 * 2 + 1) * 2 + 0], k[1, 1, 0, 2:4])


def test_weights_that_disagree_with_the_config_are_refused() -> None:
    found = FoundLayer("conv", "ConvLSTM1D", {"filters": 2, "kernel_size": [3]}, True)
    good = [np.zeros((3, 1, 8)), np.zeros((3, 2, 8)), np.zeros(8)]
    assert conv_layer(found, good, "f.keras").filters == 2
    with pytest.raises(CorruptModelError, match="config says 2 filters of size"):
        conv_layer(found, [np.zeros((2, 1, 8)), *good[1:]], "f.keras")
    with pytest.raises(CorruptModelError, match="expected 3"):
        conv_layer(found, good[:2], "f.keras")
    with pytest.raises(CorruptModelError, match="not kernel_size"):
        conv_layer(found, [good[0], np.zeros((3, 3, 8)), good[2]], "f.keras")
