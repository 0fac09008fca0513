"""ONNX LSTM and GRU nodes -> CellWeights (the `onnx` package parses; nothing is executed).

docs/Operators.md (LSTM, GRU), for each direction d (bidirectional: 0 forward, 1 reverse)::

    LSTM  W [dirs, 4H, in]  R [dirs, 4H, H]  B [dirs, 8H] = Wb[iofc], Rb[iofc]
          P [dirs, 3H] peepholes (i, o, f)   activations f, g, h (default Sigmoid, Tanh, Tanh)
    GRU   W [dirs, 3H, in]  R [dirs, 3H, H]  B [dirs, 6H] = Wb[zrh], Rb[zrh]
          activations f, g (default Sigmoid, Tanh); linear_before_reset 0 or 1

ONNX computes X·W^T, so each gate's block is transposed into Keras' (in, H). Its LSTM gate
order is i,o,f,c, unlike Keras' and PyTorch's i,f,c,o. Its GRU order z,r,h is Keras'.
Weights must be stored in the file (initializers or Constant nodes). Initializers kept in
external files are read only from inside the model's folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from lstm_report.cells import (
    GRU_GATES,
    LSTM_GATES,
    CellWeights,
    Direction,
    GateWeights,
    Kind,
    RecurrentModel,
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

_DIRECTIONS: dict[str, tuple[Direction, ...]] = {
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
    where: str,
) -> tuple[CellWeights, ...]:
    """One CellWeights per direction from an LSTM or GRU node's W, R, B (pure numpy)."""
    if direction not in _DIRECTIONS:
        raise ModelLoadError(f"{where}: unknown direction {direction!r}")
    dirs = _DIRECTIONS[direction]
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
    acts = list(activations) or list(_DEFAULT_ACTS[kind]) * len(dirs)
    per_dir = len(_DEFAULT_ACTS[kind])
    if len(acts) != per_dir * len(dirs):
        raise ModelLoadError(f"{where}: {len(acts)} activations, expected {per_dir} per direction")
    canon = LSTM_GATES if kind == "LSTM" else GRU_GATES
    cells = []
    for d, dir_name in enumerate(dirs):
        names = [_activation(a, where) for a in acts[d * per_dir : (d + 1) * per_dir]]
        if kind == "LSTM" and names[1] != names[2]:
            raise ModelLoadError(
                f"{where}: activations g={acts[d * per_dir + 1]} and h={acts[d * per_dir + 2]} "
                "differ, which this description of an LSTM cannot hold"
            )

        def block(a: np.ndarray, k: int) -> np.ndarray:
            return a[k * hidden : (k + 1) * hidden]

        gates = tuple(
            GateWeights(
                gate=gate,
                W=np.ascontiguousarray(block(W[d], k).T),
                U=np.ascontiguousarray(block(R[d], k).T),
                b=None if B is None else block(B[d, :rows], k).copy(),
                b_rec=None if B is None else block(B[d, rows:], k).copy(),
            )
            for gate, k in zip(canon, _ONNX_ORDER[kind])
        )
        order = "i,o,f,c" if kind == "LSTM" else "z,r,h"
        biases = (
            "no B (zero biases)"
            if B is None
            else f"B [{len(dirs)}, {2 * rows}] split into Wb (b) and Rb (b_rec)"
        )
        layout = (
            f"W [{len(dirs)}, {rows}, in], R [{len(dirs)}, {rows}, {hidden}], gates {order}, "
            f"each block transposed; {biases}"
        )
        if kind == "GRU":
            layout += f"; linear_before_reset={linear_before_reset}"
        try:
            cells.append(
                CellWeights(
                    name=name,
                    kind=kind,
                    direction=dir_name,
                    gates=gates,
                    activation=names[1],
                    recurrent_activation=names[0],
                    reset_after=bool(linear_before_reset) if kind == "GRU" else None,
                    framework=f"ONNX {kind}",
                    source_layout=layout,
                )
            )
        except AnalysisError as exc:
            raise ModelLoadError(f"{where}: {exc}") from None
    return tuple(cells)


def _activation(onnx_name: str, where: str) -> str:
    name = _ACTIVATIONS.get(onnx_name.lower())
    if name is None:
        raise ModelLoadError(f"{where}: activation {onnx_name!r} is not supported")
    return name


def read(path: Path) -> RecurrentModel:
    """The LSTM and GRU nodes of an ONNX model's main graph."""
    try:
        import onnx
    except ImportError:
        raise ModelLoadError(
            f"{path.name}: reading ONNX needs the onnx package: pip install 'lstm-report[onnx]'"
        ) from None
    try:
        # External data is never followed here: _array reads it, after checking where it is.
        model = onnx.load(str(path), load_external_data=False)
    except OSError as exc:
        raise ModelLoadError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelLoadError(f"{path.name}: not an ONNX model: {_one_line(exc)}") from None
    graph = model.graph
    stored: dict[str, Any] = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    stored[node.output[0]] = attr.t
    folder = path.resolve().parent
    cells: list[CellWeights] = []
    other: list[str] = []
    for index, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "RNN":
            other.append(f"{node.name or f'RNN_{index}'}: ONNX RNN, not a gated cell")
            continue
        if node.op_type not in ("LSTM", "GRU"):
            continue
        name = node.name or f"{node.op_type}_{index}"
        where = f"{path.name}: {node.op_type} node {name!r}"
        cells.extend(_node_cells(node, name, where, stored, folder, path))
    if not cells and not other:
        raise ModelLoadError(f"{path.name}: no LSTM or GRU node in the main graph")
    return RecurrentModel(
        source=path.name,
        framework="ONNX",
        cells=tuple(cells),
        other=tuple(other),
        sources=_sources(graph),
        graph=_whole_graph(model, graph),
    )


PASS_THROUGH = frozenset(
    {"Transpose", "Squeeze", "Unsqueeze", "Reshape", "Identity", "Dropout", "Cast", "Flatten"}
)
"""Ops that only rearrange a tensor: a recurrent node behind them reads the one before."""


def _sources(graph: Any) -> tuple[tuple[str, str], ...]:
    """(node, the recurrent node whose Y it reads through PASS_THROUGH ops) of the graph."""
    producer: dict[str, Any] = {}
    names: dict[int, str] = {}
    for index, node in enumerate(graph.node):
        names[id(node)] = node.name or f"{node.op_type}_{index}"
        for out in node.output:
            producer[out] = node
    found = []
    for node in graph.node:
        if node.op_type not in ("LSTM", "GRU") or not node.input:
            continue
        tensor, seen = node.input[0], 0
        while tensor in producer and seen < 1000:
            up = producer[tensor]
            if up.op_type in ("LSTM", "GRU"):
                if up.output and tensor == up.output[0]:  # Y, every step's output
                    found.append((names[id(node)], names[id(up)]))
                break
            if up.op_type not in PASS_THROUGH or not up.input:
                break
            tensor, seen = up.input[0], seen + 1
    return tuple(found)


RUNNABLE = frozenset(
    {
        "LSTM", "GRU", "Transpose", "Squeeze", "Unsqueeze", "Reshape", "Identity",
        "Dropout", "Cast", "Flatten", "Gather", "MatMul", "Gemm", "Add", "Sub", "Mul",
        "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Concat",
        "Slice", "Shape", "Constant", "ReduceMean", "ReduceMax", "Split", "Neg", "Exp",
        "Clip", "BatchNormalization", "LayerNormalization", "Sqrt", "Pow", "Erf",
    }
)  # fmt: skip
"""Operators the whole-graph run accepts: none makes an array larger than its inputs
allow (no ConstantOfShape, Expand, Tile, Range, Resize, Loop, Scan or If), so a hostile
graph cannot make the evaluator allocate what the file does not hold."""


def _whole_graph(model: Any, graph: Any) -> Any:
    """The model to run with onnx's reference evaluator, when every weight is stored in the
    file (external data is never loaded for it) and it has one input and one output."""
    from lstm_report.model_graph import ModelGraph

    def stop(why: str) -> ModelGraph:
        return ModelGraph((), "", why)

    init = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init]
    if len(inputs) != 1:
        return stop("the ONNX graph has more than one input")
    if not graph.output:
        return stop("the ONNX graph has no output")
    note = None
    if len(graph.output) > 1:
        note = f"the graph's first output {graph.output[0].name!r} (of {len(graph.output)})"
    for t in graph.initializer:
        if t.data_location == 1:  # onnx.TensorProto.EXTERNAL
            return stop("the ONNX graph keeps weights in external files")
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            return stop(f"node {node.name!r} is from domain {node.domain!r}")
        if node.op_type not in RUNNABLE:
            return stop(f"{node.op_type} node {node.name!r} is not among the operators run")
    first = next((n for n in graph.node if n.op_type in ("LSTM", "GRU")), None)
    batch_first = True
    if first is not None:
        layout = next((a.i for a in first.attribute if a.name == "layout"), 0)
        producer = {o: n for n in graph.node for o in n.output}
        tensor, transposed, seen = first.input[0], False, 0
        while tensor in producer and seen < 100:
            up = producer[tensor]
            if up.op_type == "Transpose":
                perm = next((list(a.ints) for a in up.attribute if a.name == "perm"), None)
                if perm != [1, 0, 2]:
                    return stop(f"a Transpose {perm} feeds the first recurrent node")
                transposed = not transposed
            elif up.op_type not in ("Identity", "Cast"):
                return stop(f"{up.op_type} {up.name!r} feeds the first recurrent node")
            tensor, seen = up.input[0], seen + 1
        if tensor != inputs[0].name:
            return stop("the first recurrent node does not read the model input")
        seq_first = (layout == 0) != transposed
        batch_first = not seq_first
    return ModelGraph(
        (), graph.output[0].name, None, None, model.SerializeToString(), batch_first, note
    )


def _node_cells(
    node: Any, name: str, where: str, stored: dict[str, Any], folder: Path, path: Path
) -> tuple[CellWeights, ...]:
    import onnx

    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    for refused, why in (
        ("clip", "clips the cell's inputs"),
        ("activation_alpha", "parametrises its activations"),
        ("activation_beta", "parametrises its activations"),
    ):
        if refused in attrs:
            raise ModelLoadError(f"{where}: {refused} {why}, which the replay cannot do")
    if attrs.get("input_forget", 0):
        raise ModelLoadError(f"{where}: input_forget=1 couples the input and forget gates")
    kind: Kind = "LSTM" if node.op_type == "LSTM" else "GRU"
    inputs = list(node.input) + [""] * 8

    def tensor(i: int, label: str) -> np.ndarray | None:
        if not inputs[i]:
            return None
        if inputs[i] not in stored:
            raise ModelLoadError(
                f"{where}: {label} comes from {inputs[i]!r}, not from an initializer stored in "
                "the file"
            )
        return _array(stored[inputs[i]], folder, path)

    W, R, B = tensor(1, "W"), tensor(2, "R"), tensor(3, "B")
    if W is None or R is None:
        raise ModelLoadError(f"{where}: W and R are required")
    notes: list[str] = []
    for i, label in ((5, "initial_h"), (6, "initial_c")):
        if inputs[i] and (inputs[i] not in stored or np.any(tensor(i, label))):
            notes.append(f"{label} comes from {inputs[i]!r}; the replay starts from zeros")
    if kind == "LSTM" and inputs[7]:
        P = tensor(7, "P")
        if P is not None and np.any(P):
            raise ModelLoadError(
                f"{where}: peephole weights P are not zero, and this description of an LSTM "
                "has no peepholes: refused rather than ignored"
            )
        notes.append("peephole weights P are given and all zero")
    hidden = attrs.get("hidden_size")
    if hidden is not None and R.shape[-1] != hidden:
        raise ModelLoadError(f"{where}: R {R.shape} does not match hidden_size={hidden}")
    acts = [a.decode() if isinstance(a, bytes) else str(a) for a in attrs.get("activations", [])]
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    cells = rnn_cells(
        kind,
        W,
        R,
        B,
        name=name,
        direction=direction,
        activations=acts,
        linear_before_reset=int(attrs.get("linear_before_reset", 0)),
        where=where,
    )
    if not notes:
        return cells
    return tuple(replace(c, notes=c.notes + tuple(notes)) for c in cells)


_FLOAT_TYPES = {1: "<f4", 10: "<f2", 11: "<f8", 16: "bf16"}
"""onnx.TensorProto data types read from external files: FLOAT, FLOAT16, DOUBLE, BFLOAT16."""


def _array(t: Any, folder: Path, path: Path) -> np.ndarray:
    """A TensorProto as a float array; external data only from inside the model's folder."""
    from onnx import TensorProto, numpy_helper

    if t.data_location != TensorProto.EXTERNAL:
        try:
            arr = numpy_helper.to_array(t)
        except Exception as exc:
            raise ModelLoadError(
                f"{path.name}: initializer {t.name!r} cannot be read: {_one_line(exc)}"
            ) from None
        return arr if arr.dtype.kind == "f" and arr.dtype.itemsize >= 2 else arr.astype(np.float32)
    where = f"{path.name}: initializer {t.name!r}"
    info = {e.key: e.value for e in t.external_data}
    code = _FLOAT_TYPES.get(t.data_type)
    if code is None:
        raise ModelLoadError(f"{where}: external data of type {t.data_type} is not read")
    item = 2 if code == "bf16" else np.dtype(code).itemsize
    need = math.prod(t.dims) * item
    source = _external_file(info.get("location", ""), folder, where)
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else need
    except ValueError:
        raise ModelLoadError(f"{where}: malformed external offset or length") from None
    size = source.stat().st_size
    if length != need or offset < 0 or offset + need > size:
        raise ModelLoadError(
            f"{where}: external data needs {need} bytes at offset {offset} of "
            f"{source.name} ({size} bytes), the file declares {length}"
        )
    with source.open("rb") as f:
        f.seek(offset)
        raw = f.read(need)
    if code == "bf16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(tuple(t.dims))
    return np.frombuffer(raw, dtype=code).reshape(tuple(t.dims)).astype(code[1:])


def _external_file(location: str, folder: Path, where: str) -> Path:
    """The external data file, refused unless it lies inside the model's folder."""
    parts = location.replace("\\", "/").split("/")
    if (
        not location
        or PurePosixPath(location).is_absolute()
        or PureWindowsPath(location).is_absolute()
        or PureWindowsPath(location).drive
        or ".." in parts
    ):
        raise ModelLoadError(
            f"{where}: external data location {location!r} is not a plain relative path "
            "inside the model's folder: refused"
        )
    target = Path(os.path.realpath(folder / location))
    root = Path(os.path.realpath(folder))
    if os.path.commonpath([root, target]) != str(root):
        raise ModelLoadError(
            f"{where}: external data {location!r} resolves outside the model's folder "
            "(a symbolic link?): refused"
        )
    if not target.is_file():
        raise ModelLoadError(f"{where}: external data file {location!r} is missing")
    return target


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
