"""ONNX LSTMs and GRUs whose weights are computed from stored constants, inside If branches,
and converted RNNs written as Loops, against onnx.reference.ReferenceEvaluator's outputs.

tests/fixtures/onnx_graphs/ was written by make_onnx_graph_fixtures.py with onnx.helper and
the evaluator; reading needs the onnx package only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lstm_report.cells.base import CellWeights
from lstm_report.cells.kinds import equations, replay
from lstm_report.errors import ModelLoadError
from lstm_report.readers.frameworks import read_framework
from lstm_report.readers.onnx import graph as onnx_graph
from lstm_report.readers.onnx import rnn as onnx_rnn
from lstm_report.readers.onnx.cells import rnn_cells
from tests.helpers import FIXTURES

onnx = pytest.importorskip("onnx")
FIX = FIXTURES / "onnx_graphs"
ATOL = 1e-5


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIX / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _check_replay(cell: CellWeights, x: np.ndarray, y: np.ndarray) -> None:
    """ONNX's Y is [seq, dirs, batch, H]; the replay's h is (batch, seq, H)."""
    trace = replay(cell, x.transpose(1, 0, 2))
    np.testing.assert_allclose(trace.h, y[:, 0].transpose(1, 0, 2), atol=ATOL)


def test_weights_folded_from_constants(expected: dict[str, np.ndarray]) -> None:
    (cell,) = onnx_rnn.read(FIX / "lstm_folded.onnx").cells
    (want,) = rnn_cells(
        "LSTM",
        expected["folded/W"],
        expected["folded/R"],
        expected["folded/B"],
        name="x",
        where="t",
    )
    for got, ref in zip(cell.stacked(), want.stacked()):
        np.testing.assert_array_equal(got, ref)
    _check_replay(cell, expected["X"], expected["folded/Y"])
    trace = replay(cell, expected["X"].transpose(1, 0, 2))
    np.testing.assert_allclose(trace.c_last, expected["folded/Y_c"][0], atol=ATOL)
    # initial_h and initial_c are ConstantOfShape zeros of a run-time shape: no note
    assert cell.notes == ()


def test_stored_nonzero_initial_state_is_still_noted() -> None:
    (cell,) = onnx_rnn.read(FIX / "lstm_initial.onnx").cells
    assert cell.notes == ("initial_h comes from 'h0'; the replay starts from zeros",)


def _lstm_model(nodes: list, inits: list) -> onnx.ModelProto:
    from onnx import TensorProto, helper

    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 2, 3])
    Y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [5, 1, 2, 4])
    nodes = nodes + [helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=4)]
    graph = helper.make_graph(nodes, "g", [X], [Y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _weights(rng: np.random.Generator) -> list:
    from onnx import numpy_helper

    return [
        numpy_helper.from_array(rng.normal(size=(1, 16, 3)).astype(np.float32), "W0"),
        numpy_helper.from_array(rng.normal(size=(1, 16, 4)).astype(np.float32), "R"),
    ]


def test_an_op_outside_the_allow_list_is_not_folded(tmp_path: Path) -> None:
    from onnx import helper

    model = _lstm_model(
        [helper.make_node("Add", ["W0", "W0"], ["W"])], _weights(np.random.default_rng(0))
    )
    onnx.save(model, tmp_path / "add.onnx")
    with pytest.raises(ModelLoadError, match=r"W comes from 'W'.*Add node .*not folded"):
        onnx_rnn.read(tmp_path / "add.onnx")


def test_a_deep_chain_is_refused_without_recursion_error(tmp_path: Path) -> None:
    from onnx import helper

    chain = [helper.make_node("Identity", [f"W{k}"], [f"W{k + 1}"]) for k in range(500)]
    chain.append(helper.make_node("Identity", ["W500"], ["W"]))
    model = _lstm_model(chain, _weights(np.random.default_rng(0)))
    onnx.save(model, tmp_path / "deep.onnx")
    with pytest.raises(ModelLoadError, match="more than 64 ops from stored constants"):
        onnx_rnn.read(tmp_path / "deep.onnx")


def test_folded_size_is_checked_before_allocating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Gather whose indices would blow a stored row up: refused from the shapes."""
    from onnx import helper, numpy_helper

    idx = numpy_helper.from_array(np.zeros((1000, 1000), np.int64), "idx")
    nodes = [
        helper.make_node("Gather", ["W0", "idx"], ["big"], axis=1),
        helper.make_node("Identity", ["big"], ["W"]),
    ]
    model = _lstm_model(nodes, [*_weights(np.random.default_rng(0)), idx])
    onnx.save(model, tmp_path / "big.onnx")
    monkeypatch.setattr(onnx_graph, "MAX_FOLD_ELEMENTS", 1_000_000)
    with pytest.raises(ModelLoadError, match="would make 3000000 elements"):
        onnx_rnn.read(tmp_path / "big.onnx")


def test_if_branches_are_walked_and_named(expected: dict[str, np.ndarray]) -> None:
    model = onnx_rnn.read(FIX / "if_branches.onnx")
    assert [c.name for c in model.cells] == ["sr/then/LSTM_0", "sr/else/GRU_0"]
    lstm, gru = model.cells
    _check_replay(lstm, expected["X"], expected["if/then/Y"])
    # the else branch's GRU reads the main graph's initializers (ONNX's outer scope)
    assert gru.reset_after is True
    _check_replay(gru, expected["X"], expected["if/else/Y"])


def test_a_loop_that_is_a_gru_is_listed_with_a_note() -> None:
    weights = read_framework(FIX / "loop_gru.onnx", "onnx", name="m", where="models[0]")
    (other,) = weights.others
    assert (other.name, other.kind) == ("gru_loop", "GRU")
    assert other.note is not None and "converted GRU" in other.note and "tf2onnx" in other.note


def test_peepholes_replay_matches_the_reference_evaluator(
    expected: dict[str, np.ndarray],
) -> None:
    (cell,) = onnx_rnn.read(FIX / "peephole.onnx").cells
    x = expected["X"]
    _check_replay(cell, x, expected["peep/Y"])
    trace = replay(cell, x.transpose(1, 0, 2))
    np.testing.assert_allclose(trace.h_last, expected["peep/Y_h"][0], atol=ATOL)
    np.testing.assert_allclose(trace.c_last, expected["peep/Y_c"][0], atol=ATOL)
    # The control: without its peepholes, or with P_f and P_o swapped, the cell differs.
    for peepholes in (None, cell.peepholes[[0, 2, 1]]):
        other = replace(cell, peepholes=peepholes)
        got = replay(other, x.transpose(1, 0, 2)).h
        assert np.abs(got - expected["peep/Y"][:, 0].transpose(1, 0, 2)).max() > 1e-3
    text = " ".join(equations(cell))
    assert "P_i ⊙ c_(t−1)" in text and "P_f ⊙ c_(t−1)" in text and "P_o ⊙ c_t)" in text


def test_peepholes_get_statistics_in_the_report(
    tmp_path: Path, expected: dict[str, np.ndarray]
) -> None:
    import json

    from lstm_report.cli import main

    out = tmp_path / "r.json"
    args = ["build", str(FIX / "peephole.onnx"), "-o", str(tmp_path / "r.html")]
    assert main([*args, "--json", str(out), "-q"]) == 0
    (layer,) = json.loads(out.read_text())["models"][0]["layers"]
    P = expected["peep/P"][0].astype(np.float64)
    h = 4
    for name, row in (("P_i", P[:h]), ("P_f", P[2 * h :]), ("P_o", P[h : 2 * h])):
        stats = layer["peepholes"][name]
        assert stats["shape"] == [h]
        assert stats["max_abs"] == pytest.approx(np.abs(row).max(), rel=1e-6)
        assert stats["mean"] == pytest.approx(row.mean(), rel=1e-6, abs=1e-9)
    assert "P_o ⊙ c_t" in " ".join(layer["equations"])
    assert "Peepholes" in (tmp_path / "r.html").read_text()


def test_an_unreadable_lstm_in_a_loop_body_is_listed_not_fatal(tmp_path: Path) -> None:
    """Its W is carried through the loop (a body input): only known at run time."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    body = helper.make_graph(
        [
            helper.make_node("LSTM", ["X", "w_in", "R"], ["y"], hidden_size=4),
            helper.make_node("Identity", ["c"], ["c_out"]),
            helper.make_node("Identity", ["w_in"], ["w_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("w_in", TensorProto.FLOAT, [1, 16, 3]),
        ],
        [
            helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("w_out", TensorProto.FLOAT, [1, 16, 3]),
        ],
    )
    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [5, 2, 3])
    Y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [5, 1, 2, 4])
    Yw = helper.make_tensor_value_info("w_final", TensorProto.FLOAT, [1, 16, 3])
    inits = [
        *_weights(rng),
        numpy_helper.from_array(rng.normal(size=(1, 16, 3)).astype(np.float32), "W"),
        numpy_helper.from_array(np.array(2, np.int64), "n"),
        numpy_helper.from_array(np.array(True), "t"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=4, name="main"),
            helper.make_node("Loop", ["n", "t", "W0"], ["w_final"], body=body, name="lp"),
        ],
        "g",
        [X],
        [Y, Yw],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "loop.onnx")
    found = onnx_rnn.read(tmp_path / "loop.onnx")
    assert [c.name for c in found.cells] == ["main"]
    (other,) = found.other
    assert other.startswith("lp/body/LSTM_0: LSTM (ONNX, in a subgraph), not analysed: W comes")
    assert "graph input, computed at run time" in other


def test_whole_graph_runs_without_its_run_time_zero_state(expected: dict[str, np.ndarray]) -> None:
    """lstm_folded's initial states are ConstantOfShape zeros (not run): left out, the graph
    computes what the evaluator computed with them. Its outputs are Y, Y_h, Y_c: Y is taken."""
    from lstm_report.analysis.model_replay import model_forward

    weights = read_framework(FIX / "lstm_folded.onnx", "onnx", name="m", where="models[0]")
    forward, note = model_forward(weights)
    assert forward is not None and note == "the graph's first output 'Y' (of 3)"
    got = forward(expected["X"].transpose(1, 0, 2))  # sequences first, as the probe
    np.testing.assert_allclose(np.moveaxis(got, 0, 2), expected["folded/Y"], atol=ATOL)


def test_whole_graph_keeps_a_stored_nonzero_initial_state() -> None:
    """lstm_initial's initial_h is a stored non-zero h0: the graph that is run keeps it
    (while lstm_folded's zero states are left out, and the nodes that built them)."""
    kept = read_framework(FIX / "lstm_initial.onnx", "onnx", name="m", where="models[0]")
    assert kept.graph is not None and kept.graph.onnx is not None
    (node,) = onnx.load_from_string(kept.graph.onnx).graph.node
    assert list(node.input) == ["X", "W", "R", "B", "", "h0"]
    left = read_framework(FIX / "lstm_folded.onnx", "onnx", name="m", where="models[0]")
    assert left.graph is not None and left.graph.onnx is not None
    run = onnx.load_from_string(left.graph.onnx).graph
    (lstm,) = [n for n in run.node if n.op_type == "LSTM"]
    assert list(lstm.input)[4:] == ["", "", ""]
    assert not {"ConstantOfShape", "Shape"} & {n.op_type for n in run.node}


def test_a_nonzero_state_of_a_computed_shape_still_stops_the_run(tmp_path: Path) -> None:
    """ConstantOfShape of ones is not ONNX's default state: it stays, and is not run."""
    from onnx import numpy_helper

    from lstm_report.analysis.model_replay import model_forward

    model = onnx.load(str(FIX / "lstm_folded.onnx"))
    (node,) = [n for n in model.graph.node if n.op_type == "ConstantOfShape"]
    node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.ones(1, np.float32)))
    onnx.save(model, str(tmp_path / "ones.onnx"))
    weights = read_framework(tmp_path / "ones.onnx", "onnx", name="m", where="models[0]")
    assert weights.layers[0].cell.notes[0].startswith("initial_h comes from 'zeros'")
    forward, why = model_forward(weights)
    assert forward is None
    assert why == "numpy stops: ConstantOfShape node '' is not among the operators run"


# --- 3. each folded op against onnx's own reference implementation ------------------------------

_A = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4) - 5.5  # Squeeze [1]: not both


def _ints(name: str, values: list[int]) -> object:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.array(values, np.int64), name)


_FOLD_CASES = {
    "Identity": ([], {}),
    "Cast": ([], {"to": 10}),  # FLOAT16
    "Reshape": ([_ints("s", [0, -1, 2])], {}),
    "Squeeze": ([_ints("ax", [1])], {}),
    "Unsqueeze": ([_ints("ax", [0, -1])], {}),
    "Transpose": ([], {"perm": [3, 0, 2, 1]}),
    "Concat": ([], {"axis": 2}),  # A with itself
    "Slice": (
        [_ints("st", [2, -1]), _ints("en", [0, -9223372036854775807]), _ints("ax", [3, 2])],
        {},
    ),
    "Gather": ([_ints("ix", [[2, -1], [0, 0]])], {"axis": 2}),
    "Split": ([_ints("sz", [1, 3])], {"axis": 3}),
}


@pytest.mark.parametrize("op", sorted(_FOLD_CASES))
def test_each_folded_op_is_the_reference_evaluators(op: str) -> None:
    """Every op of the allow-list, folded over a stored constant, equals what
    onnx.reference.ReferenceEvaluator computes for the same node (opset 17)."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    assert set(_FOLD_CASES) == set(onnx_graph.FOLDED_OPS)
    extra, attrs = _FOLD_CASES[op]
    if op == "Slice":  # steps: -1 on both axes
        extra = [*extra, _ints("sp", [-1, -1])]
    names = ["A", *(t.name for t in extra)]  # type: ignore[attr-defined]
    if op == "Concat":
        names = ["A", "A"]
    outs = ["y0", "y1"] if op == "Split" else ["y0"]
    node = helper.make_node(op, names, outs, name="n", **attrs)
    inits = [numpy_helper.from_array(_A, "A"), *extra]
    graph = helper.make_graph(
        [node],
        "fold",
        [],
        [helper.make_tensor_value_info(o, 0, None) for o in outs],
        inits,  # type: ignore[arg-type]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    want = ReferenceEvaluator(model).run(None, {})
    values = onnx_graph.Values(model.graph, numpy_helper.to_array)
    for name, ref in zip(outs, want):
        got = values.get(name)
        assert got.dtype == ref.dtype and got.shape == ref.shape, (got.shape, ref.shape)
        np.testing.assert_array_equal(got, ref)


# --- 5. Loops and Scans that may be converted RNNs ------------------------------------------------


def test_a_converted_loop_reaches_json_and_page(tmp_path: Path) -> None:
    """The Loop is in the JSON's `not_analysed` (not `[]`) and on the page, with its note."""
    import json

    from lstm_report.cli import main

    html, js = tmp_path / "l.html", tmp_path / "l.json"
    args = ["build", "-q", str(FIX / "loop_gru.onnx"), "-o", str(html), "--json", str(js)]
    assert main(args) == 0
    (entry,) = json.loads(js.read_text())["models"][0]["not_analysed"]
    assert (entry["name"], entry["kind"]) == ("gru_loop", "GRU")
    assert entry["note"].startswith("ONNX Loop, not analysed: its body (6 matrix products, 2 ")
    assert "<strong>gru_loop</strong> (GRU): ONNX Loop, not analysed" in html.read_text()


def _scan_model(body_ops: list[str]) -> onnx.ModelProto:
    """A Scan over X's steps whose body applies ``body_ops`` in a chain to x_t·Wx + h."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("MatMul", ["x_t", "Wx"], ["a0"]),
        helper.make_node("Add", ["a0", "h"], ["v0"]),
    ]
    for k, op in enumerate(body_ops):
        nodes.append(helper.make_node(op, [f"v{k}"], [f"v{k + 1}"]))
    nodes += [
        helper.make_node("Identity", [f"v{len(body_ops)}"], ["h_next"]),
        helper.make_node("Identity", [f"v{len(body_ops)}"], ["y_t"]),
    ]
    info = helper.make_tensor_value_info
    body = helper.make_graph(
        nodes,
        "step",
        [info("h", TensorProto.FLOAT, [2, 4]), info("x_t", TensorProto.FLOAT, [2, 3])],
        [info("h_next", TensorProto.FLOAT, [2, 4]), info("y_t", TensorProto.FLOAT, [2, 4])],
    )
    rng = np.random.default_rng(2)
    inits = [
        numpy_helper.from_array(rng.normal(size=(3, 4)).astype(np.float32), "Wx"),
        numpy_helper.from_array(np.zeros((2, 4), np.float32), "h0"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node(
                "Scan", ["h0", "X"], ["h_last", "Y"], body=body, num_scan_inputs=1, name="rnn"
            )
        ],
        "g",
        [info("X", TensorProto.FLOAT, [5, 2, 3])],
        [info("h_last", TensorProto.FLOAT, [2, 4]), info("Y", TensorProto.FLOAT, [5, 2, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    ("ops", "kind"),
    [
        (["Sigmoid", "Sigmoid", "Sigmoid", "Tanh", "Tanh"], "LSTM"),
        (["Sigmoid", "Sigmoid", "Tanh"], "GRU"),
        (["Sigmoid"], "RNN"),
    ],
)
def test_a_scan_that_may_be_an_rnn_is_listed(tmp_path: Path, ops: list[str], kind: str) -> None:
    from onnx.reference import ReferenceEvaluator

    model = _scan_model(ops)
    x = np.random.default_rng(3).normal(size=(5, 2, 3)).astype(np.float32)
    assert ReferenceEvaluator(model).run(None, {"X": x})[1].shape == (5, 2, 4)  # a valid Scan
    onnx.save(model, tmp_path / "scan.onnx")
    weights = read_framework(tmp_path / "scan.onnx", "onnx", name="m", where="models[0]")
    (other,) = weights.others
    assert (other.name, other.kind) == ("rnn", kind)
    assert other.note is not None
    assert other.note.startswith("ONNX Scan, not analysed: its body (1 matrix product")
    assert f"looks like a converted {kind}" in other.note


def test_a_scan_without_gates_is_not_listed(tmp_path: Path) -> None:
    """The control: a Scan of matrix products and no sigmoid (a running sum, say) is not
    taken for a recurrent layer, so the file holds none."""
    onnx.save(_scan_model(["Tanh", "Relu"]), tmp_path / "sum.onnx")
    with pytest.raises(ModelLoadError, match="no LSTM or GRU node"):
        read_framework(tmp_path / "sum.onnx", "onnx", name="m", where="models[0]")


def test_an_unnamed_if_names_its_branches_by_op_and_index(tmp_path: Path) -> None:
    """As silero's exports: If nodes without a name give ``If_0/then/...``."""
    model = onnx.load(str(FIX / "if_branches.onnx"))
    (node,) = [n for n in model.graph.node if n.op_type == "If"]
    index = list(model.graph.node).index(node)
    node.name = ""
    onnx.save(model, str(tmp_path / "unnamed.onnx"))
    names = [c.name for c in onnx_rnn.read(tmp_path / "unnamed.onnx").cells]
    assert names == [f"If_{index}/then/LSTM_0", f"If_{index}/else/GRU_0"]
