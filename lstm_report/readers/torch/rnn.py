"""PyTorch nn.LSTM / nn.GRU weights (a state dict in .pt/.pth or .safetensors) -> CellWeights.

torch/nn/modules/rnn.py names one layer k of one direction (``_reverse`` for the second)::

    weight_ih_l{k}   (G*H, in)      gates stacked along rows
    weight_hh_l{k}   (G*H, H)       (G*H, proj) with proj_size
    bias_ih_l{k}     (G*H,)         absent with bias=False
    bias_hh_l{k}     (G*H,)
    weight_hr_l{k}   (proj, H)      LSTM with proj_size only

LSTM: G = 4, gates i,f,g,o (g is the candidate: the same order as Keras' i,f,c,o).
GRU: G = 3, gates r,z,n, with n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), i.e. always
reset_after, and h' = (1 − z) ⊙ n + z ⊙ h. PyTorch computes W x (column vectors), so
each gate's block is transposed into Keras' (in, H).
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from lstm_report.cells.base import GRU_GATES, LSTM_GATES, CellWeights, Direction, GateWeights, Kind
from lstm_report.errors import AnalysisError, ModelLoadError
from lstm_report.fileio.limits import weights_problem
from lstm_report.model.layers import RecurrentModel
from lstm_report.readers.formats import PICKLE_PROTO, ZIP_SIGNATURE
from lstm_report.readers.safety import inert_pickle
from lstm_report.readers.torch import safetensors_file as safetensors_state
from lstm_report.readers.torch import sb3
from lstm_report.readers.torch import state as torch_state
from lstm_report.readers.torch.allow_list import TensorRef

_KEY = re.compile(
    r"^(?:(?P<prefix>.+)\.)?(?P<param>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
    r"_l(?P<layer>\d+)(?P<reverse>_reverse)?$"
)
_CELL_KEY = re.compile(r"^(?:(?P<prefix>.+)\.)?(?P<param>weight_ih|weight_hh|bias_ih|bias_hh)$")
"""nn.LSTMCell / nn.GRUCell / nn.RNNCell (torch/nn/modules/rnn.py, RNNCellBase): no _l{k}."""
_CELL = -1
"""The layer number of a cell's group: it has none."""
_WRAPPERS = ("module.", "_orig_mod.")
"""Prefixes added by DataParallel/DistributedDataParallel and torch.compile."""

_TORCH_ORDER = {"LSTM": (0, 1, 2, 3), "GRU": (1, 0, 2)}
"""For each canonical gate (LSTM i,f,c,o; GRU z,r,h), its block in PyTorch's rows
(LSTM i,f,g,o; GRU r,z,n)."""


def is_rnn_key(key: str) -> bool:
    key = strip_wrappers(key)
    return _KEY.match(key) is not None or _CELL_KEY.match(key) is not None


def layer_count(keys: Iterable[str]) -> int:
    """How many cells (one direction of one layer) the state dict keys name."""
    groups = set()
    for key in keys:
        m = _KEY.match(strip_wrappers(key))
        if m is not None:
            groups.add((m["prefix"], m["layer"], m["reverse"]))
        elif (c := _CELL_KEY.match(strip_wrappers(key))) is not None:
            groups.add((c["prefix"], "cell", None))
    return len(groups)


def check_bounds(path: Path, layers: int, nbytes: int) -> None:
    """Refuse, before reading them, more layers or bytes of weights than the file may yield."""
    problem = weights_problem(layers, nbytes, path.stat().st_size)
    if problem is not None:
        raise ModelLoadError(f"{path.name}: refused: {problem}")


def strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for w in _WRAPPERS:
            if key.startswith(w):
                key, changed = key[len(w) :], True
    return key


def cells_from_state_dict(
    state: Mapping[str, np.ndarray], *, where: str
) -> tuple[tuple[CellWeights, ...], tuple[str, ...]]:
    """Group a state dict's RNN keys into layers: (cells, other recurrent layers as text).

    Cells come in the state dict's order: module by module, layer by layer, forward first.
    `where` names the file (and the dict inside it) in errors.
    """
    groups: dict[tuple[str, int, bool], dict[str, np.ndarray]] = {}
    for key, value in state.items():
        m = _KEY.match(strip_wrappers(key))
        if m is not None:
            group = (m["prefix"] or "", int(m["layer"]), m["reverse"] is not None)
        else:
            m = _CELL_KEY.match(strip_wrappers(key))
            if m is None:
                continue
            group = (m["prefix"] or "", _CELL, False)
        array = np.asarray(value)
        if array.dtype.kind != "f":
            raise ModelLoadError(
                f"{where}: {key} holds {array.dtype} values; an RNN's weights are floating point"
            )
        groups.setdefault(group, {})[m["param"]] = array
    module_rank: dict[str, int] = {}
    for prefix, _, _ in groups:
        module_rank.setdefault(prefix, len(module_rank))
    ordered = sorted(groups, key=lambda g: (module_rank[g[0]], g[1], g[2]))
    cells: list[CellWeights] = []
    other: list[str] = []
    for prefix, layer, reverse in ordered:
        if layer == _CELL:
            name = prefix or "cell"
            suffix = ""
        else:
            name = f"{prefix}.l{layer}" if prefix else f"l{layer}"
            suffix = f"_l{layer}{'_reverse' if reverse else ''}"
        cell = _cell(
            groups[(prefix, layer, reverse)],
            name=name,
            direction="backward" if reverse else "forward",
            where=f"{where}: {name}{'_reverse' if reverse else ''}",
            suffix=suffix,
        )
        if isinstance(cell, str):
            if not reverse:
                other.append(cell)
        else:
            cells.append(cell)
    return tuple(cells), tuple(other)


def _cell(
    params: dict[str, np.ndarray], *, name: str, direction: Direction, where: str, suffix: str
) -> CellWeights | str:
    """One direction of one layer (or a cell), or why it is listed and not analysed."""
    hidden, rec_dim, rows = _shapes(params, where, suffix)
    w_ih, w_hh, w_hr = params["weight_ih"], params["weight_hh"], params.get("weight_hr")
    b_ih, b_hh = params.get("bias_ih"), params.get("bias_hh")
    n_gates = rows // hidden
    module = "Cell" if suffix == "" else ""  # nn.LSTMCell's keys have no _l{k}
    if n_gates == 1 and w_hr is None:
        return f"{name}: nn.RNN{module} ({hidden} units, one tanh or relu step): not a gated cell"
    if n_gates not in (3, 4) or (n_gates == 3 and w_hr is not None):
        raise ModelLoadError(
            f"{where}: weight_hh{suffix} {w_hh.shape} is neither an LSTM's (4*H, ·) nor a "
            f"GRU's (3*H, ·) for H = {hidden}"
        )
    if w_hh.shape[1] != rec_dim or w_ih.shape[0] != rows:
        raise ModelLoadError(
            f"{where}: weight_ih{suffix} {w_ih.shape}, weight_hh{suffix} {w_hh.shape} "
            f"do not match ({rows}, in), ({rows}, {rec_dim})"
        )
    for label, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
        if b is not None and b.shape != (rows,):
            raise ModelLoadError(f"{where}: {label}{suffix} {b.shape} is not ({rows},)")
    kind: Kind = "LSTM" if n_gates == 4 else "GRU"
    torch_gates = "i,f,g,o" if kind == "LSTM" else "r,z,n (read as z,r,h)"
    parts = [
        f"weight_ih{suffix} ({rows}, in) and weight_hh{suffix} ({rows}, {rec_dim}), gates "
        f"{torch_gates}, each block transposed",
        "bias_ih and bias_hh kept as b and b_rec" if b_ih is not None else "no biases",
    ]
    if w_hr is not None:
        parts.append(f"weight_hr{suffix} ({rec_dim}, {hidden}) transposed into P")
    try:
        return CellWeights(
            name=name,
            kind=kind,
            direction=direction,
            gates=_gates(kind, hidden, w_ih, w_hh, b_ih, b_hh),
            reset_after=True if kind == "GRU" else None,
            P=None if w_hr is None else np.ascontiguousarray(w_hr.T),
            framework=f"PyTorch nn.{kind}{module}",
            source_layout="; ".join(parts),
            notes=(
                (
                    f"an nn.{kind}Cell computes one step per call: the report runs it over "
                    "every step of the sequence from a zero state, as a loop calling it would",
                )
                if module
                else ()
            ),
        )
    except AnalysisError as exc:
        raise ModelLoadError(f"{where}: {exc}") from None


def _shapes(params: dict[str, np.ndarray], where: str, suffix: str) -> tuple[int, int, int]:
    """(hidden, recurrent input, G*hidden rows), once the weights are there and are
    matrices, and the biases pair up."""
    missing = [p for p in ("weight_ih", "weight_hh") if p not in params]
    if missing:
        raise ModelLoadError(f"{where}: {missing[0]}{suffix} is missing")
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    w_hr = params.get("weight_hr")
    if (params.get("bias_ih") is None) != (params.get("bias_hh") is None):
        raise ModelLoadError(f"{where}: bias_ih{suffix} and bias_hh{suffix} come in pairs")
    if w_ih.ndim != 2 or w_hh.ndim != 2:
        raise ModelLoadError(
            f"{where}: weight_ih{suffix} {w_ih.shape} and weight_hh{suffix} {w_hh.shape} "
            "must be matrices"
        )
    if w_hr is not None:
        if w_hr.ndim != 2:
            raise ModelLoadError(f"{where}: weight_hr{suffix} {w_hr.shape} is not a matrix")
        hidden, rec_dim = w_hr.shape[1], w_hr.shape[0]
    else:
        hidden = rec_dim = w_hh.shape[1]
    rows = w_hh.shape[0]
    if hidden == 0 or rows % hidden:
        raise ModelLoadError(
            f"{where}: weight_hh{suffix} {w_hh.shape} is not (G*hidden, {rec_dim})"
        )
    return hidden, rec_dim, rows


def _gates(
    kind: Kind,
    hidden: int,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray | None,
    b_hh: np.ndarray | None,
) -> tuple[GateWeights, ...]:
    """The gates in the canonical order, each PyTorch block transposed."""

    def block(a: np.ndarray, k: int) -> np.ndarray:
        return a[k * hidden : (k + 1) * hidden]

    return tuple(
        GateWeights(
            spec=gate,
            W=np.ascontiguousarray(block(w_ih, k).T),
            U=np.ascontiguousarray(block(w_hh, k).T),
            b=None if b_ih is None else block(b_ih, k).copy(),
            b_rec=None if b_hh is None else block(b_hh, k).copy(),
        )
        for gate, k in zip(LSTM_GATES if kind == "LSTM" else GRU_GATES, _TORCH_ORDER[kind])
    )


def read(path: Path) -> RecurrentModel:
    """The LSTM and GRU layers of a PyTorch state dict: a torch.save file (.pt, .pth, also a
    training or Lightning checkpoint holding one), a TorchScript archive, a stable-baselines3
    saved model (its policy.pth) or a .safetensors file."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ModelLoadError(f"{path.name}: cannot read: {exc.strerror or exc}") from None
    if head.startswith(ZIP_SIGNATURE):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as exc:
            raise ModelLoadError(f"{path.name}: not a readable zip: {exc}") from None
        if sb3.is_sb3(names):
            return _read_torch_save(path, member=sb3.POLICY)
        return _read_torch_save(path)
    if head.startswith(PICKLE_PROTO):  # a legacy torch.save pickle
        return _read_torch_save(path)
    header, metadata = safetensors_state.read_header_and_metadata(path)
    wanted = [k for k in header if is_rnn_key(k)]
    check_bounds(path, layer_count(wanted), sum(header[k].nbytes_read for k in wanted))
    arrays = safetensors_state.read(path, keep=is_rnn_key, header=header)
    cells, other = cells_from_state_dict(arrays, where=path.name)
    total = sum(math.prod(t.shape) for t in header.values())
    model = _model(path, "PyTorch state dict (safetensors)", cells, other, total)
    hyper = safetensors_state.metadata_hyper_parameters(metadata)
    return replace(
        model, hyper_parameters=inert_pickle.scalar_hyper_parameters({"hyper_parameters": hyper})
    )


def _read_torch_save(path: Path, member: str | None = None) -> RecurrentModel:
    loaded = torch_state.load(path, member)
    models = [(w, d) for w, d in _state_dicts(loaded) if any(map(is_rnn_key, d))]
    found = [(where, {k: v for k, v in d.items() if is_rnn_key(k)}) for where, d in models]
    # The parameters: every tensor of the state dicts that hold the recurrent layers (not a
    # checkpoint's optimizer state), a tensor stored under two names (tied) counted once.
    views = {
        (t.storage.key, t.offset, t.shape, t.stride)
        for _, d in models
        for t in d.values()
        if isinstance(t, TensorRef)
    }
    total = sum(math.prod(shape) for _, _, shape, _ in views)
    check_bounds(
        path,
        sum(layer_count(d) for _, d in found),
        sum(r.nbytes for _, d in found for r in d.values() if isinstance(r, TensorRef)),
    )
    cells: list[CellWeights] = []
    other: list[str] = []
    name = path.name if member is None else f"{path.name} [{member}]"
    try:
        for where, refs in found:
            arrays = loaded.arrays(refs)  # type: ignore[arg-type]
            label = f"{name} [{where}]" if where else name
            got, more = cells_from_state_dict(arrays, where=label)
            if len(found) > 1:
                # Several state dicts (e.g. model and EMA): their layers keep the dict's name.
                got = tuple(replace(c, name=f"{where}:{c.name}") for c in got)
            cells.extend(got)
            other.extend(more)
    except ModelLoadError:
        if loaded.refusal is not None:
            # Read inertly, the pickle held something like a state dict, but not a valid
            # one: the file is refused for the globals it names.
            raise loaded.refusal from None
        raise
    if not cells and not other and loaded.refusal is not None:
        raise _refusal_with_hint(loaded.refusal, path, member)
    if member is not None:
        kind = "stable-baselines3 saved model (policy.pth)"
    elif loaded.torchscript:
        kind = "TorchScript archive"
    else:
        kind = "PyTorch state dict" if found and found[0][0] == "" else "PyTorch checkpoint"
    hyper = inert_pickle.scalar_hyper_parameters(loaded.obj)
    model = _model(path, kind, tuple(cells), tuple(other), total)
    return replace(model, hyper_parameters=hyper, notes=_inert_notes(loaded))


def _refusal_with_hint(refusal: ModelLoadError, path: Path, member: str | None) -> ModelLoadError:
    """A pickle read inertly that held no state dict: darts' model.save() writes such a
    file (the forecasting model, no module) and its weights into ``<name>.ckpt`` beside it."""
    beside = path.with_name(path.name + ".ckpt")
    if member is not None or not beside.is_file():
        return refusal
    return ModelLoadError(
        f"{refusal}; its weights may be in {beside.name} beside it (darts' model.save() "
        "writes them there)"
    )


def _state_dicts(loaded: torch_state.TorchFile) -> Iterator[tuple[str, Mapping[str, object]]]:
    """(where, state dict) of every state dict the file holds; a TorchScript archive's is
    the module tree's parameters."""
    if loaded.torchscript:
        state = inert_pickle.module_state(loaded.obj, lambda v: isinstance(v, TensorRef))
        return iter([("", state)])
    return torch_state.tensor_dicts(loaded.obj)


def _inert_notes(loaded: torch_state.TorchFile) -> tuple[str, ...]:
    """The note of a pickle read inertly: what it left unbuilt."""
    if loaded.refusal is None and not loaded.torchscript:
        return ()
    names = sorted({p.name for p in inert_pickle.placeholders(loaded.obj)})
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return (
        "the pickle was read inertly: nothing in it was imported or run; "
        + (f"objects left unbuilt: {shown}" if names else "no objects left unbuilt")
        + (" (the TorchScript code/ folder is not read)" if loaded.torchscript else ""),
    )


def _model(
    path: Path,
    framework: str,
    cells: tuple[CellWeights, ...],
    other: tuple[str, ...],
    total_params: int,
) -> RecurrentModel:
    if not cells and not other:
        where = {
            "TorchScript archive": "a TorchScript archive (torch.jit.save) with ",
            "stable-baselines3 saved model (policy.pth)": "a stable-baselines3 model whose "
            "policy.pth has ",
        }.get(framework, "")
        raise ModelLoadError(
            f"{path.name}: {where}no nn.LSTM or nn.GRU weights (no key like weight_ih_l0 "
            "or, for a cell, weight_ih)"
        )
    return RecurrentModel(
        source=path.name,
        framework=framework,
        cells=cells,
        other=other,
        total_params=total_params,
    )
