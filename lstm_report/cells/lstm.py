"""The LSTM cell in numpy, and Keras' concatenated LSTM arrays split into its gates.

    i = σ(x·W_i + h·U_i + b_i + b_rec_i)      f, o likewise
    c̃ = tanh(x·W_c + h·U_c + b_c + b_rec_c)
    c = f ⊙ c_prev + i ⊙ c̃
    h = o ⊙ tanh(c)              or, with a projection,  h = (o ⊙ tanh(c)) · P

σ is the recurrent activation and tanh the activation, when the file says otherwise. With
peepholes (ONNX P, TFLite inputs 9-11) the gates also see the cell state:

    i = σ(… + P_i ⊙ c_prev)   f = σ(… + P_f ⊙ c_prev)   o = σ(… + P_o ⊙ c)
"""

from __future__ import annotations

import numpy as np

from lstm_report.cells.base import (
    LSTM_GATES,
    CellTrace,
    CellWeights,
    Direction,
    GateWeights,
    activations,
    bias_terms,
    replay_inputs,
)
from lstm_report.errors import AnalysisError


def split_keras_lstm(
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    where: str,
    unit_forget_bias: bool = False,
) -> tuple[GateWeights, ...]:
    """Keras LSTM arrays, gates i,f,c,o along the last axis: kernel (in, 4u), recurrent_kernel
    (u, 4u), bias (4u,) or None. Views, no copies; AnalysisError if they are not an LSTM's.
    ``unit_forget_bias``: the layer started b_f at 1 (its gate's ``init_bias``)."""
    if recurrent_kernel.ndim != 2:
        raise AnalysisError(
            f"{where}: recurrent kernel must be 2-D, got shape {recurrent_kernel.shape}"
        )
    u = recurrent_kernel.shape[0]
    if u == 0 or recurrent_kernel.shape[1] != 4 * u:
        raise AnalysisError(
            f"{where}: recurrent kernel shape {recurrent_kernel.shape} is not (units, 4*units)"
        )
    if kernel.ndim != 2 or kernel.shape[1] != 4 * u:
        raise AnalysisError(
            f"{where}: kernel shape {kernel.shape} is not (input_dim, {4 * u}) for {u} units"
        )
    if bias is not None and bias.shape != (4 * u,):
        raise AnalysisError(f"{where}: bias shape {bias.shape} is not ({4 * u},)")
    return tuple(
        GateWeights(
            spec=g,
            W=kernel[:, k * u : (k + 1) * u],
            U=recurrent_kernel[:, k * u : (k + 1) * u],
            b=None if bias is None else bias[k * u : (k + 1) * u],
            b_rec=None,
            init_bias=g.init_bias if unit_forget_bias else None,
        )
        for k, g in enumerate(LSTM_GATES)
    )


def from_keras_lstm(
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    name: str,
    direction: Direction = "forward",
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    unit_forget_bias: bool = False,
) -> CellWeights:
    """A Keras LSTM (or one half of a Bidirectional) as a CellWeights."""
    gates = split_keras_lstm(
        kernel, recurrent_kernel, bias, where=name, unit_forget_bias=unit_forget_bias
    )
    return CellWeights(
        name=name,
        kind="LSTM",
        direction=direction,
        gates=gates,
        activation=activation,
        recurrent_activation=recurrent_activation,
        framework="Keras LSTM",
        source_layout="kernel (in, 4u), recurrent_kernel (u, 4u), bias (4u,); gates i,f,c,o",
    )


def replay_lstm(
    cell: CellWeights,
    x: np.ndarray,
    *,
    keep_gates: bool = False,
    dtype: type = np.float64,
    mask: np.ndarray | None = None,
    initial: tuple[np.ndarray, np.ndarray] | None = None,
) -> CellTrace:
    """Run the LSTM on x (batch, steps, input_dim) from zero state, or from ``initial``
    (h0 (batch, output_dim), c0 (batch, units)); see CellTrace for order."""
    act, rec = activations(cell)
    zx, U, b, b_rec, order = replay_inputs(cell, x, dtype)
    P: np.ndarray | None = None if cell.P is None else cell.P.astype(dtype)
    peep: np.ndarray | None = None if cell.peepholes is None else cell.peepholes.astype(dtype)
    n, steps, _ = x.shape
    u = cell.units
    for bias in (b, b_rec):  # both sides' biases are simply added in an LSTM
        if bias is not None:
            zx += bias.astype(dtype)
    h: np.ndarray = np.zeros((n, cell.output_dim), dtype)
    c: np.ndarray = np.zeros((n, u), dtype)
    if initial is not None:
        h, c = np.asarray(initial[0], dtype), np.asarray(initial[1], dtype)
    hs: np.ndarray = np.empty((n, steps, cell.output_dim), dtype)
    cs: np.ndarray = np.empty((n, steps, u), dtype)
    keep: dict[str, np.ndarray] = (
        {g.name: np.empty((n, steps, u), dtype) for g in LSTM_GATES} if keep_gates else {}
    )
    for t in order:
        z = zx[:, t] + h @ U
        if peep is None:
            i = rec(z[:, :u])
            f = rec(z[:, u : 2 * u])
            cand = act(z[:, 2 * u : 3 * u])
            o = rec(z[:, 3 * u :])
            c_new = f * c + i * cand
        else:  # the input and forget gates see c_prev, the output gate the new c
            i = rec(z[:, :u] + peep[0] * c)
            f = rec(z[:, u : 2 * u] + peep[1] * c)
            cand = act(z[:, 2 * u : 3 * u])
            c_new = f * c + i * cand
            o = rec(z[:, 3 * u :] + peep[2] * c_new)
        h_new = o * act(c_new)
        if P is not None:
            h_new = h_new @ P
        if mask is None:
            h, c = h_new, c_new
        else:  # Keras: a masked step carries the state (and output) over
            m = mask[:, t, None]
            h, c = np.where(m, h_new, h), np.where(m, c_new, c)
        hs[:, t] = h
        cs[:, t] = c
        if keep_gates:
            keep["i"][:, t], keep["f"][:, t], keep["c"][:, t], keep["o"][:, t] = i, f, cand, o
    return CellTrace(h=hs, c=cs, gates=keep, direction=cell.direction)


def lstm_equations(cell: CellWeights) -> tuple[str, ...]:
    """What this LSTM computes, with its activations, biases and projection."""
    act, rec = cell.activation, cell.recurrent_activation
    lines = [
        f"{g}_t  = {act if g == 'c' else rec}(x_t·W_{g} + h_(t−1)·U_{g}{bias_terms(cell, g)})"
        for g in ("i", "f", "c", "o")
    ]
    if cell.peepholes is not None:
        for g, state in (("i", "c_(t−1)"), ("f", "c_(t−1)"), ("o", "c_t")):
            row = "ifco".index(g)
            lines[row] = lines[row][:-1] + f" + P_{g} ⊙ {state})"
    lines[2] = lines[2].replace("c_t  =", "c̃_t  =")
    # With peepholes o_t reads c_t, so c_t comes first; otherwise the gates, then c_t.
    lines.insert(3 if cell.peepholes is not None else 4, "c_t  = f_t ⊙ c_(t−1) + i_t ⊙ c̃_t")
    if cell.P is None:
        lines.append(f"h_t  = o_t ⊙ {act}(c_t)")
    else:
        lines.append(
            f"h_t  = (o_t ⊙ {act}(c_t))·P      P {cell.P.shape[0]}×{cell.P.shape[1]}: h_t has "
            f"{cell.output_dim} values, so every U_g is {cell.output_dim}×{cell.units}"
        )
    return tuple(lines)
