"""A Keras model's whole graph from its stored config and weights (no Keras, nothing run):
the layers around the recurrent ones (Normalization, Conv1D, Dense heads, ...) with their
arrays, for the numpy replay of the model (analysis/model_replay.py).

Arrays are found by role: in a ``.keras`` file by position in ``<group>/vars`` (saving_lib
stores trainable then non-trainable variables, in the order each layer's ``build`` creates
them), in a legacy ``.h5`` by the last part of each ``weight_names`` entry. What is not
understood stops the graph at that layer (``ModelGraph.stop``); it never fails the read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lstm_report.errors import LstmReportError
from lstm_report.model.graph import IDENTITY_LAYERS, GraphLayer, ModelGraph
from lstm_report.readers.keras.topology import CONTAINERS, RECURRENT, layer_name, layers_of

_SEQ = (list, tuple)

SUPPORTED = IDENTITY_LAYERS | frozenset(
    {
        "Normalization",
        "Rescaling",
        "Conv1D",
        "Dense",
        "TimeDistributed",
        "Activation",
        "ReLU",
        "Softmax",
        "Embedding",
        "Masking",
        "GlobalAveragePooling1D",
        "GlobalMaxPooling1D",
        "AveragePooling1D",
        "MaxPooling1D",
        "Flatten",
        "LayerNormalization",
        "BatchNormalization",
        "Concatenate",
        "Add",
        "Multiply",
        "Average",
        "Subtract",
        "LSTM",
        "GRU",
        "Bidirectional",
        "NotEqual",
    }
)
"""Layer classes the numpy replay computes (the recurrent ones through their RecurrentLayer)."""


def _bool(cfg: Mapping[str, Any], key: str, default: bool) -> bool:
    v = cfg.get(key, default)
    return v if isinstance(v, bool) else default


def roles(class_name: str, cfg: Mapping[str, Any]) -> list[str] | None:
    """The roles of a layer's stored variables in saving_lib's order; None: not known."""
    if class_name in ("Dense", "Conv1D"):
        return ["kernel"] + (["bias"] if _bool(cfg, "use_bias", True) else [])
    if class_name == "Embedding":
        return ["embeddings"]
    if class_name == "Normalization":
        return ["mean", "variance", "_count"]  # "_": stored there, not needed (an integer)
    if class_name == "BatchNormalization":
        return (
            (["gamma"] if _bool(cfg, "scale", True) else [])
            + (["beta"] if _bool(cfg, "center", True) else [])
            + ["moving_mean", "moving_variance"]
        )
    if class_name == "LayerNormalization":
        return (["gamma"] if _bool(cfg, "scale", True) else []) + (
            ["beta"] if _bool(cfg, "center", True) else []
        )
    return []


VarsOf = Callable[[str, str, list[str]], dict[str, np.ndarray] | None]
"""(layer path, sub-object ("" or "layer" for a TimeDistributed), roles) -> arrays by role."""


def keras_graph(model: Mapping[str, Any], vars_of: VarsOf) -> ModelGraph | None:
    """The graph of a serialized top-level model, or None if it is not a plain one."""
    cls = model.get("class_name")
    if cls not in CONTAINERS:
        return None
    entries = layers_of(model)
    if not entries:
        return None
    layers: list[GraphLayer] = []
    stop: tuple[str, str] | None = None
    sequential = cls == "Sequential"
    previous = ""
    for i, entry in enumerate(entries):
        name = layer_name(entry)
        lcls = str(entry.get("class_name"))
        cfg = entry.get("config")
        cfg = cfg if isinstance(cfg, Mapping) else {}
        if sequential:
            inputs: tuple[str, ...] | None = (previous,)
            if lcls == "InputLayer":
                inputs = ()
        else:
            inputs = _inbound(entry)
        previous = name if lcls != "InputLayer" or not sequential else previous
        if inputs is None and stop is None:
            stop = (name, f"{lcls} {name!r} is called more than once (a shared layer)")
        not_equal = _not_equal(entry)
        if not_equal is not None:
            lcls, cfg = "NotEqual", {"value": not_equal}
        elif str(entry.get("module") or "").startswith("keras.src.ops") and stop is None:
            stop = (name, f"{name!r} is a keras.ops call ({lcls}), which numpy does not replay")
        elif lcls not in SUPPORTED and stop is None:
            what = "a nested model" if lcls in CONTAINERS else f"a {lcls} layer"
            stop = (name, f"{name!r} is {what}, which numpy does not replay")
        weights, why = _layer_weights(name, lcls, cfg, vars_of)
        if why is not None and stop is None:
            stop = (name, why)
        layers.append(GraphLayer(name, lcls, cfg, inputs or (), weights, _mask_from(entry)))
    output = _output(model, layers)
    if output is None:
        return ModelGraph(tuple(layers), "", "the model's output layer is not one layer", None)
    if stop is None and not sequential and _inputs_count(model) != 1:
        stop = ("", "the model has more than one input")
    return ModelGraph(
        tuple(layers),
        output,
        None if stop is None else stop[1],
        None if stop is None else stop[0] or None,
    )


def _layer_weights(
    name: str, lcls: str, cfg: Mapping[str, Any], vars_of: VarsOf
) -> tuple[dict[str, np.ndarray], str | None]:
    """A supported layer's stored weights by role, and why the graph stops at it (None:
    it does not); a recurrent layer's weights are read elsewhere (none here)."""
    if lcls in RECURRENT or lcls not in SUPPORTED:
        return {}, None
    sub, scls, scfg = "", lcls, cfg
    if lcls == "TimeDistributed":
        inner = cfg.get("layer")
        inner = inner if isinstance(inner, Mapping) else {}
        scls = str(inner.get("class_name"))
        got = inner.get("config")
        scfg = got if isinstance(got, Mapping) else {}
        sub = "layer"
    want = roles(scls, scfg)
    if lcls == "TimeDistributed" and scls != "Dense":
        want = None
    if lcls == "Normalization" and cfg.get("mean") is not None:
        want = []  # mean and variance given in the config, not stored as weights
    if want is None:
        return {}, f"{name!r} wraps a {scls}, which numpy does not replay"
    if not want:
        return {}, None
    try:
        found = vars_of(name, sub, want)
    except (LstmReportError, KeyError, ValueError, TypeError, OSError) as exc:
        return {}, f"{lcls} {name!r}: {exc}"
    if found is None:
        return {}, f"{lcls} {name!r}: its weights are not where Keras stores them"
    return found, None


def _inbound(entry: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Names of the layers feeding a functional layer's (only) call; None: several calls."""
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, _SEQ) or not nodes:
        return ()
    if len(nodes) > 1:
        return None
    node = nodes[0]
    names: list[str] = []
    if isinstance(node, Mapping):  # Keras 3: {"args": [...], "kwargs": {...}}
        args = node.get("args")
        _histories(args[0] if isinstance(args, _SEQ) and args else None, names)
    elif isinstance(node, _SEQ):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        for item in node:
            if isinstance(item, _SEQ) and item and isinstance(item[0], str):
                names.append(item[0])
    return tuple(names)


def _not_equal(entry: Mapping[str, Any]) -> float | None:
    """The value of ``keras.ops.not_equal(x, value)``, the op Keras 3 records for an
    Embedding's ``mask_zero`` mask; None for anything else."""
    if entry.get("class_name") != "NotEqual" or not str(entry.get("module") or "").startswith(
        "keras.src.ops"
    ):
        return None
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, _SEQ) or len(nodes) != 1 or not isinstance(nodes[0], Mapping):
        return None
    args = nodes[0].get("args")
    if not isinstance(args, _SEQ) or len(args) != 2:
        return None
    value = args[1]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _mask_from(entry: Mapping[str, Any]) -> str | None:
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, _SEQ) or len(nodes) != 1 or not isinstance(nodes[0], Mapping):
        return None
    kwargs = nodes[0].get("kwargs")
    if not isinstance(kwargs, Mapping) or kwargs.get("mask") is None:
        return None
    names: list[str] = []
    _histories(kwargs["mask"], names)
    return names[0] if len(names) == 1 else None


def _histories(arg: Any, out: list[str]) -> None:
    if isinstance(arg, Mapping):
        cfg = arg.get("config")
        if arg.get("class_name") == "__keras_tensor__" and isinstance(cfg, Mapping):
            hist = cfg.get("keras_history")
            if isinstance(hist, _SEQ) and hist and isinstance(hist[0], str):
                out.append(hist[0])
    elif isinstance(arg, _SEQ):
        for a in arg[:64]:
            _histories(a, out)


def _output(model: Mapping[str, Any], layers: list[GraphLayer]) -> str | None:
    if model.get("class_name") == "Sequential":
        return layers[-1].name if layers else None
    cfg = model.get("config")
    outs = cfg.get("output_layers") if isinstance(cfg, Mapping) else None
    if isinstance(outs, _SEQ) and len(outs) == 3 and isinstance(outs[0], str):
        return outs[0]
    if isinstance(outs, _SEQ) and len(outs) == 1 and isinstance(outs[0], _SEQ):
        first = outs[0]
        if first and isinstance(first[0], str):
            return first[0]
    return None


def _inputs_count(model: Mapping[str, Any]) -> int:
    cfg = model.get("config")
    ins = cfg.get("input_layers") if isinstance(cfg, Mapping) else None
    if isinstance(ins, _SEQ) and len(ins) == 3 and isinstance(ins[0], str):
        return 1
    return len(ins) if isinstance(ins, _SEQ) else 0


def by_position(
    stored: list[Any], want: list[str], read: Callable[[Any], np.ndarray]
) -> dict[str, np.ndarray] | None:
    """A ``.keras`` group's variables matched to roles by position (None: a count mismatch);
    only the roles needed are read (not those starting with ``_``)."""
    if len(stored) != len(want):
        return None
    return {role: read(ds) for role, ds in zip(want, stored) if not role.startswith("_")}


def by_name(names_and_arrays: list[tuple[str, Any]], want: list[str]) -> dict[str, Any] | None:
    """A legacy ``.h5`` group's datasets matched to roles by the last part of their names."""
    want = [w for w in want if not w.startswith("_")]
    found: dict[str, Any] = {}
    for n, a in names_and_arrays:
        role = n.rsplit("/", 1)[-1].split(":", 1)[0]
        if role in want:
            if role in found:
                return None
            found[role] = a
    return found if set(found) == set(want) else None
