"""TFLite quantisations beyond the converter's int8: 16x8 (int16 activations, int8 weights,
int64 biases) and int8 weights with a scale per unit (tests/fixtures/tflite_quantised.py,
run by make_tflite_fixtures.py). The weights must equal the ones dequantised by hand,
(q − zero_point) · scale along quantized_dimension, exactly and in Keras' orientation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_report.cells.kinds import replay_layers
from lstm_report.cli import main
from lstm_report.errors import CorruptModelError
from tests.helpers import FIXTURES

pytest.importorskip("tflite")
from lstm_report.readers.tflite import rnn as tflite_rnn
from tests.fixtures import tflite_quantised

FIX = FIXTURES / "tflite"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIX / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _assert_hand_dequantised(cell: object, expected: dict[str, np.ndarray], key: str) -> None:
    for g in "ifco":
        gate = cell.gate(g)  # type: ignore[attr-defined]
        # TFLite's [units, in] per gate, transposed into Keras' (in, units)
        np.testing.assert_array_equal(gate.W, expected[f"tflite/{key}/input_{g}"].T)
        np.testing.assert_array_equal(gate.U, expected[f"tflite/{key}/recurrent_{g}"].T)
        np.testing.assert_array_equal(gate.b, expected[f"tflite/{key}/bias_{g}"])


def test_16x8_weights_are_the_hand_dequantised_ones(expected: dict[str, np.ndarray]) -> None:
    (cell,) = tflite_rnn.read(FIX / "lstm_16x8.tflite").cells
    _assert_hand_dequantised(cell, expected, "q16x8")
    assert any("int64 tensors dequantised" in n for n in cell.notes)
    assert any(n == "int8 tensors dequantised as (q − zero_point) · scale" for n in cell.notes)


def test_16x8_replay_matches_tflite_micro(expected: dict[str, np.ndarray]) -> None:
    """TFLite Micro computes in integers: gates in int16, the cell state in int16 at 2^-11,
    the output in int16 at 2^-15. Each step rounds the cell state by at most half its step
    (tanh' ≤ 1, o ≤ 1 carry that into h, f < 1 carries it on), so over T steps the output is
    within T · 2^-12 plus an output step of a float replay of the same weights and input;
    measured 2.8e-4 (T · 2^-12 = 1.5e-3)."""
    (cell,) = tflite_rnn.read(FIX / "lstm_16x8.tflite").cells
    out, _ = replay_layers((cell,), expected["tflite/q16x8/x"])
    y = expected["tflite/q16x8/y"]
    steps = y.shape[1]
    tol = steps * float(expected["tflite/q16x8/cell_scale"]) / 2
    tol += float(expected["tflite/q16x8/output_scale"])
    err = np.abs(out - y).max()
    assert err < tol, (err, tol)
    assert np.abs(y).max() > 0.3  # the interpreter really ran: not a zero output


def test_per_channel_weights_are_the_hand_dequantised_ones(
    expected: dict[str, np.ndarray],
) -> None:
    """A scale per unit (quantized_dimension 0 of [units, in]): each row its own scale. The
    recurrent weights are square, so scales along the wrong axis would still fit the shape;
    only the values tell."""
    import tflite

    data = (FIX / "lstm_int8_per_channel.tflite").read_bytes()
    sg = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0)
    rec = [sg.Tensors(k) for k in range(sg.TensorsLength())]
    (t,) = [t for t in rec if t.Name() == b"recurrent_f"]
    scales = t.Quantization().ScaleAsNumpy()
    assert scales.size == 4 and t.Quantization().QuantizedDimension() == 0
    assert scales.max() > 2 * scales.min()  # really per channel: one scale would not do
    (cell,) = tflite_rnn.read(FIX / "lstm_int8_per_channel.tflite").cells
    _assert_hand_dequantised(cell, expected, "perchannel")
    assert any("(per channel)" in n for n in cell.notes)


def test_per_channel_replay_matches_tflite_on_the_same_weights(
    expected: dict[str, np.ndarray],
) -> None:
    """No TFLite runtime runs an LSTM with per-channel weights (its integer kernel reads one
    scale per tensor); the reference is TFLite's float kernel on the hand-dequantised weights
    and input, so only float rounding separates it from the replay: 1e-5."""
    (cell,) = tflite_rnn.read(FIX / "lstm_int8_per_channel.tflite").cells
    out, _ = replay_layers((cell,), expected["tflite/perchannel/x"])
    np.testing.assert_allclose(out, expected["tflite/perchannel/y"], atol=1e-5)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("per_channel", "name", "scales", "dim", "message"),
    [
        (True, "recurrent_f", [0.01] * 3, 0, "3 scales along dimension 0 of shape (4, 4)"),
        (True, "input_c", [0.01] * 4, 1, "4 scales along dimension 1 of shape (4, 3)"),
        (True, "input_o", [0.01, 0.0, 0.02, 0.01], 0, "quantisation scale 0 (scales must"),
        (True, "input_i", [0.01, INF, 0.01, 0.01], 0, "quantisation scale inf (scales must"),
        (False, "int16:recurrent_i", [NAN], 0, "quantisation scale nan (scales must"),
        (False, "bias_f", [-0.001], 0, "quantisation scale -0.001 (scales must"),
    ],
)
def test_a_malformed_quantisation_is_one_error_naming_the_tensor(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    per_channel: bool,
    name: str,
    scales: list[float],
    dim: int,
    message: str,
) -> None:
    as_int16 = name.startswith("int16:")
    name = name.removeprefix("int16:")

    def tamper(tensors: list[dict]) -> None:
        (t,) = [t for t in tensors if t["name"] == name]
        t["quant"] = (scales, [0] * len(scales), dim)
        if as_int16:  # the same integers stored as an int16 tensor
            t["type"], t["data"] = 7, t["data"].astype(np.int16)

    w = tflite_quantised.float_lstm(np.random.default_rng(1), 3, 4)
    data, _ = tflite_quantised.quantised_lstm(w, 5, 9, per_channel, 0.01, tamper)
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    with pytest.raises(CorruptModelError, match=f"tensor '{name}'"):
        tflite_rnn.read(path)
    assert main(["build", str(path), "-q", "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert f"tensor '{name}'" in err and message in err, err


def test_the_untampered_builder_is_read(tmp_path: Path) -> None:
    """The control for the refusals above: the same builder, nothing changed, is read."""
    w = tflite_quantised.float_lstm(np.random.default_rng(1), 3, 4)
    for per_channel in (False, True):
        data, _ = tflite_quantised.quantised_lstm(w, 5, 9, per_channel, 0.01)
        path = tmp_path / "good.tflite"
        path.write_bytes(data)
        assert len(tflite_rnn.read(path).cells) == 1
