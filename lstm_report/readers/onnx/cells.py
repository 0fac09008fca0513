"""An ONNX LSTM or GRU node's W, R, B and P -> one CellWeights per direction (pure numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lstm_report.cells.base import (
    GRU_GATES,
    LSTM_GATES,
    CellWeights,
    Direction,
    GateWeights,
    Kind,
)
from lstm_report.errors import AnalysisError, ModelLoadError

_ONNX_ORDER: dict[str, tuple[int, ...]] = {"LSTM": (0, 2, 3, 1), "GRU": (0, 1, 2)}
"""For each canonical gate (LSTM i,f,c,o; GRU z,r,h), its block in ONNX's rows
(LSTM i,o,f,c; GRU z,r,h)."""


_ACTIVATIONS = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "softsign": "softsign",
    "softplus": "softplus",
    "hardsigmoid": "hard_sigmoid_keras2",  # ONNX's defaults alpha=0.2, beta=0.5
    "elu": "elu",  # alpha=1
}
"""ONNX activation names (without activation_alpha/beta) -> Keras names the replay knows."""


_DEFAULT_ACTS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh")}


DIRECTIONS: dict[str, tuple[Direction, ...]] = {
    "forward": ("forward",),
    "reverse": ("backward",),
    "bidirectional": ("forward", "backward"),
}


def rnn_cells(
    kind: Kind,
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None,
    *,
    name: str,
    direction: str = "forward",
    activations: Sequence[str] = (),
    linear_before_reset: int = 0,
    P: np.ndarray | None = None,
    where: str,
) -> tuple[CellWeights, ...]:
    """One CellWeights per direction from an LSTM or GRU node's W, R, B and an LSTM's
    peepholes P [dirs, 3H] (i, o, f), all-zero P dropped (pure numpy)."""
    if direction not in DIRECTIONS:
        raise ModelLoadError(f"{where}: unknown direction {direction!r}")
    dirs = DIRECTIONS[direction]
    hidden = _check_shapes(kind, W, R, B, P, direction, where)
    if P is not None and not np.any(P):
        P = None
    acts = list(activations) or list(_DEFAULT_ACTS[kind]) * len(dirs)
    per_dir = len(_DEFAULT_ACTS[kind])
    if len(acts) != per_dir * len(dirs):
        raise ModelLoadError(f"{where}: {len(acts)} activations, expected {per_dir} per direction")
    cells = []
    for d, dir_name in enumerate(dirs):
        names = [_activation(a, where) for a in acts[d * per_dir : (d + 1) * per_dir]]
        if kind == "LSTM" and names[1] != names[2]:
            raise ModelLoadError(
                f"{where}: activations g={acts[d * per_dir + 1]} and h={acts[d * per_dir + 2]} "
                "differ, which this description of an LSTM cannot hold"
            )
        layout, peepholes = _layout(kind, d, len(dirs), hidden, B, P, linear_before_reset)
        try:
            cells.append(
                CellWeights(
                    name=name,
                    kind=kind,
                    direction=dir_name,
                    gates=_gates(kind, W[d], R[d], None if B is None else B[d], hidden),
                    activation=names[1],
                    recurrent_activation=names[0],
                    reset_after=bool(linear_before_reset) if kind == "GRU" else None,
                    peepholes=peepholes,
                    framework=f"ONNX {kind}",
                    source_layout=layout,
                )
            )
        except AnalysisError as exc:
            raise ModelLoadError(f"{where}: {exc}") from None
    return tuple(cells)


def _check_shapes(
    kind: Kind,
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None,
    P: np.ndarray | None,
    direction: str,
    where: str,
) -> int:
    """The hidden size, once W, R, B and P have the shapes of a node of this direction."""
    dirs = DIRECTIONS[direction]
    n_gates = 4 if kind == "LSTM" else 3
    if W.ndim != 3 or R.ndim != 3 or W.shape[0] != len(dirs) or R.shape[0] != len(dirs):
        raise ModelLoadError(
            f"{where}: W {W.shape} and R {R.shape} are not [{len(dirs)}, G*H, ·] for "
            f"direction {direction}"
        )
    hidden = R.shape[2]
    rows = n_gates * hidden
    if hidden == 0 or R.shape[1] != rows or W.shape[1] != rows:
        raise ModelLoadError(
            f"{where}: W {W.shape}, R {R.shape} are not [dirs, {n_gates}*H, in], "
            f"[dirs, {n_gates}*H, H]"
        )
    if B is not None and B.shape != (len(dirs), 2 * rows):
        raise ModelLoadError(f"{where}: B {B.shape} is not [{len(dirs)}, {2 * rows}]")
    if P is not None and (kind != "LSTM" or P.shape != (len(dirs), 3 * hidden)):
        raise ModelLoadError(f"{where}: P {P.shape} is not [{len(dirs)}, {3 * hidden}]")
    return int(hidden)


def _gates(
    kind: Kind, W: np.ndarray, R: np.ndarray, B: np.ndarray | None, hidden: int
) -> tuple[GateWeights, ...]:
    """One direction's gates, in the canonical order, each ONNX block transposed."""
    rows = W.shape[0]

    def block(a: np.ndarray, k: int) -> np.ndarray:
        return a[k * hidden : (k + 1) * hidden]

    canon = LSTM_GATES if kind == "LSTM" else GRU_GATES
    return tuple(
        GateWeights(
            spec=gate,
            W=np.ascontiguousarray(block(W, k).T),
            U=np.ascontiguousarray(block(R, k).T),
            b=None if B is None else block(B[:rows], k).copy(),
            b_rec=None if B is None else block(B[rows:], k).copy(),
        )
        for gate, k in zip(canon, _ONNX_ORDER[kind])
    )


def _layout(
    kind: Kind,
    d: int,
    n_dirs: int,
    hidden: int,
    B: np.ndarray | None,
    P: np.ndarray | None,
    linear_before_reset: int,
) -> tuple[str, np.ndarray | None]:
    """How direction d was read (the cell's source_layout), and its peephole rows."""
    rows = (4 if kind == "LSTM" else 3) * hidden
    order = "i,o,f,c" if kind == "LSTM" else "z,r,h"
    biases = (
        "no B (zero biases)"
        if B is None
        else f"B [{n_dirs}, {2 * rows}] split into Wb (b) and Rb (b_rec)"
    )
    layout = (
        f"W [{n_dirs}, {rows}, in], R [{n_dirs}, {rows}, {hidden}], gates {order}, "
        f"each block transposed; {biases}"
    )
    if kind == "GRU":
        layout += f"; linear_before_reset={linear_before_reset}"
    peepholes = None
    if P is not None:  # ONNX's P is i, o, f; the cell's rows are P_i, P_f, P_o
        peepholes = np.stack([P[d, :hidden], P[d, 2 * hidden :], P[d, hidden : 2 * hidden]])
        layout += f"; peepholes P [{n_dirs}, {3 * hidden}] (i, o, f) read as P_i, P_f, P_o"
    return layout, peepholes


def _activation(onnx_name: str, where: str) -> str:
    name = _ACTIVATIONS.get(onnx_name.lower())
    if name is None:
        raise ModelLoadError(f"{where}: activation {onnx_name!r} is not supported")
    return name
