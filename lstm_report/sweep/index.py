"""A batch's index page: the site's index with the sweep's columns, failures and chart."""

from __future__ import annotations

import os
from collections.abc import Sequence

from lstm_report.output.numbers import Numbers
from lstm_report.site.index import (
    IndexBar,
    IndexChart,
    SweepColumns,
    display,
    folder_label,
    render_index,
)
from lstm_report.sweep.manifest import IndexRow
from lstm_report.sweep.plan import Outcome

CHART_METRICS = ("memory", "change", "importance", "findings")
"""What the index's chart can show across runs, in the order ``auto`` tries them."""

CHART_LABELS = {
    "memory": "Median memory timescale τ (steps)",
    "change": "Largest change vs baseline (RMS of ΔA / the gate's RMS)",
    "importance": "Top input's importance",
    "findings": "Findings",
}


def chart_value(n: Numbers, metric: str) -> float | None:
    """One run's value of a CHART_METRICS metric, or None when it has none."""
    if metric == "memory":
        return n.memory_tau
    if metric == "change":
        return n.change.value if n.change is not None else None
    if metric == "importance":
        return n.top_input.value if n.top_input is not None else None
    return float(n.findings)


def chart(rows: Sequence[IndexRow], metric: str = "auto") -> IndexChart | None:
    """Bars of one headline across the runs: the first of CHART_METRICS that any run has."""
    metrics = CHART_METRICS if metric == "auto" else (metric,)
    for m in metrics:
        values = [(r, chart_value(r.numbers, m)) for r in rows]
        present = [(r, v) for r, v in values if v is not None]
        if present:
            top = max(v for _, v in present)
            bars = tuple(
                IndexBar(
                    r.entry.href.removeprefix("reports/").removesuffix(".html"),
                    r.entry.href,
                    v,
                    round(100 * v / top, 1) if top > 0 else 0.0,
                )
                for r, v in present
            )
            return IndexChart(CHART_LABELS[m], bars, top)
    return None


def _shown(folder: str) -> str:
    """A folder as the index names it: relative to the current one when below it."""
    rel = os.path.relpath(folder) if folder else "."
    return folder if rel == ".." or rel.startswith(".." + os.sep) else rel


def batch_index(
    outcomes: Sequence[Outcome],
    rows: Sequence[IndexRow],
    generated: str,
    sources: Sequence[str],
    chart_metric: str = "auto",
) -> str:
    """The site's index page, with the sweep's columns, failures and chart."""
    absolute = [os.path.abspath(s) for s in sources]
    common = os.path.commonpath([os.path.dirname(a) for a in absolute]) if absolute else "."
    sweep = SweepColumns(
        numbers={r.entry.href: r.numbers for r in rows},
        failed=tuple((o.source, o.message) for o in outcomes if o.status == "failed"),
        chart=chart(rows, chart_metric),
    )
    source = folder_label(display(_shown(common)))
    return render_index([r.entry for r in rows], generated, source, sweep)
