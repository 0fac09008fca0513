"""The GRU cell in numpy, and Keras' concatenated GRU arrays split into its gates.

    z = σ(x·W_z + b_z + h·U_z + b_rec_z)                    update gate
    r = σ(x·W_r + b_r + h·U_r + b_rec_r)                    reset gate
    h̃ = tanh(x·W_h + b_h + r ⊙ (h·U_h + b_rec_h))           reset_after=True
    h̃ = tanh(x·W_h + b_h + b_rec_h + (r ⊙ h)·U_h)           reset_after=False
    h = z ⊙ h_prev + (1 − z) ⊙ h̃

Keras (both modes), PyTorch and ONNX all keep the old state in proportion z. PyTorch is
always reset_after=True (its n_t); ONNX says linear_before_reset=1 for it, 0 for False.
"""

from __future__ import annotations

import numpy as np

from lstm_report.cells.base import (
    GRU_GATES,
    CellTrace,
    CellWeights,
    Direction,
    GateWeights,
    activations,
    bias_terms,
    replay_inputs,
)
from lstm_report.errors import AnalysisError


def split_keras_gru(
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    reset_after: bool,
    where: str,
) -> tuple[GateWeights, ...]:
    """Keras GRU arrays, gates z,r,h along the last axis: kernel (in, 3u), recurrent_kernel
    (u, 3u), bias (3u,) for reset_after=False or (2, 3u) for reset_after=True (row 0 the
    input bias, row 1 the recurrent bias), or None."""
    if (
        recurrent_kernel.ndim != 2
        or recurrent_kernel.shape[0] == 0
        or recurrent_kernel.shape[1] != 3 * recurrent_kernel.shape[0]
    ):
        raise AnalysisError(
            f"{where}: recurrent kernel shape {recurrent_kernel.shape} is not (units, 3*units)"
        )
    u = recurrent_kernel.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 3 * u:
        raise AnalysisError(f"{where}: kernel shape {kernel.shape} is not (input_dim, {3 * u})")
    b_in: np.ndarray | None = None
    b_rec: np.ndarray | None = None
    if bias is not None:
        want = (2, 3 * u) if reset_after else (3 * u,)
        if bias.shape != want:
            raise AnalysisError(
                f"{where}: bias shape {bias.shape} is not {want} for reset_after={reset_after}"
            )
        b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, None)
    return tuple(
        GateWeights(
            spec=g,
            W=kernel[:, k * u : (k + 1) * u],
            U=recurrent_kernel[:, k * u : (k + 1) * u],
            b=None if b_in is None else b_in[k * u : (k + 1) * u],
            b_rec=None if b_rec is None else b_rec[k * u : (k + 1) * u],
        )
        for k, g in enumerate(GRU_GATES)
    )


def from_keras_gru(
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    reset_after: bool,
    name: str,
    direction: Direction = "forward",
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
) -> CellWeights:
    """A Keras GRU (or one half of a Bidirectional) as a CellWeights."""
    shape = "(2, 3u): row 0 input, row 1 recurrent" if reset_after else "(3u,)"
    return CellWeights(
        name=name,
        kind="GRU",
        direction=direction,
        gates=split_keras_gru(kernel, recurrent_kernel, bias, reset_after=reset_after, where=name),
        activation=activation,
        recurrent_activation=recurrent_activation,
        reset_after=reset_after,
        framework="Keras GRU",
        source_layout=(
            f"kernel (in, 3u), recurrent_kernel (u, 3u), bias {shape}; gates z,r,h; "
            f"reset_after={reset_after}"
        ),
    )


def replay_gru(
    cell: CellWeights,
    x: np.ndarray,
    *,
    keep_gates: bool = False,
    dtype: type = np.float64,
    mask: np.ndarray | None = None,
    initial: np.ndarray | None = None,
) -> CellTrace:
    """Run the GRU on x (batch, steps, input_dim) from zero state, or from ``initial``
    (h0, (batch, units)); see CellTrace for order."""
    act, rec = activations(cell)
    zx, U, b, b_rec, order = replay_inputs(cell, x, dtype)
    n, steps, _ = x.shape
    u = cell.units
    if b is not None:
        zx += b.astype(dtype)
    br: np.ndarray = np.zeros(3 * u, dtype) if b_rec is None else b_rec.astype(dtype)
    if not cell.reset_after:
        # Before the reset: the candidate's recurrent bias sits outside r, like the others.
        zx += br
    h: np.ndarray = np.zeros((n, u), dtype) if initial is None else np.asarray(initial, dtype)
    hs: np.ndarray = np.empty((n, steps, u), dtype)
    keep: dict[str, np.ndarray] = (
        {g.name: np.empty((n, steps, u), dtype) for g in GRU_GATES} if keep_gates else {}
    )
    for t in order:
        if cell.reset_after:
            hu = h @ U + br
            z = rec(zx[:, t, :u] + hu[:, :u])
            r = rec(zx[:, t, u : 2 * u] + hu[:, u : 2 * u])
            cand = act(zx[:, t, 2 * u :] + r * hu[:, 2 * u :])
        else:
            hu = h @ U[:, : 2 * u]
            z = rec(zx[:, t, :u] + hu[:, :u])
            r = rec(zx[:, t, u : 2 * u] + hu[:, u:])
            cand = act(zx[:, t, 2 * u :] + (r * h) @ U[:, 2 * u :])
        h_new = z * h + (1.0 - z) * cand
        h = h_new if mask is None else np.where(mask[:, t, None], h_new, h)
        hs[:, t] = h
        if keep_gates:
            keep["z"][:, t], keep["r"][:, t], keep["h"][:, t] = z, r, cand
    return CellTrace(h=hs, c=None, gates=keep, direction=cell.direction)


def gru_equations(cell: CellWeights) -> tuple[str, ...]:
    """What this GRU computes: where the reset gate acts, and which bias sits where."""
    act, rec = cell.activation, cell.recurrent_activation
    lines = [f"{g}_t  = {rec}(x_t·W_{g} + h_(t−1)·U_{g}{bias_terms(cell, g)})" for g in ("z", "r")]
    cand = cell.gate("h")
    b_in = " + b_h" if cand.b is not None else ""
    if cell.reset_after:
        b_rec = " + b_rec_h" if cand.b_rec is not None else ""
        lines.append(f"h̃_t  = {act}(x_t·W_h{b_in} + r_t ⊙ (h_(t−1)·U_h{b_rec}))")
    else:
        lines.append(f"h̃_t  = {act}(x_t·W_h + (r_t ⊙ h_(t−1))·U_h{bias_terms(cell, 'h')})")
    lines.append("h_t  = z_t ⊙ h_(t−1) + (1 − z_t) ⊙ h̃_t")
    return tuple(lines)
