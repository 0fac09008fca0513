"""Legacy HDF5 full models (Keras 2 / tf.keras, or Keras 3's legacy writer): the config in
the ``model_config`` attribute, weights in ``model_weights/<layer name>``, each group listing
its datasets in the ``weight_names`` attribute (docs/formats.md)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from lstm_report.model.layers import ModelWeights
from lstm_report.readers.files import ModelFile
from lstm_report.readers.keras.graph import by_name, keras_graph
from lstm_report.readers.keras.h5 import (
    DirectReadError,
    attr_list,
    count_params,
    embedding_of,
    embedding_table,
    is_keras2,
    model_weights,
    read_array,
    use_bias,
    weight_role,
)
from lstm_report.readers.keras.topology import (
    FoundLayer,
    Half,
    input_dim,
    input_embedding,
    input_shape,
)
from lstm_report.readers.keras.walk import read_stored


def _pick(names: list[str], pattern: str, where: str, use_bias: bool) -> list[str]:
    """The kernel, recurrent kernel (and bias) among names whose path matches pattern."""
    rx = re.compile(pattern)
    chosen: dict[str, str] = {}
    for n in names:
        if not rx.search(n):
            continue
        role = weight_role(n)
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


def read_legacy_full(f: Any, info: ModelFile, name: str, where: str) -> ModelWeights:
    assert info.config is not None
    config = info.config
    legacy = is_keras2(info.keras_version)
    if "model_weights" not in f:
        raise DirectReadError(f"{where}: HDF5 file has a model config but no model_weights group")
    g = f["model_weights"]

    def check(found: FoundLayer) -> None:
        top = found.path.split("/", 1)[0]
        if top not in g:
            raise DirectReadError(f"{where}: no weights group for layer {top!r}")

    def arrays_of(found: FoundLayer, half: Half) -> list[np.ndarray]:
        group = g[found.path.split("/", 1)[0]]
        leaf = found.path.rsplit("/", 1)[-1]
        if found.class_name == "Bidirectional":
            pattern = rf"(^|/){re.escape(leaf)}/{half.direction}_[^/]+/"
        else:
            pattern = rf"(^|/){re.escape(leaf)}/"
        names = attr_list(group, "weight_names")
        picked = _pick(names, pattern, f"{where}: {found.path}", use_bias(half.config))
        return [read_array(group[n], where) for n in picked]

    lstms, others, convs = read_stored(config, arrays_of, legacy=legacy, where=where, check=check)
    emb = input_embedding(config)
    table = None
    if emb is not None and emb.path in g:
        group = g[emb.path]
        found_names = [n for n in attr_list(group, "weight_names") if "embeddings" in n]
        tables = [read_array(group[n], where) for n in found_names[:1]]
        table = embedding_table(tables, emb, where)

    def vars_of(path: str, sub: str, want: list[str]) -> dict[str, np.ndarray] | None:
        if "/" in path or path not in g:
            return None
        group = g[path]
        named = [(n, n) for n in attr_list(group, "weight_names")]
        picked = by_name(named, want)
        if picked is None:
            return None
        return {role: read_array(group[n], where) for role, n in picked.items()}

    graph = keras_graph(config, vars_of)
    return model_weights(
        info,
        name,
        lstms,
        others,
        count_params(g),
        input_dim(config),
        shape=input_shape(config),
        embedding=embedding_of(emb, table),
        graph=graph,
        convs=convs,
    )
