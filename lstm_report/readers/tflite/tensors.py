"""TFLite tensors as float arrays: buffers checked against the file, integer tensors
dequantised, ``(q − zero_point) · scale`` per tensor or per channel."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lstm_report.errors import CorruptModelError, ModelLoadError

_DTYPES: dict[int, str] = {
    0: "<f4",
    1: "<f2",
    2: "<i4",
    3: "u1",
    4: "<i8",
    7: "<i2",
    9: "i1",
    10: "<f8",
}
"""tflite.TensorType codes read: FLOAT32, FLOAT16, INT32, UINT8, INT64 (the biases of
16x8 quantisation), INT16, INT8, FLOAT64."""

_TYPE_NAMES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    7: "int16",
    9: "int8",
}


class Tensors:
    """The tensors of one parsed model (``tflite.Model``) in the file's bytes ``buf``."""

    def __init__(self, model: Any, buf: bytes) -> None:
        self.model_ = model
        self.buf = buf

    def array(self, sg: Any, index: int, where: str, notes: list[str]) -> np.ndarray:
        """Tensor ``index`` of subgraph ``sg`` as float (dequantised if it is an integer)."""
        if not 0 <= index < sg.TensorsLength():
            raise CorruptModelError(f"{where}: tensor index {index} out of range")
        t = sg.Tensors(index)
        label = f"{where}: tensor {(t.Name() or b'').decode('utf-8', 'replace')!r}"
        if t.Sparsity() is not None:
            raise ModelLoadError(f"{label}: sparse tensors are not read")
        code = int(t.Type())
        dtype = _DTYPES.get(code)
        if dtype is None:
            raise ModelLoadError(f"{label}: tensor type {code} is not read")
        shape = tuple(int(d) for d in (t.ShapeAsNumpy() if t.ShapeLength() else ()))
        if any(d < 0 for d in shape):
            raise ModelLoadError(f"{label}: negative dimensions {shape}")
        need = math.prod(shape) * np.dtype(dtype).itemsize
        raw = self.buffer(int(t.Buffer()), label)
        if len(raw) != need:
            raise CorruptModelError(
                f"{label}: shape {shape} ({_TYPE_NAMES.get(code, code)}) needs {need} bytes, "
                f"its buffer holds {len(raw)}"
            )
        arr = np.frombuffer(raw, dtype=dtype).reshape(shape)
        if code in (0, 1, 10):
            return arr.astype(np.float32 if code != 10 else np.float64)
        q = t.Quantization()
        if q is None or q.ScaleLength() == 0:
            raise ModelLoadError(f"{label}: an integer tensor without a quantisation scale")
        scale = q.ScaleAsNumpy().astype(np.float64)
        zero = (
            q.ZeroPointAsNumpy().astype(np.float64) if q.ZeroPointLength() else np.zeros_like(scale)
        )
        bad = scale[~(np.isfinite(scale) & (scale > 0))]
        if bad.size:
            raise CorruptModelError(
                f"{label}: quantisation scale {bad[0]:g} (scales must be finite and positive)"
            )
        if zero.shape != scale.shape:
            raise CorruptModelError(f"{label}: {zero.size} zero points for {scale.size} scales")
        axis = int(q.QuantizedDimension())
        if scale.size > 1:
            if not 0 <= axis < len(shape) or shape[axis] != scale.size:
                raise CorruptModelError(
                    f"{label}: {scale.size} scales along dimension {axis} of shape {shape}"
                )
            view = [1] * len(shape)
            view[axis] = scale.size
            scale, zero = scale.reshape(view), zero.reshape(view)
        kind = _TYPE_NAMES[code]
        notes.append(
            f"{kind} tensors dequantised as (q − zero_point) · scale"
            + (" (per channel)" if scale.size > 1 else "")
        )
        return ((arr.astype(np.float64) - zero) * scale).astype(np.float32)

    def buffer(self, index: int, label: str) -> bytes:
        """Buffer ``index``: its bytes inside the FlatBuffer or after it, checked."""
        model = self.model_
        if not 0 <= index < model.BuffersLength():
            raise CorruptModelError(f"{label}: buffer {index} out of range")
        b = model.Buffers(index)
        offset, size = int(b.Offset()), int(b.Size())
        if offset > 1:  # schema.fbs: data kept after the FlatBuffer, at an offset in the file
            if offset + size > len(self.buf):
                raise CorruptModelError(
                    f"{label}: buffer {index} at {offset}+{size} lies past the file's end "
                    f"({len(self.buf)} bytes)"
                )
            return self.buf[offset : offset + size]
        if b.DataIsNone():
            return b""
        return bytes(b.DataAsNumpy().tobytes())
