"""What the replay needs of an ONNX graph: which recurrent node reads which, and whether
the graph can be run whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lstm_report.errors import ModelLoadError, first_line
from lstm_report.model.graph import ModelGraph
from lstm_report.readers.onnx.graph import Values

PASS_THROUGH = frozenset(
    {"Transpose", "Squeeze", "Unsqueeze", "Reshape", "Identity", "Dropout", "Cast", "Flatten"}
)
"""Ops that only rearrange a tensor: a recurrent node behind them reads the one before."""


def layer_sources(graph: Any) -> tuple[tuple[str, str], ...]:
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
graph cannot make the evaluator allocate what the file does not hold. A zero initial state
built with them is left out first (_without_zero_states): ONNX's default state is zeros."""


MAX_INLINED_BYTES = 512 * 1024 * 1024
"""External weights copied into the graph that is run, at most (protobuf's limit is 2 GiB)."""


def whole_graph(
    model: Any, graph: Any, values: Values, read_tensor: Callable[[Any], np.ndarray]
) -> ModelGraph:
    """The model to run with onnx's reference evaluator, when it has one input and one
    output, and once its zero initial states are left out and its external weights copied
    in (each read through ``read_tensor``, the reader's checked read), only RUNNABLE
    operators remain."""

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
    run = _without_zero_states(model, values)
    problem = _inline_external(run.graph, graph, read_tensor)
    if problem is not None:
        return stop(problem)
    for node in run.graph.node:
        if node.domain not in ("", "ai.onnx"):
            return stop(f"node {node.name!r} is from domain {node.domain!r}")
        if node.op_type not in RUNNABLE:
            return stop(f"{node.op_type} node {node.name!r} is not among the operators run")
    batch_first = _batch_first(run.graph, inputs[0].name)
    if isinstance(batch_first, str):
        return stop(batch_first)
    return ModelGraph(
        (), graph.output[0].name, None, None, run.SerializeToString(), batch_first, note
    )


def _batch_first(graph: Any, model_input: str) -> bool | str:
    """Whether the first recurrent node sees the model input with sequences first (through
    its ``layout`` and the Transposes on the way), or why the input is not simply its X."""
    first = next((n for n in graph.node if n.op_type in ("LSTM", "GRU")), None)
    if first is None:
        return True
    layout = next((a.i for a in first.attribute if a.name == "layout"), 0)
    producer = {o: n for n in graph.node for o in n.output}
    tensor, transposed, seen = first.input[0], False, 0
    while tensor in producer and seen < 100:
        up = producer[tensor]
        if up.op_type == "Transpose":
            perm = next((list(a.ints) for a in up.attribute if a.name == "perm"), None)
            if perm != [1, 0, 2]:
                return f"a Transpose {perm} feeds the first recurrent node"
            transposed = not transposed
        elif up.op_type not in ("Identity", "Cast"):
            return f"{up.op_type} {up.name!r} feeds the first recurrent node"
        tensor, seen = up.input[0], seen + 1
    if tensor != model_input:
        return "the first recurrent node does not read the model input"
    return (layout == 0) == transposed


def _without_zero_states(model: Any, values: Values) -> Any:
    """A copy of the model whose LSTM and GRU nodes are given no initial_h/initial_c where
    theirs is all zeros (ONNX's default is zeros): torch.onnx and tf2onnx build it at run
    time (ConstantOfShape, Expand over the input's shape), with ops that are not run. The
    nodes nothing reads any more are dropped."""
    from onnx import ModelProto  # onnx is optional: loaded only to read an ONNX file

    copy = ModelProto()
    copy.CopyFrom(model)
    nodes = copy.graph.node
    for node in nodes:
        if node.domain in ("", "ai.onnx") and node.op_type in ("LSTM", "GRU"):
            for i in (5, 6):  # initial_h, initial_c (an LSTM's)
                if i < len(node.input) and node.input[i] and values.is_zero(node.input[i]):
                    node.input[i] = ""
    needed = {o.name for o in copy.graph.output}
    kept = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output) or any(a.HasField("g") for a in node.attribute):
            kept.append(node)
            needed.update(node.input)
    if len(kept) < len(nodes):
        kept = [_copied(n) for n in reversed(kept)]
        del nodes[:]
        nodes.extend(kept)
    return copy


def _copied(node: Any) -> Any:
    from onnx import NodeProto  # onnx is optional: loaded only to read an ONNX file

    out = NodeProto()
    out.CopyFrom(node)
    return out


def _inline_external(run: Any, graph: Any, read_tensor: Callable[[Any], np.ndarray]) -> str | None:
    """Copy the initializers ``graph`` keeps in external files into ``run``, its copy (each
    read once, as the reader reads and checks it: only from the model's own data file); or
    why not."""
    from onnx import TensorProto, numpy_helper  # onnx is optional: loaded only to read ONNX

    total = 0
    for stored, t in zip(graph.initializer, run.initializer):
        if t.data_location != TensorProto.EXTERNAL:
            continue
        try:
            arr = read_tensor(stored)
        except ModelLoadError as exc:
            return f"the ONNX graph's external weight cannot be read: {first_line(exc)}"
        total += arr.nbytes
        if total > MAX_INLINED_BYTES:
            return f"the ONNX graph keeps more than {MAX_INLINED_BYTES} bytes in external files"
        inline = numpy_helper.from_array(arr, t.name)
        if inline.data_type != t.data_type:
            return (
                f"the ONNX graph's external weight {t.name!r} reads as {arr.dtype}, not as stored"
            )
        t.CopyFrom(inline)
    return None
