"""TFLite / LiteRT ``.tflite`` LSTM operators -> CellWeights (the `tflite` schema package
parses the FlatBuffer; nothing is executed, no TFLite runtime is needed).

tensorflow/lite/kernels/lstm_shared.h and bidirectional_sequence_lstm.cc give the inputs of
``UNIDIRECTIONAL_SEQUENCE_LSTM`` (and of the one-step ``LSTM``)::

    0 input             1-4 input_to_{input,forget,cell,output}_weights  [units, in]
    5-8 recurrent_to_{input,forget,cell,output}_weights [units, out]
    9-11 cell_to_{input,forget,output}_weights (peepholes) [units]
    12-15 {input_gate,forget_gate,cell_gate,output_gate}_bias [units]
    16 projection_weights [out, units]   17 projection_bias [out]
    18 output_state, 19 cell_state (variables)   20-23 layer-norm coefficients (i, f, c, o)

and of ``BIDIRECTIONAL_SEQUENCE_LSTM``: 1-17 the forward cell as above, 18-34 the backward
cell in the same order, 35-38 the states, 39 an auxiliary input, 40-47 its weights.

Every gate has its own tensor (gates i, f, c, o, Keras' order), each [units, in]: TFLite
computes W·x, so each is transposed into Keras' (in, units). Gates use the logistic sigmoid;
the candidate and the cell output use the op's fused activation (TANH from every converter).
Integer tensors (int8, int16, uint8, int32 biases) are dequantised, ``(q − zero_point) ·
scale`` per tensor or per channel along ``quantized_dimension``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstm_report.cells.base import LSTM_GATES, CellWeights, Direction, GateWeights
from lstm_report.errors import AnalysisError, CorruptModelError, ModelLoadError
from lstm_report.fileio.limits import open_regular
from lstm_report.model.layers import RecurrentModel
from lstm_report.readers.formats import is_tflite
from lstm_report.readers.tflite.tensors import Tensors

MAX_TFLITE_BYTES = 1024 * 1024 * 1024
"""A .tflite file is read whole (FlatBuffers address it in place): at most 1 GiB."""

_ACTIVATIONS = {0: "linear", 1: "relu", 3: "relu6", 4: "tanh"}
"""tflite.ActivationFunctionType -> Keras names the replay knows (RELU_N1_TO_1, SIGN_BIT: no)."""

_GATE_INPUTS = {"i": (1, 5, 12), "f": (2, 6, 13), "c": (3, 7, 14), "o": (4, 8, 15)}
"""For each canonical gate: its input weights, recurrent weights and bias (lstm_shared.h)."""

_BACKWARD_OFFSET = 17
"""BIDIRECTIONAL_SEQUENCE_LSTM: the backward cell's tensors are the forward ones' + 17."""

_RECURRENT_OPS = {
    "RNN",
    "UNIDIRECTIONAL_SEQUENCE_RNN",
    "BIDIRECTIONAL_SEQUENCE_RNN",
}


def read(path: Path) -> RecurrentModel:
    """The LSTM operators of a .tflite model (every subgraph), as cells."""
    try:
        import tflite  # tflite is optional: loaded only to read a .tflite file
    except ImportError:
        raise ModelLoadError(
            f"{path.name}: reading TFLite needs the tflite package: pip install "
            "'lstm-report[tflite]'"
        ) from None
    buf = _read_bounded(path)
    if len(buf) < 8 or not is_tflite(buf):
        raise ModelLoadError(f"{path.name}: not a TFLite model (no TFL3 identifier)")
    try:
        return _Reader(path.name, buf, tflite).model()
    except (ModelLoadError, AnalysisError):
        raise
    except Exception as exc:  # a damaged FlatBuffer: offsets out of range, bad unions
        raise CorruptModelError(
            f"{path.name}: damaged TFLite FlatBuffer ({type(exc).__name__}: {exc})"
        ) from None


def _read_bounded(path: Path) -> bytes:
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_TFLITE_BYTES:
                raise ModelLoadError(
                    f"{path.name}: {size} bytes; a .tflite file is read whole, at most "
                    f"{MAX_TFLITE_BYTES} bytes"
                )
            data: bytes = fh.read(MAX_TFLITE_BYTES + 1)
    except OSError as exc:
        raise ModelLoadError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_TFLITE_BYTES:
        raise ModelLoadError(f"{path.name}: more than {MAX_TFLITE_BYTES} bytes")
    return data


@dataclass(frozen=True)
class _Op:
    subgraph: Any
    sg_index: int
    index: int
    code: str
    op: Any


class _Reader:
    def __init__(self, file: str, buf: bytes, tflite: Any) -> None:
        self.file = file
        self.buf = buf
        self.tfl = tflite
        self.model_ = tflite.Model.GetRootAsModel(buf, 0)
        self.tensors = Tensors(self.model_, buf)
        self.op_names = {
            v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")
        }

    def model(self) -> RecurrentModel:
        cells: list[CellWeights] = []
        other: list[str] = []
        sources: list[tuple[str, str]] = []
        loops = self._loops()
        for sg_index in range(self._n(self.model_.SubgraphsLength())):
            sg = self.model_.Subgraphs(sg_index)
            produced_by: dict[int, str] = {}
            for index in range(self._n(sg.OperatorsLength())):
                op = sg.Operators(index)
                code = self._code(op)
                item = _Op(sg, sg_index, index, code, op)
                if code in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM"):
                    name = self._name(item)
                    found, why = self._lstm(item, name)
                    if why is not None:
                        other.append(f"{name}: LSTM (TFLite {code}), not analysed: {why}")
                    else:
                        source = produced_by.get(int(op.Inputs(0)))
                        if source is not None:
                            sources.append((name, source))
                        cells.extend(found)
                        for k in range(self._n(op.OutputsLength())):
                            produced_by[int(op.Outputs(k))] = name
                elif code in _RECURRENT_OPS:
                    other.append(f"{self._name(item)}: {code} (TFLite), not a gated cell")
                elif (sg_index, index) in loops:
                    other.append(f"{self._name(item)}: {loops[sg_index, index]}")
        if not cells and not other:
            raise ModelLoadError(
                f"{self.file}: no LSTM operator (UNIDIRECTIONAL_SEQUENCE_LSTM, "
                "BIDIRECTIONAL_SEQUENCE_LSTM, LSTM) and no loop that may be a recurrent layer"
            )
        return RecurrentModel(
            source=self.file,
            framework="TFLite",
            cells=tuple(cells),
            other=tuple(other),
            sources=tuple(sources),
        )

    def _n(self, length: int) -> int:
        """A vector's declared length, which must fit in the file (4 bytes an entry at
        least): a lying length would otherwise make a loop of billions of steps."""
        if not 0 <= length <= len(self.buf) // 4:
            raise CorruptModelError(
                f"{self.file}: a vector of {length} entries in a {len(self.buf)}-byte file"
            )
        return length

    def _code(self, op: Any) -> str:
        oc = self.model_.OperatorCodes(op.OpcodeIndex())
        # schema.fbs: builtin_code replaced deprecated_builtin_code (an int8) past 127.
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        return str(self.op_names.get(code, f"op {code}"))

    def _name(self, item: _Op) -> str:
        base = f"{item.code}_{item.index}"
        if item.sg_index == 0:
            return base
        return f"{self._graph_name(item.sg_index)}/{base}"

    def _loops(self) -> dict[tuple[int, int], str]:
        """The WHILE ops whose body looks like a recurrent cell (matrix products and logistic
        gates: how a Keras 3 LSTM or GRU is converted), by (subgraph, op), with their note."""
        found: dict[tuple[int, int], str] = {}
        n_graphs = self._n(self.model_.SubgraphsLength())
        for s in range(n_graphs):
            sg = self.model_.Subgraphs(s)
            for i in range(self._n(sg.OperatorsLength())):
                op = sg.Operators(i)
                if self._code(op) != "WHILE":
                    continue
                table = op.BuiltinOptions()
                if op.BuiltinOptionsType() != self.tfl.BuiltinOptions.WhileOptions or not table:
                    continue
                opts = self.tfl.WhileOptions()
                opts.Init(table.Bytes, table.Pos)
                body = int(opts.BodySubgraphIndex())
                if not 0 <= body < n_graphs:
                    continue
                ops = self._op_codes(body)
                if "FULLY_CONNECTED" not in ops or "LOGISTIC" not in ops:
                    continue
                logistic, tanh = ops.count("LOGISTIC"), ops.count("TANH")
                kind = "LSTM" if logistic >= 3 and tanh >= 2 else "GRU" if logistic >= 2 else "RNN"
                found[s, i] = (
                    f"{kind} (TFLite WHILE loop), not analysed: its body "
                    f"{self._graph_name(body)!r} looks like a converted {kind} (matrix products "
                    f"and {logistic} logistic gates: a recurrent layer lowered to a loop, as "
                    "Keras 3 layers are converted); only fused LSTM operators are read"
                )
        return found

    def _graph_name(self, index: int) -> str:
        name = (self.model_.Subgraphs(index).Name() or b"").decode("utf-8", "replace")
        return name or f"subgraph_{index}"

    def _op_codes(self, sg_index: int) -> list[str]:
        sg = self.model_.Subgraphs(sg_index)
        return [self._code(sg.Operators(i)) for i in range(self._n(sg.OperatorsLength()))]

    # --- one LSTM operator -----------------------------------------------------------------

    def _lstm(self, item: _Op, name: str) -> tuple[tuple[CellWeights, ...], str | None]:
        """The cells of one LSTM operator, or why it is listed and not analysed."""
        op = item.op
        inputs = [int(op.Inputs(k)) for k in range(self._n(op.InputsLength()))]
        where = f"{self.file}: {name}"
        options = self._options(op, item.code)
        act_code = int(options.FusedActivationFunction())
        activation = _ACTIVATIONS.get(act_code)
        if activation is None:
            return (), f"fused activation {act_code} has no numpy replay"
        notes: list[str] = []
        why = _refusal(item.code, options, inputs, notes)
        if why is not None:
            return (), why
        bidi = item.code == "BIDIRECTIONAL_SEQUENCE_LSTM"
        directions: tuple[tuple[Direction, int], ...] = (
            (("forward", 0), ("backward", _BACKWARD_OFFSET)) if bidi else (("forward", 0),)
        )
        cells = []
        for direction, offset in directions:

            def tensor(k: int, _o: int = offset) -> np.ndarray | None:
                idx = inputs[k + _o] if k + _o < len(inputs) else -1
                return None if idx < 0 else self.tensors.array(item.subgraph, idx, where, notes)

            found = _cell(tensor, name, direction, offset, activation, item.code, where, notes)
            if isinstance(found, str):
                return (), found
            cells.append(found)
        return tuple(cells), None

    def _options(self, op: Any, code: str) -> Any:
        kinds = {
            "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
            "BIDIRECTIONAL_SEQUENCE_LSTM": "BidirectionalSequenceLSTMOptions",
            "LSTM": "LSTMOptions",
        }
        cls: Callable[[], Any] = getattr(self.tfl, kinds[code])
        type_code = getattr(self.tfl.BuiltinOptions, kinds[code])
        opts = cls()
        table = op.BuiltinOptions()
        if op.BuiltinOptionsType() != type_code or table is None:
            raise ModelLoadError(f"{self.file}: a {code} operator without its options")
        opts.Init(table.Bytes, table.Pos)
        return opts


def _refusal(code: str, options: Any, inputs: list[int], notes: list[str]) -> str | None:
    """Why an LSTM operator's options or inputs put it beyond this description of an LSTM
    (None: it is read), noting what the replay does differently."""
    if code == "LSTM" and options.KernelType() != 0:  # LSTMKernelType.FULL
        return "the BASIC LSTM kernel (4 inputs, concatenated weights) is not read"
    cell_clip, proj_clip = float(options.CellClip()), float(options.ProjClip())
    if cell_clip > 0:
        notes.append(
            f"TFLite clips the cell state to ±{cell_clip:g} (cell_clip); the replay does "
            "not, which is the same while |c| stays below it"
        )
    if proj_clip > 0:
        notes.append(f"TFLite clips the projection to ±{proj_clip:g}; the replay does not")
    if code == "LSTM":
        notes.append("a one-step TFLite LSTM operator, analysed as a sequence layer")
    bidi = code == "BIDIRECTIONAL_SEQUENCE_LSTM"
    if bidi:
        if len(inputs) > 39 and inputs[39] >= 0:
            return "an auxiliary input (input 39) feeds both directions"
        if not options.MergeOutputs():
            notes.append("merge_outputs is off: the two directions are separate outputs")
    if code == "UNIDIRECTIONAL_SEQUENCE_LSTM" and options.DiagonalRecurrentTensors():
        return "diagonal recurrent weights (diagonal_recurrent_tensors)"
    if not bidi and len(inputs) > 20 and any(k >= 0 for k in inputs[20:24]):
        return "layer normalisation (inputs 20-23) is not in this description of an LSTM"
    return None


def _cell(
    tensor: Callable[[int], np.ndarray | None],
    name: str,
    direction: Direction,
    offset: int,
    activation: str,
    code: str,
    where: str,
    notes: list[str],
) -> CellWeights | str:
    """One direction's cell from its input tensors (``tensor(k)``: input k, or None), or
    why it is not read."""
    if tensor(1) is None:
        return "CIFG (coupled input and forget gates, no input-gate weights: i = 1 − f)"
    peep = [tensor(k) for k in (9, 10, 11)]  # cell_to_{input,forget,output}
    peepholes = None
    if any(p is not None for p in peep):
        if any(p is None for p in peep):
            return "peepholes for some gates only (inputs 9-11)"
        peepholes = np.stack([np.asarray(p, dtype=np.float32).ravel() for p in peep])
        if not np.any(peepholes):
            notes.append("peephole weights (inputs 9-11) are given and all zero")
            peepholes = None
    gates = _gates(tensor, where)
    proj, proj_bias = tensor(16), tensor(17)
    if proj_bias is not None and np.any(proj_bias):
        return "a projection bias (input 17), which this description has not"
    P = None if proj is None else np.ascontiguousarray(proj.T)
    layout = (
        "one tensor per gate: input weights [units, in] (inputs "
        f"{1 + offset}-{4 + offset}), recurrent [units, out] ({5 + offset}-{8 + offset}), "
        f"biases ({12 + offset}-{15 + offset}), gates i,f,c,o, each transposed"
        + ("; projection [out, units] transposed into P" if P is not None else "")
        + ("; peepholes P_i, P_f, P_o (inputs 9-11)" if peepholes is not None else "")
    )
    try:
        return CellWeights(
            name=name,
            kind="LSTM",
            direction=direction,
            gates=gates,
            activation=activation,
            recurrent_activation="sigmoid",
            P=P,
            peepholes=peepholes,
            framework=f"TFLite {code}",
            source_layout=layout,
            notes=tuple(dict.fromkeys(notes)),
        )
    except AnalysisError as exc:
        raise ModelLoadError(f"{where}: {exc}") from None


def _gates(tensor: Callable[[int], np.ndarray | None], where: str) -> tuple[GateWeights, ...]:
    """The four gates, i, f, c, o, each a tensor per weight, transposed."""
    gates = []
    for gate in LSTM_GATES:
        w_k, r_k, b_k = _GATE_INPUTS[gate.name]
        W, R, b = tensor(w_k), tensor(r_k), tensor(b_k)
        if W is None or R is None:
            raise ModelLoadError(f"{where}: gate {gate.name} has no weights")
        if W.ndim != 2 or R.ndim != 2:
            raise ModelLoadError(
                f"{where}: gate {gate.name}: weights {W.shape}, {R.shape} are not "
                "[units, in], [units, out]"
            )
        gates.append(
            GateWeights(
                spec=gate,
                W=np.ascontiguousarray(W.T),
                U=np.ascontiguousarray(R.T),
                b=None if b is None else np.ascontiguousarray(b),
                b_rec=None,
            )
        )
    return tuple(gates)
