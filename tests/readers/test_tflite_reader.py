"""The TFLite reader, proven against Keras' weights and the TFLite interpreter's own outputs.

tests/fixtures/tflite/ was written by make_tflite_fixtures.py: Keras LSTMs converted by
TensorFlow's TFLite converter into fused UNIDIRECTIONAL_SEQUENCE_LSTM operators (float32,
and fully quantised int8), and a Keras 3 GRU, which converts into a WHILE loop. These tests
need the `tflite` schema package, not TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lstm_report.cells.kinds import replay_layers
from lstm_report.cli import main
from lstm_report.errors import CorruptModelError, ModelLoadError
from lstm_report.readers.frameworks import read_framework
from tests.helpers import FIXTURES

pytest.importorskip("tflite")
from lstm_report.readers.tflite import rnn as tflite_rnn

FIX = FIXTURES / "tflite"
LAYERS = ("lstm_0", "lstm_1")


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIX / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def test_float_gates_are_kerases_bit_for_bit(expected: dict[str, np.ndarray]) -> None:
    model = tflite_rnn.read(FIX / "lstm_float.tflite")
    assert [c.name for c in model.cells] == [
        "UNIDIRECTIONAL_SEQUENCE_LSTM_0",
        "UNIDIRECTIONAL_SEQUENCE_LSTM_1",
    ]
    for cell, layer in zip(model.cells, LAYERS):
        kernel, rec, bias = (
            expected[f"keras/{layer}/{k}"] for k in ("kernel", "recurrent_kernel", "bias")
        )
        W, U, b, b_rec = cell.stacked()
        np.testing.assert_array_equal(W, kernel)  # i, f, c, o in Keras' order, transposed
        np.testing.assert_array_equal(U, rec)
        np.testing.assert_array_equal(b, bias)
        assert b_rec is None and cell.P is None
        assert (cell.activation, cell.recurrent_activation) == ("tanh", "sigmoid")
        assert any("cell_clip" in n for n in cell.notes)


def test_float_replay_matches_the_interpreter(expected: dict[str, np.ndarray]) -> None:
    model = tflite_rnn.read(FIX / "lstm_float.tflite")
    out, _ = replay_layers(model.cells, expected["x"])
    np.testing.assert_allclose(out, expected["tflite/float/y"], atol=1e-5)
    # The graph says the second LSTM reads the first one's output.
    assert model.sources == (("UNIDIRECTIONAL_SEQUENCE_LSTM_1", "UNIDIRECTIONAL_SEQUENCE_LSTM_0"),)


def test_int8_weights_are_dequantised(expected: dict[str, np.ndarray]) -> None:
    (cell,) = tflite_rnn.read(FIX / "lstm_int8.tflite").cells
    kernel, rec, bias = (
        expected[f"keras/lstm_0/{k}"] for k in ("kernel", "recurrent_kernel", "bias")
    )
    W, U, b, _ = cell.stacked()
    # Symmetric int8 per gate (and per row): within half a step of max|w|/127 of Keras'.
    for got, want in ((W, kernel), (U, rec)):
        step = np.abs(want).max() / 127
        assert np.abs(got - want).max() <= step / 2 + 1e-7
        assert np.abs(got - want).max() > 0  # really quantised: not the float weights
    assert np.abs(b - bias).max() < 1e-4  # int32 biases, scale = input scale · weight scale
    assert any("int8 tensors dequantised" in n for n in cell.notes)


def test_int8_replay_is_within_the_quantisation_error(expected: dict[str, np.ndarray]) -> None:
    """The interpreter computes in integers (int8 activations and output, int16 cell state):
    it differs from a float replay of the same dequantised weights by rounding, which stays
    below one step of its int8 output (scale 0.0045 here)."""
    (cell,) = tflite_rnn.read(FIX / "lstm_int8.tflite").cells
    out, _ = replay_layers((cell,), expected["x"])
    step = float(expected["tflite/int8/output_scale"])
    err = np.abs(out - expected["tflite/int8/y"]).max()
    assert err < step, (err, step)
    # and the dequantised weights replay Keras' float model closely
    np.testing.assert_allclose(out, expected["keras/y0"], atol=1e-3)


def test_converted_gru_is_listed_not_analysed() -> None:
    weights = read_framework(FIX / "gru_while.tflite", "tflite", name="g", where="models[0]")
    assert weights.layers == ()
    (other,) = weights.others
    assert other.kind == "GRU"
    assert other.note is not None and "WHILE loop" in other.note
    assert "only fused LSTM operators are read" in other.note


def test_build_reads_a_tflite_file(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["build", str(FIX / "lstm_float.tflite"), "-o", str(tmp_path / "r.html")]
    assert main([*args, "--json", str(out), "-q"]) == 0
    model = json.loads(out.read_text())["models"][0]
    assert model["reader"] == "tflite"
    assert [la["name"] for la in model["layers"]] == [
        "UNIDIRECTIONAL_SEQUENCE_LSTM_0",
        "UNIDIRECTIONAL_SEQUENCE_LSTM_1",
    ]


def test_unknown_suffix_is_not_taken_for_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "model.mlmodel"
    odd.write_bytes(b"\x00\x01binary")
    assert main(["build", str(odd), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "not a format lstm-report reads (it reads .keras, .h5" in err
    assert ".tflite" in err and ".yaml" in err


def test_damaged_flatbuffer_is_one_clear_error(tmp_path: Path) -> None:
    data = (FIX / "lstm_float.tflite").read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises((CorruptModelError, ModelLoadError), match="cut.tflite"):
        tflite_rnn.read(cut)
    wrong = tmp_path / "wrong.tflite"
    wrong.write_bytes(b"\x1c\x00\x00\x00XXXX" + data[8:])
    with pytest.raises(ModelLoadError, match="no TFL3 identifier"):
        tflite_rnn.read(wrong)


def test_buffer_past_the_end_is_refused(tmp_path: Path) -> None:
    """A buffer kept outside the FlatBuffer (offset, size) must lie inside the file."""
    import flatbuffers
    import tflite

    builder = flatbuffers.Builder(0)
    tflite.BufferStart(builder)
    tflite.BufferAddOffset(builder, 10**9)
    tflite.BufferAddSize(builder, 64)
    buf = tflite.BufferEnd(builder)
    tflite.ModelStartBuffersVector(builder, 1)
    builder.PrependUOffsetTRelative(buf)
    buffers = builder.EndVector()
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddBuffers(builder, buffers)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    path = tmp_path / "far.tflite"
    path.write_bytes(bytes(builder.Output()))
    reader = tflite_rnn._Reader(path.name, path.read_bytes(), tflite)
    with pytest.raises(CorruptModelError, match="past the file's end"):
        reader.tensors.buffer(0, "far.tflite: tensor 'w'")


def test_bidirectional_with_peepholes_matches_the_interpreter(
    expected: dict[str, np.ndarray],
) -> None:
    model = tflite_rnn.read(FIX / "lstm_bidi_peephole.tflite")
    fw, bw = model.cells
    assert (fw.direction, bw.direction) == ("forward", "backward")
    assert fw.name == bw.name == "BIDIRECTIONAL_SEQUENCE_LSTM_0"
    # Inputs 18-34 are the backward cell's: its gates are the bw tensors, transposed.
    for g in "ifco":
        np.testing.assert_array_equal(bw.gate(g).W, expected[f"tflite/bidi/bw/input_{g}"].T)
        np.testing.assert_array_equal(bw.gate(g).U, expected[f"tflite/bidi/bw/recurrent_{g}"].T)
        np.testing.assert_array_equal(fw.gate(g).b, expected[f"tflite/bidi/fw/bias_{g}"])
    assert fw.peepholes is not None and bw.peepholes is None
    np.testing.assert_array_equal(
        fw.peepholes, np.stack([expected[f"tflite/bidi/fw/peep_{g}"] for g in "ifo"])
    )
    out, _ = replay_layers(model.cells, expected["x"])
    np.testing.assert_allclose(out, expected["tflite/bidi/y"], atol=1e-5)


def test_projection_matches_the_interpreter(expected: dict[str, np.ndarray]) -> None:
    """Input 16 ([out, units]) becomes P (h = (o ⊙ tanh(c))·P); the recurrent weights are
    [units, out]. Replayed against the interpreter; without P the output differs."""
    (cell,) = tflite_rnn.read(FIX / "lstm_projection.tflite").cells
    proj = expected["tflite/proj/projection"]
    assert cell.P is not None
    np.testing.assert_array_equal(cell.P, proj.T)
    for g in "ifco":
        np.testing.assert_array_equal(cell.gate(g).W, expected[f"tflite/proj/input_{g}"].T)
        np.testing.assert_array_equal(cell.gate(g).U, expected[f"tflite/proj/recurrent_{g}"].T)
    out, _ = replay_layers((cell,), expected["x"])
    np.testing.assert_allclose(out, expected["tflite/proj/y"], atol=1e-5)
    assert "projection [out, units] transposed into P" in cell.source_layout


def test_a_lying_vector_length_is_refused_at_once(tmp_path: Path) -> None:
    """The subgraphs vector claims 2**31 − 1 entries: refused from the file's size, not
    walked entry by entry."""
    import tflite

    data = bytearray((FIX / "lstm_float.tflite").read_bytes())
    model = tflite.Model.GetRootAsModel(bytes(data), 0)
    start = model._tab.Vector(model._tab.Offset(8))  # schema.fbs: subgraphs is field 2
    data[start - 4 : start] = (2**31 - 1).to_bytes(4, "little")
    path = tmp_path / "lying.tflite"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptModelError, match="a vector of 2147483647 entries"):
        tflite_rnn.read(path)


# --- 7. what is listed rather than read, the unknown suffix, and no runtime needed ---------------


def _unidirectional(cifg: bool = False, layer_norm: bool = False) -> bytes:
    """One UNIDIRECTIONAL_SEQUENCE_LSTM (3 inputs, 4 units) built with the schema's builders,
    as make_tflite_fixtures.py builds its bidirectional one."""
    import tflite

    from tests.fixtures.make_tflite_fixtures import build_one_op

    rng = np.random.default_rng(0)
    units, n_in = 4, 3
    tensors: list[dict] = [{"name": "x", "shape": [1, 5, n_in]}]
    inputs = [0]

    def add(name: str, shape: list[int], data: bool = True, variable: bool = False) -> int:
        arr = rng.normal(size=shape).astype(np.float32) if data else None
        tensors.append({"name": name, "shape": shape, "data": arr, "variable": variable})
        return len(tensors) - 1

    for kind, cols in (("input", n_in), ("recurrent", units)):
        for g in "ifco":
            inputs.append(-1 if cifg and g == "i" else add(f"{kind}_{g}", [units, cols]))
    inputs += [-1, -1, -1]  # no peepholes
    inputs += [-1 if cifg and g == "i" else add(f"bias_{g}", [units]) for g in "ifco"]
    inputs += [-1, -1]  # no projection
    inputs += [add("h", [1, units], False, True), add("c", [1, units], False, True)]
    inputs += [add(f"norm_{g}", [units]) if layer_norm else -1 for g in "ifco"]
    out = add("y", [1, 5, units], data=False)

    def options(b: object) -> int:
        tflite.UnidirectionalSequenceLSTMOptionsStart(b)
        tflite.UnidirectionalSequenceLSTMOptionsAddFusedActivationFunction(b, 4)  # TANH
        return tflite.UnidirectionalSequenceLSTMOptionsEnd(b)

    assert len(inputs) == 24
    return build_one_op(
        tflite.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM,
        tflite.BuiltinOptions.UnidirectionalSequenceLSTMOptions,
        options,
        tensors,
        inputs,
        [out],
        [0],
        [out],
    )


@pytest.mark.parametrize(
    ("variant", "why"),
    [
        ({}, None),
        ({"cifg": True}, "CIFG (coupled input and forget gates, no input-gate weights: i = 1 − f)"),
        (
            {"layer_norm": True},
            "layer normalisation (inputs 20-23) is not in this description of an LSTM",
        ),
    ],
)
def test_cifg_and_layer_norm_are_listed_with_why(
    tmp_path: Path, variant: dict[str, bool], why: str | None
) -> None:
    path = tmp_path / "one.tflite"
    path.write_bytes(_unidirectional(**variant))
    model = tflite_rnn.read(path)
    name = "UNIDIRECTIONAL_SEQUENCE_LSTM_0"
    if why is None:  # the control: the same operator without them is read
        assert [c.name for c in model.cells] == [name] and model.other == ()
        return
    assert model.cells == ()
    assert model.other == (
        f"{name}: LSTM (TFLite UNIDIRECTIONAL_SEQUENCE_LSTM), not analysed: {why}",
    )


def test_unknown_suffix_message_is_the_issues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "model.mlmodel"
    odd.write_bytes(b"\x00\x01binary")
    assert main(["build", str(odd), "-q"]) == 1
    assert capsys.readouterr().err == (
        f"error: {odd}: not a format lstm-report reads (it reads .keras, .h5, .hdf5, .pt, "
        ".pth, .safetensors, .onnx, .tflite, .yaml, .yml)\n"
    )


def test_missing_tflite_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tflite", None)
    with pytest.raises(
        ModelLoadError,
        match=r"^lstm_float.tflite: reading TFLite needs the tflite package: "
        r"pip install 'lstm-report\[tflite\]'$",
    ):
        tflite_rnn.read(FIX / "lstm_float.tflite")


def test_read_without_tensorflow_or_a_tflite_runtime(tmp_path: Path) -> None:
    """Every TFLite and ONNX-graph fixture read, and a page built, with TensorFlow, Keras,
    the TFLite runtimes (tflite_runtime, ai_edge_litert), torch and onnxruntime made
    unimportable: only the tflite schema package and onnx are used."""
    import os
    import subprocess
    import sys

    code = f"""
import sys
for m in ("tensorflow", "keras", "tflite_runtime", "ai_edge_litert", "torch", "onnxruntime"):
    sys.modules[m] = None
from pathlib import Path
from lstm_report.readers.frameworks import read_framework
fix = Path({str(FIXTURES)!r})
for f in ["lstm_float", "lstm_int8", "gru_while", "lstm_bidi_peephole", "lstm_projection",
          "lstm_16x8", "lstm_int8_per_channel"]:
    w = read_framework(fix / "tflite" / (f + ".tflite"), "tflite", name=f, where="m")
    assert w.layers or w.others, f
for f in ["lstm_folded", "lstm_initial", "if_branches", "loop_gru", "peephole"]:
    w = read_framework(fix / "onnx_graphs" / (f + ".onnx"), "onnx", name=f, where="m")
    assert w.layers or w.others, f
from lstm_report.cli import main
assert main(["build", "-q", str(fix / "tflite" / "lstm_float.tflite"),
             "-o", {str(tmp_path / "r.html")!r}]) == 0
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(FIXTURES.parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
