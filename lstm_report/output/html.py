"""ReportData + figures -> one self-contained HTML page (the page's template helpers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from markupsafe import Markup

from lstm_report.cells.activations import ACTIVATION_FORMULAS
from lstm_report.cells.base import gates_of
from lstm_report.cells.kinds import equations
from lstm_report.figures.page import Figures
from lstm_report.model.analyses import LayerAnalysis
from lstm_report.model.layers import GATE_NAMES
from lstm_report.model.report import NEEDS_MODEL, ReportData
from lstm_report.output.report_json import dumps, report_json
from lstm_report.templating import env


def json_script(data: Any) -> Markup:
    """JSON safe inside <script type="application/json">: no '<', '>' or '&' can end it."""
    # The same encoder as --json, so the page and the file can never disagree.
    text = dumps(data, indent=None).rstrip("\n")
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


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
    """The kinds of the analysed layers, for labels: "LSTM", "GRU", "LSTM and GRU", one
    ConvLSTM kind ("ConvLSTM2D"), else "recurrent" (a ConvLSTM among others)."""
    kinds = set().union(*(m.kinds for m in models))
    if kinds <= {"LSTM", "GRU"}:
        return " and ".join(sorted(kinds, reverse=True)) or "LSTM"
    return next(iter(kinds)) if len(kinds) == 1 else "recurrent"


def explains_layout(models: Any) -> bool:
    """Whether the page explains how the frameworks store LSTMs and GRUs: where it has one,
    or nothing else (a ConvLSTM section explains its own kernels)."""
    return any(m.layers for m in models) or not any(m.conv_layers for m in models)


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


env.globals.update(
    cell_kinds=cell_kinds,
    explains_layout=explains_layout,
    frameworks_in=frameworks_in,
    layout_title=layout_title,
    memory_rows=memory_rows,
    unit_cards=unit_cards,
    GATE_NAMES=GATE_NAMES,
    SAVED_NEEDS_MODEL=NEEDS_MODEL,
    equations=equations,
    gates_of=gates_of,
    ACTIVATION_FORMULAS=ACTIVATION_FORMULAS,
)


def render_html(report: ReportData, figures: Figures, data: Mapping[str, Any] | None = None) -> str:
    """Render the page; ``data`` is the embedded JSON (report_json(report) if not given)."""
    template = env.get_template("report.html.jinja2")
    embedded = report_json(report) if data is None else data
    return template.render(report=report, figures=figures, data_json=json_script(embedded))


class HtmlPage:
    """The Writer of the self-contained HTML page (``-o``). ``data`` is report_json(report)
    where the caller has it already (the JSON writer writes the same data)."""

    kind = "html"
    suffix = ".html"

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self.data = data

    def write(self, report: ReportData, figures: Figures) -> str:
        return render_html(report, figures, self.data)
