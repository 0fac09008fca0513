"""The one Jinja2 environment; ReportData + figures -> one self-contained HTML page."""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup, escape

from lstm_report._resources import templates_dir
from lstm_report.cells.activations import ACTIVATION_FORMULAS
from lstm_report.cells.base import gates_of
from lstm_report.cells.kinds import equations
from lstm_report.figures import LayerFigures
from lstm_report.model.analyses import LayerAnalysis
from lstm_report.model.layers import GATE_NAMES
from lstm_report.model.report import ReportData
from lstm_report.output.baseline import NEEDS_MODEL
from lstm_report.output.report_json import dumps

env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(templates_dir())),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def fmt_num(value: Any, digits: int = 4) -> str:
    """A number for a table cell: 4 significant digits; None and non-finite as 'n/a'."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    v = float(value)
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:.{digits}g}"
    return f"{v:.{digits - 1}e}"


def fmt_shape(shape: Any) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def json_script(data: Any) -> Markup:
    """JSON safe inside <script type="application/json">: no '<', '>' or '&' can end it."""
    # The same encoder as --json, so the page and the file can never disagree.
    text = dumps(data, indent=None).rstrip("\n")
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def fmt_sci(value: Any) -> str:
    """A small error or tolerance: 3e-07 style, 'n/a' for None."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return "0" if value == 0 else f"{float(value):.1e}"


def fmt_pct(value: Any) -> str:
    return "n/a" if value is None else f"{100.0 * float(value):.1f}%"


def memory_rows(la: LayerAnalysis, limit: int = 8) -> list[dict[str, Any]]:
    """The units with the longest memory (probe estimate if present, else at rest)."""
    t = la.timescales
    if t is None:
        return []
    b_f = t.bias
    key = t.probe_keep if t.probe_keep is not None else t.resting_keep
    order = sorted(range(len(key)), key=lambda j: (-key[j], j))[:limit]
    return [
        {
            "unit": j,
            "bias": None if b_f is None else float(b_f[j]),
            "f": t.resting_keep[j],
            "tau": t.resting_tau[j],
            "pf": None if t.probe_keep is None else t.probe_keep[j],
            "ptau": None if t.probe_tau is None else t.probe_tau[j],
        }
        for j in order
    ]


def unit_cards(la: LayerAnalysis) -> list[dict[str, Any]]:
    """Per unit of the ablation's top list: its gate biases, the probe steps where |h| is
    largest (the shown sequence), and its largest incoming input weights by feature."""
    if la.units is None:
        return []
    cell = la.weights.cell
    names = [f.name for f in la.features] if la.features else None
    a = la.activity
    cards = []
    for e in la.units.units:
        j = e.unit
        gate_unit = j if cell.P is None else None  # a projected output is not one unit
        biases = []
        if gate_unit is not None:
            for g in cell.gates:
                b = g.bias
                if b is not None:
                    biases.append((g.gate, float(b[gate_unit])))
        active: list[int] = []
        if a is not None and j < a.h.shape[1]:
            col = np.abs(np.asarray(a.h[:, j], np.float64))
            active = [int(t) for t in np.argsort(-col, kind="stable")[:3]]
        incoming: list[tuple[str, float]] = []
        if gate_unit is not None and la.weights.reads_input:
            per = np.sqrt(sum(np.asarray(g.W[:, gate_unit], np.float64) ** 2 for g in cell.gates))
            order = np.argsort(-per, kind="stable")[:3]
            incoming = [
                (names[k] if names and k < len(names) else f"x{k}", float(per[k])) for k in order
            ]
        cards.append({"effect": e, "biases": biases, "active": active, "incoming": incoming})
    return cards


def cell_kinds(models: Any) -> str:
    """The kinds of the analysed layers, for labels: "LSTM", "GRU" or "LSTM and GRU"."""
    kinds = sorted({la.weights.cell_kind for m in models for la in m.layers}, reverse=True)
    return " and ".join(kinds) or "LSTM"


FRAMEWORKS = ("Keras", "PyTorch", "ONNX")
"""The frameworks whose layouts the page can explain, in the order it explains them."""


def frameworks_in(models: Any) -> dict[str, str]:
    """The frameworks of the analysed layers, each with its kinds as cell_kinds says them
    (``{"PyTorch": "LSTM and GRU"}``); a report without layers speaks of Keras LSTMs."""
    by: dict[str, set[str]] = {}
    for m in models:
        for la in m.layers:
            by.setdefault(la.weights.framework, set()).add(la.weights.cell_kind)
    if not by:
        return {"Keras": "LSTM"}
    order = sorted(by, key=lambda f: FRAMEWORKS.index(f) if f in FRAMEWORKS else len(FRAMEWORKS))
    return {f: " and ".join(sorted(by[f], reverse=True)) for f in order}


def layout_title(models: Any) -> str:
    """The title of the page's layout explainer: "How Keras stores an LSTM", "How Keras and
    PyTorch store LSTMs and GRUs"."""
    by = frameworks_in(models)
    names = list(by)
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    kinds = {k for v in by.values() for k in v.split(" and ")}
    kind = kinds.pop() if len(kinds) == 1 else None
    if len(names) == 1:
        what = {"LSTM": "an LSTM", "GRU": "a GRU"}.get(kind or "", "LSTMs and GRUs")
        return f"How {who} stores {what}"
    return f"How {who} store {kind + 's' if kind else 'LSTMs and GRUs'}"


def fmt_px(value: float, digits: int = 1) -> str:
    """A coordinate in an SVG: at most ``digits`` decimals, no trailing zeros."""
    text = f"{float(value):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_points(points: Any) -> str:
    """An SVG points list: ``x,y x,y``."""
    return " ".join(f"{fmt_px(x)},{fmt_px(y)}" for x, y in points)


def fmt_dotpath(points: Any) -> str:
    """Path data of a zero-length stroke at every point: round caps draw them as dots."""
    return "".join(f"M{fmt_px(x)} {fmt_px(y)}h0" for x, y in points)


def breakable(value: Any) -> Markup:
    """A name that may wrap after ``/``, ``_`` and ``.`` (a <wbr> there), escaped: long file
    and layer names break at their joints on a phone, never one character per line."""
    text = str(escape(str(value)))
    return Markup(re.sub(r"([/_.])(?=.)", r"\1<wbr>", text))


@lru_cache(maxsize=1)
def script_hashes() -> tuple[str, ...]:
    """The CSP hashes (base64 sha256) of the inline scripts our templates write, as rendered."""
    rendered = env.get_template("_sort_script.html.jinja2").render()
    bodies = re.findall(r"<script>(.*?)</script>", rendered, flags=re.DOTALL)
    return tuple(
        sorted(
            base64.b64encode(hashlib.sha256(b.encode("utf-8")).digest()).decode() for b in bodies
        )
    )


def content_security_policy() -> str:
    """The policy every page carries: nothing loads, only our own scripts run (no handlers)."""
    scripts = " ".join(f"'sha256-{h}'" for h in script_hashes())
    return f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {scripts}"


env.filters["num"] = fmt_num
env.filters["breakable"] = breakable
env.filters["px"] = fmt_px
env.filters["points"] = fmt_points
env.filters["dotpath"] = fmt_dotpath
env.globals["cell_kinds"] = cell_kinds
env.globals["frameworks_in"] = frameworks_in
env.globals["layout_title"] = layout_title
env.filters["sci"] = fmt_sci
env.filters["pct"] = fmt_pct
env.globals["memory_rows"] = memory_rows
env.globals["unit_cards"] = unit_cards
env.filters["shape"] = fmt_shape
env.globals["GATE_NAMES"] = GATE_NAMES
env.globals["SAVED_NEEDS_MODEL"] = NEEDS_MODEL
env.globals["equations"] = equations
env.globals["gates_of"] = gates_of
env.globals["ACTIVATION_FORMULAS"] = ACTIVATION_FORMULAS
env.globals["content_security_policy"] = content_security_policy


def render_html(
    report: ReportData,
    figures: Mapping[str, LayerFigures],
    data: Mapping[str, Any],
) -> str:
    """Render the page. figures are keyed by layer anchor; data is the embedded JSON."""
    template = env.get_template("report.html.jinja2")
    return template.render(report=report, figures=figures, data_json=json_script(data))
