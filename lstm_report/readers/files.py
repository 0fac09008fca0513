"""Recognise a model file and read its stored architecture, without Keras or TensorFlow."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_report.errors import ModelLoadError, UnsafeModelError
from lstm_report.topology import unsafe_layers

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"


@dataclass(frozen=True)
class ModelFile:
    """What a model file is, and its architecture as Keras serialized it (None if absent)."""

    path: Path
    format: str
    """``keras`` (a Keras 3 zip) or ``h5`` (legacy HDF5: full model or weights only)."""
    config: dict[str, Any] | None
    keras_version: str | None = None


def inspect_file(path: Path, *, where: str) -> ModelFile:
    """Check the file exists and is a model file; read its config. Raises ModelLoadError."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise ModelLoadError(f"{where}: model file not found: {path}") from None
    except IsADirectoryError:
        raise ModelLoadError(
            f"{where}: {path} is a directory; expected a .keras or .h5 model file"
        ) from None
    except OSError as exc:
        raise ModelLoadError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        raise ModelLoadError(f"{where}: model file is empty (0 bytes): {path}")
    if head.startswith(ZIP_SIGNATURE):
        return _inspect_zip(path, where)
    if head == HDF5_SIGNATURE:
        return _inspect_h5(path, where)
    raise ModelLoadError(
        f"{where}: {path} is not a Keras model file (neither a .keras zip nor an HDF5 .h5 file)"
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
            if "config.json" not in names:
                raise ModelLoadError(
                    f"{where}: {path} is a zip file but not a .keras model (no config.json inside)"
                )
            config = _json(zf.read("config.json"), path, where)
            version = None
            if "metadata.json" in names:
                meta = _json(zf.read("metadata.json"), path, where)
                version = meta.get("keras_version") if isinstance(meta, dict) else None
            if "model.weights.h5" not in names:
                raise ModelLoadError(
                    f"{where}: {path} has no model.weights.h5 inside (incomplete .keras file)"
                )
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(
            f"{where}: {path} is a corrupt or truncated .keras file ({exc})"
        ) from None
    except (OSError, EOFError) as exc:
        raise ModelLoadError(f"{where}: cannot read {path}: {exc}") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{where}: {path}: config.json does not describe a model")
    return ModelFile(path=path, format="keras", config=config, keras_version=version)


def _inspect_h5(path: Path, where: str) -> ModelFile:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version")
    except OSError as exc:
        raise ModelLoadError(
            f"{where}: {path} is a corrupt or truncated HDF5 file ({exc})"
        ) from None
    config = None
    if raw is not None:
        config = _json(raw, path, where)
        if not isinstance(config, dict):
            raise ModelLoadError(f"{where}: {path}: model_config does not describe a model")
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    return ModelFile(
        path=path, format="h5", config=config, keras_version=str(version) if version else None
    )


def _json(raw: Any, path: Path, where: str) -> Any:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        return json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(
            f"{where}: {path}: stored model config is not valid JSON ({exc})"
        ) from None
