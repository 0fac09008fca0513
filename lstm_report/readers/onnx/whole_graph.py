"""What the replay needs of an ONNX graph: which recurrent node reads which, and whether
the graph can be run whole."""

from __future__ import annotations

from typing import Any

from lstm_report.model.graph import ModelGraph

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
graph cannot make the evaluator allocate what the file does not hold."""


def whole_graph(model: Any, graph: Any) -> ModelGraph:
    """The model to run with onnx's reference evaluator, when every weight is stored in the
    file (external data is never loaded for it) and it has one input and one output."""

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
