"""What a gated recurrent cell is, independent of the framework that trained it.

Every reader (Keras, PyTorch state dicts, safetensors, ONNX) turns a layer into one
`CellWeights` per direction, in one orientation, Keras'::

    z_t = x_t · W + h_{t-1} · U + b        (row vectors times matrices)

so `W` is (input_dim, units) and `U` is (recurrent_dim, units) for every gate, where
recurrent_dim is `units`, or the projection size for a PyTorch LSTM with `proj_size`.
Gates are kept in one canonical order per kind, whatever order the file stored them in:

    LSTM  i (input), f (forget), c (candidate), o (output)       Keras' own order
    GRU   z (update), r (reset), h (candidate)                    Keras' and ONNX's order

Each gate carries two biases, as PyTorch and ONNX store them: `b` on the input side and
`b_rec` on the recurrent side. They only differ in effect inside a GRU's candidate with
`reset_after`, where `b_rec` is scaled by the reset gate; everywhere else the cell adds them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from lstm_report.cells.activations import activation_fn
from lstm_report.errors import AnalysisError

Kind = Literal["LSTM", "GRU"]
Direction = Literal["forward", "backward"]


@dataclass(frozen=True)
class Gate:
    """One gate of a cell kind: its letter in the canonical order, its name, what it does."""

    name: str
    title: str
    role: str
    keeps: bool = False
    """The memory gate: the fraction of the old state kept each step (LSTM f, GRU z), so at
    rest (zero input and state) it gives the unit's timescale τ = 1/(1 − gate)."""
    squashed: bool = True
    """True: the recurrent activation (a 0..1 gate); False: the candidate's activation."""
    init_bias: float | None = None
    """Where Keras initialises this gate's bias, if not at 0 (unit_forget_bias: 1)."""


LSTM_GATES: tuple[Gate, ...] = (
    Gate("i", "input", "how much of the candidate is written into the cell state"),
    Gate(
        "f",
        "forget",
        "how much of the previous cell state is kept, c = f·c_prev + i·candidate",
        keeps=True,
        init_bias=1.0,
    ),
    Gate(
        "c",
        "candidate",
        "the new content offered to the cell state (tanh, not a 0..1 gate)",
        squashed=False,
    ),
    Gate("o", "output", "how much of the squashed cell state is shown as the output h"),
)
"""Canonical LSTM order. PyTorch calls the candidate g (same position); ONNX stores i,o,f,c."""

GRU_GATES: tuple[Gate, ...] = (
    Gate(
        "z",
        "update",
        "how much of the previous state is kept, h = z·h_prev + (1−z)·candidate (Keras, "
        "PyTorch and ONNX all keep z·h_prev, so z near 1 means a long memory)",
        keeps=True,
    ),
    Gate("r", "reset", "how much of the previous state reaches the candidate"),
    Gate(
        "h",
        "candidate",
        "the new state proposed from the input and the reset previous state",
        squashed=False,
    ),
)
"""Canonical GRU order (Keras and ONNX). PyTorch stores r,z,n and calls the candidate n."""


def gates_of(kind: Kind) -> tuple[Gate, ...]:
    return LSTM_GATES if kind == "LSTM" else GRU_GATES


GATE_TITLES: dict[str, str] = {g.name: g.title for g in LSTM_GATES + GRU_GATES}
"""Gate letter -> name, for both kinds: their letters (i, f, c, o; z, r, h) never collide."""


@dataclass(frozen=True, eq=False)
class GateWeights:
    """One gate's weights, Keras orientation (x · W + h · U + b)."""

    spec: Gate
    """Which gate it is: its letter, name and role."""
    W: np.ndarray
    """(input_dim, units)."""
    U: np.ndarray
    """(recurrent_dim, units): recurrent_dim is units, or the projection size (see P)."""
    b: np.ndarray | None
    """(units,): input-side bias (Keras' bias, PyTorch's bias_ih, ONNX's Wb), or None."""
    b_rec: np.ndarray | None
    """(units,): recurrent-side bias (PyTorch's bias_hh, ONNX's Rb, row 1 of a Keras
    reset_after GRU's bias), or None."""
    init_bias: float | None = None
    """Where training started this bias, where the file says so and it is not 0: a Keras LSTM
    built with unit_forget_bias starts b_f at 1 (PyTorch and ONNX start no bias at 1)."""

    @property
    def gate(self) -> str:
        """The gate's letter (i, f, c, o; z, r, h)."""
        return self.spec.name

    @property
    def keeps(self) -> bool:
        """The memory gate (LSTM f, GRU z): it keeps that fraction of the old state."""
        return self.spec.keeps

    @property
    def squashed(self) -> bool:
        """A 0..1 gate (the recurrent activation); False for the candidate."""
        return self.spec.squashed

    @property
    def bias(self) -> np.ndarray | None:
        """b + b_rec, the one bias of a gate where the two are simply added (None if neither)."""
        if self.b is None:
            return self.b_rec
        return self.b if self.b_rec is None else self.b + self.b_rec


def memory_gate(gates: Sequence[GateWeights]) -> GateWeights:
    """The gate that keeps the old state: f for an LSTM, z for a GRU."""
    return next(g for g in gates if g.keeps)


@dataclass(frozen=True, eq=False)
class CellWeights:
    """One direction of one recurrent layer, as read from a file of any framework."""

    name: str
    """Where the layer sits: ``encoder.l0`` (PyTorch module path + layer index), an ONNX node
    name, a Keras layer path."""
    kind: Kind
    direction: Direction
    """``backward`` reads the sequence last to first (PyTorch ``_reverse``, ONNX ``reverse``,
    the second half of a bidirectional layer, Keras go_backwards)."""
    gates: tuple[GateWeights, ...]
    """In canonical order: LSTM_GATES or GRU_GATES."""
    activation: str = "tanh"
    """Keras name of the candidate activation (also applied to the LSTM cell state)."""
    recurrent_activation: str = "sigmoid"
    """Keras name of the gates' activation."""
    reset_after: bool | None = None
    """GRU only. True: the reset gate scales the recurrent product *after* it is computed,
    r ⊙ (h·U_h + b_rec_h) — Keras reset_after=True (its default), every PyTorch nn.GRU and
    ONNX linear_before_reset=1. False: it scales the state before, (r ⊙ h)·U_h, and both
    biases are simply added — Keras reset_after=False, ONNX linear_before_reset=0."""
    P: np.ndarray | None = None
    """LSTM only, PyTorch proj_size: (units, proj). The output is h = (o ⊙ tanh(c)) · P, so h
    has proj values, and each gate's U is then (proj, units)."""
    peepholes: np.ndarray | None = None
    """LSTM only: (3, units), rows P_i, P_f, P_o (ONNX's P, TFLite's inputs 9-11). The gates
    then see the cell state: i = σ(… + P_i ⊙ c_prev), f = σ(… + P_f ⊙ c_prev) and, once c
    is updated, o = σ(… + P_o ⊙ c)."""
    framework: str = ""
    """What the layer was read as, e.g. ``PyTorch nn.LSTM``."""
    source_layout: str = ""
    """How the file stored it and what was done to reach this layout, for the report."""
    notes: tuple[str, ...] = ()
    """Anything the reader assumed or could not represent, one line each."""

    def __post_init__(self) -> None:
        where = self.label
        expected = tuple(g.name for g in gates_of(self.kind))
        got = tuple(g.gate for g in self.gates)
        if got != expected:
            raise AnalysisError(f"{where}: gates {got} are not {self.kind}'s {expected}")
        if self.direction not in ("forward", "backward"):
            raise AnalysisError(f"{where}: direction {self.direction!r} is not forward/backward")
        if (self.kind == "GRU") != (self.reset_after is not None):
            raise AnalysisError(f"{where}: reset_after is set for GRUs, and only for them")
        if self.P is not None and self.kind != "LSTM":
            raise AnalysisError(f"{where}: only an LSTM can have a projection P")
        if self.peepholes is not None and self.kind != "LSTM":
            raise AnalysisError(f"{where}: only an LSTM can have peepholes")
        first = self.gates[0]
        if first.W.ndim != 2 or first.U.ndim != 2:
            raise AnalysisError(f"{where}: W and U must be matrices")
        n_in, units = first.W.shape
        rec_dim = units if self.P is None else self.P.shape[1]
        if self.P is not None and self.P.shape != (units, rec_dim):
            raise AnalysisError(f"{where}: projection P shape {self.P.shape} is not ({units}, k)")
        if self.peepholes is not None and self.peepholes.shape != (3, units):
            raise AnalysisError(
                f"{where}: peepholes shape {self.peepholes.shape} is not (3, {units}): "
                "P_i, P_f, P_o"
            )
        for g in self.gates:
            if g.W.shape != (n_in, units) or g.U.shape != (rec_dim, units):
                raise AnalysisError(
                    f"{where}: gate {g.gate}: W {g.W.shape}, U {g.U.shape} are not "
                    f"({n_in}, {units}), ({rec_dim}, {units})"
                )
            for label, vec in (("b", g.b), ("b_rec", g.b_rec)):
                if vec is not None and vec.shape != (units,):
                    raise AnalysisError(
                        f"{where}: gate {g.gate}: {label} shape {vec.shape} is not ({units},)"
                    )

    @property
    def units(self) -> int:
        return int(self.gates[0].W.shape[1])

    @property
    def input_dim(self) -> int:
        return int(self.gates[0].W.shape[0])

    @property
    def output_dim(self) -> int:
        """Size of h: the projection size when there is one, else units."""
        return self.units if self.P is None else int(self.P.shape[1])

    @property
    def label(self) -> str:
        return f"{self.name} ({self.direction})"

    @property
    def params(self) -> int:
        n = sum(g.W.size + g.U.size for g in self.gates)
        n += sum(v.size for g in self.gates for v in (g.b, g.b_rec) if v is not None)
        n += 0 if self.peepholes is None else self.peepholes.size
        return int(n + (0 if self.P is None else self.P.size))

    def gate(self, name: str) -> GateWeights:
        for g in self.gates:
            if g.gate == name:
                return g
        raise KeyError(name)

    def stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """W, U, b, b_rec with the gates side by side in canonical order (Keras' layout)."""
        W = np.concatenate([g.W for g in self.gates], axis=1)
        U = np.concatenate([g.U for g in self.gates], axis=1)
        b = _stack([g.b for g in self.gates])
        b_rec = _stack([g.b_rec for g in self.gates])
        return W, U, b, b_rec

    def keras_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """kernel, recurrent_kernel, bias as the equivalent Keras layer would store them.

        LSTM: bias (4u,) = b + b_rec. GRU with reset_after: bias (2, 3u) = [b; b_rec]. GRU
        without: bias (3u,) = b + b_rec. A projected LSTM has no Keras equivalent.
        """
        if self.P is not None:
            raise AnalysisError(f"{self.label}: an LSTM with a projection has no Keras layout")
        if self.peepholes is not None:
            raise AnalysisError(f"{self.label}: an LSTM with peepholes has no Keras layout")
        W, U, _, _ = self.stacked()
        return W, U, self.keras_bias()

    def keras_bias(self) -> np.ndarray | None:
        """The gates' biases side by side in Keras' layout: [b; b_rec] (2, 3u) for a
        reset_after GRU, else b + b_rec (either alone; None without bias)."""
        b = _stack([g.b for g in self.gates])
        b_rec = _stack([g.b_rec for g in self.gates])
        if self.kind == "GRU" and self.reset_after:
            if b is None and b_rec is None:
                return None
            zeros = np.zeros(self.units * len(self.gates), dtype=self.gates[0].W.dtype)
            return np.stack([zeros if v is None else v for v in (b, b_rec)])
        if b is None:
            return b_rec
        return b if b_rec is None else b + b_rec


def _stack(parts: Sequence[np.ndarray | None]) -> np.ndarray | None:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    if len(present) != len(parts):
        raise AnalysisError("a bias is given for some gates and not others")
    return np.concatenate(present)


Order = Literal["input", "read"]
"""How a trace's steps are ordered: aligned with the input, or in the order they were read."""


@dataclass(frozen=True, eq=False)
class CellTrace:
    """A replayed cell over a batch, arrays (batch, steps, ·). In ``input`` order they are
    aligned with the input: ``h[:, t]`` is the state after reading ``x[:, t]``, also for a
    backward cell (as PyTorch and ONNX return them, and Keras' Bidirectional). In ``read``
    order they follow the order the cell read the steps, as a lone Keras layer returns them
    (a go_backwards layer's flipped)."""

    h: np.ndarray
    """(batch, steps, output_dim)."""
    c: np.ndarray | None
    """LSTM cell state (batch, steps, units); None for a GRU."""
    gates: dict[str, np.ndarray]
    """Post-activation gate values by gate letter, when asked for (else empty): gates in the
    recurrent activation's range, the candidate (c, h) in the activation's."""
    direction: Direction = "forward"
    order: Order = "input"

    @property
    def h_last(self) -> np.ndarray:
        """The final state (PyTorch's h_n, ONNX's Y_h): the last one read."""
        return self.h[:, 0] if self._flipped else self.h[:, -1]

    @property
    def c_last(self) -> np.ndarray | None:
        if self.c is None:
            return None
        return self.c[:, 0] if self._flipped else self.c[:, -1]

    @property
    def _flipped(self) -> bool:
        """True where the last step read is the first one stored."""
        return self.direction == "backward" and self.order == "input"

    def in_order(self, order: Order) -> CellTrace:
        """The same trace with its steps in ``order`` (views: a backward cell's flipped)."""
        if order == self.order or self.direction == "forward":
            return self if order == self.order else replace(self, order=order)
        return CellTrace(
            h=self.h[:, ::-1],
            c=None if self.c is None else self.c[:, ::-1],
            gates={g: a[:, ::-1] for g, a in self.gates.items()},
            direction=self.direction,
            order=order,
        )


def activations(
    cell: CellWeights,
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """The numpy functions for (activation, recurrent_activation), or AnalysisError."""
    act = activation_fn(cell.activation)
    rec = activation_fn(cell.recurrent_activation)
    if act is None or rec is None:
        missing = cell.activation if act is None else cell.recurrent_activation
        raise AnalysisError(f"{cell.label}: cannot replay activation {missing!r} in numpy")
    return act, rec


def bias_terms(cell: CellWeights, gate: str) -> str:
    """`` + b_g + b_rec_g`` for the biases this cell's gate has (empty without bias)."""
    g = cell.gate(gate)
    parts = [f"b_{gate}" if g.b is not None else "", f"b_rec_{gate}" if g.b_rec is not None else ""]
    return "".join(f" + {p}" for p in parts if p)


def flat_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x (..., k) · w (k, m) as one 2-D product. numpy multiplies a 3-D array by a matrix
    one matrix of the stack at a time, outside BLAS's blocking: 0.63 s against 0.035 s for
    (64, 100, 256) · (256, 1024) in float32, measured. The sums are the same up to the
    order of rounding."""
    if x.ndim <= 2:
        return np.asarray(x @ w)
    out: np.ndarray = np.ascontiguousarray(x).reshape(-1, x.shape[-1]) @ w
    return out.reshape(*x.shape[:-1], w.shape[1])


def replay_inputs(
    cell: CellWeights, x: np.ndarray, dtype: type
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, range]:
    """What every replay starts from: x (batch, steps, input_dim) checked, every step's input
    projection x·W at once (no bias yet: each cell adds its own), U in ``dtype``, the
    stacked biases, and the order of the steps (backward layers read from the end)."""
    if x.ndim != 3 or x.shape[2] != cell.input_dim:
        raise AnalysisError(
            f"{cell.label}: input shape {x.shape} is not (batch, steps, {cell.input_dim})"
        )
    W, U, b, b_rec = cell.stacked()
    zx = flat_matmul(np.asarray(x, dtype=dtype), np.ascontiguousarray(W, dtype=dtype))
    steps = x.shape[1]
    order = range(steps - 1, -1, -1) if cell.direction == "backward" else range(steps)
    # C order: U is multiplied at every step, and a transposed view (PyTorch's weight_hh.T)
    # took 15.5 ms instead of 1.6 ms per (64, 256) · (256, 1024) product, measured.
    return zx, np.ascontiguousarray(U, dtype=dtype), b, b_rec, order
