"""Read models through Keras 3 (``keras.saving.load_model``, safe mode, not compiled)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lstm_report.errors import ModelLoadError, UnsafeModelError, quote, shorten
from lstm_report.model.layers import Embedding, ModelWeights, OtherLayer, RecurrentLayer
from lstm_report.readers.files import ModelFile
from lstm_report.readers.keras.topology import (
    FoundLayer,
    Half,
    input_dim,
    input_embedding,
    input_shape,
    layer_kind,
)
from lstm_report.readers.keras.walk import walk_recurrent

_IMPORT_LOCK = threading.Lock()


def import_keras() -> Any:
    """Import Keras quietly: TensorFlow's C++ start-up chatter is noise in a CLI.

    Thread-safe: a library caller or the training callback may call it from any thread,
    and none may see a half-imported module.
    """
    with _IMPORT_LOCK:
        return _import_keras()


def _import_keras() -> Any:
    if "keras" in sys.modules and hasattr(sys.modules["keras"], "saving"):
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow's native code logs to file descriptor 2 at import, before its logging is
    # set up and whatever TF_CPP_MIN_LOG_LEVEL says (TF >= 2.16), so the descriptor itself
    # is silenced for the import. Only from the main thread, which is busy importing: from
    # any other thread, lines the process writes meanwhile (errors, progress) would be lost.
    quiet = threading.current_thread() is threading.main_thread()
    saved = None
    if quiet:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
        except OSError:
            saved = None
    try:
        import keras  # Keras (and TensorFlow) load only when a model is read with Keras
    except ImportError as exc:
        raise ModelLoadError(f"cannot import Keras ({exc}); install keras and tensorflow") from None
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    return keras


_CALLING_KERAS: set[int] = set()
"""The threads now inside one of lstm-report's own Keras calls (see keras_calls)."""


class _OwnCallsFilter(logging.Filter):
    """Drops TensorFlow's warnings about lstm-report's own Keras calls."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or record.thread not in _CALLING_KERAS


_FILTER = _OwnCallsFilter()


@contextlib.contextmanager
def keras_calls() -> Iterator[None]:
    """Run lstm-report's own Keras calls without TensorFlow's warnings about them.

    Each occlusion and layer input is a ``predict`` on a sub-model built for it, so
    TensorFlow soon logs, in several lines, that its predict function "triggered
    tf.function retracing": advice about lstm-report's code, not the user's model. Its
    warnings logged from this thread meanwhile are dropped (errors still print); those of
    other threads, e.g. the training loop around the callback, are the user's and stay.
    """
    logging.getLogger("tensorflow").addFilter(_FILTER)  # once: a logger keeps a filter once
    ident = threading.get_ident()
    outer = ident not in _CALLING_KERAS
    _CALLING_KERAS.add(ident)
    try:
        yield
    finally:
        if outer:
            _CALLING_KERAS.discard(ident)


def read(info: ModelFile, *, name: str, where: str, unsafe: bool = False) -> ModelWeights:
    """Load the model with Keras and extract every LSTM's arrays."""
    if info.config is None:
        raise ModelLoadError(
            f"{where}: {info.path} holds weights only (no model architecture); "
            "Keras cannot load it as a model"
        )
    try:
        model = _load(info.path, unsafe)
    except Exception as exc:  # Keras raises many types; all mean "cannot load"
        msg = _first_line(exc)
        if "unsafe" in msg.lower() or "safe_mode" in msg:
            raise UnsafeModelError(
                f"{where}: {info.path.name} needs unsafe deserialization ({msg}); if you trust "
                "this file, set 'unsafe: true' for the model in the config or pass --unsafe"
            ) from exc
        raise ModelLoadError(f"{where}: Keras cannot load {info.path}: {msg}") from exc
    return from_model(model, name=name, path=info.path, keras_version=info.keras_version)


_LOADED: dict[tuple[object, ...], Any] = {}


def _load(path: Path, unsafe: bool) -> Any:
    """Load once per file: the probe analysis may need the same model again. A file is
    known by its identity and its last change (a long-lived worker may see a model
    rewritten at the same path: that is another model, loaded afresh)."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    key = (
        None
        if st is None
        else (
            os.path.realpath(path),
            unsafe,
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )
    )
    if key is None or key not in _LOADED:
        keras = import_keras()
        _LOADED.clear()  # keep at most one model alive
        with keras_calls():
            model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
        if key is None:
            return model
        _LOADED[key] = model
    return _LOADED[key]


def layer_inputs(path: Path, *, unsafe: bool) -> Callable[[str | None, np.ndarray], np.ndarray]:
    """A function computing a top-level layer's input from the model input, with Keras."""
    return _inputs_of(lambda: _load(path, unsafe))


def model_inputs(model: Any) -> Callable[[str | None, np.ndarray], np.ndarray]:
    """Like layer_inputs, for a model already in memory."""
    return _inputs_of(lambda: model)


def _inputs_of(
    get_model: Callable[[], Any],
) -> Callable[[str | None, np.ndarray], np.ndarray]:
    def compute(name: str | None, x: np.ndarray) -> np.ndarray:
        """The input of the top-level layer ``name``; of ``None``: the model's own output."""
        keras = import_keras()
        what = "the model's output" if name is None else f"the input of layer {quote(name)}"
        try:
            model = get_model()
            target = model.outputs if name is None else model.get_layer(name).input
            with keras_calls():
                sub = keras.Model(model.inputs, target)
                return np.asarray(sub.predict(x, verbose=0, batch_size=256))
        except Exception as exc:
            raise ModelLoadError(f"Keras cannot compute {what}: {_first_line(exc)}") from exc

    return compute


def from_model(
    model: Any, *, name: str, path: Any, keras_version: str | None = None
) -> ModelWeights:
    """Extract the LSTMs and GRUs of an in-memory Keras model."""
    keras = import_keras()
    config = keras.saving.serialize_keras_object(model)
    objects = dict(_walk_layers(model, ""))
    lstms, others, convs = walk_recurrent(config, _LiveHalves(objects, path))
    return ModelWeights(
        name=name,
        path=path,
        layers=tuple(lstms),
        others=tuple(others),
        total_params=int(model.count_params()),
        input_dim=input_dim(config),
        reader="keras",
        keras_version=keras_version or keras.__version__,
        input_shape=input_shape(config),
        embedding=_embedding(config, objects),
        conv_layers=tuple(convs),
    )


class _LiveHalves:
    """A live model's halves: kinds, units and arrays from its layer objects."""

    def __init__(self, objects: Mapping[str, Any], path: Any) -> None:
        self.objects, self.path = objects, path
        self.where = str(path)

    def arrays(self, found: FoundLayer, half: Half) -> list[np.ndarray]:
        layer = _half(self._layer(found), found.class_name, half.direction)
        return [np.array(a) for a in layer.get_weights()]

    def _layer(self, found: FoundLayer) -> Any:
        layer = self.objects.get(found.path)
        if layer is None:
            raise ModelLoadError(
                f"{self.path}: layer {found.path!r} is in the config but not the model"
            )
        return layer

    def kinds(self, found: FoundLayer, halves: Sequence[Half]) -> set[str]:
        layer = self._layer(found)
        return {_kind_of(_half(layer, found.class_name, h.direction)) for h in halves}

    def layers(self, found: FoundLayer, halves: Sequence[Half]) -> list[RecurrentLayer]:
        layer = self._layer(found)
        if found.class_name != "Bidirectional":
            direction = "backward" if _cfg(layer).get("go_backwards") else "forward"
            return [
                replace(
                    _weights(layer, found.path, direction, None, found.reads_input),
                    source=found.source,
                )
            ]
        return [
            replace(
                _weights(
                    _half(layer, found.class_name, h.direction),
                    found.path,
                    h.direction,
                    "Bidirectional",
                    found.reads_input,
                ),
                source=found.source,
                merge_mode=str(getattr(layer, "merge_mode", "concat")),
                return_sequences=bool(getattr(layer, "return_sequences", False)),
            )
            for h in halves
        ]

    def other(self, found: FoundLayer, kinds: set[str]) -> OtherLayer:
        layer = self._layer(found)
        if found.class_name == "Bidirectional":
            return OtherLayer(
                found.path,
                f"Bidirectional({'/'.join(sorted(kinds))})",
                _units(layer.forward_layer),
            )
        return OtherLayer(found.path, _kind_of(layer), _units(layer))


def _half(layer: Any, wrapper: str | None, direction: str) -> Any:
    """The layer object of one direction: a Bidirectional's half, else the layer itself."""
    if wrapper != "Bidirectional":
        return layer
    return layer.forward_layer if direction == "forward" else layer.backward_layer


def _embedding(config: Mapping[str, Any], objects: Mapping[str, Any]) -> Embedding | None:
    found = input_embedding(config)
    layer = objects.get(found.path) if found is not None else None
    if found is None or layer is None:
        return None
    table = np.array(layer.get_weights()[0]) if layer.get_weights() else None
    vocab = table.shape[0] if table is not None else found.vocab
    return Embedding(name=found.path, table=table, vocab=vocab, mask_zero=found.mask_zero)


def refresh(model: Any, template: ModelWeights) -> ModelWeights:
    """template's LSTMs with the model's current arrays: a cheap snapshot during training
    (the architecture is read once, by from_model; only the arrays are copied)."""
    objects = dict(_walk_layers(model, ""))
    lstms = []
    for w in template.layers:
        cell = _half(objects[w.name], w.wrapper, w.direction).cell
        bias = None if w.bias is None else np.array(cell.bias.numpy())
        lstms.append(
            w.with_keras_arrays(
                np.array(cell.kernel.numpy()), np.array(cell.recurrent_kernel.numpy()), bias
            )
        )
    return replace(template, layers=tuple(lstms))


def _walk_layers(model: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    for layer in model.layers:
        path = prefix + layer.name
        yield path, layer
        if hasattr(layer, "layers") and type(layer).__name__ in (
            "Functional",
            "Sequential",
            "Model",
        ):
            yield from _walk_layers(layer, path + "/")


def _cfg(layer: Any) -> Mapping[str, Any]:
    try:
        return dict(layer.get_config())
    except Exception:  # a custom layer without get_config
        return {}


def _kind_of(layer: Any) -> str:
    cfg = dict(_cfg(layer))
    if type(layer).__name__ == "RNN":
        cell = getattr(layer, "cell", None)
        cfg["cell"] = {"class_name": type(cell).__name__}
    return layer_kind(type(layer).__name__, cfg)


def _units(layer: Any) -> int | None:
    units = getattr(layer, "units", None)
    if units is None:
        units = getattr(getattr(layer, "cell", None), "units", None)
    return int(units) if isinstance(units, (int, np.integer)) else None


def _activation_name(fn: Any) -> str:
    name = getattr(fn, "__name__", None)
    return str(name) if name else repr(fn)


def _weights(
    layer: Any, path: str, direction: str, wrapper: str | None, reads_input: bool
) -> RecurrentLayer:
    cell = layer.cell
    bias = getattr(cell, "bias", None) if getattr(cell, "use_bias", True) else None
    return RecurrentLayer.from_keras_arrays(
        name=path,
        direction=direction,
        kernel=np.asarray(cell.kernel.numpy()),
        recurrent_kernel=np.asarray(cell.recurrent_kernel.numpy()),
        bias=None if bias is None else np.asarray(bias.numpy()),
        activation=_activation_name(cell.activation),
        recurrent_activation=_activation_name(cell.recurrent_activation),
        go_backwards=bool(getattr(layer, "go_backwards", False)),
        return_sequences=bool(getattr(layer, "return_sequences", False)),
        wrapper=wrapper,
        reads_input=reads_input,
        unit_forget_bias=bool(getattr(cell, "unit_forget_bias", False)),
        kind=_kind_of(layer),
        reset_after=bool(cell.reset_after) if hasattr(cell, "reset_after") else None,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    line = text.splitlines()[0].strip()
    return shorten(line, 200)
