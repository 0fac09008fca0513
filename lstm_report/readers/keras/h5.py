"""What every Keras weight file shares: settings from a layer's config, checked LSTM arrays,
the CuDNNLSTM conversion, and the ModelWeights a reader returns (used by archive.py,
legacy_h5.py and weights_only.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstm_report.errors import CorruptModelError, ModelLoadError
from lstm_report.model.conv_layers import ConvRecurrentLayer
from lstm_report.model.graph import ModelGraph
from lstm_report.model.layers import Embedding, ModelWeights, OtherLayer, RecurrentLayer
from lstm_report.readers.files import ModelFile
from lstm_report.readers.keras.topology import FoundLayer, Half, InputEmbedding, layer_kind
from lstm_report.readers.safety.rules import check_dataset


class DirectReadError(ModelLoadError):
    """The file cannot be read without Keras (a layout this reader does not know for sure)."""


def read_array(ds: Any, where: str) -> np.ndarray:
    """One dataset as an array, refusing what a damaged file could make us allocate.

    An HDF5 dataset declares its shape in a header; a truncated or crafted file can declare
    far more data than it stores, or keep it in other files. inspect_file refused such files
    already (readers/safety/rules.py); checked again here, cheaply, right before allocating.
    """
    name = getattr(ds, "name", "?")
    if ds.dtype.kind != "f":
        raise CorruptModelError(
            f"{where}: weights {name} have dtype {ds.dtype}, not floating point"
        )
    check_dataset(ds.id, name, where)
    return np.asarray(ds[()])


@dataclass(frozen=True)
class Activations:
    """What a weights-only file cannot tell: the activations (config key ``activations``)."""

    activation: str | None = None
    recurrent_activation: str | None = None


# --- settings from the config ---------------------------------------------------------------


def keras_version_of(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of a keras_version attribute, if it has one."""
    m = re.match(r"(\d+)(?:\.(\d+))?", version or "")
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def is_keras2(version: str | None) -> bool:
    v = keras_version_of(version)
    return v is not None and v < (3, 0)


def activation_of(value: Any, legacy: bool, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, Mapping):  # a serialized function
        cfg = value.get("config")
        value = cfg if isinstance(cfg, str) else value.get("class_name", "custom")
    name = str(value)
    # Keras 2's hard_sigmoid is clip(0.2x + 0.5, 0, 1); Keras 3's is clip(x/6 + 0.5, 0, 1).
    return "hard_sigmoid_keras2" if legacy and name == "hard_sigmoid" else name


def layer_settings(cfg: Mapping[str, Any], legacy: bool, class_name: str) -> dict[str, Any]:
    if class_name in CUDNN:  # cuDNN's cells are fixed: tanh and the logistic sigmoid
        act, rec = "tanh", "sigmoid"
    else:
        cell = cfg.get("cell")
        src = (cell.get("config") or {}) if isinstance(cell, Mapping) else cfg
        act = activation_of(src.get("activation"), legacy, "tanh")
        rec = activation_of(src.get("recurrent_activation"), legacy, "sigmoid")
    return {
        "activation": act,
        "recurrent_activation": rec,
        "go_backwards": bool(cfg.get("go_backwards", False)),
        "return_sequences": bool(cfg.get("return_sequences", False)),
        "unit_forget_bias": bool(cfg.get("unit_forget_bias", True)),
    }


def use_bias(cfg: Mapping[str, Any]) -> bool:
    cell = cfg.get("cell")
    src = (cell.get("config") or {}) if isinstance(cell, Mapping) else cfg
    return bool(src.get("use_bias", True))


CUDNN = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU"}
"""Keras 2's GPU-only layers and the plain layer whose layout their weights convert to."""


def cell_kind(class_name: str, cfg: Mapping[str, Any]) -> str:
    kind = layer_kind(class_name, cfg)
    return CUDNN.get(kind, kind)


def build_lstms(
    found: FoundLayer,
    legacy: bool,
    arrays: Iterable[tuple[Half, list[np.ndarray]]],
    where: str,
) -> list[RecurrentLayer]:
    """The analysed layers of one found layer: each half with its stored arrays, checked."""
    out = []
    wrapper = "Bidirectional" if found.class_name == "Bidirectional" else None
    merge = str(found.config.get("merge_mode", "concat")) if wrapper else None
    for half, arrs in arrays:
        direction, cls, cfg = half.direction, half.class_name, half.config
        if cls == "CuDNNLSTM":
            arrs = list(cudnn_to_lstm(*arrs))
        elif cls == "CuDNNGRU":
            arrs = list(cudnn_to_gru(*arrs))
        kind = cell_kind(cls, cfg)
        kernel, rk, bias = check_arrays(
            arrs, use_bias(cfg), f"{where}: {found.path} ({direction})", kind
        )
        extra: dict[str, Any] = {}
        if kind == "GRU":
            extra["reset_after"] = gru_reset_after(cfg, bias, f"{where}: {found.path}")
        units = cfg.get("units") or ((cfg.get("cell") or {}).get("config") or {}).get("units")
        if isinstance(units, int) and units != rk.shape[0]:
            raise CorruptModelError(
                f"{where}: {found.path}: config says {units} units, weights have {rk.shape[0]}"
            )
        settings = layer_settings(cfg, legacy, cls)
        if wrapper:
            settings["return_sequences"] = bool(
                ((found.config.get("layer") or {}).get("config") or {}).get(
                    "return_sequences", False
                )
            )
        out.append(
            RecurrentLayer.from_keras_arrays(
                name=found.path,
                direction=direction,
                kernel=kernel,
                recurrent_kernel=rk,
                bias=bias,
                wrapper=wrapper,
                reads_input=found.reads_input,
                source=found.source,
                merge_mode=merge,
                kind=cls if cls in CUDNN else kind,
                **settings,
                **extra,
            )
        )
    return out


GATE_COUNT = {"LSTM": 4, "GRU": 3}
ANALYSED = ({"LSTM"}, {"GRU"})
"""What the direct readers analyse: LSTMs and GRUs (CuDNNLSTM and CuDNNGRU converted); a
Bidirectional's halves of one kind (ConvLSTMs: readers/keras/conv.py). SimpleRNN, a
Bidirectional ConvLSTM and mixed wrappers are listed only."""


def check_arrays(
    arrs: list[np.ndarray], use_bias: bool, where: str, kind: str = "LSTM"
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """kernel (in, G·u), recurrent_kernel (u, G·u), bias (G·u,) — or (2, G·u) for a GRU
    with reset_after — with G gates: 4 for an LSTM, 3 for a GRU."""
    want = 3 if use_bias else 2
    if len(arrs) != want:
        raise CorruptModelError(f"{where}: expected {want} weight arrays, found {len(arrs)}")
    kernel, rk = arrs[0], arrs[1]
    bias = arrs[2] if use_bias else None
    n = GATE_COUNT[kind]
    u = rk.shape[0] if rk.ndim == 2 else -1
    biases = [(n * u,)] + ([(2, n * u)] if kind == "GRU" else [])
    if (
        rk.ndim != 2
        or rk.shape[1] != n * u
        or kernel.ndim != 2
        or kernel.shape[1] != n * u
        or (bias is not None and bias.shape not in biases)
    ):
        shapes = ", ".join(str(a.shape) for a in arrs)
        raise CorruptModelError(f"{where}: weight shapes {shapes} are not an {kind}'s")
    return kernel, rk, bias


def gru_reset_after(cfg: Mapping[str, Any], bias: np.ndarray | None, where: str) -> bool:
    """A Keras GRU's reset_after: the config's, checked against the bias (two rows: True).
    Keras 3 and tf.keras 2 default to True; without bias or config, True is assumed."""
    cell = cfg.get("cell")
    src = (cell.get("config") or {}) if isinstance(cell, Mapping) else cfg
    said = src.get("reset_after")
    from_bias = None if bias is None else bias.ndim == 2
    if said is not None and from_bias is not None and bool(said) != from_bias:
        raise CorruptModelError(
            f"{where}: config says reset_after={bool(said)} but the bias has shape {bias.shape}"
            if bias is not None
            else where
        )
    if said is not None:
        return bool(said)
    return True if from_bias is None else from_bias


def _cudnn_blocks(
    kind: str,
    gates: int,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A cuDNN layer's kernels in Keras' layout, its checked (2·gates·units) bias, units.

    Each input-kernel gate block is cuDNN's row-major (units, input_dim) buffer, so it is
    reshaped *and* transposed (not just transposed); each recurrent block is transposed."""
    if bias is None or recurrent_kernel.ndim != 2:
        raise DirectReadError(f"{kind} weights need kernel, recurrent kernel and bias")
    u, d = recurrent_kernel.shape[0], kernel.shape[0]
    n = gates * u
    if kernel.shape != (d, n) or recurrent_kernel.shape != (u, n) or bias.shape != (2 * n,):
        raise DirectReadError(
            f"{kind} weight shapes {kernel.shape}, {recurrent_kernel.shape}, {bias.shape} "
            "are inconsistent"
        )
    k = np.hstack([g.reshape(u, d).T for g in np.hsplit(kernel, gates)])
    r = np.hstack([g.T for g in np.hsplit(recurrent_kernel, gates)])
    return k, r, bias, u


def cudnn_to_lstm(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CuDNNLSTM arrays -> LSTM arrays, exactly as Keras 2 converted them when loading.

    From tf_keras ``hdf5_format._convert_rnn_weights``: the gate order is the same (i, f,
    c, o); each input-kernel gate block is cuDNN's row-major (units, input_dim) buffer, so
    it is reshaped *and* transposed (not just transposed); each recurrent block is
    transposed; the 8·units bias holds an input and a recurrent bias, which are summed.
    """
    k, r, bias, u = _cudnn_blocks("CuDNNLSTM", 4, kernel, recurrent_kernel, bias)
    return k, r, bias[: 4 * u] + bias[4 * u :]


def cudnn_to_gru(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CuDNNGRU arrays -> GRU(reset_after=True) arrays, exactly as Keras 2 converted them.

    From tf_keras ``hdf5_format._convert_rnn_weights`` (``convert_gru_weights``): the gate
    order is the same (z, r, h); each input-kernel gate block is reshaped and transposed
    as for CuDNNLSTM, each recurrent block transposed; the 6·units bias is reshaped to
    (2, 3·units): the input bias, then the recurrent bias, which a reset_after GRU keeps
    apart (the reset gate scales h·U_h + b_rec_h)."""
    k, r, bias, u = _cudnn_blocks("CuDNNGRU", 3, kernel, recurrent_kernel, bias)
    return k, r, bias.reshape(2, 3 * u).copy()


def count_params(h5: Any, skip: tuple[str, ...] = ()) -> int:
    import h5py  # h5py is loaded only when an HDF5 file is read

    total = 0

    def visit(path: str, obj: Any) -> None:
        nonlocal total
        if isinstance(obj, h5py.Dataset) and not path.startswith(skip):
            total += int(obj.size)

    h5.visititems(visit)
    return total


def other_layer(found: FoundLayer, kinds: set[str]) -> OtherLayer:
    cfg = found.config
    if found.class_name == "Bidirectional":
        inner = (cfg.get("layer") or {}).get("config") or {}
        return OtherLayer(
            found.path, f"Bidirectional({'/'.join(sorted(kinds))})", inner.get("units")
        )
    units = cfg.get("units")
    if units is None and isinstance(cfg.get("cell"), Mapping):
        units = (cfg["cell"].get("config") or {}).get("units")
    if isinstance(units, list):  # ConvLSTM has filters, StackedRNNCells lists
        units = None
    return OtherLayer(found.path, next(iter(kinds)), units if isinstance(units, int) else None)


def attr_list(group: Any, name: str) -> list[str]:
    """An HDF5 string-list attribute, also when Keras split it into name0, name1, ..."""

    def dec(values: Any) -> list[str]:
        return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]

    if name in group.attrs:
        return dec(group.attrs[name])
    out: list[str] = []
    i = 0
    while f"{name}{i}" in group.attrs:
        out += dec(group.attrs[f"{name}{i}"])
        i += 1
    return out


def embedding_table(arrays: list[np.ndarray], emb: InputEmbedding, where: str) -> np.ndarray:
    """The (vocabulary, dimension) lookup table of an Embedding, checked against its config."""
    if len(arrays) != 1 or arrays[0].ndim != 2:
        shapes = ", ".join(str(a.shape) for a in arrays) or "none"
        raise CorruptModelError(
            f"{where}: Embedding {emb.path!r} has weights {shapes}, not a table"
        )
    table = arrays[0]
    for size, want, what in (
        (table.shape[0], emb.vocab, "input_dim"),
        (table.shape[1], emb.dim, "output_dim"),
    ):
        if want is not None and size != want:
            raise CorruptModelError(
                f"{where}: Embedding {emb.path!r}: config says {what} {want}, weights have {size}"
            )
    return table


def embedding_of(emb: InputEmbedding | None, table: np.ndarray | None) -> Embedding | None:
    if emb is None:
        return None
    vocab = table.shape[0] if table is not None else emb.vocab
    return Embedding(name=emb.path, table=table, vocab=vocab, mask_zero=emb.mask_zero)


def model_weights(
    info: ModelFile,
    name: str,
    lstms: list[RecurrentLayer],
    others: list[OtherLayer],
    total: int,
    dim: int | None,
    notes: tuple[str, ...] = (),
    *,
    shape: tuple[int | None, ...] | None = None,
    embedding: Embedding | None = None,
    graph: ModelGraph | None = None,
    convs: Sequence[ConvRecurrentLayer] = (),
) -> ModelWeights:
    return ModelWeights(
        name=name,
        path=info.path,
        layers=tuple(lstms),
        others=tuple(others),
        total_params=total,
        input_dim=dim,
        reader="direct",
        keras_version=info.keras_version,
        notes=notes,
        input_shape=shape,
        embedding=embedding,
        graph=graph,
        conv_layers=tuple(convs),
    )


_ROLE = re.compile(r"(kernel|recurrent_kernel|bias)(:0)?$")


def weight_role(weight_name: str) -> str | None:
    m = _ROLE.search(weight_name.rsplit("/", 1)[-1])
    return m.group(1) if m else None
