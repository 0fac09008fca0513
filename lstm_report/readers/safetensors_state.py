"""Read a .safetensors file: its header checked here, its tensors read by `safetensors`.

The format (https://github.com/huggingface/safetensors, README "Format"): 8 bytes, the
header's length N as a little-endian u64; N bytes of JSON mapping each tensor name to
{"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data that follows the
header), plus an optional "__metadata__" of strings; then the data, little-endian, C order.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_report.errors import ModelLoadError

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""The safetensors library's own limit on the header."""

_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",  # no numpy type: read as uint16 and widened to float32
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


@dataclass(frozen=True)
class TensorSpec:
    dtype: str
    shape: tuple[int, ...]
    start: int
    """Absolute position of the first byte in the file."""
    nbytes: int


def read_header(path: Path) -> dict[str, TensorSpec]:
    """Every tensor's spec, after checking every offset against the file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ModelLoadError(f"{path.name}: not a safetensors file (too short)")
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
                raise ModelLoadError(
                    f"{path.name}: not a safetensors file (header length {n} for a file of "
                    f"{size} bytes)"
                )
            raw = f.read(n)
    except OSError as exc:
        raise ModelLoadError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelLoadError(f"{path.name}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path.name}: not a safetensors file (header is not an object)")
    data_size = size - 8 - n
    out: dict[str, TensorSpec] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(spec, dict):
            raise ModelLoadError(f"{path.name}: tensor {name!r}: malformed header entry")
        dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
        if dtype not in _DTYPES:
            raise ModelLoadError(f"{path.name}: tensor {name!r}: unsupported dtype {dtype!r}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ModelLoadError(f"{path.name}: tensor {name!r}: malformed shape {shape!r}")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise ModelLoadError(
                f"{path.name}: tensor {name!r}: offsets {offsets!r} outside the "
                f"{data_size} bytes of data"
            )
        need = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
        if offsets[1] - offsets[0] != need:
            raise ModelLoadError(
                f"{path.name}: tensor {name!r}: {dtype} {tuple(shape)} needs {need} bytes, "
                f"the header gives {offsets[1] - offsets[0]}"
            )
        out[name] = TensorSpec(dtype, tuple(shape), 8 + n + offsets[0], need)
    return out


def read(path: Path, keep: Callable[[str], bool] | None = None) -> dict[str, np.ndarray]:
    """The tensors whose names `keep` accepts (all by default), as numpy arrays."""
    header = read_header(path)
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise ModelLoadError(
            f"{path.name}: reading .safetensors needs the safetensors package: "
            "pip install 'lstm-report[safetensors]'"
        ) from None
    wanted = [k for k in header if keep is None or keep(k)]
    out: dict[str, np.ndarray] = {}
    try:
        with safe_open(str(path), framework="np") as f:
            for name in wanted:
                if header[name].dtype == "BF16":
                    # numpy has no bfloat16 (safetensors' numpy API refuses it): it is the
                    # upper half of a float32.
                    out[name] = _bf16(path, header[name])
                else:
                    out[name] = np.asarray(f.get_tensor(name))
    except SafetensorError as exc:
        raise ModelLoadError(f"{path.name}: safetensors refused the file: {exc}") from None
    return out


def _bf16(path: Path, spec: TensorSpec) -> np.ndarray:
    with path.open("rb") as f:
        f.seek(spec.start)
        raw = f.read(spec.nbytes)
    if len(raw) != spec.nbytes:
        raise ModelLoadError(f"{path.name}: the file ends inside a tensor")
    bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
    return bits.view(np.float32).reshape(spec.shape)
