"""A batch's work unit in a worker: one whole report, built in a temporary folder."""

from __future__ import annotations

import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from lstm_report.model.report import ReportData
from lstm_report.output.numbers import numbers
from lstm_report.output.report_json import plain
from lstm_report.pipeline import build_report
from lstm_report.series.store import Cache
from lstm_report.series.units import ONE_AT_A_TIME, same_version, unit_error
from lstm_report.site.index import entry
from lstm_report.sweep.manifest import IndexRow
from lstm_report.sweep.plan import ReportUnit


@dataclass(frozen=True)
class UnitResult:
    """What a worker sends back: the texts to write (suffix, text), or why it failed."""

    name: str
    texts: tuple[tuple[str, str], ...] = ()
    row: IndexRow | None = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0


def build_unit(unit: ReportUnit) -> UnitResult:
    """Build one report in a temporary folder and return its texts; never raises."""
    start = time.perf_counter()
    with ONE_AT_A_TIME:
        try:
            same_version(unit.version)
            with (
                tempfile.TemporaryDirectory(prefix="lstm-report-batch-") as tmp,
                warnings.catch_warnings(),
                threadpool_limits(limits=1, user_api="blas"),  # the runs are the parallelism
            ):
                warnings.simplefilter("ignore")
                texts, data, report = _build_texts(unit, Path(tmp) / unit.name)
            n = numbers(report)
            row = IndexRow(entry(f"reports/{unit.name}.html", unit.source, data, n), n)
            return UnitResult(unit.name, texts, row, seconds=time.perf_counter() - start)
        except Exception as exc:  # isolated: one broken run never stops the others
            return UnitResult(
                unit.name,
                error=unit_error(exc),
                traceback=traceback.format_exc(),
                seconds=time.perf_counter() - start,
            )


def _build_texts(
    unit: ReportUnit, base: Path
) -> tuple[tuple[tuple[str, str], ...], Any, ReportData]:
    """The report's files (suffix, text) built at ``base``, its JSON data, and the report."""
    options = unit.options
    outputs = {".html": base.with_suffix(".html"), ".md": base.with_suffix(".md")}
    if options.json:
        outputs[".json"] = base.with_suffix(".json")
    result = build_report(
        unit.config,
        cache=Cache(entries=dict(unit.points)),
        output=outputs[".html"],
        json_path=outputs.get(".json"),
        markdown=outputs[".md"],
        unsafe=options.unsafe,
        allow_external_data=options.allow_external_data,
        verify=options.verify,
        reader=options.reader,
        generated=unit.generated,
    )
    texts = tuple((suffix, path.read_text(encoding="utf-8")) for suffix, path in outputs.items())
    return texts, plain(result.data), result.report
