"""The model-file formats lstm-report reads: the one table of their names and suffixes.

Config (is a path a model file?), the readers (which reader for which file) and the
checkpoint series (a checkpoint's label) all ask this table. It imports nothing: config
validation and ``lstm-report --help`` stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath


@dataclass(frozen=True)
class FileFormat:
    """One kind of model file."""

    name: str
    """``ModelFile.format``: ``keras``, ``h5``, ``pytorch``, ``safetensors`` or ``onnx``."""
    suffixes: tuple[str, ...]
    """File name endings, lower case, the most usual first."""
    framework: str
    """Who writes such files, for messages: ``Keras``, ``PyTorch``, ``ONNX``."""


FORMATS = (
    FileFormat("keras", (".keras",), "Keras"),
    FileFormat("h5", (".weights.h5", ".h5", ".hdf5"), "Keras"),
    FileFormat("pytorch", (".pt", ".pth"), "PyTorch"),
    FileFormat("safetensors", (".safetensors",), "PyTorch"),
    FileFormat("onnx", (".onnx",), "ONNX"),
)
"""Every format read. ``.weights.h5`` is how Keras 3's ``save_weights`` names its files."""

BY_NAME = {f.name: f for f in FORMATS}

MODEL_SUFFIXES = tuple(s for f in FORMATS for s in f.suffixes)
"""Every model file suffix, longest ending first within a format (``.weights.h5``)."""


def suffixes_of(*names: str) -> tuple[str, ...]:
    """The suffixes of the formats named (``suffixes_of("pytorch")``: ``.pt``, ``.pth``)."""
    return tuple(s for n in names for s in BY_NAME[n].suffixes)


def suffix_text(*frameworks: str) -> str:
    """The suffixes of the frameworks' files, for messages: ``.keras, .h5, .hdf5`` (an
    ending of another, ``.weights.h5``, goes without saying)."""
    wanted = frameworks or tuple(dict.fromkeys(f.framework for f in FORMATS))
    shown = [s for f in FORMATS if f.framework in wanted for s in f.suffixes]
    return ", ".join(s for s in shown if not any(s != t and s.endswith(t) for t in shown))


def model_suffix(name: str) -> str | None:
    """The model suffix a file name ends with (the longest that matches), else None."""
    lower = name.lower()
    found = [s for s in MODEL_SUFFIXES if lower.endswith(s) and len(lower) > len(s)]
    return max(found, key=len) if found else None


def format_of(path: str | PurePath) -> FileFormat | None:
    """The format a file's name says (not its bytes: readers check those), else None."""
    suffix = model_suffix(PurePath(path).name)
    return next((f for f in FORMATS if suffix in f.suffixes), None)


def model_stem(name: str) -> str:
    """A file name without its model suffix: ``epoch_3.weights.h5`` -> ``epoch_3``,
    ``epoch_3.pt`` -> ``epoch_3``; a name without one loses its last suffix, as
    ``Path.stem`` does."""
    suffix = model_suffix(name)
    return name[: -len(suffix)] if suffix else PurePath(name).stem
