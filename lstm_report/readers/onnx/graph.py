"""The values an ONNX node's weight inputs have, without running the model.

An exporter may store an LSTM's W, R and B not as initializers but as a small computation
over stored constants (OpenVINO's and tf2onnx's exports: Unsqueeze, Concat, Transpose of
stored pieces). `Values` folds such expressions in numpy, over an allow-list of pure ops
whose result depends only on their inputs and attributes (docs/Operators.md):

    Identity, Cast, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Slice, Gather, Split

Nothing else is evaluated. Every result is bounded (MAX_FOLD_ELEMENTS each, checked before
it is allocated, and MAX_FOLD_TOTAL over a model), and an expression nested deeper than
MAX_FOLD_DEPTH is not folded. `is_zero` also recognises an initial state built as zeros at
run time (tf2onnx: ``ConstantOfShape`` over a shape computed from the input's batch size),
whose shape is unknown but whose every value is 0. A subgraph (If branch, Loop body) sees
the values of the graphs around it, as ONNX's outer-scope rule says.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lstm_report.errors import ModelLoadError

MAX_FOLD_ELEMENTS = 16 * 1024 * 1024
"""At most this many elements in one folded value (a 2048-unit LSTM's W is 16M)."""
MAX_FOLD_TOTAL = 256 * 1024 * 1024
"""At most this many bytes folded for one model."""
MAX_FOLD_DEPTH = 64
"""Ops between a weight and the constants it is computed from."""

FOLDED_OPS = (
    "Identity",
    "Cast",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Slice",
    "Gather",
    "Split",
)

_ZERO_PRESERVING: tuple[str, ...] = (
    "Identity",
    "Cast",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Expand",
    "Tile",
    "Slice",
    "Gather",
    "Split",
)
"""Ops whose output is all zero when their first (data) input is, whatever the others."""


class FoldError(ModelLoadError):
    """A weight's expression could not be folded (named, with why)."""


class Values:
    """Stored and foldable values of one graph (and, through ``parent``, its outer scopes)."""

    def __init__(
        self,
        graph: Any,
        read_tensor: Callable[[Any], np.ndarray],
        *,
        parent: Values | None = None,
    ) -> None:
        from onnx import helper, numpy_helper  # onnx is optional: loaded only to read an ONNX file

        self._read = read_tensor
        self._parent = parent
        self._budget: list[int] = parent._budget if parent is not None else [MAX_FOLD_TOTAL]
        self.stored: dict[str, Any] = {t.name: t for t in graph.initializer}
        self._literal: dict[str, np.ndarray] = {}
        self.producer: dict[str, tuple[Any, int]] = {}
        for node in graph.node:
            for k, out in enumerate(node.output):
                if out:
                    self.producer[out] = (node, k)
            if node.op_type == "Constant" and node.output and node.domain in ("", "ai.onnx"):
                for attr in node.attribute:
                    if attr.name == "value":
                        self.stored[node.output[0]] = attr.t
                    elif attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
                        value = helper.get_attribute_value(attr)
                        dtype = np.float32 if "float" in attr.name else np.int64
                        self._literal[node.output[0]] = np.asarray(value, dtype=dtype)
        self._folded: dict[str, np.ndarray] = {}
        self._numpy_helper = numpy_helper

    def _local(self, name: str) -> bool:
        return name in self.stored or name in self._literal or name in self.producer

    def _owner(self, name: str) -> Values | None:
        scope: Values | None = self
        while scope is not None and not scope._local(name):
            scope = scope._parent
        return scope

    def is_stored(self, name: str) -> bool:
        owner = self._owner(name)
        return owner is not None and (name in owner.stored or name in owner._literal)

    def get(self, name: str, *, depth: int = 0) -> np.ndarray:
        """The value of ``name``, stored or folded; FoldError says why not."""
        owner = self._owner(name)
        if owner is None:
            raise FoldError(f"{name!r} is a graph input, computed at run time")
        if owner is not self:
            return owner.get(name, depth=depth)
        if name in self.stored:
            return self._read(self.stored[name])
        if name in self._literal:
            return self._literal[name]
        if name in self._folded:
            return self._folded[name]
        node, k = self.producer[name]
        label = node.name or node.op_type
        if node.domain not in ("", "ai.onnx") or node.op_type not in FOLDED_OPS:
            raise FoldError(
                f"{name!r} is computed by {node.op_type} node {label!r}, which is not folded "
                f"(only {', '.join(FOLDED_OPS)} over stored constants are)"
            )
        if depth >= MAX_FOLD_DEPTH:
            raise FoldError(f"{name!r} is more than {MAX_FOLD_DEPTH} ops from stored constants")
        inputs = [None if not i else self.get(i, depth=depth + 1) for i in node.input]
        try:
            outputs = _fold(node, inputs)
        except FoldError:
            raise
        except Exception as exc:
            raise FoldError(
                f"{name!r}: {node.op_type} node {label!r} cannot be folded: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        for out_name, value in zip(node.output, outputs):
            if out_name:
                self._budget[0] -= value.nbytes
                if self._budget[0] < 0:
                    raise FoldError(f"folding {name!r} passes {MAX_FOLD_TOTAL} bytes in all")
                self._folded[out_name] = value
        return self._folded[name]

    def is_zero(self, name: str, *, depth: int = 0) -> bool:
        """Whether every value of ``name`` is 0, even if its shape is known only at run time
        (zeros of a computed shape: ConstantOfShape, then reshaped, expanded, concatenated)."""
        try:
            return not np.any(self.get(name))
        except ModelLoadError:
            pass
        owner = self._owner(name)
        if owner is None or depth >= MAX_FOLD_DEPTH or name not in owner.producer:
            return False
        node, _ = owner.producer[name]
        if node.domain not in ("", "ai.onnx"):
            return False
        if node.op_type == "ConstantOfShape":
            values = [a.t for a in node.attribute if a.name == "value"]
            return not values or not np.any(owner._numpy_helper.to_array(values[0]))
        if node.op_type in _ZERO_PRESERVING and node.input and node.input[0]:
            return owner.is_zero(node.input[0], depth=depth + 1)
        if node.op_type == "Concat":
            return all(owner.is_zero(i, depth=depth + 1) for i in node.input if i)
        if node.op_type == "Mul":
            return any(owner.is_zero(i, depth=depth + 1) for i in node.input if i)
        return False


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper  # onnx is optional: loaded only to read an ONNX file

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _checked(shape: tuple[int, ...], node: Any) -> None:
    n = math.prod(shape)
    if n > MAX_FOLD_ELEMENTS:
        raise FoldError(
            f"{node.op_type} node {node.name or node.op_type!r} would make {n} elements "
            f"(at most {MAX_FOLD_ELEMENTS} are folded)"
        )


def _axes(node: Any, inputs: list[Any], attrs: dict[str, Any]) -> list[int] | None:
    if len(inputs) > 1 and inputs[1] is not None:
        return [int(a) for a in np.asarray(inputs[1]).ravel()]
    return None if "axes" not in attrs else [int(a) for a in attrs["axes"]]


def _fold(node: Any, inputs: list[Any]) -> list[np.ndarray]:
    """The outputs of one node of the allow-list, its inputs folded already."""
    from onnx.helper import tensor_dtype_to_np_dtype  # onnx is optional: only its readers load it

    op, attrs = node.op_type, _attrs(node)
    x = inputs[0]
    if x is None:
        raise FoldError(f"{op} node {node.name!r} has no data input")
    x = np.asarray(x)
    if op == "Identity":
        return [x]
    if op == "Cast":
        return [x.astype(tensor_dtype_to_np_dtype(int(attrs["to"])))]
    if op == "Reshape":
        shape = [int(d) for d in np.asarray(inputs[1]).ravel()]
        if not attrs.get("allowzero", 0):
            shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return [x.reshape(shape)]
    if op == "Squeeze":
        axes = _axes(node, inputs, attrs)
        return [np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))]
    if op == "Unsqueeze":
        axes = _axes(node, inputs, attrs) or []
        rank = x.ndim + len(axes)
        out = x
        for a in sorted(a % rank for a in axes):
            out = np.expand_dims(out, a)
        return [out]
    if op == "Transpose":
        perm = attrs.get("perm")
        return [np.transpose(x, None if perm is None else [int(p) for p in perm])]
    if op == "Concat":
        parts = [np.asarray(p) for p in inputs if p is not None]
        axis = int(attrs["axis"])
        _checked((sum(p.size for p in parts),), node)
        return [np.concatenate(parts, axis=axis)]
    if op == "Slice":
        return [_slice(x, inputs, attrs)]
    if op == "Gather":
        idx = np.asarray(inputs[1]).astype(np.int64)
        axis = int(attrs.get("axis", 0)) % x.ndim
        _checked(x.shape[:axis] + idx.shape + x.shape[axis + 1 :], node)
        return [np.take(x, idx, axis=axis)]
    if op == "Split":
        return _split(x, node, inputs, attrs)
    raise FoldError(f"{op} is not folded")


def _slice(x: np.ndarray, inputs: list[Any], attrs: dict[str, Any]) -> np.ndarray:
    """A Slice: starts, ends, axes and steps as attributes (opset 1) or inputs."""

    def ints(value: Any) -> list[int]:
        return [int(v) for v in np.asarray(value).ravel()]

    if "starts" in attrs:  # opset 1
        starts, ends = ints(attrs["starts"]), ints(attrs["ends"])
        axes = ints(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = ints(inputs[1]), ints(inputs[2])
        given = [inputs[k] if len(inputs) > k else None for k in (3, 4)]
        axes = ints(range(len(starts))) if given[0] is None else ints(given[0])
        steps = [1] * len(starts) if given[1] is None else ints(given[1])
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a) % x.ndim] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _split(x: np.ndarray, node: Any, inputs: list[Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """A Split: sizes as an input, an attribute, or equal parts, one an output."""
    axis = int(attrs.get("axis", 0)) % x.ndim
    if len(inputs) > 1 and inputs[1] is not None:
        sizes = [int(s) for s in np.asarray(inputs[1]).ravel()]
    elif "split" in attrs:
        sizes = [int(s) for s in attrs["split"]]
    else:
        n = len(node.output)
        sizes = [math.ceil(x.shape[axis] / n)] * n
        sizes[-1] = x.shape[axis] - sum(sizes[:-1])
    cuts = np.cumsum(sizes)[:-1]
    return list(np.split(x, cuts, axis=axis))
