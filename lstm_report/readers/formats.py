"""The model-file formats lstm-report reads: the one table of their names and suffixes, and
the one owner of the magic bytes that tell them apart.

Config (is a path a model file?), the readers (which reader for which file) and the
checkpoint series (a checkpoint's label) all ask this table. It imports nothing: config
validation and ``lstm-report --help`` stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath


@dataclass(frozen=True)
class FileFormat:
    """One kind of model file."""

    name: str
    """``ModelFile.format``: ``keras``, ``h5``, ``pytorch``, ``safetensors``, ``onnx``,
    ``tflite``."""
    suffixes: tuple[str, ...]
    """File name endings, lower case, the most usual first."""
    framework: str
    """Who writes such files, for messages: ``Keras``, ``PyTorch``, ``ONNX``, ``TFLite``."""


FORMATS = (
    FileFormat("keras", (".keras",), "Keras"),
    FileFormat("h5", (".weights.h5", ".h5", ".hdf5"), "Keras"),
    FileFormat("pytorch", (".pt", ".pth"), "PyTorch"),
    FileFormat("safetensors", (".safetensors",), "PyTorch"),
    FileFormat("onnx", (".onnx",), "ONNX"),
    FileFormat("tflite", (".tflite",), "TFLite"),
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


# --- magic bytes ------------------------------------------------------------------------------

ZIP_SIGNATURE = b"PK\x03\x04"
"""A zip's first local file header: ``.keras``, torch.save, ``.npz``."""
EMPTY_ZIP_SIGNATURE = b"PK\x05\x06"
"""An empty zip starts with its end-of-central-directory record."""
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
"""An HDF5 file's superblock signature (at offset 0 in a file Keras or h5py writes)."""
TFLITE_IDENTIFIER = b"TFL3"
"""A FlatBuffer's file identifier, bytes 4-8 of every .tflite (LiteRT) model."""
PICKLE_PROTO = b"\x80"
"""A pickle of protocol 2 or later starts with the PROTO opcode: a legacy torch.save file."""
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
"""The magic number the legacy (before torch 1.6) torch.save pickles first."""
NPY_MAGIC = b"\x93NUMPY"
"""An ``.npy`` file's first bytes."""
MAX_SAFETENSORS_HEADER = 100_000_000
"""safetensors' own limit on the JSON header; a larger declared length is not safetensors."""

FRAMEWORK_FORMATS = ("pytorch", "safetensors", "onnx", "tflite")
"""The formats of readers/frameworks.py (never Keras)."""


def is_tflite(head: bytes) -> bool:
    """Whether a file's first (at least 8) bytes carry the TFLite identifier."""
    return head[4:8] == TFLITE_IDENTIFIER


def has_model_magic(path: Path) -> bool:
    """Whether a regular file's first bytes are a zip's (``.keras``), an HDF5 file's or a
    .tflite's, whatever its name says; False for what cannot be read."""
    try:
        if not path.is_file():
            return False
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return head.startswith((ZIP_SIGNATURE, HDF5_SIGNATURE)) or is_tflite(head)


def looks_like_safetensors(head: bytes) -> bool:
    """Whether a file's first 9 bytes are a safetensors header's length and opening brace."""
    return (
        len(head) >= 9
        and int.from_bytes(head[:8], "little") < MAX_SAFETENSORS_HEADER
        and head[8:9] == b"{"
    )


def looks_like_onnx(head: bytes) -> bool:
    """Whether a file's first 3 bytes can start an ONNX ModelProto: ir_version (field 1, a
    varint), then a string field."""
    return len(head) >= 3 and head[0] == 0x08 and head[1] < 0x80 and head[2] in b"\x12\x1a\x22\x2a"


def framework_format(path: Path, head: bytes) -> str | None:
    """``pytorch``, ``safetensors``, ``onnx`` or ``tflite`` for a file of those formats (by
    its name and first bytes), else None. A zip is told apart later (a .keras zip has
    config.json)."""
    named = format_of(path)
    named_as = named.name if named is not None else None
    if named_as == "tflite" or is_tflite(head):
        return "tflite"
    if named_as == "pytorch" and (head.startswith(ZIP_SIGNATURE) or head[:1] == PICKLE_PROTO):
        return "pytorch"
    if named_as == "safetensors" or looks_like_safetensors(head):
        return "safetensors"
    if named_as == "onnx" or looks_like_onnx(head):
        return "onnx"
    return None
