"""Keras 3 ``.keras`` files: a zip with ``config.json`` and ``model.weights.h5``, whose
groups are named after each layer's class (``layers/lstm_1/cell/vars/0``), made unique
per container in ``model.layers`` order (saving_lib; docs/formats.md)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lstm_report.fileio.limits import open_regular
from lstm_report.model.layers import ModelWeights
from lstm_report.readers.files import ModelFile
from lstm_report.readers.keras import npz as keras_npz
from lstm_report.readers.keras.graph import by_position, keras_graph
from lstm_report.readers.keras.h5 import (
    DirectReadError,
    count_params,
    embedding_of,
    embedding_table,
    model_weights,
    read_array,
)
from lstm_report.readers.keras.topology import (
    CONTAINERS,
    FoundLayer,
    Half,
    input_dim,
    input_embedding,
    input_shape,
    layer_name,
    layers_of,
)
from lstm_report.readers.keras.walk import read_stored
from lstm_report.readers.safety.rules import open_weights


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


def layer_vars(h5: Any, group: str, where: str) -> list[np.ndarray]:
    vars_path = f"{group}/vars"
    if vars_path not in h5:
        raise DirectReadError(f"{where}: no weights group {vars_path!r} in model.weights.h5")
    v = h5[vars_path]
    return [read_array(v[str(i)], where) for i in range(len(v))]


@contextmanager
def weights_h5(path: Path, where: str) -> Iterator[Any]:
    """The weights of a Keras 3 model as an h5py.File: ``model.weights.h5`` (read in place)
    or ``model.weights.npz`` (readers/keras/npz.py), in a ``.keras`` zip or in the folder
    ``save(zipped=False)`` writes."""
    import h5py  # h5py is loaded only when an HDF5 file is read

    if path.is_dir():
        h5_path = path / "model.weights.h5"
        if h5_path.exists():
            with open_regular(h5_path, follow_symlinks=False) as fh, h5py.File(fh, "r") as h5:
                yield h5
        else:
            with open_regular(path / "model.weights.npz", follow_symlinks=False) as fh:
                with keras_npz.as_h5(fh, where) as h5:
                    yield h5
        return
    with zipfile.ZipFile(path) as zf:
        if "model.weights.h5" in zf.namelist():
            with open_weights(zf, where) as raw, h5py.File(raw, "r") as h5:
                yield h5
        else:
            with open_weights(zf, where, "model.weights.npz") as raw:
                with keras_npz.as_h5(raw, where) as h5:
                    yield h5


def read_keras_zip(info: ModelFile, name: str, where: str) -> ModelWeights:
    assert info.config is not None
    config = info.config
    with weights_h5(info.path, where) as h5:
        groups = keras3_groups(config)

        def check(found: FoundLayer) -> None:
            group = groups.get(found.path)
            if group is None:
                raise DirectReadError(f"{where}: no weights group for layer {found.path!r}")
            _check_name(h5, group, found.path.rsplit("/", 1)[-1], where)

        def arrays_of(found: FoundLayer, half: Half) -> list[np.ndarray]:
            group = groups[found.path]
            if found.class_name == "Bidirectional":
                return layer_vars(h5, f"{group}/{half.direction}_layer/cell", where)
            return layer_vars(h5, f"{group}/cell", where)

        lstms, others, convs = read_stored(
            config, arrays_of, legacy=False, where=where, check=check
        )
        total = count_params(h5, skip=("optimizer",))

        def vars_of(path: str, sub: str, want: list[str]) -> dict[str, np.ndarray] | None:
            group = groups.get(path)
            if group is None:
                return None
            vars_path = f"{group}/{sub}/vars" if sub else f"{group}/vars"
            if vars_path not in h5:
                return None
            v = h5[vars_path]
            stored = [v[str(i)] for i in range(len(v))]
            return by_position(stored, want, lambda ds: read_array(ds, where))

        graph = keras_graph(config, vars_of)
        emb = input_embedding(config)
        table = None
        if emb is not None and groups.get(emb.path) is not None:
            table = embedding_table(layer_vars(h5, groups[emb.path], where), emb, where)
    return model_weights(
        info,
        name,
        lstms,
        others,
        total,
        input_dim(config),
        shape=input_shape(config),
        embedding=embedding_of(emb, table),
        graph=graph,
        convs=convs,
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
