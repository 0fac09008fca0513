"""The inert unpickler: a pickle read as data, every unknown global a named placeholder.

Real checkpoints pickle more than tensors: a Lightning ``.ckpt`` holds hyper-parameters
(an ``AttributeDict``, loss objects such as ``MSELoss``, torchmetrics collections),
callbacks' state and the optimizer's; a TorchScript archive (``torch.jit.save``) pickles its
modules as ``__torch__.*`` objects. ``torch.load(weights_only=True)`` refuses them all.

Here any global outside readers/torch/allow_list.py's allow-list becomes a `Global`: its name,
nothing else. Nothing is imported, looked up or called: calling a `Global` (REDUCE, NEWOBJ, INST,
OBJ) makes a `Placeholder` recording the name and the arguments; BUILD, SETITEMS, APPENDS and
ADDITEMS on a placeholder are recorded on it. Only the allow-listed tensor-rebuild functions and
plain containers run, so only they make data (`allow_list.TensorRef`, pointing into the zip, checked
against it). Copy-registry extensions are refused.

Tensors are taken only from state-dict-shaped containers (torch/state.tensor_dicts walks
plain dicts, lists and tuples, never a placeholder), or, for TorchScript, from the
attribute dicts of ``__torch__.*`` modules (`module_state`). Placeholders never reach
numpy; only their names reach the report, and only scalars (`scalar_hyper_parameters`).
"""

from __future__ import annotations

import io
import math
import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

MAX_NAME = 200
"""A global's name is kept to this many characters."""
MAX_HYPER_PARAMETERS = 100
MAX_TEXT = 200
"""A string hyper-parameter longer than this is left out."""


class Global:
    """A global the pickle named and nothing looked up: just ``module.name``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<global {self.name}>"


class Placeholder:
    """What calling a `Global` would have made: its name and what the pickle gave it."""

    __slots__ = ("name", "args", "kwargs", "state", "items", "listitems", "callee")

    def __init__(
        self,
        name: str,
        args: tuple[object, ...],
        kwargs: dict[Any, object],
        callee: Placeholder | None = None,
    ) -> None:
        self.name = name
        self.args = args
        self.kwargs = kwargs
        self.callee = callee
        """The placeholder called to make this one (``functools.partial(...)()``)."""
        self.state: object = None
        self.items: list[tuple[object, object]] = []
        self.listitems: list[object] = []

    # SETITEM(S), APPEND(S) and ADDITEMS call these on whatever object is on the stack.
    def __setitem__(self, key: object, value: object) -> None:
        self.items.append((key, value))

    def append(self, value: object) -> None:
        self.listitems.append(value)

    def extend(self, values: list[object]) -> None:
        self.listitems.extend(values)

    def add(self, value: object) -> None:
        self.listitems.append(value)

    def __repr__(self) -> str:
        return f"<placeholder {self.name}>"


class Refused(Exception):
    """The pickle does something the inert reader will not do; the message says what."""


_CONTAINERS = (OrderedDict, set, frozenset)
"""Allow-listed classes NEWOBJ may instantiate (with their arguments, as REDUCE would)."""


_PurePythonUnpickler: Any = pickle._Unpickler  # the one whose opcodes can be replaced


class InertUnpickler(_PurePythonUnpickler):
    """Unpickle ``data`` inertly. ``allowed(module, name)`` gives the allow-listed object for a
    global (or None); ``persistent_load`` checks a storage id against the archive."""

    def __init__(
        self,
        data: bytes,
        allowed: Callable[[str, str], Any | None],
        persistent_load: Callable[[Any], Any],
    ) -> None:
        super().__init__(io.BytesIO(data))
        self._allowed = allowed
        self._persistent = persistent_load
        self.globals_seen: dict[str, None] = {}
        self._real: dict[int, object] = {id(c): c for c in _CONTAINERS}
        """What may be called for real: the allow-listed callables find_class returned."""

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed(module, name)
        if found is not None:
            if callable(found):
                self._real[id(found)] = found
            return found
        text = f"{module}.{name}"[:MAX_NAME]
        self.globals_seen.setdefault(text)
        return Global(text)

    def persistent_load(self, pid: Any) -> Any:
        return self._persistent(pid)

    def _call(self, func: object, args: object, kwargs: object) -> object:
        if not isinstance(args, tuple):
            raise Refused("a call whose arguments are not a tuple")
        if not isinstance(kwargs, dict):
            raise Refused("a call whose keyword arguments are not a dict")
        if isinstance(func, Global):
            return Placeholder(func.name, args, kwargs)
        if isinstance(func, Placeholder):
            return Placeholder(f"{func.name}(...)", args, kwargs, callee=func)
        if self._real.get(id(func)) is func:
            # torch/allow_list's rebuild functions, OrderedDict, set, frozenset: nothing else.
            if kwargs:
                raise Refused(f"keyword arguments to {getattr(func, '__name__', 'a function')}")
            return func(*args)  # type: ignore[operator]
        raise Refused(f"a call of a {type(func).__name__}")

    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args, {})

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, args, {}))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, args, kwargs))

    def _instantiate(self, klass: object, args: list[object]) -> None:  # INST and OBJ
        self.append(self._call(klass, tuple(args), {}))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, Placeholder):
            inst.state = state
        # Anything else (an OrderedDict's _metadata, a tensor's attributes): dropped. A
        # state never sets attributes on a real object.

    def load_ext(self) -> None:
        raise Refused("a copy-registry extension code")

    dispatch = dict(_PurePythonUnpickler.dispatch)
    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.EXT1[0]] = load_ext
    dispatch[pickle.EXT2[0]] = load_ext
    dispatch[pickle.EXT4[0]] = load_ext


def load(
    data: bytes,
    allowed: Callable[[str, str], Any | None],
    persistent_load: Callable[[Any], Any],
) -> tuple[object, tuple[str, ...]]:
    """The unpickled object (placeholders for unknown globals) and the globals it named."""
    unpickler = InertUnpickler(data, allowed, persistent_load)
    obj = unpickler.load()
    return obj, tuple(unpickler.globals_seen)


def placeholders(obj: object, limit: int = 100_000) -> Iterator[Placeholder]:
    """Every placeholder reachable from ``obj`` (containers and placeholders walked with a
    stack, each object once)."""
    seen: set[int] = set()
    todo: list[object] = [obj]
    while todo and len(seen) < limit:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, Placeholder):
            yield o
            todo.extend(o.args)
            todo.extend(o.kwargs.values())
            todo.append(o.state)
            todo.append(o.callee)
            todo.extend(v for kv in o.items for v in kv)
            todo.extend(o.listitems)
        elif isinstance(o, dict):
            todo.extend(o.keys())
            todo.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            todo.extend(o)


def is_torchscript_module(obj: object) -> bool:
    return isinstance(obj, Placeholder) and obj.name.startswith("__torch__.")


def module_state(obj: object, is_tensor: Callable[[object], bool]) -> dict[str, object]:
    """A TorchScript module's tensors by dotted path (``lstm.weight_ih_l0``): each
    ``__torch__.*`` module's BUILD state is its attribute dict, submodules are
    ``__torch__.*`` placeholders inside it. The state-dict shape the file implies."""
    out: dict[str, object] = {}
    seen: set[int] = set()
    todo: list[tuple[str, object]] = [("", obj)]
    while todo:
        prefix, mod = todo.pop(0)
        if id(mod) in seen or not isinstance(mod, Placeholder) or len(seen) > 10_000:
            continue
        seen.add(id(mod))
        state = mod.state
        if not isinstance(state, dict):
            continue
        for key, value in state.items():
            if not isinstance(key, str):
                continue
            if is_tensor(value):
                out[prefix + key] = value
            elif is_torchscript_module(value):
                todo.append((f"{prefix}{key}.", value))
    return out


Scalar = bool | int | float | str


def scalar_hyper_parameters(obj: object) -> tuple[tuple[str, Scalar], ...]:
    """The scalar hyper-parameters of a Lightning checkpoint (``hyper_parameters``, a dict or
    an ``AttributeDict`` placeholder), nested dicts as dotted keys: numbers, strings of at
    most MAX_TEXT characters and bools, at most MAX_HYPER_PARAMETERS of them. Everything
    else (objects, tensors, lists) is left out."""
    if not isinstance(obj, dict):
        return ()
    top = obj.get("hyper_parameters")
    out: list[tuple[str, Scalar]] = []
    todo: list[tuple[str, object, int]] = [("", top, 0)]
    while todo and len(out) < MAX_HYPER_PARAMETERS:
        prefix, value, depth = todo.pop(0)
        for key, v in _mapping_items(value):
            if not isinstance(key, str) or len(key) > MAX_TEXT:
                continue
            name = prefix + key
            if isinstance(v, (bool, int, float)):
                if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63:
                    continue
                if isinstance(v, float) and not math.isfinite(v):
                    continue  # JSON has no NaN or infinity
                out.append((name, v))
            elif isinstance(v, str) and len(v) <= MAX_TEXT:
                out.append((name, v))
            elif depth < 3 and _mapping_items(v):
                todo.append((name + ".", v, depth + 1))
            if len(out) >= MAX_HYPER_PARAMETERS:
                break
    return tuple(out)


def _mapping_items(value: object) -> list[tuple[object, object]]:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, Placeholder) and value.items:
        return list(value.items)  # a dict subclass (AttributeDict) pickled by SETITEMS
    return []
