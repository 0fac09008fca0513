"""Weights-only HDF5 files (Keras 2 ``save_weights`` and Keras 3 ``.weights.h5``): no
architecture, so LSTMs are recognised from weight names and shapes, and what a file cannot
say (activations) is assumed and reported (docs/formats.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstm_report.config.schema import natural_key
from lstm_report.model.layers import ModelWeights, OtherLayer, RecurrentLayer
from lstm_report.readers.files import ModelFile
from lstm_report.readers.keras.archive import layer_vars
from lstm_report.readers.keras.h5 import (
    Activations,
    DirectReadError,
    attr_list,
    check_arrays,
    count_params,
    cudnn_to_gru,
    cudnn_to_lstm,
    keras_version_of,
    model_weights,
    read_array,
    weight_role,
)


@dataclass(frozen=True, eq=False)
class _Shaped:
    """What the shapes of (kernel, recurrent kernel, bias) say a cell is."""

    kind: str
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None
    """The LSTM's or GRU's arrays (CuDNNLSTM converted), or None for another recurrent layer."""
    units: int
    reset_after: bool | None = None
    """GRU: a (2, 3u) bias means reset_after; (3u,) not; no bias: Keras' default, True."""


def _by_shape(k: np.ndarray, rk: np.ndarray, b: np.ndarray | None, where: str) -> _Shaped:
    """recurrent width / units = 4 gates: LSTM (bias 4u) or CuDNNLSTM (8u); 3 gates: GRU
    (bias (3u,) or, with reset_after, (2, 3u)) or CuDNNGRU (6u, converted); else not one."""
    u = int(rk.shape[0])
    gates = rk.shape[1] // u if rk.shape[1] % u == 0 else 0
    bshape = None if b is None else b.shape
    if gates == 4 and bshape in (None, (4 * u,)):
        return _Shaped(
            "LSTM", check_arrays([k, rk] + ([b] if b is not None else []), b is not None, where), u
        )
    if gates == 4 and bshape == (8 * u,):
        return _Shaped("CuDNNLSTM", cudnn_to_lstm(k, rk, b), u)
    if gates == 3 and bshape == (6 * u,):
        return _Shaped("CuDNNGRU", cudnn_to_gru(k, rk, b), u, reset_after=True)
    if gates == 3 and bshape in (None, (3 * u,), (2, 3 * u)):
        arrays = check_arrays([k, rk] + ([b] if b is not None else []), b is not None, where, "GRU")
        return _Shaped("GRU", arrays, u, reset_after=b is None or b.ndim == 2)
    return _Shaped(_rnn_name(gates, bshape, u), None, u)


def read_weights_only(
    f: Any, info: ModelFile, name: str, where: str, assume: Activations
) -> ModelWeights:
    """No architecture: find LSTMs by weight names and shapes, assume what cannot be read."""
    layer_names = attr_list(f, "layer_names")
    if not layer_names:
        raise DirectReadError(
            f"{where}: {info.path.name} has neither a model config nor Keras weight groups "
            "(layer_names); not a Keras weights file"
        )
    act, rec = _assumed(info, assume)
    lstms: list[RecurrentLayer] = []
    others: list[OtherLayer] = []
    first_weighted = True
    for layer, prefix, arrs in _stored_cells(f, layer_names, where):
        k, rk, b = arrs.get("kernel"), arrs.get("recurrent_kernel"), arrs.get("bias")
        label = _weights_only_label(layer, prefix)
        if k is None or rk is None or rk.ndim != 2 or rk.shape[0] == 0:
            first_weighted = first_weighted and not arrs
            continue
        direction = "backward" if re.search(r"(^|/)backward_", prefix) else "forward"
        shaped = _by_shape(k, rk, b, f"{where}: {label}")
        if shaped.arrays is None:
            others.append(OtherLayer(label, shaped.kind, shaped.units))
            first_weighted = False
            continue
        kind = shaped.kind
        kernel, rkernel, bias = shaped.arrays
        lstms.append(
            RecurrentLayer.from_keras_arrays(
                name=label,
                direction=direction,
                kernel=kernel,
                recurrent_kernel=rkernel,
                bias=bias,
                activation="tanh" if kind.startswith("CuDNN") else act,
                recurrent_activation="sigmoid" if kind.startswith("CuDNN") else rec,
                go_backwards=direction == "backward",
                wrapper="Bidirectional" if "forward_" in prefix or "backward_" in prefix else None,
                # Assumed: the first layer with weights reads the model input.
                reads_input=first_weighted
                or (direction == "backward" and bool(lstms) and lstms[-1].reads_input),
                kind=kind,
                reset_after=shaped.reset_after,
            )
        )
        first_weighted = False
    return model_weights(
        info,
        name,
        lstms,
        others,
        count_params(f),
        next((w.input_dim for w in lstms if w.reads_input), None),
        (_assumed_note(act, rec, assume),),
    )


def _stored_cells(
    f: Any, layer_names: list[str], where: str
) -> Iterator[tuple[str, str, dict[str, np.ndarray]]]:
    """(layer, cell prefix, arrays by role) of every weight group the file lists."""
    for layer in layer_names:
        if layer not in f:
            continue
        group = f[layer]
        for prefix, roles in _triples(attr_list(group, "weight_names")).items():
            yield layer, prefix, {r: read_array(group[n], where) for r, n in roles.items()}


def _assumed(info: ModelFile, assume: Activations) -> tuple[str, str]:
    """The activation and recurrent activation a weights-only file is read with: the
    config's, else the defaults of the Keras that wrote it."""
    default_rec = "sigmoid"
    v = keras_version_of(info.keras_version)
    if v is not None and v < (2, 3):
        default_rec = "hard_sigmoid_keras2"  # Keras <= 2.2.x defaulted to hard_sigmoid
    return assume.activation or "tanh", assume.recurrent_activation or default_rec


def _assumed_note(act: str, rec: str, assume: Activations) -> str:
    """The note saying what a weights-only file's report assumes."""
    return (
        f"weights-only file: no architecture stored; assumed activation {act!r}, "
        f"recurrent_activation {rec!r}"
        + (
            " (Keras <= 2.2 default)"
            if rec == "hard_sigmoid_keras2" and not assume.recurrent_activation
            else ""
        )
        + ", not go_backwards, and that the first layer with weights reads the model input; "
        "set 'activations' in the config to override"
    )


def _vars_name(group: Any) -> str | None:
    vars_group = group.get("vars")
    stored = vars_group.attrs.get("name") if vars_group is not None else None
    if isinstance(stored, bytes):
        stored = stored.decode("utf-8", "replace")
    return str(stored) if stored is not None else None


def read_keras3_weights(
    f: Any, info: ModelFile, name: str, where: str, assume: Activations
) -> ModelWeights:
    """A Keras 3 ``.weights.h5`` (``model.save_weights``): groups by class, no architecture.

    Every ``<layer>/cell/vars`` group is a recurrent cell; the layer's own name is the
    ``name`` attribute saving_lib stores on ``<layer>/vars``.
    """
    act = assume.activation or "tanh"
    rec = assume.recurrent_activation or "sigmoid"
    lstms: list[RecurrentLayer] = []
    others: list[OtherLayer] = []
    for cell_path in _cell_paths(f):
        label, direction, wrapper = _placement(f, cell_path)
        arrs = layer_vars(f, cell_path, where)
        if len(arrs) not in (2, 3) or arrs[1].ndim != 2 or arrs[1].shape[0] == 0:
            continue
        shaped = _by_shape(
            arrs[0], arrs[1], arrs[2] if len(arrs) == 3 else None, f"{where}: {label}"
        )
        if shaped.arrays is None:
            others.append(OtherLayer(label, shaped.kind, shaped.units))
            continue
        kernel, rkernel, b = shaped.arrays
        lstms.append(
            RecurrentLayer.from_keras_arrays(
                name=label,
                direction=direction,
                kernel=kernel,
                recurrent_kernel=rkernel,
                bias=b,
                activation=act,
                recurrent_activation=rec,
                go_backwards=direction == "backward",
                wrapper=wrapper,
                reads_input=False,
                kind=shaped.kind,
                reset_after=shaped.reset_after,
            )
        )
    return model_weights(
        info,
        name,
        lstms,
        others,
        count_params(f),
        None,
        (
            "Keras 3 weights file: no architecture stored; assumed activation "
            f"{act!r}, recurrent_activation {rec!r}, not go_backwards; which LSTM reads the "
            "model input is unknown, so no feature importance; set 'activations' in the "
            "config to override",
        ),
    )


def _cell_paths(f: Any) -> list[str]:
    """Every ``<layer>/cell`` group holding ``vars``, in layer order, a Bidirectional's
    forward half first."""
    import h5py  # h5py is loaded only when an HDF5 file is read

    cells: list[str] = []
    f.visititems(
        lambda path, obj: (
            cells.append(path)
            if isinstance(obj, h5py.Group) and path.endswith("/cell") and "vars" in obj
            else None
        )
    )

    def order(path: str) -> tuple[list[Any], bool]:  # a Bidirectional's forward half first
        return natural_key(
            path.replace("/backward_layer/", "/").replace("/forward_layer/", "/")
        ), "/backward_layer/" in path

    return sorted(cells, key=order)


def _placement(f: Any, cell_path: str) -> tuple[str, str, str | None]:
    """A cell group's readable layer path (the stored name of every ``layers/<x>`` level),
    direction and wrapper."""
    parts = cell_path.rsplit("/", 1)[0].split("/")
    direction, wrapper = "forward", None
    if parts[-1] in ("forward_layer", "backward_layer"):
        direction = parts[-1].split("_")[0]
        wrapper = "Bidirectional"
        parts = parts[:-1]
    names = []
    for k in range(1, len(parts), 2):
        group = f["/".join(parts[: k + 1])]
        names.append(_vars_name(group) or parts[k])
    return "/".join(names), direction, wrapper


def _triples(names: list[str]) -> dict[str, dict[str, str]]:
    """Group weight names by everything before their last component: one dict per cell."""
    out: dict[str, dict[str, str]] = {}
    for n in names:
        role = weight_role(n)
        if role is None:
            continue
        prefix = n.rsplit("/", 1)[0] if "/" in n else ""
        out.setdefault(prefix, {})[role] = n
    return out


def _weights_only_label(layer: str, prefix: str) -> str:
    parts = [p for p in prefix.split("/") if p and not p.endswith("_cell")]
    # Drop the layer's own name and the Bidirectional halves' names from the label.
    parts = [p for p in parts if p != layer and not re.match(r"(forward|backward)_", p)]
    return "/".join([layer] + parts)


def _rnn_name(gates: int, bshape: tuple[int, ...] | None, u: int) -> str:
    if gates == 3:
        return "CuDNNGRU" if bshape == (6 * u,) else "GRU"
    if gates == 1:
        return "SimpleRNN"
    return "unknown recurrent layer"
