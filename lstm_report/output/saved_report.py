"""A report's JSON written earlier, read back as the hostile file it may be: within
MAX_BASELINE_BYTES, strict JSON, nested at most MAX_JSON_DEPTH deep, of this schema_version,
and every value a comparison uses checked for its type before it is used."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_report.errors import ModelLoadError, listing, quote
from lstm_report.fileio.limits import (
    MAX_JSON_DEPTH,
    MiB,
    json_depth_exceeds,
    open_regular,
    read_at_most,
    size_text,
)
from lstm_report.output.report_json import SCHEMA_VERSION

MAX_BASELINE_BYTES = 256 * MiB
"""A saved report's JSON larger than this is refused (the demo's is 60 kB; a model of 50
layers of 1,024 units, with every singular value, about 30 MiB)."""


@dataclass(frozen=True)
class SavedReport:
    """A report's JSON read back and checked: the parts a comparison uses."""

    path: Path
    generated: str
    generator: str
    models: tuple[Mapping[str, Any], ...]
    findings: tuple[Mapping[str, Any], ...]
    baselines: frozenset[str]
    """Models that are only a baseline in that report (not what it speaks for)."""


# -- reading --------------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_saved_report(path: Path, where: str) -> SavedReport:
    """Read and check a report's JSON; ModelLoadError (one line) if it cannot be used."""
    at = f"{where}: {path}"
    try:
        with open_regular(path) as fh:
            raw = read_at_most(fh, MAX_BASELINE_BYTES)
    except FileNotFoundError:
        raise ModelLoadError(f"{at}: no such file (a report's JSON, written by --json)") from None
    except OSError as exc:
        raise ModelLoadError(f"{at}: cannot read it: {exc.strerror or exc}") from None
    if raw is None:
        raise ModelLoadError(f"{at}: larger than {size_text(MAX_BASELINE_BYTES)}; refused")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise ModelLoadError(
            f"{at}: nested more than {MAX_JSON_DEPTH} levels deep; refused"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"{at}: not a report's JSON: not valid JSON ({exc})") from None
    if json_depth_exceeds(data, MAX_JSON_DEPTH):
        raise ModelLoadError(f"{at}: nested more than {MAX_JSON_DEPTH} levels deep; refused")
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ModelLoadError(f"{at}: not a report's JSON (it has no schema_version)")
    version = data["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ModelLoadError(
            f"{at}: schema_version {quote(version)}; this lstm-report reads reports of "
            f"schema_version {SCHEMA_VERSION}: rebuild the old report with this version"
        )
    models = _list(data.get("models"), f"{at}: models")
    for i, m in enumerate(models):
        _check_model(m, f"{at}: models[{i}]")
    if not models:
        raise ModelLoadError(f"{at}: models: the report has no model")
    findings = _list(data.get("findings") or [], f"{at}: findings")
    for i, f in enumerate(findings):
        _check_finding(f, f"{at}: findings[{i}]")
    comparisons = _list(data.get("comparisons") or [], f"{at}: comparisons")
    sides: dict[str, set[str]] = {"baseline": set(), "candidate": set()}
    for i, c in enumerate(comparisons):
        _mapping(c, f"{at}: comparisons[{i}]")
        for role in sides:
            sides[role].add(_str(c.get(role), f"{at}: comparisons[{i}].{role}"))
    return SavedReport(
        path=path,
        generated=data["generated"] if isinstance(data.get("generated"), str) else "",
        generator=data["generator"] if isinstance(data.get("generator"), str) else "",
        models=tuple(models),
        findings=tuple(findings),
        baselines=frozenset(sides["baseline"] - sides["candidate"]),
    )


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ModelLoadError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ModelLoadError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ModelLoadError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _check_numbers(node: Any, where: str) -> None:
    """Every leaf a number, null, a string or a bool (a loop: the depth is bounded above)."""
    stack = [(node, where)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, dict):
            stack.extend((v, f"{at}.{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise ModelLoadError(f"{at}: {value} is not a JSON number")


def _check_model(m: Any, where: str) -> None:
    _mapping(m, where)
    _str(m.get("name"), f"{where}.name")
    for j, la in enumerate(_list(m.get("layers"), f"{where}.layers")):
        at = f"{where}.layers[{j}]"
        _mapping(la, at)
        _str(la.get("name"), f"{at}.name")
        _str(la.get("direction"), f"{at}.direction")
        for key in ("gates", "spectra", "activations"):
            value = la.get(key)
            if value is not None:
                for gate, mats in _mapping(value, f"{at}.{key}").items():
                    _mapping(mats, f"{at}.{key}.{gate}")
                    if key != "activations":
                        for mat, st in mats.items():
                            if st is not None:
                                _mapping(st, f"{at}.{key}.{gate}.{mat}")
        memory = la.get("memory")
        if memory is not None:
            _mapping(memory, f"{at}.memory")
            for key in ("resting_tau", "probe_tau"):
                if memory.get(key) is not None:
                    _list(memory[key], f"{at}.memory.{key}")
        for k, f in enumerate(la.get("feature_importance") or []):
            _mapping(f, f"{at}.feature_importance[{k}]")
            _str(f.get("name"), f"{at}.feature_importance[{k}].name")
    imp = m.get("input_importance")
    if imp is not None:
        for k, f in enumerate(
            _list(
                _mapping(imp, f"{where}.input_importance").get("features") or [],
                f"{where}.input_importance.features",
            )
        ):
            _mapping(f, f"{where}.input_importance.features[{k}]")
            _str(f.get("name"), f"{where}.input_importance.features[{k}].name")
    _check_numbers(m, where)


def _check_finding(f: Any, where: str) -> None:
    _mapping(f, where)
    for key in ("severity", "code", "model", "message"):
        _str(f.get(key), f"{where}.{key}")
    if f.get("layer") is not None:
        _str(f["layer"], f"{where}.layer")


# -- choosing the model ---------------------------------------------------------------------


def saved_model(report: SavedReport, want: str | None, where: str) -> Mapping[str, Any]:
    """The model of a saved report to compare: the one named ``want`` if there is one, else
    the only model the report speaks for."""
    names = [m["name"] for m in report.models]
    if want is not None and want in names:
        return report.models[names.index(want)]
    heads = [m for m in report.models if m["name"] not in report.baselines] or list(report.models)
    if len(heads) == 1:
        return heads[0]
    raise ModelLoadError(
        f"{where}: {report.path} has {len(heads)} models ({listing(m['name'] for m in heads)}) "
        f"and none is named {quote(want)}; compare a model of the same name"
    )
