"""A short Markdown summary of a report, for a pull-request comment or $GITHUB_STEP_SUMMARY.

Built from the report's data (the numbers are those of the page and of ``--json``), with
no HTML in it: every character of user text that Markdown could read as markup
(``<``, ``&``, ``*``, ``|``, ...) is backslash-escaped.
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lstm_report.figures.page import Figures
from lstm_report.model.conv_layers import ConvGateStats
from lstm_report.model.report import ReportData
from lstm_report.output.numbers import Numbers, finite, numbers
from lstm_report.templating import fmt_num

MAX_FINDINGS = 10
"""Findings listed one by one; the rest are counted (the report lists them all)."""

_SPECIAL = re.compile(r"([\\`*_\[\]<>#|&~])")
"""What Markdown (CommonMark and GitHub's) reads as markup anywhere in a line; with ``[``
and ``]`` escaped no link can form, so ``(``, ``)`` and ``!`` stay as they are."""


def escape(text: str) -> str:
    """User text as literal Markdown on one line: punctuation Markdown reads is escaped."""
    flat = _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
    # At the start of a line or list item these begin a list, a heading or a rule.
    if flat[:1] in ("-", "+", "="):
        return "\\" + flat
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", flat)


def num(value: Any) -> str:
    """A number as the page shows it (4 significant digits; ``n/a`` for none)."""
    return fmt_num(value)


def link(target: Path, start: Path) -> str:
    """The relative URL of ``target`` from the folder of ``start``."""
    try:
        rel = os.path.relpath(os.path.abspath(target), os.path.dirname(os.path.abspath(start)))
    except ValueError:  # another drive (Windows): the file name is the best guess
        rel = target.name
    return quote(rel.replace(os.sep, "/"))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def headline_rows(n: Numbers, cells: str = "LSTM") -> list[tuple[str, str]]:
    """The table of headline numbers: (what, value) in Markdown; ``cells`` names the layers
    (``LSTM``, or ``Recurrent`` where a GRU is among them)."""
    rows = [
        ("Models", f"{n.models:,}"),
        (f"{cells} layers", f"{n.layers:,}"),
        (f"{cells} parameters", f"{n.lstm_params:,}"),
        (
            "Findings",
            f"{n.findings:,} ({_plural(n.errors, 'error')}, {_plural(n.warnings, 'warning')})",
        ),
        ("Largest spectral radius ρ(U_g)", num(n.largest_radius)),
    ]
    if n.top_input is not None:
        t = n.top_input
        how = "occlusion on the probe" if t.measured else "weight norm, a hint"
        rows.append(
            ("Top input", f"{escape(t.feature)} in {escape(t.model)}: {num(t.value)} ({how})")
        )
    if n.memory_tau is not None:
        where = "on the probe" if n.memory_on_probe else "at rest"
        rows.append(("Median memory timescale τ", f"{num(n.memory_tau)} steps ({where})"))
    if n.change is not None:
        c = n.change
        rows.append(
            (
                "Largest change vs baseline",
                f"{num(c.value)} ({c.matrix}\\_{escape(c.gate)} of {escape(c.layer)}, "
                f"{escape(c.baseline)} → {escape(c.candidate)})",
            )
        )
    return rows


def summary(report: ReportData, html_path: Path | None, markdown_path: Path | None) -> str:
    """The Markdown summary of a report, linking to ``html_path`` if given."""
    n = numbers(report)
    title = report.title or "LSTM weight report"
    out = [f"### {escape(title)}", ""]
    meta = f"Generated {escape(report.generated)} by {escape(f'lstm-report {report.version}')}"
    if html_path is not None and markdown_path is not None:
        meta = f"[Full report]({link(html_path, markdown_path)}) · {meta}"
    out += [meta + ".", ""]
    if report.takeaways:
        out += ["**Takeaways**", ""]
        out += [f"- {escape(t.text)}" for t in report.takeaways]
        out.append("")
    out += finding_lines(report, n)
    out += saved_lines(report)
    out += ["| Headline | Value |", "| --- | --- |"]
    kinds = set().union(*(m.kinds for m in report.models))
    cells = "LSTM" if kinds <= {"LSTM"} else "Recurrent"  # a GRU, a ConvLSTM is no LSTM
    out += [f"| {what} | {value} |" for what, value in headline_rows(n, cells)]
    out += conv_lines(report)
    return "\n".join(out) + "\n"


MAX_FILTERS = 8
"""A ConvLSTM's filters listed one by one; with more, their median, least and largest τ."""


def conv_lines(report: ReportData) -> list[str]:
    """Each ConvLSTM layer: its shape, the page's per-gate statistics of K_g, R_g and b_g,
    and the forget gate at rest per filter with its timescale (as on the page)."""
    out: list[str] = []
    for m in report.models:
        for c in m.conv_layers:
            w = c.layer
            out += [
                "",
                f"**{escape(m.name)} › {escape(w.name)}**: {w.kind}, "
                f"{_plural(w.filters, 'filter')}, kernel {'×'.join(map(str, w.kernel_size))}, "
                f"{_plural(w.in_channels, 'input channel')}, {_plural(w.params, 'parameter')}.",
                "",
                "| Gate | mean K_g | std K_g | ‖K_g‖ | mean R_g | std R_g | ‖R_g‖ | mean b_g "
                "| std b_g |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            out += [_gate_row(g) for g in c.gates]
            out += ["", _forget_line(c.forget_at_rest, c.timescales)]
    if not out:
        return []
    head = "**ConvLSTM layers** (statistics over every entry of each array; ‖·‖ the Frobenius norm)"
    return ["", head, *out]


def _gate_row(g: ConvGateStats) -> str:
    """One gate's row: mean, std and norm of K_g and R_g, mean and std of b_g."""
    b = g.b
    cells: list[float | None] = [g.K.mean, g.K.std, g.K.norm, g.R.mean, g.R.std, g.R.norm]
    cells += [None, None] if b is None else [b.mean, b.std]
    return f"| {escape(g.gate)} | " + " | ".join(num(v) for v in cells) + " |"


def _forget_line(forget: Any, taus: Any) -> str:
    """The forget gate at rest σ(b_f) and τ = 1/(1 − σ(b_f)) of each filter, or a summary."""
    if len(forget) <= MAX_FILTERS:
        return (
            "Forget gate at rest σ(b_f), per filter: "
            + ", ".join(num(float(f)) for f in forget)
            + "; timescale τ = 1/(1 − σ(b_f)): "
            + ", ".join(num(float(t)) for t in taus)
            + " steps."
        )
    finite_taus = sorted(float(t) for t in taus if finite(float(t)) is not None)
    if not finite_taus:
        return f"Forget gate at rest σ(b_f) = 1 for all {len(taus):,} filters: no decay."
    return (
        f"Forget-gate timescale at rest τ = 1/(1 − σ(b_f)) over {len(taus):,} filters: "
        f"median {num(statistics.median(finite_taus))} steps, least {num(finite_taus[0])}, "
        f"largest {num(finite_taus[-1])}"
        + (
            f" ({len(taus) - len(finite_taus):,} never decay)."
            if len(finite_taus) < len(taus)
            else "."
        )
    )


def finding_lines(report: ReportData, n: Numbers) -> list[str]:
    """The findings, counted by severity; the first MAX_FINDINGS one line each."""
    findings = report.findings
    if not findings:
        return ["**Findings**: none.", ""]
    out = [
        f"**Findings** ({_plural(n.errors, 'error')}, {_plural(n.warnings, 'warning')}, "
        f"{len(findings) - n.errors - n.warnings:,} info)",
        "",
    ]
    for f in findings[:MAX_FINDINGS]:
        where = " › ".join(escape(p) for p in (f.model, f.layer) if p)
        out.append(f"- **{f.severity}** `{f.code}` {where}: {escape(f.message)}")
    if len(findings) > MAX_FINDINGS:
        out.append(f"- … and {len(findings) - MAX_FINDINGS:,} more in the report")
    out.append("")
    return out


def saved_lines(report: ReportData) -> list[str]:
    """One line per comparison with a saved report: findings new and resolved, and the
    spectral radius that moved most (output/baseline.py)."""
    out: list[str] = []
    for c in report.saved_comparisons:
        new, resolved = len(c.new_findings), len(c.resolved_findings)
        line = (
            f"- {escape(c.baseline)} → {escape(c.candidate)}: "
            f"{_plural(new, 'new finding')}, {resolved:,} resolved"
        )
        radii = [
            (abs(delta), r, la)
            for la in c.layers
            for r in la.rows
            if r.key.endswith(".U.spectral_radius")
            for delta in [finite(r.delta)]
            if delta is not None
        ]
        if radii:
            _, r, la = max(radii, key=lambda t: t[0])
            line += (
                f"; largest change of a spectral radius: {escape(r.label)} of "
                f"{escape(la.name)} {num(r.baseline)} → {num(r.candidate)}"
            )
        out.append(line + ".")
    return ["**Compared with a saved report**", "", *out, ""] if out else []


class MarkdownSummary:
    """The Writer of the Markdown summary (``--markdown``, the step summary)."""

    kind = "markdown"
    suffix = ".md"

    def __init__(self, html_path: Path | None = None, markdown_path: Path | None = None):
        self.html_path = html_path
        """The page the summary links to (with markdown_path: where the link starts)."""
        self.markdown_path = markdown_path

    def write(self, report: ReportData, figures: Figures) -> str:
        return summary(report, self.html_path, self.markdown_path)


def batch_summary(rows: Sequence[tuple[str, str, Numbers | None]]) -> str:
    """The Markdown summary of a batch: one row per run (name, status, its Numbers or None)."""
    out = [
        "### LSTM weight reports",
        "",
        "| Run | Status | Findings | Largest spectral radius ρ(U_g) | Median memory τ |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, status, n in rows:
        if n is None:
            out.append(f"| {escape(name)} | {escape(status)} | n/a | n/a | n/a |")
            continue
        found = f"{n.findings:,} ({n.errors:,} errors, {n.warnings:,} warnings)"
        out.append(
            f"| {escape(name)} | {escape(status)} | {found} | {num(n.largest_radius)} | "
            f"{num(n.memory_tau)} |"
        )
    return "\n".join(out) + "\n"
