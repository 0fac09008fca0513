"""Pure numpy: a layer's gates as the analysis iterates over them, and its replay.

Keras stores one LSTM as three arrays, gates concatenated along the last axis in the
order i (input), f (forget), c (candidate), o (output)::

    kernel            (input_dim, 4*units)    W = [W_i | W_f | W_c | W_o]
    recurrent_kernel  (units,     4*units)    U = [U_i | U_f | U_c | U_o]
    bias              (4*units,)              b = [b_i | b_f | b_c | b_o]

and computes row vectors times matrices (x_t @ W_g), where most texts write W_g x_t. A GRU
is z, r, h likewise (cells/gru.py); PyTorch and ONNX layouts are split by their readers.
Whatever the cell, `layer_gates` gives its gates with their roles, and `replay` runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lstm_report.cells.activations import (  # noqa: F401  (re-exported)
    ACTIVATION_FORMULAS,
    ACTIVATIONS,
    activation_fn,
)
from lstm_report.cells.base import GateWeights as CellGate
from lstm_report.cells.base import replay as replay_cell
from lstm_report.cells.lstm import split_keras_lstm
from lstm_report.errors import AnalysisError
from lstm_report.model.layers import LSTMWeights


@dataclass(frozen=True, eq=False)
class GateWeights:
    """One gate's slice of the three arrays (Keras orientation)."""

    gate: str
    W: np.ndarray
    """(input_dim, units): input weights."""
    U: np.ndarray
    """(units, units): recurrent weights."""
    b: np.ndarray | None
    """(units,), or None for use_bias=False. The input-side bias where there are two."""
    b_rec: np.ndarray | None = None
    """(units,): the recurrent-side bias (PyTorch bias_hh, ONNX Rb, Keras reset_after row 1)."""
    keeps: bool = False
    """The memory gate (LSTM f, GRU z): it keeps that fraction of the old state."""
    squashed: bool = True
    """A 0..1 gate (the recurrent activation); False for the candidate."""
    init_bias: float | None = None
    """Where Keras starts this gate's bias, if not at 0 (unit_forget_bias: 1)."""

    @property
    def bias(self) -> np.ndarray | None:
        """The bias the gate adds at rest: b + b_rec (either alone; None without bias)."""
        if self.b is None:
            return self.b_rec
        return self.b if self.b_rec is None else self.b + self.b_rec


def check_shapes(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None, where: str
) -> int:
    """Return the number of units, or raise AnalysisError if the arrays are not an LSTM's."""
    split_keras_lstm(kernel, recurrent_kernel, bias, where=where)
    return int(recurrent_kernel.shape[0])


def split_gates(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None
) -> tuple[GateWeights, ...]:
    """Split Keras' concatenated LSTM arrays into W_g, U_g, b_g for g in i, f, c, o (views,
    no copies): the split every Keras LSTM's cell is built with (cells.lstm)."""
    return _with_roles(split_keras_lstm(kernel, recurrent_kernel, bias, where="LSTM"))


def layer_gates(w: LSTMWeights) -> tuple[GateWeights, ...]:
    """The gates of the layer's cell, in its canonical order, with their roles. A gate's
    ``init_bias`` is kept only where it is true of the layer: a Keras LSTM built with
    ``unit_forget_bias`` (PyTorch and ONNX start no bias at 1)."""
    return _with_roles(w.cell.gates, keras_init=w.framework == "Keras" and w.unit_forget_bias)


def _with_roles(gates: Sequence[CellGate], *, keras_init: bool = True) -> tuple[GateWeights, ...]:
    return tuple(
        GateWeights(
            gate=g.gate.name,
            W=g.W,
            U=g.U,
            b=g.b,
            b_rec=g.b_rec,
            keeps=g.gate.keeps,
            squashed=g.gate.squashed,
            init_bias=g.gate.init_bias if keras_init else None,
        )
        for g in gates
    )


def memory_gate(gates: tuple[GateWeights, ...]) -> GateWeights:
    """The gate that keeps the old state: f for an LSTM, z for a GRU."""
    return next(g for g in gates if g.keeps)


@dataclass(frozen=True, eq=False)
class Trace:
    """A replayed layer over a batch, in processing order: arrays are (batch, steps, ·)."""

    h: np.ndarray
    c: np.ndarray | None
    """The LSTM cell state; None for a GRU."""
    gates: dict[str, np.ndarray]
    """Post-activation gate values by letter: gates in the recurrent activation's range, the
    candidate (c, h) in the activation's."""


def replay(
    w: LSTMWeights, x: np.ndarray, *, keep_gates: bool = True, dtype: type = np.float64
) -> Trace:
    """Run the layer in numpy on x (batch, steps, input_dim) from zero state, as Keras does.

    Built only from the per-gate matrices (cells.replay), so agreement with the framework
    proves the layout. A layer that reads backwards (go_backwards, the backward half of a
    bidirectional layer) returns its outputs in the order it read them, as Keras does.
    """
    for name in (w.activation, w.recurrent_activation):
        if activation_fn(name) is None:
            raise AnalysisError(f"{w.label}: cannot replay activation {name!r} in numpy")
    if x.ndim != 3 or x.shape[2] != w.input_dim:
        raise AnalysisError(
            f"{w.label}: input shape {x.shape} is not (batch, steps, {w.input_dim})"
        )
    t = replay_cell(w.cell, x, keep_gates=keep_gates, dtype=dtype)
    if w.cell.direction == "backward":
        return Trace(
            h=t.h[:, ::-1],
            c=None if t.c is None else t.c[:, ::-1],
            gates={g: a[:, ::-1] for g, a in t.gates.items()},
        )
    return Trace(h=t.h, c=t.c, gates=t.gates)
