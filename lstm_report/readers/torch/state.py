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
import pickle
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstm_report.errors import ModelLoadError, first_line
from lstm_report.fileio.limits import MAX_TENSORS, size_text
from lstm_report.readers.formats import TORCH_LEGACY_MAGIC, ZIP_SIGNATURE
from lstm_report.readers.safety import inert_pickle
from lstm_report.readers.torch import sb3
from lstm_report.readers.torch.allow_list import (
    RefusedTorchPickle,
    Storage,
    StorageType,
    TensorRef,
    allowed,
    check_view,
    itemsize,
    rebuild_tensor,
    rebuild_tensor_v2,
    refusal,
    scan_globals,
)

MAX_PICKLE_BYTES = 64 * 1024 * 1024
"""data.pkl holds structure, not tensor data: a larger one is not a state dict."""


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: _Archive) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._tensors = 0

    def find_class(self, module: str, name: str) -> Any:
        found = allowed(module, name)
        if found is None:
            raise RefusedTorchPickle(f"global {module}.{name}")
        if found in (rebuild_tensor, rebuild_tensor_v2):
            return self._counted(found)
        return found

    def _counted(self, rebuild: Any) -> Any:
        def counted(*args: object) -> TensorRef:
            self._tensors += 1
            if self._tensors > MAX_TENSORS:
                raise RefusedTorchPickle(f"more than {MAX_TENSORS:,} tensors")
            return rebuild(*args)

        return counted

    def persistent_load(self, pid: Any) -> Storage:
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
        self.storages: dict[str, Storage] = {}
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

    def storage(self, pid: Any) -> Storage:
        """Check a persistent id against its zip entry; nothing is read yet."""
        if not (isinstance(pid, tuple) and len(pid) == 5):
            raise RefusedTorchPickle(f"a persistent id {type(pid).__name__} that is not a storage")
        typename, stype, key, _location, numel = pid
        if isinstance(typename, bytes):
            typename = typename.decode("ascii", "replace")
        if typename != "storage" or not isinstance(stype, StorageType):
            raise RefusedTorchPickle("a persistent id that is not a storage")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise RefusedTorchPickle("a storage with a malformed key or size")
        known = self.storages.get(key)
        if known is not None:
            if known.dtype != stype.dtype or known.numel != numel:
                raise RefusedTorchPickle(
                    f"storage {key} declared twice with different types or sizes"
                )
            return known
        entry = self.prefix + "data/" + key
        try:
            info = self.zf.getinfo(entry)
        except KeyError:
            raise RefusedTorchPickle(f"storage {key} has no entry {entry}") from None
        nbytes = numel * itemsize(stype.dtype)
        if nbytes > info.file_size:
            raise RefusedTorchPickle(
                f"storage {key} declares {numel} x {stype.name} ({nbytes} bytes) but its "
                f"entry holds {info.file_size} bytes"
            )
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise RefusedTorchPickle(f"storage {key} is compressed (torch.save stores them raw)")
        if info.header_offset + info.compress_size > self.size:
            raise RefusedTorchPickle(f"storage {key}'s entry runs past the end of the file")
        storage = Storage(key, stype.dtype, numel)
        self.storages[key] = storage
        return storage

    def read(self, ref: TensorRef, cache: dict[str, np.ndarray]) -> np.ndarray:
        """One tensor's values, as a new native-endian array (bfloat16 becomes float32)."""
        check_view(ref)  # again: the reference must not have changed since it was checked
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
        except RefusedTorchPickle as exc:
            raise ModelLoadError(f"{self.path.name}: refused: {exc}") from None
        except (OSError, zipfile.BadZipFile, ValueError) as exc:
            raise ModelLoadError(
                f"{self.path.name}: cannot read a tensor: {first_line(exc)}"
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
            except RefusedTorchPickle as exc:
                raise ModelLoadError(f"{path.name}: refused: {exc}") from None
            except (ValueError, EOFError) as exc:
                raise ModelLoadError(
                    f"{path.name}: data.pkl is not a valid pickle: {_pickle_problem(exc)}"
                ) from None
            inert = refusal(path, globals_)
            try:
                if inert is None:
                    obj = _Unpickler(data, archive).load()
                else:
                    obj = _inert_load(data, archive)
            except RefusedTorchPickle as exc:
                raise ModelLoadError(f"{path.name}: refused: {exc}") from None
            except _UNPICKLE_ERRORS as exc:
                raise ModelLoadError(
                    f"{path.name}: data.pkl cannot be read: {_pickle_problem(exc)}"
                ) from None
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(f"{path.name}: not a readable zip: {first_line(exc)}") from None
    except OSError as exc:
        raise ModelLoadError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    return TorchFile(path, obj, inert, archive.torchscript, member)


def _inert_load(data: bytes, archive: _Archive) -> object:
    try:
        return inert_pickle.load(data, allowed, archive.storage)[0]
    except inert_pickle.Refused as exc:
        raise RefusedTorchPickle(str(exc)) from None


def _open_zip(path: Path, member: str | None) -> zipfile.ZipFile:
    """The torch.save zip: the file, or a stored member of the zip at ``path``."""
    if member is None:
        return zipfile.ZipFile(path)
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


def _pickle_problem(exc: BaseException) -> str:
    """What an unpickling error says, in the file's terms (not Python's hints)."""
    text = first_line(exc)
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
