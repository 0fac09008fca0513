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
from typing import Any

import numpy as np

from lstm_report.errors import ModelLoadError
from lstm_report.fileio.limits import (
    MAX_SAFETENSORS_DEPTH,
    MAX_SAFETENSORS_HEADER_ITEMS,
    MAX_TENSORS,
)

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""The safetensors library's own limit on the header."""

_MAX_ELEMENTS = 2**48
"""A shape may not declare more elements than this, zero-sized or not (numpy refuses a
dimension past 2**63 even beside a 0)."""

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

    @property
    def nbytes_read(self) -> int:
        """The bytes the tensor takes once read (bfloat16 is widened to float32)."""
        return 2 * self.nbytes if self.dtype == "BF16" else self.nbytes


_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_MAX_DIGITS = 20
"""An integer in a header is a size or an offset: at most a u64's 20 digits."""


class _BadHeader(ValueError):
    """What is wrong with a header, found while parsing it."""


def _structure_problem(raw: bytes) -> str | None:
    """Too many values, or nested too deeply: found from the bytes, before json.loads builds
    anything (30 million empty objects take 90 MB as text, 2.3 GB as Python objects)."""
    items = raw.count(b"{") + raw.count(b"[") + raw.count(b",")
    if items > MAX_SAFETENSORS_HEADER_ITEMS:
        return f"its header holds more than {MAX_SAFETENSORS_HEADER_ITEMS:,} values"
    # Outside strings only: drop escaped backslashes and quotes, then every other piece
    # between quotes is a string.
    unquoted = raw.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[0::2]
    brackets = np.frombuffer(b"".join(unquoted).translate(None, _NOT_BRACKETS), np.uint8)
    if brackets.size:
        steps = np.where((brackets == ord("{")) | (brackets == ord("[")), 1, -1)
        deepest = int(np.cumsum(steps).max())
        if deepest > MAX_SAFETENSORS_DEPTH:
            return (
                f"its header is nested {deepest:,} levels deep, more than "
                f"{MAX_SAFETENSORS_DEPTH} (a header is 3)"
            )
    return None


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise _BadHeader(f"its header holds an integer of {len(text.lstrip('-')):,} digits")
    return int(text)


def read_header(path: Path) -> dict[str, TensorSpec]:
    """Every tensor's spec, after checking every offset against the file."""
    return read_header_and_metadata(path)[0]


def read_header_and_metadata(path: Path) -> tuple[dict[str, TensorSpec], dict[str, str]]:
    """Every tensor's spec (checked as `read_header` does) and the ``__metadata__``'s
    string entries (the format allows only strings; anything else is left out)."""
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
    problem = _structure_problem(raw)
    if problem is not None:
        raise ModelLoadError(f"{path.name}: refused: {problem}")
    try:
        header = json.loads(raw, parse_int=_parse_int)
    except _BadHeader as exc:
        raise ModelLoadError(f"{path.name}: refused: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ModelLoadError(f"{path.name}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path.name}: not a safetensors file (header is not an object)")
    if len(header) > MAX_TENSORS + 1:
        raise ModelLoadError(
            f"{path.name}: refused: {len(header):,} tensors, more than {MAX_TENSORS:,}"
        )
    data_size = size - 8 - n
    specs = {
        name: _spec(path, name, spec, data_size, 8 + n)
        for name, spec in header.items()
        if name != "__metadata__"
    }
    meta = header.get("__metadata__")
    strings = (
        {k: v for k, v in meta.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(meta, dict)
        else {}
    )
    return specs, strings


def metadata_hyper_parameters(metadata: dict[str, str]) -> object:
    """The ``hyper_parameters`` entry of the metadata parsed as JSON (neuralforecast's
    ``save()`` stores its model's there), under the header's own bounds; None when it is
    absent or not valid JSON within them."""
    text = metadata.get("hyper_parameters")
    if text is None:
        return None
    raw = text.encode("utf-8", "replace")
    if _structure_problem(raw) is not None:
        return None
    try:
        return json.loads(raw, parse_int=_parse_int)
    except (_BadHeader, UnicodeDecodeError, ValueError, RecursionError):
        return None


def _spec(path: Path, name: str, spec: Any, data_size: int, data_start: int) -> TensorSpec:
    """One header entry, checked: dtype, shape, and offsets inside the data that follows."""
    if not isinstance(spec, dict):
        raise ModelLoadError(f"{path.name}: tensor {name!r}: malformed header entry")
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if dtype not in _DTYPES:
        raise ModelLoadError(f"{path.name}: tensor {name!r}: unsupported dtype {dtype!r}")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise ModelLoadError(f"{path.name}: tensor {name!r}: malformed shape {shape!r}")
    if math.prod(max(d, 1) for d in shape) > _MAX_ELEMENTS:
        raise ModelLoadError(
            f"{path.name}: tensor {name!r}: shape {tuple(shape)} is too large for any array"
        )
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
    return TensorSpec(dtype, tuple(shape), data_start + offsets[0], need)


def read(
    path: Path,
    keep: Callable[[str], bool] | None = None,
    header: dict[str, TensorSpec] | None = None,
) -> dict[str, np.ndarray]:
    """The tensors whose names `keep` accepts (all by default), as numpy arrays (header:
    what read_header returned, when the caller has it already)."""
    if header is None:
        header = read_header(path)
    try:
        # safetensors is optional: loaded only to read a .safetensors file
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
