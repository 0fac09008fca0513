"""Recognise a model file and read its stored architecture, without Keras or TensorFlow."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_report.errors import CorruptModelError, ModelLoadError, UnsafeModelError, first_line
from lstm_report.fileio.limits import (
    MAX_JSON_DEPTH,
    MAX_METADATA_BYTES,
    MAX_MODEL_CONFIG_BYTES,
    json_depth_exceeds,
    open_hostile,
    read_at_most,
    size_text,
    zip_member_problem,
)
from lstm_report.readers.formats import (
    HDF5_SIGNATURE,
    ZIP_SIGNATURE,
    framework_format,
    suffix_text,
    suffixes_of,
)
from lstm_report.readers.keras.topology import structure_problem, unsafe_layers
from lstm_report.readers.safety.rules import check_hdf5, open_weights, read_member, show

TORCH_SUFFIXES = suffixes_of("pytorch")
"""torch.save files: a zip (or, before PyTorch 1.6, a bare pickle)."""


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
    if is_model_dir(path):
        return _inspect_keras_dir(path, where)
    expected = f"expected a model file ({suffix_text()})"
    with open_hostile(
        path,
        missing=lambda: ModelLoadError(f"{where}: model file not found: {path}"),
        directory=lambda: ModelLoadError(f"{where}: {path} is a directory; {expected}"),
        special=lambda what: ModelLoadError(f"{where}: {path} is {what}; {expected}"),
        unreadable=lambda why: ModelLoadError(f"{where}: cannot read {path}: {why}"),
    ) as fh:
        head = fh.read(9)
    if not head:
        raise ModelLoadError(f"{where}: model file is empty (0 bytes): {path}")
    if head.startswith(ZIP_SIGNATURE):
        return _inspect_zip(path, where)
    if head[:8] == HDF5_SIGNATURE:
        return _inspect_h5(path, where)
    found = framework_format(path, head)
    if found is not None:
        # Their readers check everything they read (readers/torch/state.py,
        # torch/safetensors_file.py, onnx/rnn.py, tflite/rnn.py): pickles restricted, declared sizes
        # bounded, external data confined.
        return ModelFile(path=path, format=found, config=None)
    raise ModelLoadError(
        f"{where}: {path} is not a Keras model file (neither a .keras zip nor an HDF5 .h5 file) "
        f"nor a PyTorch ({suffix_text('PyTorch')}), ONNX ({suffix_text('ONNX')}) or TFLite "
        f"({suffix_text('TFLite')}) file"
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
                path.name.lower().endswith(TORCH_SUFFIXES)
                or any(n.endswith("data.pkl") for n in names)
                or {"data", "policy.pth"} <= names  # stable-baselines3's model.save()
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
            if "model.weights.h5" in names:
                _check_weights(zf, path, where)
            elif "model.weights.npz" not in names:  # keras/npz.py checks it as it reads
                raise ModelLoadError(
                    f"{where}: {path} has no model.weights.h5 (or .npz) inside "
                    "(incomplete .keras file)"
                )
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(
            f"{where}: {path} is a corrupt or truncated .keras file ({exc})"
        ) from None
    except (OSError, EOFError) as exc:
        raise ModelLoadError(f"{where}: cannot read {path}: {exc}") from None
    return ModelFile(path=path, format="keras", config=config, keras_version=version)


def is_model_dir(path: Path) -> bool:
    """A folder holding config.json: a Keras 3 model saved with ``save(zipped=False)``."""
    try:
        return path.is_dir() and (path / "config.json").exists()
    except OSError:  # a name too long, a permission: the file checks below say what
        return False


def _inspect_keras_dir(path: Path, where: str) -> ModelFile:
    """A Keras 3 model saved with ``save(zipped=False)``: a folder holding ``config.json``,
    ``metadata.json`` and ``model.weights.h5`` (or ``.npz``), under the same limits as the
    zip's members. Each must be a regular file in the folder, not a link (a model never
    makes us read other files); nothing else in the folder is read."""
    config = _dir_json(path, "config.json", MAX_MODEL_CONFIG_BYTES, where)
    version = None
    if (path / "metadata.json").exists():
        meta = _dir_json(path, "metadata.json", MAX_METADATA_BYTES, where)
        if isinstance(meta, dict):
            version = _version_text(meta.get("keras_version"), path, where, "metadata.json's")
    h5 = path / "model.weights.h5"
    if h5.exists() or h5.is_symlink():
        import h5py  # h5py is loaded only when an HDF5 file is read

        label = f"{where}: model.weights.h5"
        try:
            with _dir_member(path, "model.weights.h5", where) as fh, h5py.File(fh, "r") as f:
                check_hdf5(f, label)
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise ModelLoadError(
                f"{label} in {path} is not a readable HDF5 file ({_reason(exc)})"
            ) from None
    elif (path / "model.weights.npz").exists() or (path / "model.weights.npz").is_symlink():
        _dir_member(path, "model.weights.npz", where).close()
    else:
        raise ModelLoadError(
            f"{where}: {path} is a folder with config.json but no model.weights.h5 (or .npz)"
        )
    return ModelFile(path=path, format="keras", config=config, keras_version=version)


def _dir_member(path: Path, name: str, where: str) -> Any:
    """One file of a model folder, opened if it is a regular file and not a link."""
    if (path / name).is_symlink():
        raise UnsafeModelError(
            f"{where}: {path / name} is a symbolic link; refused (a model folder's files "
            "must be its own)"
        )
    return open_hostile(
        path / name,
        follow_symlinks=False,
        special=lambda what: UnsafeModelError(f"{where}: {path / name} is {what}; refused"),
        # also a link made meanwhile: O_NOFOLLOW gives ELOOP
        unreadable=lambda why: ModelLoadError(f"{where}: cannot read {path / name}: {why}"),
    )


def _dir_json(path: Path, name: str, limit: int, where: str) -> dict[str, Any]:
    with _dir_member(path, name, where) as fh:
        raw = read_at_most(fh, limit)
    if raw is None:
        raise CorruptModelError(
            f"{where}: {path}: {name} is larger than {size_text(limit)}; refused"
        )
    return _json(raw, path, where, name)


def _check_weights(zf: zipfile.ZipFile, path: Path, where: str) -> None:
    import h5py  # h5py is loaded only when an HDF5 file is read

    label = f"{where}: model.weights.h5"
    with open_weights(zf, where) as raw:
        try:
            with h5py.File(raw, "r") as h5:
                check_hdf5(h5, label)
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            # h5py raises any of these for a damaged file
            raise ModelLoadError(
                f"{label} in {path} is not a readable HDF5 file ({_reason(exc)})"
            ) from None


def _inspect_h5(path: Path, where: str) -> ModelFile:
    import h5py  # h5py is loaded only when an HDF5 file is read

    try:
        with h5py.File(path, "r") as f:
            check_hdf5(f, where)
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version")
    except (OSError, RuntimeError, KeyError) as exc:  # h5py raises any of these for damage
        raise ModelLoadError(
            f"{where}: {path} is a corrupt or truncated HDF5 file ({_reason(exc)})"
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


def _reason(exc: BaseException) -> str:
    """An error's first line, at most 300 characters, for an HDF5 file's refusal."""
    text = first_line(exc)
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
