"""Read LSTM weights straight from the file with h5py: no TensorFlow, no Keras, no code run.

Three layouts (see docs/formats.md for the sources these rules were taken from):

* ``.keras`` (Keras 3): a zip with ``config.json`` and ``model.weights.h5``. Groups in the
  weights file are named after the layer *class* (``layers/lstm_1/cell/vars/0``), made
  unique per container in ``model.layers`` order, not after the layer's name.
* legacy ``.h5`` full model (Keras 2 / tf.keras, or Keras 3's legacy writer): the config
  in the ``model_config`` attribute, weights in ``model_weights/<layer name>``, each
  group listing its datasets in the ``weight_names`` attribute.
* legacy ``.h5`` weights only (``save_weights``): the same groups at the root and no
  architecture, so LSTMs are recognised from weight names and shapes.

Anything that does not match exactly raises DirectReadError; the caller falls back to
Keras or reports it. Nothing is guessed silently. A damaged or hostile file raises
CorruptModelError, which no reader tries.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstm_report.config import natural_key
from lstm_report.errors import CorruptModelError, ModelLoadError
from lstm_report.model import Embedding, LSTMWeights, ModelWeights, OtherLayer
from lstm_report.readers.files import ModelFile
from lstm_report.readers.safety import check_dataset, open_weights
from lstm_report.topology import (
    CONTAINERS,
    InputEmbedding,
    RecurrentLayer,
    find_recurrent,
    input_dim,
    input_embedding,
    input_shape,
    layer_kind,
    layer_name,
    layers_of,
)


class DirectReadError(ModelLoadError):
    """The file cannot be read without Keras (a layout this reader does not know for sure)."""


def read_array(ds: Any, where: str) -> np.ndarray:
    """One dataset as an array, refusing what a damaged file could make us allocate.

    An HDF5 dataset declares its shape in a header; a truncated or crafted file can declare
    far more data than it stores, or keep it in other files. inspect_file refused such files
    already (readers/safety.py); checked again here, cheaply, right before allocating.
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


def read(
    info: ModelFile, *, name: str, where: str, assume: Activations = Activations()
) -> ModelWeights:
    """Read every LSTM of the file. Raises DirectReadError for what it cannot read safely."""
    import h5py

    try:
        if info.format == "keras":
            return _read_keras_zip(info, name, where)
        with h5py.File(info.path, "r") as f:
            if info.config is not None:
                return _read_legacy_full(f, info, name, where)
            if "layer_names" not in f.attrs and "layers" in f:
                return _read_keras3_weights(f, info, name, where, assume)
            return _read_weights_only(f, info, name, where, assume)
    except ModelLoadError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
        raise DirectReadError(f"{where}: cannot read {info.path.name} directly: {exc}") from exc


# --- settings from the config ---------------------------------------------------------------


def _version(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of a keras_version attribute, if it has one."""
    m = re.match(r"(\d+)(?:\.(\d+))?", version or "")
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def _is_keras2(version: str | None) -> bool:
    v = _version(version)
    return v is not None and v < (3, 0)


def _act(value: Any, legacy: bool, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, Mapping):  # a serialized function
        cfg = value.get("config")
        value = cfg if isinstance(cfg, str) else value.get("class_name", "custom")
    name = str(value)
    # Keras 2's hard_sigmoid is clip(0.2x + 0.5, 0, 1); Keras 3's is clip(x/6 + 0.5, 0, 1).
    return "hard_sigmoid_keras2" if legacy and name == "hard_sigmoid" else name


def _settings(cfg: Mapping[str, Any], legacy: bool, class_name: str) -> dict[str, Any]:
    if class_name == "CuDNNLSTM":  # cuDNN's LSTM is fixed: tanh and the logistic sigmoid
        act, rec = "tanh", "sigmoid"
    else:
        cell = cfg.get("cell")
        src = (cell.get("config") or {}) if isinstance(cell, Mapping) else cfg
        act = _act(src.get("activation"), legacy, "tanh")
        rec = _act(src.get("recurrent_activation"), legacy, "sigmoid")
    return {
        "activation": act,
        "recurrent_activation": rec,
        "go_backwards": bool(cfg.get("go_backwards", False)),
        "return_sequences": bool(cfg.get("return_sequences", False)),
        "unit_forget_bias": bool(cfg.get("unit_forget_bias", True)),
    }


def _use_bias(cfg: Mapping[str, Any]) -> bool:
    cell = cfg.get("cell")
    src = (cell.get("config") or {}) if isinstance(cell, Mapping) else cfg
    return bool(src.get("use_bias", True))


def _halves(found: RecurrentLayer) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(direction, class name, config) of each LSTM inside a found recurrent layer."""
    cfg = found.config
    if found.class_name != "Bidirectional":
        direction = "backward" if cfg.get("go_backwards") else "forward"
        return [(direction, found.class_name, cfg)]
    fwd = cfg.get("layer") or {}
    bwd = cfg.get("backward_layer")
    fwd_cfg = dict(fwd.get("config") or {})
    if isinstance(bwd, Mapping):
        bwd_cls, bwd_cfg = str(bwd.get("class_name")), dict(bwd.get("config") or {})
    else:  # Keras builds the backward half from the forward config, reading backwards
        bwd_cls, bwd_cfg = str(fwd.get("class_name")), {**fwd_cfg}
        bwd_cfg["go_backwards"] = not fwd_cfg.get("go_backwards", False)
    return [("forward", str(fwd.get("class_name")), fwd_cfg), ("backward", bwd_cls, bwd_cfg)]


def _kind(class_name: str, cfg: Mapping[str, Any]) -> str:
    kind = layer_kind(class_name, cfg)
    return "LSTM" if kind == "CuDNNLSTM" else kind


def _build(
    found: RecurrentLayer,
    legacy: bool,
    arrays: Iterator[tuple[str, str, list[np.ndarray]]],
    where: str,
) -> list[LSTMWeights]:
    out = []
    wrapper = "Bidirectional" if found.class_name == "Bidirectional" else None
    merge = str(found.config.get("merge_mode", "concat")) if wrapper else None
    for (direction, cls, cfg), (_, _, arrs) in zip(_halves(found), arrays):
        if cls == "CuDNNLSTM":
            arrs = list(cudnn_to_lstm(*arrs))
        kernel, rk, bias = _check_arrays(
            arrs, _use_bias(cfg), f"{where}: {found.path} ({direction})"
        )
        units = cfg.get("units") or ((cfg.get("cell") or {}).get("config") or {}).get("units")
        if isinstance(units, int) and units != rk.shape[0]:
            raise CorruptModelError(
                f"{where}: {found.path}: config says {units} units, weights have {rk.shape[0]}"
            )
        settings = _settings(cfg, legacy, cls)
        if wrapper:
            settings["return_sequences"] = bool(
                ((found.config.get("layer") or {}).get("config") or {}).get(
                    "return_sequences", False
                )
            )
        out.append(
            LSTMWeights(
                name=found.path,
                direction=direction,
                kernel=kernel,
                recurrent_kernel=rk,
                bias=bias,
                wrapper=wrapper,
                reads_input=found.reads_input,
                source=found.source,
                merge_mode=merge,
                kind="CuDNNLSTM" if cls == "CuDNNLSTM" else "LSTM",
                **settings,
            )
        )
    return out


def _check_arrays(
    arrs: list[np.ndarray], use_bias: bool, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    want = 3 if use_bias else 2
    if len(arrs) != want:
        raise CorruptModelError(f"{where}: expected {want} weight arrays, found {len(arrs)}")
    kernel, rk = arrs[0], arrs[1]
    bias = arrs[2] if use_bias else None
    u = rk.shape[0] if rk.ndim == 2 else -1
    if (
        rk.ndim != 2
        or rk.shape[1] != 4 * u
        or kernel.ndim != 2
        or kernel.shape[1] != 4 * u
        or (bias is not None and bias.shape != (4 * u,))
    ):
        shapes = ", ".join(str(a.shape) for a in arrs)
        raise CorruptModelError(f"{where}: weight shapes {shapes} are not an LSTM's")
    return kernel, rk, bias


def cudnn_to_lstm(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CuDNNLSTM arrays -> LSTM arrays, exactly as Keras 2 converted them when loading.

    From tf_keras ``hdf5_format._convert_rnn_weights``: the gate order is the same (i, f,
    c, o); each input-kernel gate block is cuDNN's row-major (units, input_dim) buffer, so
    it is reshaped *and* transposed (not just transposed); each recurrent block is
    transposed; the 8·units bias holds an input and a recurrent bias, which are summed.
    """
    if bias is None or recurrent_kernel.ndim != 2:
        raise DirectReadError("CuDNNLSTM weights need kernel, recurrent kernel and bias")
    u, d = recurrent_kernel.shape[0], kernel.shape[0]
    if kernel.shape != (d, 4 * u) or recurrent_kernel.shape != (u, 4 * u) or bias.shape != (8 * u,):
        raise DirectReadError(
            f"CuDNNLSTM weight shapes {kernel.shape}, {recurrent_kernel.shape}, {bias.shape} "
            "are inconsistent"
        )
    k = np.hstack([g.reshape(u, d).T for g in np.hsplit(kernel, 4)])
    r = np.hstack([g.T for g in np.hsplit(recurrent_kernel, 4)])
    return k, r, bias[: 4 * u] + bias[4 * u :]


# --- Keras 3 .keras -------------------------------------------------------------------------


def _snake(name: str) -> str:
    # == keras.src.utils.naming.to_snake_case
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(base: str, used: dict[str, int]) -> str:
    # == keras.src.saving.saving_lib._get_unique_name
    if base in used:
        used[base] += 1
        return f"{base}_{used[base]}"
    used[base] = 0
    return base


def keras3_groups(model: Mapping[str, Any]) -> dict[str, str]:
    """Layer path -> its group in model.weights.h5, from config.json alone.

    saving_lib names each layer's group after its class in snake case, made unique within
    its container in ``model.layers`` order; a Sequential's leading InputLayer is not in
    ``model.layers``, and keras.ops calls in a Functional config are not layers.
    """
    out: dict[str, str] = {}

    def walk(entry: Mapping[str, Any], group: str, prefix: str) -> None:
        layers = [
            x
            for x in layers_of(entry)
            if not str(x.get("module") or "").startswith("keras.src.ops")
        ]
        if (
            entry.get("class_name") == "Sequential"
            and layers
            and layers[0].get("class_name") == "InputLayer"
        ):
            layers = layers[1:]
        used: dict[str, int] = {}
        for x in layers:
            child = f"{group}layers/{_unique(_snake(str(x.get('class_name'))), used)}"
            name = layer_name(x)
            path = f"{prefix}{name}"
            out[path] = child
            if x.get("class_name") in CONTAINERS:
                walk(x, child + "/", path + "/")

    walk(model, "", "")
    return out


def _vars(h5: Any, group: str, where: str) -> list[np.ndarray]:
    vars_path = f"{group}/vars"
    if vars_path not in h5:
        raise DirectReadError(f"{where}: no weights group {vars_path!r} in model.weights.h5")
    v = h5[vars_path]
    return [read_array(v[str(i)], where) for i in range(len(v))]


def _read_keras_zip(info: ModelFile, name: str, where: str) -> ModelWeights:
    import h5py

    assert info.config is not None
    config = info.config
    with zipfile.ZipFile(info.path) as zf, open_weights(zf, where) as raw:
        with h5py.File(raw, "r") as h5:
            groups = keras3_groups(config)
            lstms: list[LSTMWeights] = []
            others: list[OtherLayer] = []
            for found in find_recurrent(config):
                group = groups.get(found.path)
                if group is None:
                    raise DirectReadError(f"{where}: no weights group for layer {found.path!r}")
                _check_name(h5, group, found.path.rsplit("/", 1)[-1], where)
                halves = _halves(found)
                kinds = {_kind(cls, cfg) for _, cls, cfg in halves}
                if kinds != {"LSTM"}:
                    others.append(_other(found, kinds))
                    continue
                if found.class_name == "Bidirectional":
                    subs = [f"{group}/forward_layer/cell", f"{group}/backward_layer/cell"]
                else:
                    subs = [f"{group}/cell"]
                arrays = ((d, c, _vars(h5, s, where)) for (d, c, _), s in zip(halves, subs))
                lstms += _build(found, False, arrays, where)
            total = _count_params(h5, skip=("optimizer",))
            emb = input_embedding(config)
            table = None
            if emb is not None and groups.get(emb.path) is not None:
                table = _embedding_table(_vars(h5, groups[emb.path], where), emb, where)
    return _result(
        info,
        name,
        lstms,
        others,
        total,
        input_dim(config),
        shape=input_shape(config),
        embedding=_embedding(emb, table),
    )


def _check_name(h5: Any, group: str, layer_name: str, where: str) -> None:
    # saving_lib records each layer's name on its vars group: a cross-check of the mapping.
    vars_path = f"{group}/vars"
    if vars_path in h5:
        stored = h5[vars_path].attrs.get("name")
        if isinstance(stored, bytes):
            stored = stored.decode("utf-8", "replace")
        if stored is not None and str(stored) != layer_name:
            raise DirectReadError(
                f"{where}: weights group {group!r} belongs to layer {stored!r}, "
                f"expected {layer_name!r}"
            )


def _count_params(h5: Any, skip: tuple[str, ...] = ()) -> int:
    import h5py

    total = 0

    def visit(path: str, obj: Any) -> None:
        nonlocal total
        if isinstance(obj, h5py.Dataset) and not path.startswith(skip):
            total += int(obj.size)

    h5.visititems(visit)
    return total


def _other(found: RecurrentLayer, kinds: set[str]) -> OtherLayer:
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


# --- legacy HDF5 ----------------------------------------------------------------------------


def _attr_list(group: Any, name: str) -> list[str]:
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


_ROLE = re.compile(r"(kernel|recurrent_kernel|bias)(:0)?$")


def _role(weight_name: str) -> str | None:
    m = _ROLE.search(weight_name.rsplit("/", 1)[-1])
    return m.group(1) if m else None


def _pick(names: list[str], pattern: str, where: str, use_bias: bool) -> list[str]:
    """The kernel, recurrent kernel (and bias) among names whose path matches pattern."""
    rx = re.compile(pattern)
    chosen: dict[str, str] = {}
    for n in names:
        if not rx.search(n):
            continue
        role = _role(n)
        if role is None:
            continue
        if role in chosen:
            raise DirectReadError(f"{where}: two {role} weights match ({chosen[role]}, {n})")
        chosen[role] = n
    roles = ["kernel", "recurrent_kernel"] + (["bias"] if use_bias else [])
    missing = [r for r in roles if r not in chosen]
    if missing:
        raise DirectReadError(f"{where}: no {', '.join(missing)} weights found")
    return [chosen[r] for r in roles]


def _read_legacy_full(f: Any, info: ModelFile, name: str, where: str) -> ModelWeights:
    assert info.config is not None
    config = info.config
    legacy = _is_keras2(info.keras_version)
    if "model_weights" not in f:
        raise DirectReadError(f"{where}: HDF5 file has a model config but no model_weights group")
    g = f["model_weights"]
    lstms: list[LSTMWeights] = []
    others: list[OtherLayer] = []
    for found in find_recurrent(config):
        top = found.path.split("/", 1)[0]
        leaf = found.path.rsplit("/", 1)[-1]
        if top not in g:
            raise DirectReadError(f"{where}: no weights group for layer {top!r}")
        group = g[top]
        names = _attr_list(group, "weight_names")
        halves = _halves(found)
        kinds = {_kind(cls, cfg) for _, cls, cfg in halves}
        if kinds != {"LSTM"}:
            others.append(_other(found, kinds))
            continue
        arrays = []
        for direction, cls, cfg in halves:
            if found.class_name == "Bidirectional":
                pattern = rf"(^|/){re.escape(leaf)}/{direction}_[^/]+/"
            else:
                pattern = rf"(^|/){re.escape(leaf)}/"
            picked = _pick(names, pattern, f"{where}: {found.path}", _use_bias(cfg))
            arrays.append((direction, cls, [read_array(group[n], where) for n in picked]))
        lstms += _build(found, legacy, iter(arrays), where)
    emb = input_embedding(config)
    table = None
    if emb is not None and emb.path in g:
        group = g[emb.path]
        found_names = [n for n in _attr_list(group, "weight_names") if "embeddings" in n]
        tables = [read_array(group[n], where) for n in found_names[:1]]
        table = _embedding_table(tables, emb, where)
    return _result(
        info,
        name,
        lstms,
        others,
        _count_params(g),
        input_dim(config),
        shape=input_shape(config),
        embedding=_embedding(emb, table),
    )


def _embedding_table(arrays: list[np.ndarray], emb: InputEmbedding, where: str) -> np.ndarray:
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


def _embedding(emb: InputEmbedding | None, table: np.ndarray | None) -> Embedding | None:
    if emb is None:
        return None
    vocab = table.shape[0] if table is not None else emb.vocab
    return Embedding(name=emb.path, table=table, vocab=vocab, mask_zero=emb.mask_zero)


@dataclass(frozen=True, eq=False)
class _Shaped:
    """What the shapes of (kernel, recurrent kernel, bias) say a cell is."""

    kind: str
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None
    """The LSTM's arrays (CuDNNLSTM converted), or None for another recurrent layer."""
    units: int


def _by_shape(k: np.ndarray, rk: np.ndarray, b: np.ndarray | None, where: str) -> _Shaped:
    """recurrent width / units = 4 gates: LSTM (bias 4u) or CuDNNLSTM (8u); else not one."""
    u = int(rk.shape[0])
    gates = rk.shape[1] // u if rk.shape[1] % u == 0 else 0
    bshape = None if b is None else b.shape
    if gates == 4 and bshape in (None, (4 * u,)):
        return _Shaped(
            "LSTM", _check_arrays([k, rk] + ([b] if b is not None else []), b is not None, where), u
        )
    if gates == 4 and bshape == (8 * u,):
        return _Shaped("CuDNNLSTM", cudnn_to_lstm(k, rk, b), u)
    return _Shaped(_rnn_name(gates, bshape, u), None, u)


def _result(
    info: ModelFile,
    name: str,
    lstms: list[LSTMWeights],
    others: list[OtherLayer],
    total: int,
    dim: int | None,
    notes: tuple[str, ...] = (),
    *,
    shape: tuple[int | None, ...] | None = None,
    embedding: Embedding | None = None,
) -> ModelWeights:
    return ModelWeights(
        name=name,
        path=info.path,
        lstms=tuple(lstms),
        others=tuple(others),
        total_params=total,
        input_dim=dim,
        reader="direct",
        keras_version=info.keras_version,
        notes=notes,
        input_shape=shape,
        embedding=embedding,
    )


def _read_weights_only(
    f: Any, info: ModelFile, name: str, where: str, assume: Activations
) -> ModelWeights:
    """No architecture: find LSTMs by weight names and shapes, assume what cannot be read."""
    layer_names = _attr_list(f, "layer_names")
    if not layer_names:
        raise DirectReadError(
            f"{where}: {info.path.name} has neither a model config nor Keras weight groups "
            "(layer_names); not a Keras weights file"
        )
    default_rec = "sigmoid"
    v = _version(info.keras_version)
    if v is not None and v < (2, 3):
        default_rec = "hard_sigmoid_keras2"  # Keras <= 2.2.x defaulted to hard_sigmoid
    act = assume.activation or "tanh"
    rec = assume.recurrent_activation or default_rec
    lstms: list[LSTMWeights] = []
    others: list[OtherLayer] = []
    first_weighted = True
    for layer in layer_names:
        if layer not in f:
            continue
        group = f[layer]
        names = _attr_list(group, "weight_names")
        triples = _triples(names)
        for prefix, roles in triples.items():
            arrs = {r: read_array(group[n], where) for r, n in roles.items()}
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
                LSTMWeights(
                    name=label,
                    direction=direction,
                    kernel=kernel,
                    recurrent_kernel=rkernel,
                    bias=bias,
                    activation="tanh" if kind == "CuDNNLSTM" else act,
                    recurrent_activation="sigmoid" if kind == "CuDNNLSTM" else rec,
                    go_backwards=direction == "backward",
                    wrapper="Bidirectional"
                    if "forward_" in prefix or "backward_" in prefix
                    else None,
                    # Assumed: the first layer with weights reads the model input.
                    reads_input=first_weighted
                    or (direction == "backward" and bool(lstms) and lstms[-1].reads_input),
                    kind=kind,
                )
            )
            first_weighted = False
    return _result(
        info,
        name,
        lstms,
        others,
        _count_params(f),
        next((w.input_dim for w in lstms if w.reads_input), None),
        (
            f"weights-only file: no architecture stored; assumed activation {act!r}, "
            f"recurrent_activation {rec!r}"
            + (
                " (Keras <= 2.2 default)"
                if rec == "hard_sigmoid_keras2" and not assume.recurrent_activation
                else ""
            )
            + ", not go_backwards, and that the first layer with weights reads the model input; "
            "set 'activations' in the config to override",
        ),
    )


def _vars_name(group: Any) -> str | None:
    vars_group = group.get("vars")
    stored = vars_group.attrs.get("name") if vars_group is not None else None
    if isinstance(stored, bytes):
        stored = stored.decode("utf-8", "replace")
    return str(stored) if stored is not None else None


def _read_keras3_weights(
    f: Any, info: ModelFile, name: str, where: str, assume: Activations
) -> ModelWeights:
    """A Keras 3 ``.weights.h5`` (``model.save_weights``): groups by class, no architecture.

    Every ``<layer>/cell/vars`` group is a recurrent cell; the layer's own name is the
    ``name`` attribute saving_lib stores on ``<layer>/vars``.
    """
    import h5py

    cells: list[str] = []
    f.visititems(
        lambda path, obj: (
            cells.append(path)
            if isinstance(obj, h5py.Group) and path.endswith("/cell") and "vars" in obj
            else None
        )
    )
    act = assume.activation or "tanh"
    rec = assume.recurrent_activation or "sigmoid"
    lstms: list[LSTMWeights] = []
    others: list[OtherLayer] = []

    def order(path: str) -> tuple[list[Any], bool]:  # a Bidirectional's forward half first
        return natural_key(
            path.replace("/backward_layer/", "/").replace("/forward_layer/", "/")
        ), "/backward_layer/" in path

    for cell_path in sorted(cells, key=order):
        layer_path = cell_path.rsplit("/", 1)[0]
        parts = layer_path.split("/")
        direction, wrapper = "forward", None
        if parts[-1] in ("forward_layer", "backward_layer"):
            direction = parts[-1].split("_")[0]
            wrapper = "Bidirectional"
            parts = parts[:-1]
        # the readable path: the stored name of every `layers/<x>` level
        names = []
        for k in range(1, len(parts), 2):
            group = f["/".join(parts[: k + 1])]
            names.append(_vars_name(group) or parts[k])
        label = "/".join(names)
        arrs = _vars(f, cell_path, where)
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
            LSTMWeights(
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
            )
        )
    return _result(
        info,
        name,
        lstms,
        others,
        _count_params(f),
        None,
        (
            "Keras 3 weights file: no architecture stored; assumed activation "
            f"{act!r}, recurrent_activation {rec!r}, not go_backwards; which LSTM reads the "
            "model input is unknown, so no feature importance; set 'activations' in the "
            "config to override",
        ),
    )


def _triples(names: list[str]) -> dict[str, dict[str, str]]:
    """Group weight names by everything before their last component: one dict per cell."""
    out: dict[str, dict[str, str]] = {}
    for n in names:
        role = _role(n)
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
