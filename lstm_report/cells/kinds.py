"""What differs by cell kind: replay, Keras split and equations, dispatched to lstm.py, gru.py.

base.py knows nothing of the kinds' modules; they import it, and this module imports all
three, so the package imports in one direction only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lstm_report.cells.base import CellTrace, CellWeights, Direction, Kind, Order
from lstm_report.cells.gru import from_keras_gru, gru_equations, replay_gru
from lstm_report.cells.lstm import from_keras_lstm, lstm_equations, replay_lstm
from lstm_report.errors import AnalysisError


def replay(
    cell: CellWeights,
    x: np.ndarray,
    *,
    keep_gates: bool = False,
    dtype: type = np.float64,
    mask: np.ndarray | None = None,
    order: Order = "input",
    initial: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> CellTrace:
    """Run one cell in numpy on x (batch, steps, input_dim) from a zero state, or from
    ``initial`` = (h0, c0) (c0 None for a GRU): the state before the first step read.

    ``mask`` (batch, steps), as Keras masks: at a masked step the state and the output of
    the step before are carried over unchanged. ``order``: ``input`` aligns the steps with
    x (as PyTorch, ONNX and Keras' Bidirectional return them), ``read`` keeps the order the
    cell read them (as a lone Keras layer returns them: a go_backwards layer's flipped)."""
    if cell.kind == "LSTM":
        lstm_start = None
        if initial is not None:
            if initial[1] is None:
                raise AnalysisError(f"{cell.label}: an LSTM restarts from (h0, c0), c0 missing")
            lstm_start = (initial[0], initial[1])
        trace = replay_lstm(
            cell, x, keep_gates=keep_gates, dtype=dtype, mask=mask, initial=lstm_start
        )
    else:
        h0 = None if initial is None else initial[0]
        trace = replay_gru(cell, x, keep_gates=keep_gates, dtype=dtype, mask=mask, initial=h0)
    return trace.in_order(order)


def from_keras(
    kind: Kind,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    name: str,
    direction: Direction = "forward",
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    reset_after: bool | None = None,
    unit_forget_bias: bool = False,
) -> CellWeights:
    """A Keras layer's three arrays (gates concatenated along the last axis) as a cell.
    ``unit_forget_bias`` (LSTM): the layer started b_f at 1, kept as the gate's init_bias."""
    if kind == "LSTM":
        return from_keras_lstm(
            kernel,
            recurrent_kernel,
            bias,
            name=name,
            direction=direction,
            activation=activation,
            recurrent_activation=recurrent_activation,
            unit_forget_bias=unit_forget_bias,
        )
    return from_keras_gru(
        kernel,
        recurrent_kernel,
        bias,
        reset_after=True if reset_after is None else reset_after,
        name=name,
        direction=direction,
        activation=activation,
        recurrent_activation=recurrent_activation,
    )


def equations(cell: CellWeights) -> tuple[str, ...]:
    """The equations this cell computes, one line each, with its activations and biases."""
    return lstm_equations(cell) if cell.kind == "LSTM" else gru_equations(cell)


def replay_layers(
    cells: Sequence[CellWeights], x: np.ndarray, *, dtype: type = np.float64
) -> tuple[np.ndarray, tuple[CellTrace, ...]]:
    """Run stacked layers: cells sharing a name are one layer's directions, run on the same
    input and concatenated (forward, then backward) as the next layer's input.

    Returns the last layer's output and every cell's trace, layer by layer, forward first.
    """
    traces: list[CellTrace] = []
    out: np.ndarray = np.asarray(x, dtype=dtype)
    i = 0
    while i < len(cells):
        layer = [cells[i]]
        while i + len(layer) < len(cells) and cells[i + len(layer)].name == cells[i].name:
            layer.append(cells[i + len(layer)])
        layer.sort(key=lambda c: c.direction != "forward")
        step = [replay(c, out, dtype=dtype) for c in layer]
        traces.extend(step)
        out = np.concatenate([t.h for t in step], axis=-1)
        i += len(layer)
    return out, tuple(traces)
