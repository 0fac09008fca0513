"""Compare with a saved report: a side of ``compare:`` (or ``build --baseline``) that names a
report's JSON written earlier.

The JSON keeps numbers, not weights: per-gate statistics, spectra, timescales, probe
activations, importance and findings can be compared; what needs both sets of weights
(‖ΔA‖_F, cosine, the units that changed most, the heatmaps of ΔW and ΔU) needs the old model
file. A saved report is a hostile file like any other: read within MAX_BASELINE_BYTES,
strict JSON, nested at most MAX_JSON_DEPTH deep, of this schema_version, and every value we
use checked for its type before it is used.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
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

MAX_BASELINE_BYTES = 256 * MiB
"""A saved report's JSON larger than this is refused (the demo's is 60 kB; a model of 50
layers of 1,024 units, with every singular value, about 30 MiB)."""

GROUPS = (
    ("gates.", "per-gate statistics of W, U and the biases (‖·‖_F, ‖·‖_2, max |w|, mean, std)"),
    ("spectra.", "spectra (ρ(U_g), stable ranks)"),
    ("memory.resting_tau", "memory timescales at rest (median τ)"),
    ("memory.probe_tau", "memory timescales on the probe (median τ)"),
    ("activations.", "gate activations on the probe (mean)"),
    ("feature_importance.", "input weight norms"),
    ("input_importance.", "input importance measured on the probe"),
)
"""What a comparison with a saved report can compare, by the prefix of its rows' keys."""

NEEDS_MODEL = (
    "‖ΔA‖_F, the relative change and the cosine of each matrix",
    "the units whose incoming weights changed most",
    "the heatmaps of ΔW_g and ΔU_g, and the weight histograms before and after",
)
"""What only a comparison of two model files shows (the JSON keeps no weights)."""

STATISTICS = (
    ("fro", "‖{m}‖_F"),
    ("spectral", "‖{m}‖_2"),
    ("max_abs", "max |{m}|"),
    ("mean", "mean {m}"),
    ("std", "std {m}"),
)


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


@dataclass(frozen=True)
class SavedRow:
    """One number on both sides. ``key`` is its path in the JSON (in the layer for a layer's
    row, in the model for importance): ``gates.i.W.fro``, ``spectra.f.U.spectral_radius``."""

    key: str
    label: str
    baseline: float | None
    candidate: float | None

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.candidate is None:
            return None
        return self.candidate - self.baseline

    @property
    def relative(self) -> float | None:
        d = self.delta
        if d is None or self.baseline is None or self.baseline == 0:
            return None
        return d / abs(self.baseline)


@dataclass(frozen=True)
class SavedLayer:
    name: str
    direction: str
    label: str
    rows: tuple[SavedRow, ...]
    anchor: str


@dataclass(frozen=True)
class SavedFinding:
    layer: str | None
    code: str
    severity: str
    message: str


@dataclass(frozen=True)
class SavedComparison:
    """Numbers compared between two sides, one (or both) of them a saved report."""

    baseline: str
    candidate: str
    baseline_model: str
    candidate_model: str
    saved: tuple[str, ...]
    """Which sides are saved reports: ``baseline``, ``candidate`` or both."""
    sources: tuple[tuple[str, str], ...]
    """(side, where and when the saved report was made) for each saved side."""
    layers: tuple[SavedLayer, ...]
    importance: tuple[SavedRow, ...]
    new_findings: tuple[SavedFinding, ...]
    resolved_findings: tuple[SavedFinding, ...]
    kept_findings: tuple[SavedFinding, ...]
    only_baseline: tuple[str, ...]
    only_candidate: tuple[str, ...]
    anchor: str

    def _groups(self) -> dict[str, bool]:
        """Each kind of number either side has: whether both sides have one of them."""
        rows = [r for la in self.layers for r in la.rows] + list(self.importance)
        out: dict[str, bool] = {}
        for prefix, what in GROUPS:
            mine = [r for r in rows if r.key.startswith(prefix)]
            if mine:
                out[what] = any(r.baseline is not None and r.candidate is not None for r in mine)
        return out

    @property
    def compared(self) -> tuple[str, ...]:
        """What was compared: the kinds of number both sides have, and the findings."""
        return (
            *(w for w, both in self._groups().items() if both),
            "findings (new, resolved, still there)",
        )

    @property
    def not_compared(self) -> tuple[str, ...]:
        """Kinds of number only one side has (e.g. a probe on one side only)."""
        return tuple(f"{w} (one side only)" for w, both in self._groups().items() if not both)


# -- reading --------------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_saved_report(path: Path, where: str) -> SavedReport:
    """Read and check a report's JSON; ModelLoadError (one line) if it cannot be used."""
    from lstm_report.output.report_json import SCHEMA_VERSION

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


# -- comparing ------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _median(values: Any) -> float | None:
    if not isinstance(values, list):
        return None
    finite = [v for v in (_num(x) for x in values) if v is not None]
    return statistics.median(finite) if finite else None


def layer_numbers(la: Mapping[str, Any]) -> dict[str, tuple[str, float | None]]:
    """Every number a layer's JSON keeps that a comparison shows: key -> (label, value)."""
    out: dict[str, tuple[str, float | None]] = {}
    for gate, mats in (la.get("gates") or {}).items():
        for mat, st in mats.items():
            if not isinstance(st, Mapping):
                continue
            for stat, label in STATISTICS:
                if stat in st:
                    out[f"gates.{gate}.{mat}.{stat}"] = (
                        label.format(m=f"{mat}_{gate}"),
                        _num(st[stat]),
                    )
    for gate, mats in (la.get("spectra") or {}).items():
        u, w = mats.get("U"), mats.get("W")
        if isinstance(u, Mapping):
            out[f"spectra.{gate}.U.spectral_radius"] = (
                f"ρ(U_{gate})",
                _num(u.get("spectral_radius")),
            )
            out[f"spectra.{gate}.U.stable_rank"] = (
                f"stable rank of U_{gate}",
                _num(u.get("stable_rank")),
            )
        if isinstance(w, Mapping):
            out[f"spectra.{gate}.W.stable_rank"] = (
                f"stable rank of W_{gate}",
                _num(w.get("stable_rank")),
            )
    memory = la.get("memory")
    if isinstance(memory, Mapping):
        out["memory.resting_tau.median"] = (
            "median τ at rest (steps)",
            _median(memory.get("resting_tau")),
        )
        if memory.get("probe_tau") is not None:
            out["memory.probe_tau.median"] = (
                "median τ on the probe (steps)",
                _median(memory.get("probe_tau")),
            )
    for gate, act in (la.get("activations") or {}).items():
        out[f"activations.{gate}.mean"] = (
            f"mean activation of gate {gate} on the probe",
            _num(act.get("mean")),
        )
    for f in la.get("feature_importance") or []:
        out[f"feature_importance.{f['name']}.value"] = (
            f"input weight norm of {f['name']}",
            _num(f.get("value")),
        )
    return out


def _rows(
    a: Mapping[str, tuple[str, float | None]], b: Mapping[str, tuple[str, float | None]]
) -> tuple[SavedRow, ...]:
    keys = list(a) + [k for k in b if k not in a]
    return tuple(
        SavedRow(k, (a.get(k) or b[k])[0], a[k][1] if k in a else None, b[k][1] if k in b else None)
        for k in keys
    )


def _importance(m: Mapping[str, Any]) -> dict[str, tuple[str, float | None]]:
    imp = m.get("input_importance") or {}
    return {
        f"input_importance.{f['name']}.value": (
            f"importance of {f['name']} (occlusion on the probe)",
            _num(f.get("value")),
        )
        for f in imp.get("features") or []
    }


def _label(la: Mapping[str, Any]) -> str:
    return f"{la['name']} ({la['direction']})" if la.get("wrapper") else str(la["name"])


def _findings(
    findings: Sequence[Mapping[str, Any]], model: str
) -> dict[tuple[str | None, str], list[SavedFinding]]:
    """A model's findings by (layer, check)."""
    out: dict[tuple[str | None, str], list[SavedFinding]] = {}
    for f in findings:
        if f["model"] == model:
            sf = SavedFinding(f.get("layer"), f["code"], f["severity"], f["message"])
            out.setdefault((sf.layer, sf.code), []).append(sf)
    return out


Side = tuple[str, Mapping[str, Any], Sequence[Mapping[str, Any]]]
"""One side: its label, the model's JSON, and the findings of its report."""


def compare_saved(
    base: Side, cand: Side, index: int, saved: Sequence[str], sources: Sequence[tuple[str, str]]
) -> SavedComparison:
    """Compare the numbers of two models' JSON, layers matched by name and direction."""
    (bl, bm, bf), (cl, cm, cf) = base, cand
    left = {(la["name"], la["direction"]): la for la in bm["layers"]}
    right = {(la["name"], la["direction"]): la for la in cm["layers"]}
    anchor = f"saved{index}"
    layers = tuple(
        SavedLayer(
            name=key[0],
            direction=key[1],
            label=_label(la),
            rows=_rows(layer_numbers(la), layer_numbers(right[key])),
            anchor=f"{anchor}-l{j}",
        )
        for j, (key, la) in enumerate(left.items())
        if key in right
    )
    before, after = _findings(bf, bm["name"]), _findings(cf, cm["name"])
    return SavedComparison(
        baseline=bl,
        candidate=cl,
        baseline_model=bm["name"],
        candidate_model=cm["name"],
        saved=tuple(saved),
        sources=tuple(sources),
        layers=layers,
        importance=_rows(_importance(bm), _importance(cm)),
        new_findings=tuple(f for k, fs in after.items() if k not in before for f in fs),
        resolved_findings=tuple(f for k, fs in before.items() if k not in after for f in fs),
        kept_findings=tuple(f for k, fs in after.items() if k in before for f in fs),
        only_baseline=tuple(f"{k[0]} ({k[1]})" for k in left if k not in right),
        only_candidate=tuple(f"{k[0]} ({k[1]})" for k in right if k not in left),
        anchor=anchor,
    )


# -- JSON -----------------------------------------------------------------------------------


def _row_json(r: SavedRow) -> dict[str, Any]:
    return {
        "key": r.key,
        "label": r.label,
        "baseline": r.baseline,
        "candidate": r.candidate,
        "delta": r.delta,
        "relative": r.relative,
    }


def _finding_json(f: SavedFinding) -> dict[str, Any]:
    return {"layer": f.layer, "code": f.code, "severity": f.severity, "message": f.message}


def saved_comparison_json(c: SavedComparison) -> dict[str, Any]:
    """The JSON of a comparison with a saved report (``saved_comparisons[i]``)."""
    return {
        "baseline": c.baseline,
        "candidate": c.candidate,
        "baseline_model": c.baseline_model,
        "candidate_model": c.candidate_model,
        "saved": list(c.saved),
        "sources": {side: text for side, text in c.sources},
        "layers": [
            {"name": la.name, "direction": la.direction, "values": [_row_json(r) for r in la.rows]}
            for la in c.layers
        ],
        "importance": [_row_json(r) for r in c.importance],
        "findings": {
            "new": [_finding_json(f) for f in c.new_findings],
            "resolved": [_finding_json(f) for f in c.resolved_findings],
            "kept": [_finding_json(f) for f in c.kept_findings],
        },
        "only_baseline": list(c.only_baseline),
        "only_candidate": list(c.only_candidate),
        "compared": list(c.compared),
        "not_compared": list(c.not_compared),
        "needs_model": list(NEEDS_MODEL),
    }
