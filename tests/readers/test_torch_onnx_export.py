"""ONNX files written by torch.onnx.export itself (both exporters), against torch's own
weights and outputs.

tests/fixtures/torch_onnx/ was written by make_torch_onnx_fixtures.py with torch 2.13 (the
legacy TorchScript exporter, dynamo=False, and the dynamo exporter with its defaults, weights
in an external data file); these tests need the onnx package only. Each file holds a
2-layer nn.LSTM (bidirectional, batch first) or a 2-layer nn.GRU (steps first) and a Linear
head on the last step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_report.analysis.model import analyse_model
from lstm_report.analysis.model_replay import model_forward
from lstm_report.cells.base import CellWeights
from lstm_report.cells.kinds import replay_layers
from lstm_report.config.resolve import model_plan
from lstm_report.config.schema import ModelSpec, ProbeSpec
from lstm_report.model.layers import ModelWeights
from lstm_report.readers.dispatch import read_model
from lstm_report.readers.frameworks import read_framework
from tests.helpers import FIXTURES

pytest.importorskip("onnx")
FIX = FIXTURES / "torch_onnx"
ATOL = 1e-5
FILES = ["lstm_legacy", "lstm_dynamo", "gru_legacy", "gru_dynamo"]
H = 4
TORCH_ROWS = {"LSTM": {"i": 0, "f": 1, "c": 2, "o": 3}, "GRU": {"r": 0, "z": 1, "h": 2}}
"""Which block of torch's stacked rows each gate is: LSTM i,f,g,o; GRU r,z,n."""


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIX / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _read(file: str) -> ModelWeights:
    return read_framework(FIX / f"{file}.onnx", "onnx", name=file, where="models[0]")


def _cells(weights: ModelWeights) -> list[CellWeights]:
    return [w.cell for w in weights.layers]


@pytest.mark.parametrize("file", FILES)
def test_every_layer_is_read_in_place(file: str) -> None:
    weights = _read(file)
    kind, exporter = file.split("_")
    two_way = kind == "lstm"
    assert [w.direction for w in weights.layers] == (
        ["forward", "backward"] * 2 if two_way else ["forward"] * 2
    )
    names = list(dict.fromkeys(w.name for w in weights.layers))
    assert len(names) == 2
    if exporter == "legacy":  # the TorchScript exporter names nodes by module path
        assert names == [f"/rnn/{kind.upper()}", f"/rnn/{kind.upper()}_1"]
    first, second = (tuple(w for w in weights.layers if w.name == n) for n in names)
    assert all(w.reads_input and w.source is None for w in first)
    assert all(not w.reads_input and w.source == names[0] for w in second)
    assert {(w.cell.kind, w.cell.units) for w in weights.layers} == {(kind.upper(), H)}
    assert [w.cell.input_dim for w in (first[0], second[0])] == [3, 2 * H if two_way else H]
    assert all(w.cell.notes == () for w in weights.layers)  # zero states: nothing to note
    if kind == "gru":
        assert all(w.cell.reset_after for w in weights.layers)  # linear_before_reset=1
    # every stored tensor counts: the recurrent weights, the head, the exporters' constants
    assert weights.total_params > sum(v.size for v in _torch_state(kind).values())


def _torch_state(kind: str) -> dict[str, np.ndarray]:
    with np.load(FIX / "expected.npz") as z:
        return {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(f"{kind}/rnn.")}


@pytest.mark.parametrize("file", FILES)
def test_each_gate_is_torchs_block(file: str, expected: dict[str, np.ndarray]) -> None:
    """torch stores LSTM rows i,f,g,o and GRU rows r,z,n; ONNX LSTM i,o,f,c and GRU z,r,h.
    Every gate read from the ONNX file is torch's own block, transposed."""
    kind = file.split("_")[0]
    names = list(dict.fromkeys(c.name for c in _cells(_read(file))))
    for cell in _cells(_read(file)):
        suffix = f"l{names.index(cell.name)}" + ("_reverse" if cell.direction == "backward" else "")

        def torch(key: str, block: int) -> np.ndarray:
            return expected[f"{kind}/rnn.{key}_{suffix}"][block * H : (block + 1) * H]

        for gate in cell.gates:
            k = TORCH_ROWS[cell.kind][gate.gate]
            np.testing.assert_array_equal(gate.W, torch("weight_ih", k).T)
            np.testing.assert_array_equal(gate.U, torch("weight_hh", k).T)
            np.testing.assert_array_equal(gate.b, torch("bias_ih", k))
            np.testing.assert_array_equal(gate.b_rec, torch("bias_hh", k))


@pytest.mark.parametrize("file", FILES)
def test_layer_replay_matches_torch(file: str, expected: dict[str, np.ndarray]) -> None:
    kind = file.split("_")[0]
    out, traces = replay_layers(_cells(_read(file)), expected["x"])
    np.testing.assert_allclose(out, expected[f"{kind}/out"], atol=ATOL)
    h_n = np.stack([t.h_last for t in traces])  # layer by layer, forward first: as torch
    np.testing.assert_allclose(h_n, expected[f"{kind}/h_n"], atol=ATOL)
    if kind == "lstm":
        c_n = np.stack([t.c_last for t in traces])
        np.testing.assert_allclose(c_n, expected[f"{kind}/c_n"], atol=ATOL)
    # outputs far from zero: a wrong gate order could not pass within ATOL
    assert np.abs(out).max() > 0.1


@pytest.mark.parametrize("file", FILES)
def test_whole_graph_predicts_what_torch_predicts(
    file: str, expected: dict[str, np.ndarray]
) -> None:
    """The exporters build the zero initial states at run time (ConstantOfShape, Expand over
    the input's shape) and the dynamo exporter keeps weights in a data file: the run leaves
    the zero states out (ONNX's default) and copies the checked weights in."""
    kind = file.split("_")[0]
    weights = _read(file)
    forward, note = model_forward(weights)
    assert forward is not None, note
    x = expected["x"]
    np.testing.assert_allclose(forward(x), expected[f"{kind}/pred"], atol=ATOL)
    # the batch is a dynamic axis: one sequence runs too
    np.testing.assert_allclose(forward(x[1:2]), expected[f"{kind}/pred"][1:2], atol=ATOL)
    if file != "gru_dynamo":  # its exporter fixed the steps at 6 in a Reshape (the docstring)
        assert forward(x[:, :4]).shape == (len(x), 2)


@pytest.mark.parametrize("file", ["lstm_dynamo", "gru_legacy"])
def test_importance_on_the_prediction_is_torchs_occlusion(
    file: str, expected: dict[str, np.ndarray]
) -> None:
    kind = file.split("_")[0]
    path = FIX / f"{file}.onnx"
    spec = ModelSpec(index=0, path=path, name=path.name, probe=ProbeSpec(path=path))
    weights = read_model(spec, "direct")
    x = expected["x"]
    m = analyse_model(model_plan(spec, weights), weights, 0, probe=x)
    imp = m.input_importance
    assert imp is not None and imp.target == "model_output" and imp.target_reason is None
    base = expected[f"{kind}/pred"].astype(np.float64)
    for j, feature in enumerate(imp.features):
        occluded = expected[f"{kind}/pred_occluded"][j].astype(np.float64)
        assert feature.value == pytest.approx(float(np.mean((occluded - base) ** 2)), rel=1e-4)
    # the second layer's probe input is the first layer's output, as the graph feeds it
    first = [w.cell for w in weights.layers if w.name == weights.layers[0].name]
    want, _ = replay_layers(first, x)
    np.testing.assert_allclose(m.layers[-1].probe_inputs, want, atol=ATOL)


def test_external_weights_are_read_only_from_the_models_data_file(tmp_path: Path) -> None:
    """The whole-graph run reads the data file as the reader does: a renamed data file is
    refused, naming the file the model expects."""
    from lstm_report.errors import ModelLoadError

    (tmp_path / "m.onnx").write_bytes((FIX / "lstm_dynamo.onnx").read_bytes())
    (tmp_path / "lstm_dynamo.onnx.data").write_bytes((FIX / "lstm_dynamo.onnx.data").read_bytes())
    with pytest.raises(ModelLoadError, match="not the data file made for the model"):
        read_framework(tmp_path / "m.onnx", "onnx", name="m", where="models[0]")


def test_each_external_tensor_is_read_as_itself() -> None:
    """protobuf hands out a new wrapper on each access to a repeated field: a cache keyed
    by a freed wrapper's id returned another tensor's array (a (2, 16, 4) R for a W)."""
    import onnx

    from lstm_report.readers.onnx.tensors import ExternalData

    path = FIX / "lstm_dynamo.onnx"
    model = onnx.load(str(path), load_external_data=False)
    external = ExternalData(path, model, False)
    count = len(model.graph.initializer)
    shapes = [external.read(model.graph.initializer[k]).shape for k in range(count)]
    assert shapes == [tuple(model.graph.initializer[k].dims) for k in range(count)]
    full = onnx.load(str(path))  # onnx's own read of the data file
    for k in range(count):
        want = onnx.numpy_helper.to_array(full.graph.initializer[k])
        np.testing.assert_array_equal(external.read(model.graph.initializer[k]), want)
