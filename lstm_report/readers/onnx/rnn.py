"""ONNX LSTM and GRU nodes -> CellWeights (the `onnx` package parses; nothing is executed).

docs/Operators.md (LSTM, GRU), for each direction d (bidirectional: 0 forward, 1 reverse)::

    LSTM  W [dirs, 4H, in]  R [dirs, 4H, H]  B [dirs, 8H] = Wb[iofc], Rb[iofc]
          P [dirs, 3H] peepholes (i, o, f)   activations f, g, h (default Sigmoid, Tanh, Tanh)
    GRU   W [dirs, 3H, in]  R [dirs, 3H, H]  B [dirs, 6H] = Wb[zrh], Rb[zrh]
          activations f, g (default Sigmoid, Tanh); linear_before_reset 0 or 1

ONNX computes X·W^T, so each gate's block is transposed into Keras' (in, H). Its LSTM gate
order is i,o,f,c, unlike Keras' and PyTorch's i,f,c,o. Its GRU order z,r,h is Keras'.
Weights must be stored in the file (initializers or Constant nodes) or be a constant
expression of them (readers/onnx/graph.py folds an allow-list of pure ops). Peepholes P
are kept as the cell's P_i, P_f, P_o. Initializers kept in
external files are read only from the data file made for the model (``model.onnx.data``,
``model.onnx_data`` or ``model.data`` beside it, a regular file that is no symbolic link,
exactly as large as the model's tensors declare); ``allow_external_data`` reads any
regular file inside the model's folder (docs/formats.md, "Hostile files").
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from lstm_report.cells.base import GRU_GATES, LSTM_GATES, CellWeights, Direction, GateWeights, Kind
from lstm_report.errors import AnalysisError, ModelLoadError
from lstm_report.fileio.limits import (
    MAX_ONNX_BYTES,
    NotRegularFileError,
    TooLargeError,
    read_regular,
    weights_problem,
)
from lstm_report.model.layers import RecurrentModel
from lstm_report.readers.onnx.graph import FoldError, Values

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
    P: np.ndarray | None = None,
    where: str,
) -> tuple[CellWeights, ...]:
    """One CellWeights per direction from an LSTM or GRU node's W, R, B and an LSTM's
    peepholes P [dirs, 3H] (i, o, f), all-zero P dropped (pure numpy)."""
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
    if P is not None and (kind != "LSTM" or P.shape != (len(dirs), 3 * hidden)):
        raise ModelLoadError(f"{where}: P {P.shape} is not [{len(dirs)}, {3 * hidden}]")
    if P is not None and not np.any(P):
        P = None
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
                spec=gate,
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
        peepholes = None
        if P is not None:  # ONNX's P is i, o, f; the cell's rows are P_i, P_f, P_o
            peepholes = np.stack([P[d, :hidden], P[d, 2 * hidden :], P[d, hidden : 2 * hidden]])
            layout += f"; peepholes P [{len(dirs)}, {3 * hidden}] (i, o, f) read as P_i, P_f, P_o"
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
                    peepholes=peepholes,
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


def read(path: Path, *, allow_external_data: bool = False) -> RecurrentModel:
    """The LSTM and GRU nodes of an ONNX model, in its main graph and its subgraphs."""
    try:
        import onnx
    except ImportError:
        raise ModelLoadError(
            f"{path.name}: reading ONNX needs the onnx package: pip install 'lstm-report[onnx]'"
        ) from None
    model = _parse(path, onnx)
    external = _External(path, model, allow_external_data)
    _check_bounds(model, path)
    cells: list[CellWeights] = []
    other: list[str] = []
    _walk(model.graph, "", None, external, path.name, cells, other, depth=0)
    if not cells and not other:
        raise ModelLoadError(
            f"{path.name}: no LSTM or GRU node in the main graph or its subgraphs (If "
            "branches, Loop and Scan bodies)"
        )
    return RecurrentModel(
        source=path.name,
        framework="ONNX",
        cells=tuple(cells),
        other=tuple(other),
        total_params=sum(math.prod(t.dims) for t in _stored(model.graph).values()),
        sources=_sources(model.graph),
        graph=_whole_graph(model, model.graph),
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
    from lstm_report.model.graph import ModelGraph

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


def _parse(path: Path, onnx: Any) -> Any:
    """The ModelProto, once the file's size and what parsing it would build are checked."""
    from lstm_report.readers.onnx.wire import parse_cost_problem

    try:
        data = read_regular(path, MAX_ONNX_BYTES)
    except TooLargeError:
        raise ModelLoadError(
            f"{path.name}: refused: larger than protobuf's limit of 2 GiB (keep the weights in "
            "an external data file)"
        ) from None
    except NotRegularFileError as exc:
        raise ModelLoadError(f"{path.name}: {exc}") from None
    except OSError as exc:
        raise ModelLoadError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    problem = parse_cost_problem(data)
    if problem is not None:
        raise ModelLoadError(f"{path.name}: refused: {problem}")
    try:
        # External data is never followed here: _array reads it, after checking where it is.
        return onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelLoadError(f"{path.name}: not an ONNX model: {_one_line(exc)}") from None


_ATTRIBUTE_TYPES = {
    "activations": "STRINGS",
    "direction": "STRING",
    "hidden_size": "INT",
    "input_forget": "INT",
    "layout": "INT",
    "linear_before_reset": "INT",
    "clip": "FLOAT",
    "activation_alpha": "FLOATS",
    "activation_beta": "FLOATS",
}
"""docs/Operators.md: the type of each LSTM and GRU attribute."""


def _stored(graph: Any) -> dict[str, Any]:
    """The tensors a graph stores: its initializers and its Constant nodes' values."""
    stored: dict[str, Any] = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    stored[node.output[0]] = attr.t
    return stored


def _graphs(*roots: Any) -> Any:
    """The graphs (or functions) given and every subgraph of their If, Loop and Scan nodes,
    walked with a stack, not recursion (protobuf's own nesting limit bounds the depth)."""
    stack = list(roots)
    while stack:
        g = stack.pop()
        yield g
        for node in g.node:
            for a in node.attribute:
                if a.HasField("g"):
                    stack.append(a.g)
                stack.extend(a.graphs)


def _check_bounds(model: Any, path: Path) -> None:
    """Before a weight is read: how many cells, and how many bytes, all the recurrent nodes
    yield (a stored W or R used by many nodes counts for each), against the file's size."""
    from onnx import TensorProto

    stored: dict[str, Any] = {}
    rnns: list[tuple[Any, dict[str, Any]]] = []
    for g in _graphs(model.graph):
        stored.update(_stored(g))
        for index, node in enumerate(g.node):
            if node.domain in ("", "ai.onnx") and node.op_type in ("LSTM", "GRU"):
                where = f"{path.name}: {node.op_type} node {node.name or index!r}"
                rnns.append((node, _attributes(node, where)))
    layers = sum(len(_DIRECTIONS.get(_text(a.get("direction", "forward")), "?")) for _, a in rnns)
    used = [stored[i] for n, _ in rnns for i in n.input[1:4] if i in stored]
    nbytes = sum(_declared_bytes(t, path) for t in used)
    # Weights in external data files count as part of the file (their sizes are checked
    # when read), once each however many nodes use them.
    in_files = {t.name: t for t in used if t.data_location == TensorProto.EXTERNAL}
    own = path.stat().st_size + sum(_declared_bytes(t, path) for t in in_files.values())
    problem = weights_problem(layers, nbytes, own)
    if problem is not None:
        raise ModelLoadError(f"{path.name}: refused: {problem}")


_BRANCHES = {"then_branch": "then", "else_branch": "else", "body": "body"}
"""Graph attributes of If (then_branch, else_branch), Loop and Scan (body), as name parts."""

MAX_SUBGRAPH_DEPTH = 32
"""If/Loop/Scan nesting walked (protobuf itself refuses messages nested past 100)."""


def _walk(
    graph: Any,
    prefix: str,
    parent: Values | None,
    external: _External,
    file: str,
    cells: list[CellWeights],
    other: list[str],
    *,
    depth: int,
) -> None:
    """The LSTM and GRU nodes of ``graph`` and of its subgraphs, named by where they sit:
    ``If_0/then/LSTM_2``. A Loop or Scan with no RNN node inside but a body of matrix
    products and logistic gates is listed: it may be a converted RNN (tf2onnx writes Keras
    3 GRUs that way)."""
    values = Values(graph, external.read, parent=parent)
    for index, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx"):
            continue
        name = prefix + (node.name or f"{node.op_type}_{index}")
        if node.op_type == "RNN":
            other.append(f"{name}: ONNX RNN, not a gated cell")
            continue
        if node.op_type in ("If", "Loop", "Scan"):
            if depth >= MAX_SUBGRAPH_DEPTH:
                raise ModelLoadError(f"{file}: subgraphs nested deeper than {MAX_SUBGRAPH_DEPTH}")
            found = len(cells) + len(other)
            graphs = {a.name: a.g for a in node.attribute if a.HasField("g")}
            for attr_name, part in _BRANCHES.items():  # then before else
                if attr_name in graphs:
                    _walk(
                        graphs[attr_name],
                        f"{name}/{part}/",
                        values,
                        external,
                        file,
                        cells,
                        other,
                        depth=depth + 1,
                    )
            if node.op_type != "If" and len(cells) + len(other) == found:
                why = _loop_rnn(node)
                if why is not None:
                    other.append(f"{name}: {why}")
            continue
        if node.op_type not in ("LSTM", "GRU"):
            continue
        where = f"{file}: {node.op_type} node {name!r}"
        try:
            cells.extend(_node_cells(node, name, where, values))
        except ModelLoadError as exc:
            if depth == 0:
                raise
            # In a branch or a loop body (weights carried through the loop, say): the
            # other layers of the model can still be read.
            why = str(exc).removeprefix(f"{where}: ")
            other.append(f"{name}: {node.op_type} (ONNX, in a subgraph), not analysed: {why}")


def _loop_rnn(node: Any) -> str | None:
    """Why a Loop or Scan node may be a recurrent layer, or None if it does not look like one."""
    ops: list[str] = []
    for attr in node.attribute:
        if attr.name == "body" and attr.HasField("g"):
            ops = [n.op_type for n in attr.g.node]
    products = sum(op in ("MatMul", "Gemm") for op in ops)
    sigmoids = ops.count("Sigmoid") + ops.count("HardSigmoid")
    if not products or not sigmoids:
        return None
    kind = "LSTM" if sigmoids >= 3 and ops.count("Tanh") >= 2 else "GRU" if sigmoids >= 2 else "RNN"
    return (
        f"{kind} (ONNX {node.op_type}), not analysed: its body ({products} matrix products, "
        f"{sigmoids} sigmoid gate{'s' if sigmoids > 1 else ''}) looks like a converted "
        f"{kind}, as tf2onnx writes Keras 3 GRUs and reset_after=False GRUs; only LSTM and "
        "GRU nodes are read"
    )


def _attributes(node: Any, where: str) -> dict[str, Any]:
    """The node's attributes by name, each of the type the operator defines."""
    import onnx

    out: dict[str, Any] = {}
    for a in node.attribute:
        want = _ATTRIBUTE_TYPES.get(a.name)
        types = onnx.AttributeProto.AttributeType
        have = types.Name(a.type) if a.type in types.values() else str(a.type)
        if want is not None and have != want:
            raise ModelLoadError(
                f"{where}: attribute {a.name} is given as {have}; the operator defines {want}"
            )
        if want is not None:
            out[a.name] = onnx.helper.get_attribute_value(a)
    return out


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _node_cells(node: Any, name: str, where: str, values: Values) -> tuple[CellWeights, ...]:
    attrs = _attributes(node, where)
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
        try:
            arr = values.get(inputs[i])
        except FoldError as exc:
            raise ModelLoadError(
                f"{where}: {label} comes from {inputs[i]!r}, not from an initializer stored in "
                f"the file or a constant expression of them ({exc})"
            ) from None
        if arr.dtype.kind not in "fiub":
            raise ModelLoadError(f"{where}: {label} has dtype {arr.dtype}, not numbers")
        return arr if arr.dtype.kind == "f" and arr.dtype.itemsize >= 2 else arr.astype(np.float32)

    W, R, B = tensor(1, "W"), tensor(2, "R"), tensor(3, "B")
    if W is None or R is None:
        raise ModelLoadError(f"{where}: W and R are required")
    notes: list[str] = []
    for i, label in ((5, "initial_h"), (6, "initial_c")):
        if inputs[i] and not values.is_zero(inputs[i]):
            notes.append(f"{label} comes from {inputs[i]!r}; the replay starts from zeros")
    P = tensor(7, "P") if kind == "LSTM" else None
    if P is not None and not np.any(P):
        notes.append("peephole weights P are given and all zero")
    hidden = attrs.get("hidden_size")
    if hidden is not None and R.shape[-1] != hidden:
        raise ModelLoadError(f"{where}: R {R.shape} does not match hidden_size={hidden}")
    acts = [_text(a) for a in attrs.get("activations", [])]
    direction = _text(attrs.get("direction", b"forward"))
    cells = rnn_cells(
        kind,
        W,
        R,
        B,
        name=name,
        direction=direction,
        activations=acts,
        linear_before_reset=int(attrs.get("linear_before_reset", 0)),
        P=P,
        where=where,
    )
    if not notes:
        return cells
    return tuple(replace(c, notes=c.notes + tuple(notes)) for c in cells)


_FLOAT_TYPES = {1: "<f4", 10: "<f2", 11: "<f8", 16: "bf16"}
"""onnx.TensorProto data types of weights: FLOAT, FLOAT16, DOUBLE, BFLOAT16."""

_MAX_ELEMENTS = 2**48
"""No tensor declares more elements (numpy cannot hold them anyway)."""


def _dims(t: Any, path: Path) -> tuple[int, ...]:
    """A weight tensor's shape, checked: a floating-point type, no negative dimension."""
    from onnx import TensorProto

    where = f"{path.name}: initializer {t.name!r}"
    if t.data_type not in _FLOAT_TYPES:
        kind = (
            TensorProto.DataType.Name(t.data_type)
            if t.data_type in TensorProto.DataType.values()
            else str(t.data_type)
        )
        raise ModelLoadError(f"{where}: holds {kind} values; recurrent weights are floating point")
    dims = tuple(t.dims)
    if any(d < 0 for d in dims) or math.prod(max(d, 1) for d in dims) > _MAX_ELEMENTS:
        raise ModelLoadError(f"{where}: dimensions {dims} are not a tensor's shape")
    return dims


def _declared_bytes(t: Any, path: Path) -> int:
    """What a weight tensor takes once read (float16 and bfloat16 widen to float32)."""
    code = _FLOAT_TYPES[t.data_type] if t.data_type in _FLOAT_TYPES else "<f4"
    return math.prod(_dims(t, path)) * (8 if code == "<f8" else 4)


OPT_IN = (
    "if you trust the files beside this model, pass --allow-external-data "
    "(or set 'external_data: allow' for the model in the config)"
)


def own_data_names(name: str) -> tuple[str, ...]:
    """The data files made for model file ``name``, as torch.onnx and onnx name them."""
    stem = name[: -len(".onnx")] if name.endswith(".onnx") else Path(name).stem
    return tuple(dict.fromkeys((f"{name}.data", f"{name}_data", f"{stem}.data")))


class _External:
    """Where a model's external data may come from, and how much of each file it declares."""

    def __init__(self, path: Path, model: Any, allow: bool) -> None:
        real = path.resolve()
        self.folder = real.parent
        self.model_name = real.name
        self.shown = path.name
        self.allow = allow
        self._declared: dict[str, int] | None = None
        self._model = model
        self._read: dict[int, np.ndarray] = {}

    def read(self, t: Any) -> np.ndarray:
        """A stored tensor as _raw_array reads it, once however many nodes use it."""
        if id(t) not in self._read:
            self._read[id(t)] = _raw_array(t, self)
        return self._read[id(t)]

    def declared(self, location: str) -> int:
        """The bytes of ``location`` the model's tensors declare: the end of the last one."""
        if self._declared is None:
            ends: dict[str, int] = {}
            for t in _all_tensors(self._model):
                if t.data_location != 1:  # TensorProto.EXTERNAL
                    continue
                info = {e.key: e.value for e in t.external_data}
                try:
                    length = int(info["length"]) if "length" in info else _nbytes(t)
                    end = int(info.get("offset", "0")) + length
                except (ValueError, TypeError, KeyError):
                    continue  # the tensor that is read says what is wrong with it
                loc = info.get("location", "")
                ends[loc] = max(ends.get(loc, 0), end)
            self._declared = ends
        return self._declared.get(location, 0)


def _nbytes(t: Any) -> int:
    """The bytes a tensor's dims and type declare (raises for a type without a size)."""
    from onnx.helper import tensor_dtype_to_np_dtype

    return math.prod(t.dims) * tensor_dtype_to_np_dtype(t.data_type).itemsize


def _all_tensors(model: Any) -> Any:
    """Every TensorProto of the model: initializers, sparse ones, node attributes, in every
    subgraph and function."""
    for g in _graphs(model.graph, *model.functions):
        yield from getattr(g, "initializer", ())
        for sparse in getattr(g, "sparse_initializer", ()):
            yield sparse.values
            yield sparse.indices
        for node in g.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors


def _raw_array(t: Any, external: _External) -> np.ndarray:
    """A TensorProto in its own dtype (shapes and indices stay integers); external data as
    `_array` reads it."""
    from onnx import TensorProto, numpy_helper

    if t.data_location == TensorProto.EXTERNAL:
        return _array(t, external)
    try:
        return np.asarray(numpy_helper.to_array(t))
    except Exception as exc:
        raise ModelLoadError(
            f"{external.shown}: initializer {t.name!r} cannot be read: {_one_line(exc)}"
        ) from None


def _array(t: Any, external: _External) -> np.ndarray:
    """A TensorProto kept in an external file, as a float array: only from the model's own
    data file (or, allowed, from inside the model's folder)."""
    path_name = external.shown
    dims = _dims(t, Path(path_name))  # a floating-point type, no negative dimension
    where = f"{path_name}: initializer {t.name!r}"
    info = {e.key: e.value for e in t.external_data}
    code = _FLOAT_TYPES[t.data_type]
    item = 2 if code == "bf16" else np.dtype(code).itemsize
    need = math.prod(dims) * item
    location = info.get("location", "")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else need
    except ValueError:
        raise ModelLoadError(f"{where}: malformed external offset or length") from None
    fd = _open_external(location, external, where)
    try:
        size = os.fstat(fd).st_size
        if length != need or offset < 0 or offset + need > size:
            raise ModelLoadError(
                f"{where}: external data needs {need} bytes at offset {offset} of "
                f"{location} ({size} bytes), the file declares {length}"
            )
        declared = external.declared(location)
        if not external.allow and size != declared:
            raise ModelLoadError(
                f"{where}: external data file {location!r} holds {size} bytes, but the "
                f"model's tensors declare {declared}: not the model's own data file; {OPT_IN}"
            )
        raw = os.pread(fd, need, offset)
    finally:
        os.close(fd)
    if len(raw) != need:
        raise ModelLoadError(f"{where}: external data file {location!r} ended early")
    if code == "bf16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(dims)
    return np.frombuffer(raw, dtype=code).reshape(dims).astype(code[1:])


def _open_external(location: str, external: _External, where: str) -> int:
    """An open descriptor of the external data file: by default only the model's own data
    file, a regular file reached through no symbolic link; allowed, any regular file whose
    real path lies inside the model's folder."""
    folder = external.folder
    if "\x00" in location:
        raise ModelLoadError(f"{where}: external data location {location!r} holds a NUL byte")
    if not external.allow:
        names = own_data_names(external.model_name)
        if location not in names:
            raise ModelLoadError(
                f"{where}: external data location {location!r} is not the data file made "
                f"for the model ({' or '.join(names)} beside it): refused; {OPT_IN}"
            )
        target = folder / location
    else:
        target = _inside_folder(location, folder, where)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        if not external.allow and os.path.islink(target):
            raise OSError(40, "a symbolic link")  # ELOOP, as O_NOFOLLOW says it
        fd = os.open(target, flags)
    except FileNotFoundError:
        raise ModelLoadError(f"{where}: external data file {location!r} is missing") from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a link
            raise ModelLoadError(
                f"{where}: external data file {location!r} is a symbolic link: refused; {OPT_IN}"
            ) from None
        raise ModelLoadError(
            f"{where}: external data file {location!r} cannot be read: {exc.strerror or exc}"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelLoadError(f"{where}: external data {location!r} is not a regular file")
    return fd


def _inside_folder(location: str, folder: Path, where: str) -> Path:
    """With external data allowed: a plain relative path whose real path (links resolved)
    lies inside the model's folder."""
    parts = location.replace("\\", "/").split("/")
    if (
        not location
        or "\0" in location
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
    return target


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
