"""The one interface every output format implements (as coverage.py's ``Reporter``): the
report and its figures in, the file's text out. Writing the files is fileio's job."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from lstm_report.figures.page import Figures
from lstm_report.model.report import ReportData
from lstm_report.output.html import HtmlPage
from lstm_report.output.junit import JunitXml
from lstm_report.output.markdown import MarkdownSummary
from lstm_report.output.report_json import JsonData


class Writer(Protocol):
    """One output format."""

    kind: str
    """What it writes: ``html``, ``json``, ``markdown`` or ``junit``."""
    suffix: str
    """The file suffix its files usually have (not enforced: the user names the file)."""

    def write(self, report: ReportData, figures: Figures) -> str:
        """The text of the file (figures are empty where the caller drew none)."""
        ...


def writers(
    html: Path,
    json: Path | None = None,
    markdown: Path | None = None,
    junit: Path | None = None,
    data: Mapping[str, Any] | None = None,
) -> list[tuple[Path, Writer]]:
    """The writers of one build, each with the file it writes; ``data`` is the report's
    JSON data where the caller has computed it (the page and --json share it)."""
    out: list[tuple[Path, Writer]] = [(html, HtmlPage(data))]
    if json is not None:
        out.append((json, JsonData(data)))
    if markdown is not None:
        out.append((markdown, MarkdownSummary(html, markdown)))
    if junit is not None:
        out.append((junit, JunitXml()))
    return out
