"""Read what torch.save wrote (its zip format) without torch and without running the file.

A torch.save file is a zip holding one folder (named after the file, or ``archive``)::

    <folder>/data.pkl     the pickled object; each tensor refers to a storage by key
    <folder>/data/<key>   each storage's raw bytes, little-endian unless <folder>/byteorder
                          says "big"
    <folder>/version, .format_version, .storage_alignment, byteorder, .data/...

In data.pkl a tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, hooks[, metadata])`` and a storage is a persistent id ``("storage",
torch.FloatStorage, key, location, numel)``. A pickle can call any importable function,
so nothing here unpickles freely: the pickle's opcodes are scanned first and any global
outside a short allow-list refuses the file before a single opcode runs; then a restricted
Unpickler, whose find_class allows the same list, rebuilds containers with `TensorRef`
leaves that point into the zip. Sizes are checked against the zip entries before any
tensor's bytes are read, and only the tensors a caller asks for are read.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from lstm_report.errors import ModelLoadError
from lstm_report.fileio.limits import MAX_PICKLE_OPCODES, MAX_TENSORS, size_text
from lstm_report.readers.formats import TORCH_LEGACY_MAGIC, ZIP_SIGNATURE

MAX_PICKLE_BYTES = 64 * 1024 * 1024
"""data.pkl holds structure, not tensor data: a larger one is not a state dict."""

_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "bf16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "b1",
    "ComplexFloatStorage": "c8",
    "ComplexDoubleStorage": "c16",
    "UntypedStorage": "u1",
}
"""torch.<X>Storage in a persistent id -> numpy dtype code ('bf16' is converted to float32)."""


@dataclass(frozen=True)
class _StorageType:
    """What find_class returns for torch.<X>Storage: just its element type."""

    name: str
    dtype: str

    def __setstate__(self, state: object) -> None:
        # BUILD would write the dict into the instance, frozen or not (dtype '>f4').
        raise _Refused(f"a pickle BUILD rewriting torch.{self.name}")


@dataclass(frozen=True)
class _Storage:
    """A storage named in data.pkl: its zip entry and element type, checked, not read."""

    key: str
    dtype: str
    numel: int

    def __setstate__(self, state: object) -> None:
        # A pickle's BUILD could otherwise rewrite a checked object's fields.
        raise _Refused("a pickle BUILD rewriting a storage")


@dataclass(frozen=True)
class TensorRef:
    """A tensor found in the pickle: where its values are, not yet read."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def __setstate__(self, state: object) -> None:
        raise _Refused("a pickle BUILD rewriting a tensor")

    @property
    def dtype(self) -> str:
        """numpy dtype code of the stored values (``bf16`` for bfloat16)."""
        return self.storage.dtype

    @property
    def nbytes(self) -> int:
        """The bytes the tensor takes once read (bfloat16 is widened to float32)."""
        item = 4 if self.dtype == "bf16" else _itemsize(self.dtype)
        return math.prod(self.shape) * item


class _Refused(Exception):
    """Raised inside the unpickler; turned into a ModelLoadError naming the file."""


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object) -> TensorRef:
    if not isinstance(storage, _Storage):
        raise _Refused("a tensor whose storage is not a stored storage")
    if not _is_int_tuple(size) or not _is_int_tuple(stride) or len(size) != len(stride):
        raise _Refused("a tensor with a malformed size or stride")
    if not isinstance(offset, int) or offset < 0:
        raise _Refused("a tensor with a malformed storage offset")
    ref = TensorRef(storage, offset, tuple(size), tuple(stride))
    _check_bounds(ref)
    return ref


def _rebuild_tensor_v2(
    storage: object,
    offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> TensorRef:
    if metadata:
        # conj/neg bits change what the stored numbers mean; never seen in a state dict.
        raise _Refused("a tensor with conj/neg metadata")
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data: object, requires_grad: object, backward_hooks: object) -> object:
    if not isinstance(data, TensorRef):
        raise _Refused("a parameter that is not a tensor")
    return data


def _is_int_tuple(v: object) -> TypeGuard[tuple[int, ...]]:
    return isinstance(v, tuple) and all(isinstance(n, int) and n >= 0 for n in v)


def _check_bounds(ref: TensorRef) -> None:
    """The view must lie inside its storage and not repeat elements (no allocation here)."""
    if any(n == 0 for n in ref.shape):
        return
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
    if last >= ref.storage.numel:
        raise _Refused(
            f"a tensor of shape {ref.shape} reaching element {last} of a storage of "
            f"{ref.storage.numel}"
        )
    if math.prod(ref.shape) > ref.storage.numel:
        raise _Refused(f"a tensor of shape {ref.shape} repeating elements of its storage")


_CALLABLES: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    # Protocol 2 pickles a set as a call to set(list): plain containers, nothing more.
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
}


def _allowed(module: str, name: str) -> Any | None:
    if (module, name) in _CALLABLES:
        return _CALLABLES[(module, name)]
    if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
        return _StorageType(name, _STORAGE_DTYPES[name])
    return None


def _refusal(path: Path, globals_: list[tuple[str, str]]) -> ModelLoadError | None:
    """The error for the first global outside the allow-list, or None if all are allowed."""
    refused = [(m, n) for m, n in globals_ if _allowed(m, n) is None]
    if not refused:
        return None
    nn = [(m, n) for m, n in globals_ if m == "torch.nn" or m.startswith("torch.nn.")]
    if nn:
        m, n = nn[0]
        return ModelLoadError(
            f"{path.name}: a whole pickled model ({m}.{n}), not a state dict: "
            "save `model.state_dict()` instead"
        )
    m, n = refused[0]
    return ModelLoadError(f"{path.name}: refused: the pickle calls {m}.{n}")


_STRING_OPS = {
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "UNICODE",
    "BINUNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE8",
}


def scan_globals(data: bytes) -> list[tuple[str, str]]:
    """Every (module, name) the pickle would look up, read from its opcodes without running it.

    STACK_GLOBAL takes its two strings from the stack; they are followed through the memo
    as far as a plain scan can. What it cannot resolve is left to find_class, which checks
    the same allow-list while loading.
    """
    found: list[tuple[str, str]] = []
    memo: dict[int, object] = {}
    recent: list[object] = [None, None]  # the last two values pushed, when they are strings
    for count, (op, arg, _pos) in enumerate(pickletools.genops(data)):
        if count >= MAX_PICKLE_OPCODES:
            raise _Refused(
                f"data.pkl has more than {MAX_PICKLE_OPCODES:,} opcodes (a checkpoint "
                "takes about 35 a tensor)"
            )
        name = op.name
        if name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            found.append((module, attr))
            recent.append(None)
        elif name == "STACK_GLOBAL":
            mod_s, attr_s = recent[-2], recent[-1]
            if isinstance(mod_s, str) and isinstance(attr_s, str):
                found.append((mod_s, attr_s))
            recent.append(None)
        elif name in ("EXT1", "EXT2", "EXT4"):
            found.append(("copyreg", "extension registry"))
        elif name in _STRING_OPS:
            recent.append(arg.decode("latin-1") if isinstance(arg, bytes) else arg)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg if isinstance(arg, int) else -1] = recent[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent.append(memo.get(arg) if isinstance(arg, int) else None)
        else:
            recent.append(None)
        del recent[:-2]
    return found


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: _Archive) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._tensors = 0

    def find_class(self, module: str, name: str) -> Any:
        found = _allowed(module, name)
        if found is None:
            raise _Refused(f"global {module}.{name}")
        if found in (_rebuild_tensor, _rebuild_tensor_v2):
            return self._counted(found)
        return found

    def _counted(self, rebuild: Any) -> Any:
        def counted(*args: object) -> TensorRef:
            self._tensors += 1
            if self._tensors > MAX_TENSORS:
                raise _Refused(f"more than {MAX_TENSORS:,} tensors")
            return rebuild(*args)

        return counted

    def persistent_load(self, pid: Any) -> _Storage:
        return self._archive.storage(pid)


class _Archive:
    """The zip: its folder, byte order and storage entries, checked before anything is read."""

    def __init__(self, path: Path, zf: zipfile.ZipFile) -> None:
        self.path = path
        self.zf = zf
        names = zf.namelist()
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        # torch.jit.save: data.pkl pickles the modules; code/ (their TorchScript source) and
        # constants.pkl are never read.
        self.torchscript = any(n.endswith("/constants.pkl") for n in names) or any(
            "/code/" in n for n in names
        )
        if len(pickles) != 1:
            raise ModelLoadError(f"{path.name}: not a torch.save file (no single */data.pkl)")
        self.prefix = pickles[0][: -len("data.pkl")]
        order = self._small("byteorder")
        if order not in (None, b"little", b"big"):
            shown = repr(order) if isinstance(order, bytes) else f"of {size_text(order)}"
            raise ModelLoadError(
                f"{path.name}: the byteorder record {shown} is neither 'little' nor 'big'"
            )
        self.endian = ">" if order == b"big" else "<"
        self.storages: dict[str, _Storage] = {}
        # A member zip (readers/torch/sb3.py) is bounded by its window, not the outer file.
        self.size = getattr(zf, "member_size", None) or path.stat().st_size

    def _small(self, name: str) -> bytes | int | None:
        """A short record's bytes (None if absent; only the size of one above 64 bytes)."""
        try:
            info = self.zf.getinfo(self.prefix + name)
        except KeyError:
            return None
        return self.zf.read(info) if info.file_size <= 64 else info.file_size

    def pickle_bytes(self) -> bytes:
        info = self.zf.getinfo(self.prefix + "data.pkl")
        if info.file_size > MAX_PICKLE_BYTES:
            raise ModelLoadError(
                f"{self.path.name}: data.pkl is {info.file_size} bytes, too large for a state dict"
            )
        return self.zf.read(info)

    def storage(self, pid: Any) -> _Storage:
        """Check a persistent id against its zip entry; nothing is read yet."""
        if not (isinstance(pid, tuple) and len(pid) == 5):
            raise _Refused(f"a persistent id {type(pid).__name__} that is not a storage")
        typename, stype, key, _location, numel = pid
        if isinstance(typename, bytes):
            typename = typename.decode("ascii", "replace")
        if typename != "storage" or not isinstance(stype, _StorageType):
            raise _Refused("a persistent id that is not a storage")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise _Refused("a storage with a malformed key or size")
        known = self.storages.get(key)
        if known is not None:
            if known.dtype != stype.dtype or known.numel != numel:
                raise _Refused(f"storage {key} declared twice with different types or sizes")
            return known
        entry = self.prefix + "data/" + key
        try:
            info = self.zf.getinfo(entry)
        except KeyError:
            raise _Refused(f"storage {key} has no entry {entry}") from None
        nbytes = numel * _itemsize(stype.dtype)
        if nbytes > info.file_size:
            raise _Refused(
                f"storage {key} declares {numel} x {stype.name} ({nbytes} bytes) but its "
                f"entry holds {info.file_size} bytes"
            )
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise _Refused(f"storage {key} is compressed (torch.save stores them raw)")
        if info.header_offset + info.compress_size > self.size:
            raise _Refused(f"storage {key}'s entry runs past the end of the file")
        storage = _Storage(key, stype.dtype, numel)
        self.storages[key] = storage
        return storage

    def read(self, ref: TensorRef, cache: dict[str, np.ndarray]) -> np.ndarray:
        """One tensor's values, as a new native-endian array (bfloat16 becomes float32)."""
        _check_bounds(ref)  # again: the reference must not have changed since it was checked
        st = ref.storage
        base = cache.get(st.key)
        if base is None:
            raw = self.zf.read(self.prefix + "data/" + st.key)
            code = "u2" if st.dtype == "bf16" else st.dtype
            dtype = np.dtype("?" if code == "b1" else self.endian + code)
            base = np.frombuffer(raw, dtype=dtype, count=st.numel)  # a view of the bytes read
            cache[st.key] = base
        if any(n == 0 for n in ref.shape):
            arr = np.zeros(ref.shape, dtype=base.dtype)
        else:
            item = base.dtype.itemsize
            view = np.lib.stride_tricks.as_strided(
                base[ref.offset :],
                shape=ref.shape,
                strides=tuple(s * item for s in ref.stride),
                writeable=False,
            )
            arr = np.array(view)  # the copy: no view of the file's bytes escapes
        if st.dtype == "bf16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr


def _itemsize(code: str) -> int:
    return 2 if code == "bf16" else 1 if code == "b1" else np.dtype(code).itemsize


@dataclass(frozen=True, eq=False)
class TorchFile:
    """A torch.save file, unpickled safely: containers with TensorRef leaves."""

    path: Path
    obj: object
    refusal: ModelLoadError | None = None
    """Set when the pickle names globals outside the allow-list, so it was read inertly
    (readers/safety/inert_pickle.py): the error to give if no state dict is found in it."""
    torchscript: bool = False
    member: str | None = None
    """The zip member holding the torch.save zip (policy.pth of a stable-baselines3 zip)."""

    def arrays(self, refs: Mapping[str, TensorRef]) -> dict[str, np.ndarray]:
        """Read the given tensors from the zip (each storage once)."""
        try:
            with _open_zip(self.path, self.member) as zf:
                archive = _Archive(self.path, zf)
                cache: dict[str, np.ndarray] = {}
                return {k: archive.read(r, cache) for k, r in refs.items()}
        except _Refused as exc:
            raise ModelLoadError(f"{self.path.name}: refused: {exc}") from None
        except (OSError, zipfile.BadZipFile, ValueError) as exc:
            raise ModelLoadError(
                f"{self.path.name}: cannot read a tensor: {_one_line(exc)}"
            ) from None


def load(path: Path, member: str | None = None) -> TorchFile:
    """Unpickle a torch.save zip (or TorchScript archive) with the allow-list, or inertly
    when it names other globals; raise ModelLoadError otherwise. ``member``: the torch.save
    zip is that member of the zip at ``path`` (read in place, readers/torch/sb3.py)."""
    if member is not None:
        head = ZIP_SIGNATURE
    else:
        try:
            with path.open("rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise ModelLoadError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    if head.startswith(TORCH_LEGACY_MAGIC):
        raise ModelLoadError(
            f"{path.name}: the legacy torch.save format (before torch 1.6): load it with torch "
            "and save the state dict again"
        )
    if not head.startswith(ZIP_SIGNATURE):
        raise ModelLoadError(f"{path.name}: not a torch.save file (not a zip)")
    inert: ModelLoadError | None = None
    try:
        with _open_zip(path, member) as zf:
            archive = _Archive(path, zf)
            data = archive.pickle_bytes()
            try:
                globals_ = scan_globals(data)
            except _Refused as exc:
                raise ModelLoadError(f"{path.name}: refused: {exc}") from None
            except (ValueError, EOFError) as exc:
                raise ModelLoadError(
                    f"{path.name}: data.pkl is not a valid pickle: {_pickle_problem(exc)}"
                ) from None
            inert = _refusal(path, globals_)
            try:
                if inert is None:
                    obj = _Unpickler(data, archive).load()
                else:
                    obj = _inert_load(data, archive)
            except _Refused as exc:
                raise ModelLoadError(f"{path.name}: refused: {exc}") from None
            except _UNPICKLE_ERRORS as exc:
                raise ModelLoadError(
                    f"{path.name}: data.pkl cannot be read: {_pickle_problem(exc)}"
                ) from None
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(f"{path.name}: not a readable zip: {_one_line(exc)}") from None
    except OSError as exc:
        raise ModelLoadError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    return TorchFile(path, obj, inert, archive.torchscript, member)


def _inert_load(data: bytes, archive: _Archive) -> object:
    from lstm_report.readers.safety import inert_pickle

    try:
        return inert_pickle.load(data, _allowed, archive.storage)[0]
    except inert_pickle.Refused as exc:
        raise _Refused(str(exc)) from None


def _open_zip(path: Path, member: str | None) -> zipfile.ZipFile:
    """The torch.save zip: the file, or a stored member of the zip at ``path``."""
    if member is None:
        return zipfile.ZipFile(path)
    from lstm_report.readers.torch import sb3

    return sb3.member_zip(path, member)


_UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    TypeError,
    ValueError,
    AttributeError,
    IndexError,
    KeyError,
    MemoryError,
    RecursionError,
)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _pickle_problem(exc: BaseException) -> str:
    """What an unpickling error says, in the file's terms (not Python's hints)."""
    text = _one_line(exc)
    if isinstance(exc, ValueError) and "digits" in text and "limit" in text.lower():
        return f"an integer of more than {sys.get_int_max_str_digits():,} digits"
    if isinstance(exc, RecursionError):
        return "containers nested too deeply"
    return text


def tensor_dicts(obj: object) -> Iterator[tuple[str, dict[str, TensorRef]]]:
    """Every dict with string keys holding tensors, with its path in the object
    (``""`` for the top, ``model_state_dict``, ``models[1]``), outermost first.

    Each container is visited once, by identity, at its first path: a pickle's memo can
    make one object appear any number of times (10 references a level, 16 levels deep, is
    10^16 paths). Items are read with ``dict.items(d)``: a BUILD may have shadowed ``items``.
    """
    seen: set[int] = set()

    def walk(node: object, where: str, depth: int) -> Iterator[tuple[str, dict[str, TensorRef]]]:
        if depth > 16 or id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, dict):
            items = list(dict.items(node))
            tensors = {k: v for k, v in items if isinstance(k, str) and isinstance(v, TensorRef)}
            if tensors:
                yield where, tensors
            for k, v in items:
                if isinstance(v, (dict, list, tuple)):
                    yield from walk(v, f"{where}.{k}" if where else str(k), depth + 1)
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                if isinstance(v, (dict, list, tuple)):
                    yield from walk(v, f"{where}[{i}]", depth + 1)

    return walk(obj, "", 0)
