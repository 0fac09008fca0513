"""What a torch.save pickle may call: the allow-list, the objects it rebuilds (storages and
TensorRef leaves, checked, never read), and the opcode scan that refuses a file before any
opcode runs."""

from __future__ import annotations

import math
import pickletools
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from lstm_report.errors import ModelLoadError
from lstm_report.fileio.limits import MAX_PICKLE_OPCODES

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
class StorageType:
    """What find_class returns for torch.<X>Storage: just its element type."""

    name: str
    dtype: str

    def __setstate__(self, state: object) -> None:
        # BUILD would write the dict into the instance, frozen or not (dtype '>f4').
        raise RefusedTorchPickle(f"a pickle BUILD rewriting torch.{self.name}")


@dataclass(frozen=True)
class Storage:
    """A storage named in data.pkl: its zip entry and element type, checked, not read."""

    key: str
    dtype: str
    numel: int

    def __setstate__(self, state: object) -> None:
        # A pickle's BUILD could otherwise rewrite a checked object's fields.
        raise RefusedTorchPickle("a pickle BUILD rewriting a storage")


@dataclass(frozen=True)
class TensorRef:
    """A tensor found in the pickle: where its values are, not yet read."""

    storage: Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def __setstate__(self, state: object) -> None:
        raise RefusedTorchPickle("a pickle BUILD rewriting a tensor")

    @property
    def dtype(self) -> str:
        """numpy dtype code of the stored values (``bf16`` for bfloat16)."""
        return self.storage.dtype

    @property
    def nbytes(self) -> int:
        """The bytes the tensor takes once read (bfloat16 is widened to float32)."""
        item = 4 if self.dtype == "bf16" else itemsize(self.dtype)
        return math.prod(self.shape) * item


class RefusedTorchPickle(Exception):
    """Raised inside the unpickler; turned into a ModelLoadError naming the file."""


def rebuild_tensor(storage: object, offset: object, size: object, stride: object) -> TensorRef:
    if not isinstance(storage, Storage):
        raise RefusedTorchPickle("a tensor whose storage is not a stored storage")
    if not _is_int_tuple(size) or not _is_int_tuple(stride) or len(size) != len(stride):
        raise RefusedTorchPickle("a tensor with a malformed size or stride")
    if not isinstance(offset, int) or offset < 0:
        raise RefusedTorchPickle("a tensor with a malformed storage offset")
    ref = TensorRef(storage, offset, tuple(size), tuple(stride))
    check_view(ref)
    return ref


def rebuild_tensor_v2(
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
        raise RefusedTorchPickle("a tensor with conj/neg metadata")
    return rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data: object, requires_grad: object, backward_hooks: object) -> object:
    if not isinstance(data, TensorRef):
        raise RefusedTorchPickle("a parameter that is not a tensor")
    return data


def _is_int_tuple(v: object) -> TypeGuard[tuple[int, ...]]:
    return isinstance(v, tuple) and all(isinstance(n, int) and n >= 0 for n in v)


def check_view(ref: TensorRef) -> None:
    """The view must lie inside its storage and not repeat elements (no allocation here)."""
    if any(n == 0 for n in ref.shape):
        return
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
    if last >= ref.storage.numel:
        raise RefusedTorchPickle(
            f"a tensor of shape {ref.shape} reaching element {last} of a storage of "
            f"{ref.storage.numel}"
        )
    if math.prod(ref.shape) > ref.storage.numel:
        raise RefusedTorchPickle(f"a tensor of shape {ref.shape} repeating elements of its storage")


_CALLABLES: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    # Protocol 2 pickles a set as a call to set(list): plain containers, nothing more.
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
}


def allowed(module: str, name: str) -> Any | None:
    if (module, name) in _CALLABLES:
        return _CALLABLES[(module, name)]
    if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
        return StorageType(name, _STORAGE_DTYPES[name])
    return None


def refusal(path: Path, globals_: list[tuple[str, str]]) -> ModelLoadError | None:
    """The error for the first global outside the allow-list, or None if all are allowed."""
    refused = [(m, n) for m, n in globals_ if allowed(m, n) is None]
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
            raise RefusedTorchPickle(
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


def itemsize(code: str) -> int:
    return 2 if code == "bf16" else 1 if code == "b1" else np.dtype(code).itemsize
