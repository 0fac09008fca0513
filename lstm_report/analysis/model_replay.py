"""Pure numpy: a whole Keras model, replayed from the graph its reader found (model_graph).

Each layer computes what Keras computes at inference (dropout and noise are the identity),
with Keras' mask semantics: an Embedding with ``mask_zero`` or a Masking layer marks steps,
which an LSTM or GRU skips (state and output carried over; zeros in a Bidirectional's
sequences), which GlobalAveragePooling1D leaves out of its mean, and which every other
layer that would see a mask refuses rather than guess. The recurrent layers run from their
LSTMWeights (cells.replay), so the report's cells are what predicts.

What numpy cannot compute raises ReplayStopped naming the layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

from lstm_report.cells.activations import activation_fn
from lstm_report.cells.base import replay as replay_cell
from lstm_report.errors import AnalysisError
from lstm_report.model.graph import IDENTITY_LAYERS, GraphLayer, ModelGraph
from lstm_report.model.layers import LSTMWeights, ModelWeights

EPSILON = 1e-7
"""keras.backend.epsilon(): Normalization's floor under the standard deviation."""

IDENTITY = IDENTITY_LAYERS
"""Layers that return their input at inference."""

KEEPS_MASK = IDENTITY | {
    "Dense",
    "TimeDistributed",
    "Activation",
    "ReLU",
    "Softmax",
    "LayerNormalization",
    "BatchNormalization",
}
"""Layers that pass a mask on unchanged, computing each step alone."""

Value = tuple[np.ndarray, np.ndarray | None]
"""A layer's output and its mask (batch, steps) or None."""


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type's name if it has none), as a reason."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class ReplayStopped(AnalysisError):
    """numpy cannot compute the model's output: ``layer`` (None: the graph as a whole)."""

    def __init__(self, message: str, layer: str | None = None) -> None:
        super().__init__(message)
        self.layer = layer


def replay_problem(weights: ModelWeights) -> tuple[str | None, str] | None:
    """(layer, why) numpy cannot replay the whole model; None when it can."""
    g = weights.graph
    if g is None:
        return None, "the file stores no model graph that numpy can follow"
    if g.onnx is not None:
        return None
    if g.stop is not None:
        return g.stop_layer, g.stop
    names = {w.name for w in weights.layers}
    for layer in g.layers:
        if layer.class_name in ("LSTM", "GRU", "Bidirectional") and layer.name not in names:
            return layer.name, f"{layer.class_name} {layer.name!r} was not read as an LSTM or GRU"
    return None


class ModelReplay:
    """Computes a Keras model's layers on inputs, in numpy."""

    def __init__(self, weights: ModelWeights, *, dtype: type = np.float64) -> None:
        if weights.graph is None or weights.graph.onnx is not None:
            raise ReplayStopped("the file stores no Keras model graph")
        self.graph: ModelGraph = weights.graph
        self.dtype = dtype
        self.halves: dict[str, list[LSTMWeights]] = {}
        for w in weights.layers:
            self.halves.setdefault(w.name, []).append(w)
        self.by_name = {layer.name: layer for layer in self.graph.layers}

    def output(self, x: np.ndarray) -> np.ndarray:
        """The model's prediction on ``x`` (first axis the batch)."""
        return self.values(x, self.graph.output)[self.graph.output][0]

    def values(
        self, x: np.ndarray, *wanted: str, given: Mapping[str, Value] | None = None
    ) -> dict[str, Value]:
        """The outputs of the layers ``wanted`` and of every layer before them; a layer in
        ``given`` returns that value instead (what unit ablation substitutes)."""
        given = given or {}
        need = self._needed(wanted, stop=given)
        out: dict[str, Value] = {"": (self._model_input(x), None)}
        for layer in self.graph.layers:
            if layer.name not in need:
                continue
            if layer.name in given:
                out[layer.name] = given[layer.name]
                continue
            if self.graph.stop_layer == layer.name:
                raise ReplayStopped(self.graph.stop or layer.name, layer.name)
            args: list[Value] = []
            for src in layer.inputs or ("",):
                if src not in out:
                    raise ReplayStopped(f"{layer.name!r} reads {src!r}, not computed before it")
                args.append(out[src])
            if layer.mask_from is not None:  # the mask Keras 3 recorded for this call
                if layer.mask_from not in out:
                    raise ReplayStopped(f"{layer.name!r}'s mask is not computed before it")
                args[0] = (args[0][0], np.asarray(out[layer.mask_from][0], bool))
            try:
                out[layer.name] = self._layer(layer, args)
            except ReplayStopped:
                raise
            except (ValueError, IndexError, KeyError, TypeError, AnalysisError) as exc:
                raise ReplayStopped(
                    f"{layer.class_name} {layer.name!r} cannot be computed in numpy: {exc}",
                    layer.name,
                ) from None
        return out

    def _model_input(self, x: np.ndarray) -> np.ndarray:
        return x if x.dtype.kind in "iu" else np.asarray(x, self.dtype)

    def _needed(self, wanted: Sequence[str], stop: Collection[str] = ()) -> set[str]:
        need: set[str] = set()
        todo = [w for w in wanted if w]
        while todo:
            name = todo.pop()
            if name in need:
                continue
            layer = self.by_name.get(name)
            if layer is None:
                raise ReplayStopped(f"no layer {name!r} in the model graph")
            need.add(name)
            if name in stop:  # given: what it reads is not needed for it
                continue
            todo.extend(s for s in layer.inputs if s)
            if layer.mask_from:
                todo.append(layer.mask_from)
        return need

    def _layer(self, layer: GraphLayer, args: list[Value]) -> Value:
        cls, cfg, wts = layer.class_name, layer.config, layer.weights
        if cls in ("Concatenate", "Add", "Multiply", "Average", "Subtract"):
            if any(m is not None for _, m in args):
                raise ReplayStopped(f"{cls} {layer.name!r} merges masked inputs", layer.name)
            return _merge(cls, [a for a, _ in args], cfg), None
        if cls == "NotEqual":
            return np.asarray(args[0][0]) != float(cfg["value"]), None
        if len(args) != 1:
            raise ReplayStopped(f"{cls} {layer.name!r} reads {len(args)} inputs", layer.name)
        x, mask = args[0]
        if mask is not None and cls not in KEEPS_MASK and cls not in _MASK_AWARE:
            raise ReplayStopped(
                f"{cls} {layer.name!r} receives a mask, which numpy does not replay for it",
                layer.name,
            )
        if cls in IDENTITY:
            return x, mask
        if cls == "Embedding":
            table: np.ndarray = np.asarray(wts["embeddings"], self.dtype)
            ids = np.asarray(x).astype(np.int64)
            if ids.min(initial=0) < 0 or ids.max(initial=0) >= table.shape[0]:
                raise ValueError(f"token ids outside 0..{table.shape[0] - 1}")
            return table[ids], (ids != 0) if cfg.get("mask_zero") is True else None
        if cls == "Masking":
            value = float(cfg.get("mask_value", 0.0))
            keep = np.any(x != value, axis=-1)
            return x * keep[..., None], keep
        if cls in ("LSTM", "GRU", "Bidirectional"):
            return self._recurrent(layer, x, mask)
        if cls == "GlobalAveragePooling1D":
            return _global_pool(x, mask, cfg, average=True), None
        if cls == "GlobalMaxPooling1D":
            return _global_pool(x, None, cfg, average=False), None
        if cls == "TimeDistributed":
            return _dense(x, wts, _activation_of(cfg.get("layer"))), mask
        return _SIMPLE[cls](x, wts, cfg), mask

    def _recurrent(self, layer: GraphLayer, x: np.ndarray, mask: np.ndarray | None) -> Value:
        halves = self.halves.get(layer.name)
        if not halves:
            raise ReplayStopped(f"{layer.name!r} was not read as an LSTM or GRU", layer.name)
        cfg = layer.config
        inner = cfg.get("layer") if layer.class_name == "Bidirectional" else None
        if isinstance(inner, Mapping) and isinstance(inner.get("config"), Mapping):
            inner_cfg: Mapping[str, Any] = inner["config"]
        else:
            inner_cfg = cfg
        if inner_cfg.get("return_state") or cfg.get("return_state"):
            raise ReplayStopped(f"{layer.name!r} returns its states", layer.name)
        outs = []
        for w in sorted(halves, key=lambda u: u.direction != "forward"):
            t = replay_cell(w.cell, np.asarray(x, self.dtype), dtype=self.dtype, mask=mask)
            if not w.return_sequences:
                outs.append(t.h_last)
            elif w.wrapper is None and w.cell.direction == "backward":
                outs.append(t.h[:, ::-1])  # a lone go_backwards layer: in reading order
            else:
                outs.append(t.h)
        seq = halves[0].return_sequences
        if len(outs) == 1:
            return outs[0], mask if seq else None
        if seq and mask is not None:  # Bidirectional sets zero_output_for_mask
            outs = [o * mask[..., None] for o in outs]
        merge = halves[0].merge_mode or "concat"
        merged = {
            "concat": lambda: np.concatenate(outs, axis=-1),
            "sum": lambda: outs[0] + outs[1],
            "mul": lambda: outs[0] * outs[1],
            "ave": lambda: (outs[0] + outs[1]) / 2.0,
        }.get(merge)
        if merged is None:
            raise ReplayStopped(f"{layer.name!r} has merge_mode {merge!r}", layer.name)
        return merged(), mask if seq else None


_MASK_AWARE = frozenset({"LSTM", "GRU", "Bidirectional", "GlobalAveragePooling1D", "Masking"})


def _activation_of(entry: Any) -> str:
    cfg = entry.get("config") if isinstance(entry, Mapping) else None
    act = cfg.get("activation", "linear") if isinstance(cfg, Mapping) else "linear"
    return _act_name(act)


def _act_name(act: Any) -> str:
    if act is None:
        return "linear"
    if isinstance(act, Mapping):  # a serialized function: {"class_name": "function", ...}
        cfg = act.get("config")
        return cfg if isinstance(cfg, str) else str(act.get("class_name"))
    return str(act)


def _apply(name: str, z: np.ndarray) -> np.ndarray:
    if name == "softmax":
        return _softmax(z, -1)
    fn = activation_fn(name)
    if fn is None:
        raise ValueError(f"activation {name!r} is not replayed in numpy")
    return fn(z)


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _dense(x: np.ndarray, w: Mapping[str, np.ndarray], act: str) -> np.ndarray:
    k = w["kernel"]
    if k.ndim != 2 or x.shape[-1] != k.shape[0]:
        raise ValueError(f"kernel {k.shape} does not fit input {x.shape}")
    z = x @ k.astype(x.dtype)
    if "bias" in w:
        z = z + w["bias"].astype(x.dtype)
    return _apply(act, z)


def _axes(cfg: Mapping[str, Any], ndim: int, default: int = -1) -> tuple[int, ...]:
    axis = cfg.get("axis", default)
    if axis is None:
        return ()
    items = axis if isinstance(axis, (list, tuple)) else [axis]
    return tuple(sorted(int(a) % ndim for a in items))


def _broadcast(a: np.ndarray, axes: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """A per-axis array (mean, gamma, ...) shaped to broadcast against ``shape``."""
    a = np.asarray(a)
    if a.size == 1:  # a scalar statistic (Normalization(mean=0.5, ...)) broadcasts as is
        return a.reshape([1] * len(shape))
    want = [shape[d] if d in axes else 1 for d in range(len(shape))]
    return np.reshape(a, want)


def _normalization(
    x: np.ndarray, w: Mapping[str, np.ndarray], cfg: Mapping[str, Any]
) -> np.ndarray:
    axes = _axes(cfg, x.ndim)
    if cfg.get("mean") is not None:
        mean, var = np.asarray(cfg["mean"], np.float64), np.asarray(cfg["variance"], np.float64)
    else:
        mean, var = w["mean"], w["variance"]
    mean = _broadcast(mean, axes, x.shape).astype(x.dtype)
    std = np.maximum(np.sqrt(_broadcast(var, axes, x.shape)), EPSILON).astype(x.dtype)
    return mean + x * std if cfg.get("invert") is True else (x - mean) / std


def _rescaling(x: np.ndarray, w: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
    scale = np.asarray(cfg.get("scale", 1.0), x.dtype)
    offset = np.asarray(cfg.get("offset", 0.0), x.dtype)
    return x * scale + offset


def _conv1d(x: np.ndarray, w: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise ValueError("only channels_last is replayed")
    if int(cfg.get("groups", 1) or 1) != 1:
        raise ValueError("grouped convolutions are not replayed")
    k = w["kernel"].astype(x.dtype)  # (kernel_size, in, filters)
    size, stride, dil = k.shape[0], _one(cfg.get("strides", 1)), _one(cfg.get("dilation_rate", 1))
    padding = str(cfg.get("padding", "valid")).lower()
    steps = x.shape[1]
    span = (size - 1) * dil + 1
    if padding == "causal":
        x = np.pad(x, ((0, 0), (span - 1, 0), (0, 0)))
    elif padding == "same":
        out_len = math.ceil(steps / stride)
        total = max((out_len - 1) * stride + span - steps, 0)
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    elif padding != "valid":
        raise ValueError(f"padding {padding!r}")
    n_out = (x.shape[1] - span) // stride + 1
    if n_out <= 0:
        raise ValueError("the input is shorter than the kernel")
    z = np.zeros((x.shape[0], n_out, k.shape[2]), x.dtype)
    for j in range(size):
        start = j * dil
        z += x[:, start : start + (n_out - 1) * stride + 1 : stride] @ k[j]
    if "bias" in w:
        z = z + w["bias"].astype(x.dtype)
    return _apply(_act_name(cfg.get("activation")), z)


def _one(v: Any) -> int:
    return int(v[0] if isinstance(v, (list, tuple)) else v)


def _pool1d(
    average: bool,
) -> Callable[[np.ndarray, Mapping[str, np.ndarray], Mapping[str, Any]], np.ndarray]:
    def pool(x: np.ndarray, w: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise ValueError("only channels_last is replayed")
        size = _one(cfg.get("pool_size", 2))
        stride = _one(cfg.get("strides") or size)
        padding = str(cfg.get("padding", "valid")).lower()
        steps = x.shape[1]
        if padding == "same":
            n_out = math.ceil(steps / stride)
            total = max((n_out - 1) * stride + size - steps, 0)
            left = total // 2
        else:
            n_out, left = (steps - size) // stride + 1, 0
        rows = []
        for o in range(n_out):
            lo = max(o * stride - left, 0)
            hi = min(o * stride - left + size, steps)
            win = x[:, lo:hi]
            rows.append(win.mean(axis=1) if average else win.max(axis=1))
        return np.stack(rows, axis=1)

    return pool


def _global_pool(
    x: np.ndarray, mask: np.ndarray | None, cfg: Mapping[str, Any], *, average: bool
) -> np.ndarray:
    axis = 1 if cfg.get("data_format", "channels_last") == "channels_last" else 2
    keep = cfg.get("keepdims") is True
    if not average:
        return x.max(axis=axis, keepdims=keep)
    if mask is None:
        return x.mean(axis=axis, keepdims=keep)
    m = mask[..., None].astype(x.dtype) if axis == 1 else mask[:, None, :].astype(x.dtype)
    return (x * m).sum(axis=axis, keepdims=keep) / m.sum(axis=axis, keepdims=keep)


def _flatten(x: np.ndarray, w: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def _layer_norm(x: np.ndarray, w: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
    if cfg.get("rms_scaling") is True:
        raise ValueError("rms_scaling is not replayed")
    axes = _axes(cfg, x.ndim)
    eps = float(cfg.get("epsilon", 1e-3))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return _normalised(x, mean, var, eps, w, axes)


def _batch_norm(x: np.ndarray, w: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
    axes = _axes(cfg, x.ndim)
    eps = float(cfg.get("epsilon", 1e-3))
    mean = _broadcast(w["moving_mean"], axes, x.shape).astype(x.dtype)
    var = _broadcast(w["moving_variance"], axes, x.shape).astype(x.dtype)
    return _normalised(x, mean, var, eps, w, axes)


def _normalised(
    x: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
    w: Mapping[str, np.ndarray],
    axes: tuple[int, ...],
) -> np.ndarray:
    """(x − mean)/√(var + eps), then scaled by gamma and shifted by beta where the layer has
    them: LayerNormalization (statistics of x) and BatchNormalization (moving ones)."""
    out = (x - mean) / np.sqrt(var + eps)
    if "gamma" in w:
        out = out * _broadcast(w["gamma"], axes, x.shape).astype(x.dtype)
    if "beta" in w:
        out = out + _broadcast(w["beta"], axes, x.shape).astype(x.dtype)
    return out


def _activation(x: np.ndarray, w: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
    return _apply(_act_name(cfg.get("activation")), x)


def _relu(x: np.ndarray, w: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
    slope = float(cfg.get("negative_slope", 0.0) or 0.0)
    threshold = float(cfg.get("threshold", 0.0) or 0.0)
    out = np.where(x >= threshold, x, slope * (x - threshold))
    top = cfg.get("max_value")
    return out if top is None else np.minimum(out, float(top))


def _softmax_layer(
    x: np.ndarray, w: Mapping[str, np.ndarray], cfg: Mapping[str, Any]
) -> np.ndarray:
    axis = cfg.get("axis", -1)
    return _softmax(x, int(axis if not isinstance(axis, list) else axis[0]))


def _merge(cls: str, xs: list[np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
    if cls == "Concatenate":
        return np.concatenate(xs, axis=int(cfg.get("axis", -1)))
    if cls == "Subtract":
        if len(xs) != 2:
            raise ValueError("Subtract takes two inputs")
        return xs[0] - xs[1]
    out = xs[0]
    for a in xs[1:]:
        out = out * a if cls == "Multiply" else out + a
    return out / len(xs) if cls == "Average" else out


_SIMPLE: dict[
    str, Callable[[np.ndarray, Mapping[str, np.ndarray], Mapping[str, Any]], np.ndarray]
] = {
    "Normalization": _normalization,
    "Rescaling": _rescaling,
    "Conv1D": _conv1d,
    "Dense": lambda x, w, cfg: _dense(x, w, _act_name(cfg.get("activation"))),
    "Activation": _activation,
    "ReLU": _relu,
    "Softmax": _softmax_layer,
    "AveragePooling1D": _pool1d(True),
    "MaxPooling1D": _pool1d(False),
    "Flatten": _flatten,
    "LayerNormalization": _layer_norm,
    "BatchNormalization": _batch_norm,
}


def model_forward(
    weights: ModelWeights,
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str | None]:
    """What computes the model's prediction in numpy (and a note on how, or None), or None
    and the sentence saying which layer stopped the replay (None where there is no graph
    to follow at all)."""
    g = weights.graph
    if g is None:
        if weights.reader == "keras":
            return None, None
        return None, "the file stores no model graph to replay"
    if g.onnx is not None:
        from lstm_report.analysis.onnx_replay import onnx_forward

        return onnx_forward(g)
    problem = replay_problem(weights)
    if problem is not None:
        layer, why = problem
        return None, f"numpy stops at layer {layer!r}: {why}" if layer else f"numpy stops: {why}"
    replay = ModelReplay(weights, dtype=np.float32)
    return replay.output, None
