"""Pure Python: find the recurrent layers in a serialized Keras model config.

Works on the JSON Keras writes (``config.json`` in a ``.keras`` zip, ``model_config``
in an ``.h5`` file, or ``serialize_keras_object(model)``), in both the Keras 3 and the
Keras 2 node formats, so every reader names and classifies layers the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lstm_report.model.graph import IDENTITY_LAYERS

# In-memory configs (serialize_keras_object) hold tuples where config.json holds lists.
_SEQ = (list, tuple)

CONTAINERS = frozenset({"Functional", "Sequential", "Model"})

# Layers that pass their input through unchanged in shape and meaning (up to masking and
# noise): an LSTM behind them still reads the model's own input features.
TRANSPARENT = IDENTITY_LAYERS | {"Masking"}

RECURRENT = frozenset(
    {
        "LSTM",
        "GRU",
        "SimpleRNN",
        "RNN",
        "ConvLSTM1D",
        "ConvLSTM2D",
        "ConvLSTM3D",
        "CuDNNLSTM",
        "CuDNNGRU",
        "Bidirectional",
    }
)

# Classes whose code would run on load: never deserialized without an explicit opt-in.
UNSAFE = frozenset({"Lambda", "TFOpLambda"})


@dataclass(frozen=True)
class FoundLayer:
    """One recurrent layer found in the config."""

    path: str
    """Names of the enclosing nested models and the layer, joined by ``/``."""
    class_name: str
    config: Mapping[str, Any]
    reads_input: bool
    source: str | None = None
    """Path of the nearest non-transparent layer feeding this one (None: the model input)."""


@dataclass(frozen=True)
class Half:
    """One direction of a found recurrent layer: the layer itself, or a Bidirectional's half."""

    direction: str
    """``forward`` or ``backward``."""
    class_name: str
    config: Mapping[str, Any]


def split_halves(found: FoundLayer) -> list[Half]:
    """Each direction inside a found recurrent layer: one, or a Bidirectional's two."""
    cfg = found.config
    if found.class_name != "Bidirectional":
        direction = "backward" if cfg.get("go_backwards") else "forward"
        return [Half(direction, found.class_name, cfg)]
    fwd = cfg.get("layer") or {}
    bwd = cfg.get("backward_layer")
    fwd_cfg = dict(fwd.get("config") or {})
    if isinstance(bwd, Mapping):
        bwd_cls, bwd_cfg = str(bwd.get("class_name")), dict(bwd.get("config") or {})
    else:  # Keras builds the backward half from the forward config, reading backwards
        bwd_cls, bwd_cfg = str(fwd.get("class_name")), {**fwd_cfg}
        bwd_cfg["go_backwards"] = not fwd_cfg.get("go_backwards", False)
    return [
        Half("forward", str(fwd.get("class_name")), fwd_cfg),
        Half("backward", bwd_cls, bwd_cfg),
    ]


def layer_kind(class_name: str, config: Mapping[str, Any]) -> str:
    """``LSTM`` for an LSTM (including ``RNN(LSTMCell)``), else the Keras class name."""
    if class_name == "RNN":
        cell = config.get("cell")
        if isinstance(cell, Mapping) and cell.get("class_name") == "LSTMCell":
            return "LSTM"
        if isinstance(cell, Mapping) and isinstance(cell.get("class_name"), str):
            return f"RNN({cell['class_name']})"
    return class_name


def find_recurrent(model: Mapping[str, Any]) -> list[FoundLayer]:
    """All recurrent layers of a serialized model, in config order, nested models included."""
    return list(_walk(model, prefix="", parent_reads_input=True))


def structure_problem(model: Mapping[str, Any]) -> str | None:
    """What in a serialized model's layer structure is not as Keras writes it, or None.

    Every layer entry of a container is a mapping with a string ``class_name`` and a
    mapping ``config`` (a Keras 2 Sequential's may be a bare list of layers); so are a
    recurrent layer's ``cell``, ``layer`` and ``backward_layer``. The readers rely on it.
    A loop, not recursion (the nesting depth is bounded before: limits.MAX_JSON_DEPTH).
    """
    todo: list[tuple[Mapping[str, Any], str]] = [(model, "the model")]
    while todo:
        entry, where = todo.pop()
        cls = entry.get("class_name")
        if not isinstance(cls, str):
            return f"{where}: class_name is {_what(cls)}, not a string"
        cfg = entry.get("config")
        listed = cls == "Sequential" and isinstance(cfg, _SEQ)  # Keras 2's bare list of layers
        if cfg is not None and not isinstance(cfg, Mapping) and not listed:
            return f"{where} ({cls}): config is {_what(cfg)}, not a mapping"
        if cls in CONTAINERS:
            layers = cfg if listed else (cfg or {}).get("layers")
            if layers is not None and not isinstance(layers, _SEQ):
                return f"{where} ({cls}): layers is {_what(layers)}, not a list"
            for i, x in enumerate(layers or ()):
                at = f"{where}, layer {i}" if where != "the model" else f"layer {i}"
                if not isinstance(x, Mapping):
                    return f"{at} is {_what(x)}, not a mapping"
                todo.append((x, at if _name(x) == "?" else f"{at} ({_name(x)!r})"))
        elif cls in RECURRENT and isinstance(cfg, Mapping):
            for key in ("cell", "layer", "backward_layer"):
                sub = cfg.get(key)
                if sub is None:
                    continue
                if not isinstance(sub, Mapping):
                    return f"{where} ({cls}): {key} is {_what(sub)}, not a mapping"
                todo.append((sub, f"{where}, {key}"))
    return None


def _what(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (bool, int, float)):
        return "a number" if not isinstance(value, bool) else "a boolean"
    if isinstance(value, _SEQ):
        return "a list"
    return "a mapping" if isinstance(value, Mapping) else type(value).__name__


def unsafe_layers(model: Any) -> list[str]:
    """Names (``class 'name'``) of layers that would run Python code when deserialized."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, Mapping):
            cls = node.get("class_name")
            if isinstance(cls, str) and cls in UNSAFE:
                cfg = node.get("config")
                name = cfg.get("name") if isinstance(cfg, Mapping) else None
                found.append(f"{cls} {name!r}" if name else str(cls))
            for v in node.values():
                visit(v)
        elif isinstance(node, _SEQ):
            for v in node:
                visit(v)

    visit(model)
    return found


def input_shape(model: Mapping[str, Any]) -> tuple[int | None, ...] | None:
    """The shape of the model's (first) input without the batch axis, if the config says it."""
    layers = _layers(model)
    inputs = [x for x in layers if x.get("class_name") == "InputLayer"]
    if inputs:  # an InputLayer decides, even when it does not say its shape
        cfg = inputs[0].get("config") or {}
        candidates = [cfg.get("batch_shape"), cfg.get("batch_input_shape")]
    else:
        cfg = model.get("config")
        candidates = [cfg.get("build_input_shape") if isinstance(cfg, Mapping) else None]
        if layers:
            candidates.append((layers[0].get("config") or {}).get("batch_input_shape"))
    for shape in candidates:
        if isinstance(shape, _SEQ) and len(shape) >= 2:
            return tuple(
                d if isinstance(d, int) and not isinstance(d, bool) else None for d in shape[1:]
            )
    return None


def input_dim(model: Mapping[str, Any]) -> int | None:
    """The last dimension of the model's (first) input, if the config says it."""
    shape = input_shape(model)
    return shape[-1] if shape else None


@dataclass(frozen=True)
class InputEmbedding:
    """An Embedding layer that reads the model's input: the model takes token ids."""

    path: str
    vocab: int | None
    dim: int | None
    mask_zero: bool


def input_embedding(model: Mapping[str, Any]) -> InputEmbedding | None:
    """The top-level Embedding that reads the model input (through transparent layers)."""
    layers = _layers(model)
    if model.get("class_name") == "Sequential":
        reads = _sequential_reads_input(layers)
    else:
        reads = _functional_reads_input(layers)
    for layer in layers:
        if layer.get("class_name") == "Embedding" and reads.get(_name(layer), False):
            cfg = layer.get("config")
            cfg = cfg if isinstance(cfg, Mapping) else {}
            vocab, dim = cfg.get("input_dim"), cfg.get("output_dim")
            return InputEmbedding(
                path=_name(layer),
                vocab=vocab if isinstance(vocab, int) else None,
                dim=dim if isinstance(dim, int) else None,
                mask_zero=cfg.get("mask_zero") is True,
            )
    return None


def layers_of(model: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The layer entries of a serialized container (Functional, Sequential), in order."""
    return _layers(model)


def layer_name(layer: Mapping[str, Any]) -> str:
    """A layer entry's name (``?`` if it has none)."""
    return _name(layer)


def _layers(model: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    cfg = model.get("config")
    if isinstance(cfg, Mapping):
        layers = cfg.get("layers")
    else:  # Keras 2 Sequential configs were sometimes a bare list of layers
        layers = cfg
    if not isinstance(layers, _SEQ):
        return []
    return [x for x in layers if isinstance(x, Mapping)]


def _name(layer: Mapping[str, Any]) -> str:
    name = layer.get("name")
    if not isinstance(name, str):
        cfg = layer.get("config")
        name = cfg.get("name") if isinstance(cfg, Mapping) else None
    return name if isinstance(name, str) else "?"


def _walk(model: Mapping[str, Any], prefix: str, parent_reads_input: bool) -> Iterator[FoundLayer]:
    layers = _layers(model)
    if model.get("class_name") == "Sequential":
        reads = _sequential_reads_input(layers)
        sources = _sequential_sources(layers)
    else:
        reads = _functional_reads_input(layers)
        sources = _functional_sources(layers)
    for layer in layers:
        cls = layer.get("class_name")
        name = _name(layer)
        here = parent_reads_input and reads.get(name, False)
        if cls in CONTAINERS:
            yield from _walk(layer, prefix + name + "/", here)
        elif cls in RECURRENT:
            cfg = layer.get("config")
            yield FoundLayer(
                path=prefix + name,
                class_name=str(cls),
                config=cfg if isinstance(cfg, Mapping) else {},
                reads_input=here,
                source=None if sources.get(name) is None else prefix + str(sources[name]),
            )


def _sequential_reads_input(layers: list[Mapping[str, Any]]) -> dict[str, bool]:
    reads: dict[str, bool] = {}
    upstream_is_input = True
    for layer in layers:
        name = _name(layer)
        reads[name] = upstream_is_input
        upstream_is_input = upstream_is_input and layer.get("class_name") in TRANSPARENT
    return reads


def _sequential_sources(layers: list[Mapping[str, Any]]) -> dict[str, str | None]:
    sources: dict[str, str | None] = {}
    last: str | None = None
    for layer in layers:
        sources[_name(layer)] = last
        if layer.get("class_name") not in TRANSPARENT:
            last = _name(layer)
    return sources


def _functional_sources(layers: list[Mapping[str, Any]]) -> dict[str, str | None]:
    by_name = {_name(x): x for x in layers}
    sources: dict[str, str | None] = {}
    for layer in layers:
        src = _first_source(layer)
        seen = 0
        while src is not None and seen < 1000:
            up = by_name.get(src)
            if up is None or up.get("class_name") not in TRANSPARENT:
                break
            if up.get("class_name") == "InputLayer":
                src = None
                break
            src = _first_source(up)
            seen += 1
        sources[_name(layer)] = src
    return sources


def _functional_reads_input(layers: list[Mapping[str, Any]]) -> dict[str, bool]:
    by_name = {_name(x): x for x in layers}
    memo: dict[str, bool] = {}

    def carries_input(name: str) -> bool:
        # True if the output of `name` is still the model's input (through transparent layers).
        # A loop, not recursion: a config may chain thousands of layers, or chain them in a ring.
        chain: dict[str, None] = {}  # ordered, and a set
        result = False
        current: str | None = name
        while current is not None and current not in chain:
            if current in memo:
                result = memo[current]
                break
            chain[current] = None
            layer = by_name.get(current)
            cls = None if layer is None else layer.get("class_name")
            if layer is None or cls not in TRANSPARENT:
                break
            if cls == "InputLayer":
                result = True
                break
            current = _first_source(layer)
        for n in chain:
            memo[n] = result
        return result

    reads: dict[str, bool] = {}
    for layer in layers:
        if layer.get("class_name") == "InputLayer":
            reads[_name(layer)] = True
            continue
        src = _first_source(layer)
        reads[_name(layer)] = src is not None and carries_input(src)
    return reads


def _first_source(layer: Mapping[str, Any]) -> str | None:
    """Name of the layer whose output feeds this layer's first call's main input."""
    nodes = layer.get("inbound_nodes")
    if not isinstance(nodes, _SEQ) or not nodes:
        return None
    node = nodes[0]
    if isinstance(node, Mapping):  # Keras 3: {"args": [...], "kwargs": {...}}
        args = node.get("args")
        return _history_name(args[0]) if isinstance(args, _SEQ) and args else None
    if isinstance(node, _SEQ) and node:  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        first = node[0]
        if isinstance(first, _SEQ) and first and isinstance(first[0], str):
            return first[0]
    return None


def _history_name(arg: Any) -> str | None:
    if isinstance(arg, Mapping):
        cfg = arg.get("config")
        if arg.get("class_name") == "__keras_tensor__" and isinstance(cfg, Mapping):
            hist = cfg.get("keras_history")
            if isinstance(hist, _SEQ) and hist and isinstance(hist[0], str):
                return hist[0]
        return None
    if isinstance(arg, _SEQ) and arg:
        return _history_name(arg[0])
    return None
