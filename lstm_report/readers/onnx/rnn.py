"""ONNX LSTM and GRU nodes -> CellWeights (the `onnx` package parses; nothing is executed):
the file parsed within its bounds, the graph and its subgraphs walked, each node's inputs
found. Its arrays become cells in cells.py, tensors and external data are read by
tensors.py, and whole_graph.py says what the replay may run.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lstm_report.cells.base import CellWeights, Kind
from lstm_report.errors import ModelLoadError, first_line
from lstm_report.fileio.limits import (
    MAX_ONNX_BYTES,
    NotRegularFileError,
    TooLargeError,
    read_regular,
    weights_problem,
)
from lstm_report.model.layers import RecurrentModel
from lstm_report.readers.onnx.cells import DIRECTIONS, rnn_cells
from lstm_report.readers.onnx.graph import FoldError, Values
from lstm_report.readers.onnx.tensors import ExternalData, all_graphs, declared_bytes
from lstm_report.readers.onnx.whole_graph import layer_sources, whole_graph
from lstm_report.readers.onnx.wire import parse_cost_problem


def read(path: Path, *, allow_external_data: bool = False) -> RecurrentModel:
    """The LSTM and GRU nodes of an ONNX model, in its main graph and its subgraphs."""
    try:
        import onnx  # onnx is optional: loaded only to read an ONNX file
    except ImportError:
        raise ModelLoadError(
            f"{path.name}: reading ONNX needs the onnx package: pip install 'lstm-report[onnx]'"
        ) from None
    model = _parse(path, onnx)
    external = ExternalData(path, model, allow_external_data)
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
        sources=layer_sources(model.graph),
        graph=whole_graph(model, model.graph, Values(model.graph, external.read), external.read),
    )


def _parse(path: Path, onnx: Any) -> Any:
    """The ModelProto, once the file's size and what parsing it would build are checked."""
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
        raise ModelLoadError(f"{path.name}: not an ONNX model: {first_line(exc)}") from None


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


def _check_bounds(model: Any, path: Path) -> None:
    """Before a weight is read: how many cells, and how many bytes, all the recurrent nodes
    yield (a stored W or R used by many nodes counts for each), against the file's size."""
    from onnx import TensorProto  # onnx is optional: loaded only to read an ONNX file

    stored: dict[str, Any] = {}
    rnns: list[tuple[Any, dict[str, Any]]] = []
    for g in all_graphs(model.graph):
        stored.update(_stored(g))
        for index, node in enumerate(g.node):
            if node.domain in ("", "ai.onnx") and node.op_type in ("LSTM", "GRU"):
                where = f"{path.name}: {node.op_type} node {node.name or index!r}"
                rnns.append((node, _attributes(node, where)))
    layers = sum(len(DIRECTIONS.get(_text(a.get("direction", "forward")), "?")) for _, a in rnns)
    used = [stored[i] for n, _ in rnns for i in n.input[1:4] if i in stored]
    nbytes = sum(declared_bytes(t, path) for t in used)
    # Weights in external data files count as part of the file (their sizes are checked
    # when read), once each however many nodes use them.
    in_files = {t.name: t for t in used if t.data_location == TensorProto.EXTERNAL}
    own = path.stat().st_size + sum(declared_bytes(t, path) for t in in_files.values())
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
    external: ExternalData,
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
    import onnx  # onnx is optional: loaded only to read an ONNX file

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
