"""Keras 3's ``model.weights.npz`` (``saving_lib.save_model(weights_format="npz")``), read
without unpickling anything for real.

``keras/src/saving/saving_lib.py`` (``NpzIOStore``) keeps one dict per layer path
(``layers/lstm/cell``) mapping ``"0"``, ``"1"``, … to the layer's variables, and writes them
with ``np.savez``: each dict becomes a 0-d object array, that is a pickle of the Keras
``Variable`` objects themselves (with TensorFlow, a ``functools.partial`` rebuilding a
``ResourceVariable`` whose ``initial_value`` is a pickled numpy array). Keras 3.15 cannot
load these files itself (``np.load(allow_pickle=False)``: "Object arrays cannot be loaded").

Here every member's ``.npy`` header is read first (numpy.lib.format), the pickle after it
is read by the inert unpickler (readers/safety/inert_pickle.py: every global a placeholder), and
each variable's value is the one numeric numpy array inside it, rebuilt from
``numpy._core.multiarray._reconstruct``'s recorded state (shape, dtype code, byte order,
raw bytes) after checking that the bytes are exactly what the shape declares. The arrays
go into an in-memory HDF5 file laid out as ``model.weights.h5`` (``<path>/vars/<i>``), so
the .keras reader reads both forms alike.
"""

from __future__ import annotations

import io
import itertools
import math
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy

from lstm_report.errors import CorruptModelError
from lstm_report.fileio.limits import MiB, read_at_most, zip_member_problem
from lstm_report.readers.keras.h5 import DirectReadError
from lstm_report.readers.safety import inert_pickle

MAX_MEMBERS = 100_000
MAX_MEMBER_BYTES = 256 * MiB
"""One layer's pickled variables (the weights are inside the pickle)."""
MAX_TOTAL_BYTES = 2048 * MiB
_RECONSTRUCT = {"numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct"}
_NUMERIC = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}
_counter = itertools.count()


@contextmanager
def as_h5(fh: IO[bytes], label: str) -> Iterator[Any]:
    """The npz file ``fh`` as an in-memory h5py.File in model.weights.h5's layout."""
    import h5py  # h5py is loaded only when an HDF5 file is read

    try:
        zf = zipfile.ZipFile(fh)
    except zipfile.BadZipFile as exc:
        raise CorruptModelError(f"{label}: model.weights.npz is not a zip ({exc})") from None
    with zf, h5py.File(f"npz-{next(_counter)}", "w", driver="core", backing_store=False) as h5:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise CorruptModelError(f"{label}: model.weights.npz has {len(infos)} members")
        total = 0
        for info in infos:
            name = info.filename
            problem = zip_member_problem(info, MAX_MEMBER_BYTES)
            if problem is not None:
                raise CorruptModelError(f"{label}: model.weights.npz: {name} {problem}")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise CorruptModelError(f"{label}: model.weights.npz inflates past 2 GiB")
            if not name.endswith(".npy"):
                raise DirectReadError(f"{label}: model.weights.npz holds {name!r}, not an array")
            with zf.open(info) as src:
                raw = read_at_most(src, info.file_size)
            if raw is None:
                raise CorruptModelError(
                    f"{label}: model.weights.npz: {name} inflates past its declared size"
                )
            path = name[: -len(".npy")]
            for key, arr in _member_arrays(raw, f"{label}: model.weights.npz: {name}"):
                h5.create_dataset(f"{path}/vars/{key}", data=arr)
        yield h5


def _member_arrays(raw: bytes, label: str) -> list[tuple[str, np.ndarray]]:
    """One member's variables, ``("0", kernel), ("1", recurrent_kernel), ...``."""
    fh = io.BytesIO(raw)
    try:
        version = npy.read_magic(fh)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = read_header(fh)
    except ValueError as exc:
        raise CorruptModelError(f"{label}: not a .npy array ({exc})") from None
    if dtype.kind != "O" or shape != ():
        raise DirectReadError(f"{label}: a {dtype} array of shape {shape}, not Keras' dict")
    try:
        obj, _ = inert_pickle.load(raw[fh.tell() :], lambda m, n: None, _no_persistent)
    except (inert_pickle.Refused, *_PICKLE_ERRORS) as exc:
        raise CorruptModelError(f"{label}: its pickle cannot be read inertly ({exc})") from None
    store = _object_array_item(obj)
    if not isinstance(store, dict) or not all(isinstance(k, str) for k in store):
        raise DirectReadError(f"{label}: not Keras' dict of variables")
    out = []
    for key in sorted(store, key=lambda k: (len(k), k)):
        if not key.isdigit():
            raise DirectReadError(f"{label}: variable key {key[:50]!r} is not a number")
        values = {id(a): a for a in _arrays_in(store[key])}
        if not values and b"torch._utils" in raw:
            raise DirectReadError(
                f"{label}: variable {key} is a pickled torch tensor (Keras' torch backend "
                "saves its npz weights so), which is not read; save the model with the "
                "default weights_format='h5'"
            )
        if len(values) != 1:
            raise DirectReadError(
                f"{label}: variable {key} holds {len(values)} numeric arrays, not one"
            )
        out.append((key, next(iter(values.values()))))
    if [k for k, _ in out] != [str(i) for i in range(len(out))]:
        raise DirectReadError(f"{label}: variables are not numbered 0..{len(out) - 1}")
    return out


def _no_persistent(pid: object) -> object:
    raise inert_pickle.Refused("a persistent id")


_PICKLE_ERRORS = (
    ValueError,
    TypeError,
    EOFError,
    IndexError,
    KeyError,
    AttributeError,
    MemoryError,
    RecursionError,
    __import__("pickle").UnpicklingError,
)


def _object_array_item(obj: object) -> object:
    """The one element of a pickled 0-d object array: ``_reconstruct`` BUILD with state
    ``(1, (), dtype('O8'), False, [item])``."""
    if not (isinstance(obj, inert_pickle.Placeholder) and obj.name in _RECONSTRUCT):
        return None
    state = obj.state
    if isinstance(state, tuple) and len(state) == 5 and state[1] == ():
        items = state[4]
        if isinstance(items, list) and len(items) == 1:
            return items[0]
    return None


def _arrays_in(obj: object) -> Iterator[np.ndarray]:
    for p in inert_pickle.placeholders(obj):
        arr = ndarray_of(p)
        if arr is not None:
            yield arr


def ndarray_of(p: inert_pickle.Placeholder) -> np.ndarray | None:
    """A numeric numpy array from its pickled form, or None if ``p`` is not one.

    ``numpy.ndarray.__reduce__`` gives ``_reconstruct(ndarray, (0,), b'b')`` and BUILD state
    ``(version, shape, dtype, is_fortran, raw bytes)``; a dtype is ``numpy.dtype(code,
    False, True)`` with BUILD state ``(3, byte order, ...)``. The bytes must be exactly
    shape × item size."""
    if p.name not in _RECONSTRUCT:
        return None
    state = p.state
    if not (isinstance(state, tuple) and len(state) == 5):
        return None
    _version, shape, dtype, fortran, raw = state
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        return None
    if not (isinstance(dtype, inert_pickle.Placeholder) and dtype.name == "numpy.dtype"):
        return None
    code = dtype.args[0] if dtype.args else None
    order = dtype.state[1] if isinstance(dtype.state, tuple) and len(dtype.state) > 1 else "|"
    if code not in _NUMERIC or order not in ("<", ">", "|", "=") or not isinstance(raw, bytes):
        return None
    dt = np.dtype("?" if code == "b1" else ("<" if order in "|=" else order) + code)
    if len(raw) != math.prod(shape) * dt.itemsize:
        return None
    arr = np.frombuffer(raw, dtype=dt).reshape(shape, order="F" if fortran is True else "C")
    return np.ascontiguousarray(arr.astype(dt.newbyteorder("="), copy=True))
