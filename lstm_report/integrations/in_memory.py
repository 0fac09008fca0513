"""Models already in memory (a ``keras.Model``, or weights a callback or notebook snapshot):
the config their options describe, and their weights.

build_report hands these to the pipeline as InMemory values, so that it reads no file for
them; a series of snapshots is then followed as one of checkpoint files is
(series/follow.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from lstm_report.analysis.probing import KerasInputs
from lstm_report.config.parse import parse_config
from lstm_report.config.resolve import feature_names, select_layers
from lstm_report.config.schema import Config
from lstm_report.errors import ConfigError
from lstm_report.model.layers import ModelWeights
from lstm_report.readers.keras.load import from_model, model_inputs
from lstm_report.readers.probe import load_probe, probe_shape


class KerasModel(Protocol):
    """What build_report takes for a model in memory: a ``keras.Model`` (or a stand-in
    whose weights come as ``options['weights']``)."""

    def get_weights(self) -> Any: ...


@dataclass(frozen=True, eq=False)
class InMemory:
    """A model already in memory (from Keras): its weights, and optionally a series."""

    weights: ModelWeights
    keras_inputs: KerasInputs | None = None
    series: tuple[tuple[str, ModelWeights], ...] = ()
    """(label, weights) snapshots in order, e.g. kept by ReportCallback."""


def is_keras_model(obj: object) -> TypeGuard[KerasModel]:
    """Whether build_report's ``config`` is a model in memory rather than a config."""
    return not isinstance(obj, (str, Path, Mapping, Config)) and hasattr(obj, "get_weights")


def in_memory_config(
    model: KerasModel, options: Mapping[str, Any]
) -> tuple[Config, dict[int, InMemory]]:
    """A one-model Config for an in-memory Keras model, with its weights extracted."""
    cfg = options_config(options, str(getattr(model, "name", "model")))
    series = tuple(options.get("series") or ())
    if options.get("weights") is not None:
        # A snapshot taken earlier: the live model may have moved on (training goes on).
        return cfg, {0: InMemory(options["weights"], None, series)}
    weights = from_model(model, name=cfg.models[0].name, path=cfg.models[0].path)
    return cfg, {0: InMemory(weights, model_inputs(model), series)}


def options_config(options: Mapping[str, Any], default_name: str) -> Config:
    """The Config that ``options`` (config keys) describe for a model in memory."""
    top = {k: v for k, v in options.items() if k in ("title", "checks", "verify", "output")}
    entry = {k: v for k, v in options.items() if k not in top and k not in ("series", "weights")}
    name = entry.setdefault("name", default_name)
    entry["path"] = f"{name} (in memory)"
    with _as_options():
        return parse_config({**top, "models": [entry]})


@contextlib.contextmanager
def _as_options() -> Iterator[None]:
    """Name options as they were given (``feature_names``), not as a config entry's keys."""
    try:
        yield
    except ConfigError as exc:
        text = str(exc)
        raise ConfigError(text.removeprefix("models[0].")) from None


def check_model_options(model: KerasModel, cfg: Config) -> None:
    """Raise ConfigError now if ``cfg``'s layers, feature names or probe do not fit ``model``."""
    spec = cfg.models[0]
    weights = from_model(model, name=spec.name, path=spec.path)
    with _as_options():
        feature_names(spec, select_layers(spec, weights))
        load_probe(spec, probe_shape(weights))
