"""The neutral cell description and its numpy replays, proven against real Keras layers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cells.base import GRU_GATES, LSTM_GATES, CellWeights, GateWeights
from lstm_report.cells.gru import from_keras_gru, split_keras_gru
from lstm_report.cells.kinds import replay, replay_layers
from lstm_report.cells.lstm import from_keras_lstm, split_keras_lstm
from lstm_report.errors import AnalysisError
from lstm_report.model.layers import RecurrentLayer
from tests.helpers import REPO

ATOL = 1e-5


def _randomised(layer: Any, input_dim: int, seed: int) -> Any:
    layer.build((None, None, input_dim))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0, 0.6, w.shape).astype("float32") for w in layer.get_weights()])
    return layer


def _x(seed: int, steps: int = 7, input_dim: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, steps, input_dim)).astype("float32")


def _keras_out(layer: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(layer(x))


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_keras_gru_replay_matches_keras(keras: Any, reset_after: bool, go_backwards: bool) -> None:
    layer = _randomised(
        keras.layers.GRU(
            4, return_sequences=True, reset_after=reset_after, go_backwards=go_backwards
        ),
        3,
        seed=11 + reset_after,
    )
    kernel, rk, bias = layer.get_weights()
    assert bias.shape == ((2, 12) if reset_after else (12,))
    cell = from_keras_gru(
        kernel,
        rk,
        bias,
        reset_after=reset_after,
        name="gru",
        direction="backward" if go_backwards else "forward",
    )
    x = _x(5)
    trace = replay(cell, x, keep_gates=True)
    want = _keras_out(layer, x)
    # A lone go_backwards layer returns its outputs in reading order; the replay aligns them
    # with the input.
    got = trace.h[:, ::-1] if go_backwards else trace.h
    np.testing.assert_allclose(got, want, atol=ATOL)
    np.testing.assert_allclose(trace.h_last, want[:, -1], atol=ATOL)
    assert set(trace.gates) == {"z", "r", "h"}
    assert trace.c is None


@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_gru_read_with_the_other_reset_convention_does_not_match(
    keras: Any, reset_after: bool
) -> None:
    layer = _randomised(
        keras.layers.GRU(4, return_sequences=True, reset_after=reset_after), 3, seed=21
    )
    kernel, rk, bias = layer.get_weights()
    cell = from_keras_gru(kernel, rk, bias, reset_after=reset_after, name="gru")
    wrong = replace(cell, reset_after=not reset_after)
    x = _x(6)
    assert not np.allclose(replay(wrong, x).h, _keras_out(layer, x), atol=1e-3)


def test_keras_gru_with_gates_swapped_does_not_match(keras: Any) -> None:
    """PyTorch's r,z order applied to Keras' z,r arrays must fail the comparison."""
    layer = _randomised(keras.layers.GRU(4, return_sequences=True), 3, seed=31)
    kernel, rk, bias = layer.get_weights()
    u = 4
    swap = np.r_[u : 2 * u, 0:u, 2 * u : 3 * u]
    cell = from_keras_gru(kernel[:, swap], rk[:, swap], bias[:, swap], reset_after=True, name="g")
    x = _x(7)
    assert not np.allclose(replay(cell, x).h, _keras_out(layer, x), atol=1e-3)


def test_keras_bidirectional_gru_through_replay_layers(keras: Any) -> None:
    bi = keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True))
    _randomised(bi, 2, seed=41)
    fw, bw = bi.forward_layer, bi.backward_layer
    cells = [
        from_keras_gru(*layer.get_weights(), reset_after=True, name="bi", direction=d)
        for layer, d in ((fw, "forward"), (bw, "backward"))
    ]
    x = _x(8, input_dim=2)
    out, traces = replay_layers(cells, x)
    np.testing.assert_allclose(out, np.asarray(bi(x)), atol=ATOL)
    assert [t.direction for t in traces] == ["forward", "backward"]


@pytest.mark.parametrize("use_bias", [True, False])
def test_keras_lstm_replay_matches_keras_and_the_layers_replay(keras: Any, use_bias: bool) -> None:
    layer = _randomised(keras.layers.LSTM(4, return_sequences=True, use_bias=use_bias), 3, 51)
    arrays = layer.get_weights()
    kernel, rk = arrays[0], arrays[1]
    bias = arrays[2] if use_bias else None
    cell = from_keras_lstm(kernel, rk, bias, name="lstm")
    x = _x(9)
    trace = replay(cell, x, keep_gates=True)
    np.testing.assert_allclose(trace.h, _keras_out(layer, x), atol=ATOL)
    layer_cell = RecurrentLayer.from_keras_arrays("lstm", "forward", kernel, rk, bias).cell
    old = replay(layer_cell, x, keep_gates=True, order="read")
    np.testing.assert_allclose(trace.h, old.h, atol=1e-12)
    np.testing.assert_allclose(trace.c, old.c, atol=1e-12)
    for g in "ifco":
        np.testing.assert_allclose(trace.gates[g], old.gates[g], atol=1e-12)


def test_keras_arrays_round_trip() -> None:
    rng = np.random.default_rng(0)
    k, rk = rng.normal(size=(3, 12)), rng.normal(size=(4, 12))
    b2 = rng.normal(size=(2, 12))
    cell = from_keras_gru(k, rk, b2, reset_after=True, name="g")
    for got, want in zip(cell.keras_arrays(), (k, rk, b2)):
        np.testing.assert_array_equal(got, want)
    b1 = rng.normal(size=12)
    cell = from_keras_gru(k, rk, b1, reset_after=False, name="g")
    np.testing.assert_array_equal(cell.keras_arrays()[2], b1)
    assert cell.gate("r").b_rec is None
    np.testing.assert_array_equal(cell.gate("r").b, b1[4:8])
    lk, lrk, lb = rng.normal(size=(3, 16)), rng.normal(size=(4, 16)), rng.normal(size=16)
    lstm = from_keras_lstm(lk, lrk, lb, name="l")
    np.testing.assert_array_equal(lstm.gate("c").W, lk[:, 8:12])
    for got, want in zip(lstm.keras_arrays(), (lk, lrk, lb)):
        np.testing.assert_array_equal(got, want)
    assert lstm.params == 3 * 16 + 4 * 16 + 16


def _lstm_cell(rng: np.random.Generator, n_in: int, units: int, proj: int | None) -> CellWeights:
    rec = proj or units
    gates = tuple(
        GateWeights(
            g,
            rng.normal(0, 0.5, (n_in, units)),
            rng.normal(0, 0.5, (rec, units)),
            rng.normal(0, 0.5, units),
            rng.normal(0, 0.5, units),
        )
        for g in LSTM_GATES
    )
    P = None if proj is None else rng.normal(0, 0.5, (units, proj))
    return CellWeights("l", "LSTM", "forward", gates, P=P)


def test_lstm_two_biases_and_projection_by_hand() -> None:
    """One step worked by hand: both biases added, h projected by P."""
    rng = np.random.default_rng(3)
    cell = _lstm_cell(rng, 2, 3, proj=2)
    assert cell.output_dim == 2 and cell.units == 3
    x = rng.normal(size=(1, 1, 2))

    def sig(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    pre = {g.gate: x[0, 0] @ g.W + g.b + g.b_rec for g in cell.gates}  # h_prev = 0
    c = sig(pre["i"]) * np.tanh(pre["c"])
    h = (sig(pre["o"]) * np.tanh(c)) @ cell.P
    trace = replay(cell, x)
    np.testing.assert_allclose(trace.c[0, 0], c, atol=1e-12)
    np.testing.assert_allclose(trace.h[0, 0], h, atol=1e-12)


def test_backward_cell_equals_forward_cell_on_the_flipped_input() -> None:
    rng = np.random.default_rng(4)
    cell = _lstm_cell(rng, 2, 3, proj=None)
    x = rng.normal(size=(2, 5, 2))
    fwd = replay(cell, x[:, ::-1])
    bwd = replay(replace(cell, direction="backward"), x)
    np.testing.assert_allclose(bwd.h, fwd.h[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(bwd.h_last, fwd.h_last, atol=1e-12)
    np.testing.assert_allclose(bwd.c_last, fwd.c_last, atol=1e-12)


def test_gru_gate_values_stay_in_range() -> None:
    rng = np.random.default_rng(5)
    k, rk = rng.normal(size=(2, 9)), rng.normal(size=(3, 9))
    cell = from_keras_gru(k, rk, None, reset_after=True, name="g")
    trace = replay(cell, rng.normal(size=(2, 4, 2)), keep_gates=True)
    for g in ("z", "r"):
        assert ((trace.gates[g] > 0) & (trace.gates[g] < 1)).all()
    assert (np.abs(trace.gates["h"]) < 1).all()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: split_keras_gru(
                np.zeros((2, 9)), np.zeros((3, 9)), np.zeros(9), reset_after=True, where="g"
            ),
            r"g: bias shape \(9,\) is not \(2, 9\) for reset_after=True",
        ),
        (
            lambda: split_keras_gru(
                np.zeros((2, 9)), np.zeros((3, 9)), np.zeros((2, 9)), reset_after=False, where="g"
            ),
            r"g: bias shape \(2, 9\) is not \(9,\)",
        ),
        (
            lambda: split_keras_gru(
                np.zeros((2, 9)), np.zeros((3, 12)), None, reset_after=True, where="g"
            ),
            r"g: recurrent kernel shape \(3, 12\) is not \(units, 3\*units\)",
        ),
        (
            lambda: split_keras_lstm(np.zeros((2, 8)), np.zeros((3, 12)), None, where="l"),
            r"l: kernel shape \(2, 8\) is not \(input_dim, 12\)",
        ),
    ],
)
def test_keras_splits_refuse_wrong_shapes(make: Any, match: str) -> None:
    with pytest.raises(AnalysisError, match=match):
        make()


def test_cell_weights_validate_themselves() -> None:
    rng = np.random.default_rng(6)
    lstm = _lstm_cell(rng, 2, 3, proj=None)
    with pytest.raises(
        AnalysisError, match=r"l \(forward\): gates \('z', 'r', 'h'\) are not LSTM's"
    ):
        replace(lstm, gates=tuple(replace(g, spec=k) for g, k in zip(lstm.gates, GRU_GATES)))
    with pytest.raises(AnalysisError, match="reset_after is set for GRUs, and only for them"):
        replace(lstm, reset_after=True)
    bad = replace(lstm.gates[1], U=np.zeros((2, 3)))
    with pytest.raises(
        AnalysisError, match=r"gate f: W \(2, 3\), U \(2, 3\) are not \(2, 3\), \(3, 3\)"
    ):
        replace(lstm, gates=(lstm.gates[0], bad, *lstm.gates[2:]))
    with pytest.raises(AnalysisError, match="cannot replay activation 'gelu'"):
        replay(replace(lstm, activation="gelu"), np.zeros((1, 2, 2)))
    with pytest.raises(AnalysisError, match=r"input shape \(1, 2, 5\) is not \(batch, steps, 2\)"):
        replay(lstm, np.zeros((1, 2, 5)))
    with pytest.raises(AnalysisError, match="has no Keras layout"):
        _lstm_cell(rng, 2, 3, proj=2).keras_arrays()


def test_flat_matmul_is_the_stacked_product_for_any_layout() -> None:
    from lstm_report.cells.base import flat_matmul

    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 7))
    for x in (
        rng.normal(size=(3, 4, 5)),
        rng.normal(size=(4, 3, 5)).transpose(1, 0, 2),  # not C-contiguous
        rng.normal(size=(2, 5)),
    ):
        got = flat_matmul(x, w)
        assert got.shape == x.shape[:-1] + (7,)
        np.testing.assert_allclose(got, np.einsum("...k,km->...m", x, w), rtol=1e-12)


def test_replay_of_a_transposed_recurrent_matrix_is_the_same() -> None:
    # PyTorch's U is weight_hh.T, a transposed view: replay makes it C order first (speed);
    # the trace is that of the same values laid out in C order.
    from lstm_report.cells.kinds import from_keras, replay

    rng = np.random.default_rng(1)
    k = rng.normal(0, 0.4, (3, 24)).astype(np.float32)
    u_t = rng.normal(0, 0.3, (24, 6)).astype(np.float32)
    x = rng.normal(size=(4, 5, 3)).astype(np.float32)
    a = replay(from_keras("LSTM", k, u_t.T, None, name="a"), x)
    b = replay(from_keras("LSTM", k, np.ascontiguousarray(u_t.T), None, name="b"), x)
    np.testing.assert_array_equal(a.h, b.h)


def test_a_backward_trace_in_read_order_is_the_input_order_flipped() -> None:
    rng = np.random.default_rng(4)
    k, rk = rng.normal(size=(2, 9)), rng.normal(0, 0.5, size=(3, 9))
    cell = from_keras_gru(k, rk, rng.normal(size=(2, 9)), reset_after=True, name="g")
    cell = replace(cell, direction="backward")
    x = rng.normal(size=(2, 5, 2))
    aligned = replay(cell, x, keep_gates=True)
    read = replay(cell, x, keep_gates=True, order="read")
    np.testing.assert_array_equal(read.h, aligned.h[:, ::-1])
    np.testing.assert_array_equal(read.gates["z"], aligned.gates["z"][:, ::-1])
    np.testing.assert_array_equal(read.h_last, aligned.h_last)
    np.testing.assert_array_equal(read.h_last, aligned.h[:, 0])  # the last step read
    assert read.in_order("input").h.tobytes() == aligned.h.tobytes()


def test_a_keras_layer_derives_its_arrays_from_its_cell() -> None:
    rng = np.random.default_rng(5)
    k, rk, b = rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), rng.normal(size=8)
    w = RecurrentLayer.from_keras_arrays("l", "forward", k, rk, b)
    # the gates are views of the arrays read: writing to one reaches the cell, as it always did
    assert w.kernel is k and np.shares_memory(w.cell.gate("f").W, k)
    assert [g.init_bias for g in w.cell.gates] == [None, 1.0, None, None]  # unit_forget_bias
    k2 = rng.normal(size=(3, 8))
    later = w.with_keras_arrays(k2, rk, b)
    np.testing.assert_array_equal(later.cell.gate("c").W, k2[:, 4:6])
    assert later.kernel is k2 and later.cell.gate("f").init_bias == 1.0
    assert (later.name, later.label, later.cell.name) == ("l", "l", "l")
    # and, without the arrays read (pickled to a worker), the same arrays from the gates
    again = RecurrentLayer("l", "forward", w.cell)
    for got, want in zip((again.kernel, again.recurrent_kernel, again.bias), (k, rk, b)):
        np.testing.assert_array_equal(got, want)
    assert again.kernel is not k


def test_a_framework_layer_holds_the_cell_as_read() -> None:
    # No re-stacking and no summed biases: the layer's cell is the reader's; Keras' layout of
    # a PyTorch GRU's two biases is the (2, 3u) one of reset_after.
    from lstm_report.model.layers import RecurrentModel
    from lstm_report.readers.frameworks import framework_model

    rng = np.random.default_rng(6)
    gates = tuple(
        GateWeights(spec=g, W=rng.normal(size=(2, 3)), U=rng.normal(size=(3, 3)), b=b, b_rec=r)
        for g, b, r in ((g, rng.normal(size=3), rng.normal(size=3)) for g in GRU_GATES)
    )
    cell = CellWeights("gru.l0", "GRU", "forward", gates, reset_after=True)
    found = RecurrentModel(source="a.pt", framework="PyTorch state dict", cells=(cell,))
    (w,) = framework_model(found, Path("a.pt"), "a", "pytorch").layers
    assert w.cell is cell and w.framework == "PyTorch" and w.kind == "GRU"
    assert w.bias is not None and w.bias.shape == (2, 9)
    np.testing.assert_array_equal(w.bias[1], np.concatenate([g.b_rec for g in gates]))
    assert w.reads_input and w.return_sequences and not w.go_backwards


def test_cells_base_knows_no_kind_and_the_package_imports_its_modules() -> None:
    # base.py is imported by lstm.py and gru.py: importing them back would be a cycle.
    import ast

    cells = REPO / "lstm_report" / "cells"
    for path in cells.glob("*.py"):
        imported = {
            n.module
            for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(n, ast.ImportFrom) and n.module
        }
        assert "lstm_report.cells" not in imported, path.name  # never the package itself
        if path.name == "base.py":
            assert not imported & {"lstm_report.cells.lstm", "lstm_report.cells.gru"}
