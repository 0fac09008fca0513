"""Recognise a model file and read its stored architecture, without Keras or TensorFlow."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_report.errors import CorruptModelError, ModelLoadError, UnsafeModelError
from lstm_report.limits import (
    MAX_JSON_DEPTH,
    MAX_METADATA_BYTES,
    MAX_MODEL_CONFIG_BYTES,
    NotRegularFileError,
    json_depth_exceeds,
    open_regular,
    size_text,
    zip_member_problem,
)
from lstm_report.readers.safety import check_hdf5, open_weights, read_member, show
from lstm_report.readers.topology import structure_problem, unsafe_layers

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
TORCH_SUFFIXES = (".pt", ".pth")
"""torch.save files: a zip (or, before PyTorch 1.6, a bare pickle)."""
SAFETENSORS_SUFFIX = ".safetensors"
ONNX_SUFFIX = ".onnx"
TFLITE_SUFFIX = ".tflite"
TFLITE_IDENTIFIER = b"TFL3"
"""A FlatBuffer's file identifier, bytes 4-8 of every .tflite (LiteRT) model."""
MAX_SAFETENSORS_HEADER = 100_000_000
"""safetensors' own limit on the JSON header; a larger declared length is not safetensors."""


def framework_format(path: Path, head: bytes) -> str | None:
    """``pytorch``, ``safetensors``, ``onnx`` or ``tflite`` for a file of those formats (by
    its name and first bytes), else None. A zip is told apart later (a .keras zip has
    config.json)."""
    suffix = path.suffix.lower()
    if suffix == TFLITE_SUFFIX or head[4:8] == TFLITE_IDENTIFIER:
        return "tflite"
    if suffix in TORCH_SUFFIXES and (head.startswith(ZIP_SIGNATURE) or head[:1] == b"\x80"):
        return "pytorch"
    if suffix == SAFETENSORS_SUFFIX or (
        len(head) >= 9
        and int.from_bytes(head[:8], "little") < MAX_SAFETENSORS_HEADER
        and head[8:9] == b"{"
    ):
        return "safetensors"
    if suffix == ONNX_SUFFIX or (
        # ModelProto starts with ir_version (field 1, varint), then a string field.
        len(head) >= 3 and head[0] == 0x08 and head[1] < 0x80 and head[2] in b"\x12\x1a\x22\x2a"
    ):
        return "onnx"
    return None


@dataclass(frozen=True)
class ModelFile:
    """What a model file is, and its architecture as Keras serialized it (None if absent)."""

    path: Path
    format: str
    """``keras`` (a Keras 3 zip), ``h5`` (legacy HDF5: full model or weights only), or a
    framework's file: ``pytorch`` (torch.save), ``safetensors``, ``onnx``, ``tflite``."""
    config: dict[str, Any] | None
    keras_version: str | None = None


def inspect_file(path: Path, *, where: str) -> ModelFile:
    """Check the file exists, is a model file and is safe to read; read its config.

    Raises ModelLoadError; CorruptModelError for what no reader may try (docs/formats.md,
    "Hostile files"). Every reader, Keras included, runs only after this.
    """
    try:
        with open_regular(path) as fh:
            head = fh.read(9)
    except FileNotFoundError:
        raise ModelLoadError(f"{where}: model file not found: {path}") from None
    except IsADirectoryError:
        raise ModelLoadError(
            f"{where}: {path} is a directory; expected a .keras or .h5 model file"
        ) from None
    except NotRegularFileError as exc:
        raise ModelLoadError(
            f"{where}: {path} is {exc}; expected a .keras or .h5 model file"
        ) from None
    except OSError as exc:
        raise ModelLoadError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        raise ModelLoadError(f"{where}: model file is empty (0 bytes): {path}")
    if head.startswith(ZIP_SIGNATURE):
        return _inspect_zip(path, where)
    if head[:8] == HDF5_SIGNATURE:
        return _inspect_h5(path, where)
    found = framework_format(path, head)
    if found is not None:
        # Their readers check everything they read (readers/torch_state.py, safetensors_state.py,
        # onnx_rnn.py, tflite_rnn.py): pickles restricted, declared sizes bounded, external
        # data confined.
        return ModelFile(path=path, format=found, config=None)
    raise ModelLoadError(
        f"{where}: {path} is not a Keras model file (neither a .keras zip nor an HDF5 .h5 file) "
        "nor a PyTorch (.pt, .pth, .safetensors), ONNX (.onnx) or TFLite (.tflite) file"
    )


def check_safe(info: ModelFile, *, where: str, unsafe: bool) -> None:
    """Refuse models whose layers would run Python code on load, unless the user opted in."""
    if unsafe or info.config is None:
        return
    found = unsafe_layers(info.config)
    if found:
        raise UnsafeModelError(
            f"{where}: {info.path.name} contains {', '.join(found)}, whose Python code would run "
            "when the model is loaded; refused in safe mode. If you trust this file, set "
            "'unsafe: true' for the model in the config or pass --unsafe"
        )


def _inspect_zip(path: Path, where: str) -> ModelFile:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for info in zf.infolist():  # Keras, as a fallback, may extract every member
                problem = zip_member_problem(info)
                if problem is not None:
                    raise CorruptModelError(f"{where}: {show(info.filename)} {problem}")
            if "config.json" not in names and (
                path.suffix.lower() in TORCH_SUFFIXES or any(n.endswith("data.pkl") for n in names)
            ):
                return ModelFile(path=path, format="pytorch", config=None)
            if "config.json" not in names:
                raise ModelLoadError(
                    f"{where}: {path} is a zip file but not a .keras model (no config.json inside)"
                )
            raw = read_member(zf, "config.json", MAX_MODEL_CONFIG_BYTES, where)
            config = _json(raw, path, where, "config.json")
            version = None
            if "metadata.json" in names:
                raw = read_member(zf, "metadata.json", MAX_METADATA_BYTES, where)
                meta = _json(raw, path, where, "metadata.json")
                if isinstance(meta, dict):
                    version = _version_text(
                        meta.get("keras_version"), path, where, "metadata.json's"
                    )
            if "model.weights.h5" not in names:
                raise ModelLoadError(
                    f"{where}: {path} has no model.weights.h5 inside (incomplete .keras file)"
                )
            _check_weights(zf, path, where)
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(
            f"{where}: {path} is a corrupt or truncated .keras file ({exc})"
        ) from None
    except (OSError, EOFError) as exc:
        raise ModelLoadError(f"{where}: cannot read {path}: {exc}") from None
    return ModelFile(path=path, format="keras", config=config, keras_version=version)


def _check_weights(zf: zipfile.ZipFile, path: Path, where: str) -> None:
    import h5py

    label = f"{where}: model.weights.h5"
    with open_weights(zf, where) as raw:
        try:
            with h5py.File(raw, "r") as h5:
                check_hdf5(h5, label)
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            # h5py raises any of these for a damaged file
            raise ModelLoadError(
                f"{label} in {path} is not a readable HDF5 file ({_first_line(exc)})"
            ) from None


def _inspect_h5(path: Path, where: str) -> ModelFile:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            check_hdf5(f, where)
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version")
    except (OSError, RuntimeError, KeyError) as exc:  # h5py raises any of these for damage
        raise ModelLoadError(
            f"{where}: {path} is a corrupt or truncated HDF5 file ({_first_line(exc)})"
        ) from None
    except (TypeError, ValueError) as exc:  # an attribute of a type h5py cannot convert
        raise CorruptModelError(f"{where}: {path}: unreadable root attribute ({exc})") from None
    config = None if raw is None else _json(raw, path, where, "model_config attribute")
    return ModelFile(
        path=path,
        format="h5",
        config=config,
        keras_version=_version_text(version, path, where, "the attribute"),
    )


def _version_text(value: Any, path: Path, where: str, what: str) -> str | None:
    """A stored keras_version: a string, or nothing; anything else is refused."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 100:
        shape = getattr(value, "shape", None)
        kind = f"an array of shape {shape}" if shape is not None else type(value).__name__
        raise CorruptModelError(
            f"{where}: {path}: {what} keras_version is not a string ({kind}); damaged file"
        )
    return value or None


def _first_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= 300 else text[:297] + "..."


def _json(raw: Any, path: Path, where: str, what: str) -> dict[str, Any]:
    """A stored JSON object (config.json, metadata.json, model_config), within the limits.

    A model config must also have the layer structure Keras writes (topology.structure_problem).
    """
    limit = MAX_METADATA_BYTES if what == "metadata.json" else MAX_MODEL_CONFIG_BYTES
    if isinstance(raw, (bytes, str)) and len(raw) > limit:
        raise CorruptModelError(
            f"{where}: {path}: {what} is larger than {size_text(limit)}; refused"
        )
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        value = json.loads(raw)
    except RecursionError:
        value = None
        deep = True
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(
            f"{where}: {path}: stored model config is not valid JSON ({exc})"
        ) from None
    else:
        deep = json_depth_exceeds(value, MAX_JSON_DEPTH)
    if deep:
        raise CorruptModelError(
            f"{where}: {path}: {what} is nested more than {MAX_JSON_DEPTH} levels deep; refused"
        )
    if not isinstance(value, dict):
        if what == "metadata.json":
            return {}
        raise ModelLoadError(f"{where}: {path}: {what} does not describe a model")
    if what != "metadata.json":
        problem = structure_problem(value)
        if problem is not None:
            raise CorruptModelError(f"{where}: {path}: {what}: {problem}")
    return value
