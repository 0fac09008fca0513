"""``lstm_report.show``: the report of a model in memory or a file, in one line."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lstm_report.config.schema import page_name
from lstm_report.config.sources import model_file_config
from lstm_report.errors import ConfigError, ModelLoadError
from lstm_report.model.layers import ModelWeights, RecurrentModel
from lstm_report.pipeline import BuildResult, build_report
from lstm_report.readers.frameworks import framework_model
from lstm_report.readers.torch.rnn import cells_from_state_dict, is_rnn_key


def show(
    model_or_path: Any,
    *,
    probe: Any = None,
    feature_names: Sequence[str] | None = None,
    output: str | Path | None = None,
    name: str | None = None,
    title: str | None = None,
    **options: Any,
) -> BuildResult:
    """Build the report of a ``keras.Model``, a PyTorch ``state_dict()`` (a mapping of
    tensors or arrays) or a model file, and return the BuildResult (a notebook shows it
    inline). ``probe`` is a path to an .npy/.npz, or an array; the page goes to ``output``
    (default: a new temporary folder). ``options`` are further config keys (``checks``,
    ``layers``, ...)."""
    folder = Path(tempfile.mkdtemp(prefix="lstm-report-")) if output is None else None
    page = f"{_safe(name or _default_name(model_or_path))}.html"
    out = Path(output) if output is not None else folder / page  # type: ignore[operator]
    # An array probe is saved where nothing of the user's can be: the temporary folder.
    probe_path = _probe_path(probe, folder)
    if isinstance(model_or_path, (str, Path, os.PathLike)):
        cfg = model_file_config(
            os.fspath(model_or_path),
            name=name,
            probe=probe_path,
            feature_names=list(feature_names) if feature_names is not None else None,
        )
        if title:
            cfg = replace(cfg, title=title)
        if options:
            raise ConfigError(
                f"show: {', '.join(sorted(options))}: for a model file, put these in a "
                "config file and call build_report"
            )
        return build_report(cfg, output=out)
    listed = list(feature_names) if feature_names is not None else None
    given = {"probe": probe_path, "feature_names": listed, "name": name, "title": title}
    opts: dict[str, Any] = {**options, **{k: v for k, v in given.items() if v is not None}}
    if isinstance(model_or_path, Mapping):
        opts["weights"] = state_dict_weights(model_or_path, name or "model")
        return build_report(_Snapshot(name or "model"), output=out, options=opts)
    if hasattr(model_or_path, "get_weights"):
        return build_report(model_or_path, output=out, options=opts)
    if hasattr(model_or_path, "state_dict"):
        raise ConfigError(
            f"show: got a {type(model_or_path).__name__}; pass its state_dict() "
            "(a mapping of tensors), a keras.Model or a model file"
        )
    raise ConfigError(
        f"show: expected a keras.Model, a state_dict() mapping or a model file, "
        f"got {type(model_or_path).__name__}"
    )


class _Snapshot:  # an in_memory.KerasModel
    """build_report's in-memory entry: a model with ``get_weights``, its weights given as
    ``options['weights']`` (as ReportCallback passes a snapshot), so no Keras is involved."""

    def __init__(self, name: str) -> None:
        self.name = name

    def get_weights(self) -> list[Any]:  # never called: options["weights"] is used
        raise AssertionError("a snapshot's weights are passed as options['weights']")


def as_array(value: Any) -> np.ndarray:
    """A tensor or array as a numpy array, without importing torch: a torch tensor is
    ``.detach().cpu().numpy()``, anything else ``np.asarray``."""
    if all(hasattr(value, a) for a in ("detach", "cpu", "numpy")):
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()  # numpy has no bfloat16
        return np.asarray(value.numpy())
    return np.asarray(value)


def state_dict_weights(state: Mapping[Any, Any], name: str) -> ModelWeights:
    """The ModelWeights of a PyTorch state dict in memory (nn.LSTM/nn.GRU keys)."""
    where = f"{name} (state dict)"
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise ConfigError(f"show: state dict keys are strings, got {type(key).__name__}")
        if is_rnn_key(key):
            arrays[key] = as_array(value)
    cells, other = cells_from_state_dict(arrays, where=where)
    if not cells and not other:
        raise ModelLoadError(
            f"{where}: no nn.LSTM or nn.GRU weights (no key like weight_ih_l0 or, for a cell, "
            "weight_ih)"
        )
    total = sum(math.prod(getattr(v, "shape", ()) or (1,)) for v in state.values())
    found = RecurrentModel(
        source=where, framework="PyTorch state dict", cells=cells, other=other, total_params=total
    )
    return framework_model(found, Path(where), name, "pytorch")


def _probe_path(probe: Any, folder: Path | None) -> str | None:
    """The probe's path: as given, or an array saved to ``folder`` (a new temporary one
    when None: never beside the user's output, where it could replace a file)."""
    if probe is None or isinstance(probe, (str, Path, os.PathLike)):
        return None if probe is None else os.fspath(probe)
    path = (folder or Path(tempfile.mkdtemp(prefix="lstm-report-probe-"))) / "probe.npy"
    np.save(path, as_array(probe), allow_pickle=False)
    return str(path)


def _default_name(model: Any) -> str:
    if isinstance(model, (str, Path, os.PathLike)):
        return Path(os.fspath(model)).stem
    return str(getattr(model, "name", "model"))


def _safe(name: str) -> str:
    return page_name(name).removesuffix(".html")
