"""ONNX tensors as arrays: shapes and types checked; external data read only from the
model's own data file (or, allowed, from inside its folder)."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from lstm_report.errors import ModelLoadError, first_line


def all_graphs(*roots: Any) -> Any:
    """The graphs (or functions) given and every subgraph of their If, Loop and Scan nodes,
    walked with a stack, not recursion (protobuf's own nesting limit bounds the depth)."""
    stack = list(roots)
    while stack:
        g = stack.pop()
        yield g
        for node in g.node:
            for a in node.attribute:
                if a.HasField("g"):
                    stack.append(a.g)
                stack.extend(a.graphs)


_FLOAT_TYPES = {1: "<f4", 10: "<f2", 11: "<f8", 16: "bf16"}
"""onnx.TensorProto data types of weights: FLOAT, FLOAT16, DOUBLE, BFLOAT16."""


_MAX_ELEMENTS = 2**48
"""No tensor declares more elements (numpy cannot hold them anyway)."""


def _dims(t: Any, path: Path) -> tuple[int, ...]:
    """A weight tensor's shape, checked: a floating-point type, no negative dimension."""
    from onnx import TensorProto  # onnx is optional: loaded only to read an ONNX file

    where = f"{path.name}: initializer {t.name!r}"
    if t.data_type not in _FLOAT_TYPES:
        kind = (
            TensorProto.DataType.Name(t.data_type)
            if t.data_type in TensorProto.DataType.values()
            else str(t.data_type)
        )
        raise ModelLoadError(f"{where}: holds {kind} values; recurrent weights are floating point")
    dims = tuple(t.dims)
    if any(d < 0 for d in dims) or math.prod(max(d, 1) for d in dims) > _MAX_ELEMENTS:
        raise ModelLoadError(f"{where}: dimensions {dims} are not a tensor's shape")
    return dims


def declared_bytes(t: Any, path: Path) -> int:
    """What a weight tensor takes once read (float16 and bfloat16 widen to float32)."""
    code = _FLOAT_TYPES[t.data_type] if t.data_type in _FLOAT_TYPES else "<f4"
    return math.prod(_dims(t, path)) * (8 if code == "<f8" else 4)


OPT_IN = (
    "if you trust the files beside this model, pass --allow-external-data "
    "(or set 'external_data: allow' for the model in the config)"
)


def own_data_names(name: str) -> tuple[str, ...]:
    """The data files made for model file ``name``, as torch.onnx and onnx name them."""
    stem = name[: -len(".onnx")] if name.endswith(".onnx") else Path(name).stem
    return tuple(dict.fromkeys((f"{name}.data", f"{name}_data", f"{stem}.data")))


class ExternalData:
    """Where a model's external data may come from, and how much of each file it declares."""

    def __init__(self, path: Path, model: Any, allow: bool) -> None:
        real = path.resolve()
        self.folder = real.parent
        self.model_name = real.name
        self.shown = path.name
        self.allow = allow
        self._declared: dict[str, int] | None = None
        self._model = model
        self._read: dict[int, tuple[Any, np.ndarray]] = {}

    def read(self, t: Any) -> np.ndarray:
        """A stored tensor as _raw_array reads it, once however many nodes use it. The
        tensor is kept with its array: protobuf may hand out a new wrapper object on each
        access, and a freed wrapper's id would otherwise be reused for another tensor."""
        if id(t) not in self._read:
            self._read[id(t)] = (t, _raw_array(t, self))
        return self._read[id(t)][1]

    def declared(self, location: str) -> int:
        """The bytes of ``location`` the model's tensors declare: the end of the last one."""
        if self._declared is None:
            ends: dict[str, int] = {}
            for t in _all_tensors(self._model):
                if t.data_location != 1:  # TensorProto.EXTERNAL
                    continue
                info = {e.key: e.value for e in t.external_data}
                try:
                    length = int(info["length"]) if "length" in info else _nbytes(t)
                    end = int(info.get("offset", "0")) + length
                except (ValueError, TypeError, KeyError):
                    continue  # the tensor that is read says what is wrong with it
                loc = info.get("location", "")
                ends[loc] = max(ends.get(loc, 0), end)
            self._declared = ends
        return self._declared.get(location, 0)


def _nbytes(t: Any) -> int:
    """The bytes a tensor's dims and type declare (raises for a type without a size)."""
    # onnx is optional: loaded only to read an ONNX file
    from onnx.helper import tensor_dtype_to_np_dtype

    return math.prod(t.dims) * tensor_dtype_to_np_dtype(t.data_type).itemsize


def _all_tensors(model: Any) -> Any:
    """Every TensorProto of the model: initializers, sparse ones, node attributes, in every
    subgraph and function."""
    for g in all_graphs(model.graph, *model.functions):
        yield from getattr(g, "initializer", ())
        for sparse in getattr(g, "sparse_initializer", ()):
            yield sparse.values
            yield sparse.indices
        for node in g.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors


def _raw_array(t: Any, external: ExternalData) -> np.ndarray:
    """A TensorProto in its own dtype (shapes and indices stay integers); external data as
    `_array` reads it."""
    from onnx import TensorProto, numpy_helper  # onnx is optional: loaded only to read an ONNX file

    if t.data_location == TensorProto.EXTERNAL:
        return _array(t, external)
    try:
        return np.asarray(numpy_helper.to_array(t))
    except Exception as exc:
        raise ModelLoadError(
            f"{external.shown}: initializer {t.name!r} cannot be read: {first_line(exc)}"
        ) from None


def _array(t: Any, external: ExternalData) -> np.ndarray:
    """A TensorProto kept in an external file, as a float array: only from the model's own
    data file (or, allowed, from inside the model's folder)."""
    path_name = external.shown
    dims = _dims(t, Path(path_name))  # a floating-point type, no negative dimension
    where = f"{path_name}: initializer {t.name!r}"
    info = {e.key: e.value for e in t.external_data}
    code = _FLOAT_TYPES[t.data_type]
    item = 2 if code == "bf16" else np.dtype(code).itemsize
    need = math.prod(dims) * item
    location = info.get("location", "")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else need
    except ValueError:
        raise ModelLoadError(f"{where}: malformed external offset or length") from None
    fd = _open_external(location, external, where)
    try:
        size = os.fstat(fd).st_size
        if length != need or offset < 0 or offset + need > size:
            raise ModelLoadError(
                f"{where}: external data needs {need} bytes at offset {offset} of "
                f"{location} ({size} bytes), the file declares {length}"
            )
        declared = external.declared(location)
        if not external.allow and size != declared:
            raise ModelLoadError(
                f"{where}: external data file {location!r} holds {size} bytes, but the "
                f"model's tensors declare {declared}: not the model's own data file; {OPT_IN}"
            )
        raw = os.pread(fd, need, offset)
    finally:
        os.close(fd)
    if len(raw) != need:
        raise ModelLoadError(f"{where}: external data file {location!r} ended early")
    if code == "bf16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(dims)
    return np.frombuffer(raw, dtype=code).reshape(dims).astype(code[1:])


def _open_external(location: str, external: ExternalData, where: str) -> int:
    """An open descriptor of the external data file: by default only the model's own data
    file, a regular file reached through no symbolic link; allowed, any regular file whose
    real path lies inside the model's folder."""
    folder = external.folder
    if "\x00" in location:
        raise ModelLoadError(f"{where}: external data location {location!r} holds a NUL byte")
    if not external.allow:
        names = own_data_names(external.model_name)
        if location not in names:
            raise ModelLoadError(
                f"{where}: external data location {location!r} is not the data file made "
                f"for the model ({' or '.join(names)} beside it): refused; {OPT_IN}"
            )
        target = folder / location
    else:
        target = _inside_folder(location, folder, where)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        if not external.allow and os.path.islink(target):
            raise OSError(40, "a symbolic link")  # ELOOP, as O_NOFOLLOW says it
        fd = os.open(target, flags)
    except FileNotFoundError:
        raise ModelLoadError(f"{where}: external data file {location!r} is missing") from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component is a link
            raise ModelLoadError(
                f"{where}: external data file {location!r} is a symbolic link: refused; {OPT_IN}"
            ) from None
        raise ModelLoadError(
            f"{where}: external data file {location!r} cannot be read: {exc.strerror or exc}"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelLoadError(f"{where}: external data {location!r} is not a regular file")
    return fd


def _inside_folder(location: str, folder: Path, where: str) -> Path:
    """With external data allowed: a plain relative path whose real path (links resolved)
    lies inside the model's folder."""
    parts = location.replace("\\", "/").split("/")
    if (
        not location
        or "\0" in location
        or PurePosixPath(location).is_absolute()
        or PureWindowsPath(location).is_absolute()
        or PureWindowsPath(location).drive
        or ".." in parts
    ):
        raise ModelLoadError(
            f"{where}: external data location {location!r} is not a plain relative path "
            "inside the model's folder: refused"
        )
    target = Path(os.path.realpath(folder / location))
    root = Path(os.path.realpath(folder))
    if os.path.commonpath([root, target]) != str(root):
        raise ModelLoadError(
            f"{where}: external data {location!r} resolves outside the model's folder "
            "(a symbolic link?): refused"
        )
    return target
