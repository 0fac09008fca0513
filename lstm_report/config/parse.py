"""A config mapping -> Config: the top level, the checks and the comparisons."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstm_report.config.entry import parse_model
from lstm_report.config.fields import (
    check_keys,
    check_text,
    kind_of,
    optional_bool,
    optional_str,
    reader_choice,
    resolve_path,
)
from lstm_report.config.schema import (
    CHECK_KEYS,
    COMPARE_KEYS,
    DEFAULT_TITLE,
    MAX_MODELS,
    TOP_KEYS,
    Checks,
    CompareSpec,
    Config,
    ModelSpec,
    checkpoint_label,
    too_many_models,
)
from lstm_report.errors import ConfigError, listing, quote


def parse_config(
    data: Any, *, base_dir: str | Path | None = None, source: Path | None = None
) -> Config:
    """Validate a config mapping (as loaded from YAML). Relative paths resolve against base_dir."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    check_text(data)
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: expected a mapping at the top level, got {kind_of(data)}")
    check_keys(data, TOP_KEYS, "")

    title = optional_str(data, "title", "title")
    output = optional_str(data, "output", "output")
    if "models" not in data:
        raise ConfigError("models: required key is missing (a list of models to report on)")
    models_raw = data["models"]
    if not isinstance(models_raw, Sequence) or isinstance(models_raw, (str, bytes)):
        raise ConfigError(f"models: expected a list, got {kind_of(models_raw)}")
    if not models_raw:
        raise ConfigError("models: the list is empty; name at least one model")
    if len(models_raw) > MAX_MODELS:
        raise ConfigError(too_many_models(f"{len(models_raw):,}"))

    default_reader = reader_choice(data.get("reader"), "reader") or "auto"
    models = tuple(parse_model(i, raw, base, default_reader) for i, raw in enumerate(models_raw))
    seen: dict[str, int] = {}
    for spec in models:
        if spec.name in seen:
            raise ConfigError(
                f"{spec.key}.name: duplicate model name {quote(spec.name)} "
                f"(also models[{seen[spec.name]}]); give each model a distinct name"
            )
        seen[spec.name] = spec.index
    return Config(
        models=models,
        title=title if title is not None else DEFAULT_TITLE,
        output=resolve_path(base, output) if output is not None else None,
        source=source,
        checks=_parse_checks(data.get("checks")),
        verify=optional_bool(data, "verify", "verify"),
        compare=_parse_compare(data.get("compare"), models, base),
    )


def _compare_side(value: str, models: Sequence[ModelSpec], where: str) -> str:
    """A model name, or ``model@label`` for one checkpoint of a series."""
    by_name = {m.name: m for m in models}
    if value in by_name:
        return value
    name, at, label = value.rpartition("@")
    if at and name in by_name:
        spec = by_name[name]
        if spec.series is None:
            raise ConfigError(
                f"{where}: model {name!r} is one file, not a checkpoint series; "
                f"'{name}@LABEL' names a checkpoint of a series (a glob or a list as its path)"
            )
        labels = [checkpoint_label(p) for p in spec.series]
        if label not in labels:
            raise ConfigError(
                f"{where}: no checkpoint {quote(label)} in the series {quote(name)} "
                f"(checkpoints: {listing(labels)})"
            )
        return value
    close = difflib.get_close_matches(value, list(by_name), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"{where}: no model named {quote(value)}{hint} (models: {listing(list(by_name))}; "
        "a checkpoint of a series is MODEL@LABEL)"
    )


def is_saved_report(value: str, models: Sequence[ModelSpec]) -> bool:
    """Whether a compare side names a report's JSON (a path ending in .json, not a model)."""
    return value.lower().endswith(".json") and value not in {m.name for m in models}


def _parse_compare(
    raw: Any, models: Sequence[ModelSpec], base: Path | None = None
) -> tuple[CompareSpec, ...]:
    if raw is None:
        return ()
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise ConfigError(
            f"compare: expected a list of {{baseline, candidate}}, got {kind_of(raw)}"
        )
    out = []
    for i, item in enumerate(raw):
        key = f"compare[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(
                f"{key}: expected a mapping with baseline and candidate, got {kind_of(item)}"
            )
        check_keys(item, COMPARE_KEYS, key + ".")
        pair = []
        saved: list[Path | None] = []  # where a side is a saved report's JSON
        for role in ("baseline", "candidate"):
            value = item.get(role)
            if value is None:
                raise ConfigError(f"{key}.{role}: required key is missing (a model name)")
            if not isinstance(value, str):
                raise ConfigError(f"{key}.{role}: expected a model name, got {kind_of(value)}")
            if is_saved_report(value, models):
                pair.append(value)
                saved.append(resolve_path(base or Path.cwd(), value))
                continue
            pair.append(_compare_side(value, models, f"{key}.{role}"))
            saved.append(None)
        if pair[0] == pair[1]:
            raise ConfigError(f"{key}: baseline and candidate are the same model {quote(pair[0])}")
        for role, name, path in zip(("baseline", "candidate"), pair, saved):
            if path is None and any(saved) and "@" in name and name not in {m.name for m in models}:
                raise ConfigError(
                    f"{key}.{role}: a saved report is compared with a model, not with a "
                    f"checkpoint of a series ({quote(name)})"
                )
        out.append(
            CompareSpec(
                i,
                pair[0],
                pair[1],
                _layer_map(item.get("layers"), key),
                saved_baseline=saved[0],
                saved_candidate=saved[1],
            )
        )
    return tuple(out)


def _layer_map(raw: Any, key: str) -> tuple[tuple[str, str], ...] | None:
    """``layers: {baseline layer: candidate layer}``: names only here; whether the models
    have them is known once they are read."""
    if raw is None:
        return None
    where = f"{key}.layers"
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping of baseline layer names to candidate layer names "
            f"({{lstm: lstm_1}}), got {kind_of(raw)}"
        )
    if not raw:
        raise ConfigError(f"{where}: the mapping is empty; omit the key to match layers by name")
    seen: dict[str, str] = {}
    for b, c in raw.items():
        if not isinstance(b, str) or not b:
            raise ConfigError(f"{where}: expected layer names as keys, got {kind_of(b)}")
        if not isinstance(c, str) or not c:
            raise ConfigError(f"{where}.{b}: expected a candidate layer name, got {kind_of(c)}")
        if c in seen:
            raise ConfigError(
                f"{where}.{b}: candidate layer {quote(c)} is already mapped from {quote(seen[c])}"
            )
        seen[c] = b
    return tuple((str(b), str(c)) for b, c in raw.items())


def _parse_checks(raw: Any) -> Checks:
    if raw is None:
        return Checks()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"checks: expected a mapping of thresholds, got {kind_of(raw)}")
    check_keys(raw, CHECK_KEYS, "checks.")
    values: dict[str, float] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"checks.{key}: expected a number, got {kind_of(value)}")
        if not value >= 0 or value != value or value == float("inf"):
            raise ConfigError(f"checks.{key}: expected a finite number >= 0, got {value}")
        if key in ("saturation_fraction", "duplicate_cosine") and value > 1:
            raise ConfigError(f"checks.{key}: expected a number between 0 and 1, got {value}")
        values[key] = float(value)
    return Checks(**values)
