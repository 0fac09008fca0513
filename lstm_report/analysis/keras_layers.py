"""Pure numpy: what each Keras layer around the recurrent ones computes at inference
(Dense, Conv1D, pooling, normalisations, activations, merges), for the model replay."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lstm_report.cells.activations import activation_fn

EPSILON = 1e-7
"""keras.backend.epsilon(): Normalization's floor under the standard deviation."""


def activation_of(entry: Any) -> str:
    """The activation of a serialized inner layer (TimeDistributed's), ``linear`` if none."""
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


def dense(x: np.ndarray, w: Mapping[str, np.ndarray], act: str) -> np.ndarray:
    """x · kernel + bias, through the activation ``act``."""
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


def global_pool(
    x: np.ndarray, mask: np.ndarray | None, cfg: Mapping[str, Any], *, average: bool
) -> np.ndarray:
    """Global average (over unmasked steps) or max pooling over the steps."""
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


def merge(cls: str, xs: list[np.ndarray], cfg: Mapping[str, Any]) -> np.ndarray:
    """A merge layer (Concatenate, Add, Multiply, Average, Subtract) of its inputs."""
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


SIMPLE_LAYERS: dict[
    str, Callable[[np.ndarray, Mapping[str, np.ndarray], Mapping[str, Any]], np.ndarray]
] = {
    "Normalization": _normalization,
    "Rescaling": _rescaling,
    "Conv1D": _conv1d,
    "Dense": lambda x, w, cfg: dense(x, w, _act_name(cfg.get("activation"))),
    "Activation": _activation,
    "ReLU": _relu,
    "Softmax": _softmax_layer,
    "AveragePooling1D": _pool1d(True),
    "MaxPooling1D": _pool1d(False),
    "Flatten": _flatten,
    "LayerNormalization": _layer_norm,
    "BatchNormalization": _batch_norm,
}
"""Layers computed from their input, weights and config alone, by Keras class name."""
