"""Everything one report shows: takeaways, headlines, and the report data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lstm_report.model.analyses import Finding, ModelAnalysis, Severity
from lstm_report.model.training import Comparison

if TYPE_CHECKING:
    from lstm_report.output.baseline import SavedComparison


@dataclass(frozen=True)
class Takeaway:
    """One plain sentence at the top of the page, computed, linked to its evidence."""

    code: str
    """What it is about: ``inputs``, ``memory``, ``saturation``, ``verified``, ``learned``."""
    model: str | None
    """None where the sentence is about the whole report (e.g. a comparison)."""
    layer: str | None
    text: str
    anchor: str | None = None


@dataclass(frozen=True)
class Headline:
    """One line of the summary: what stands out, and where to look."""

    severity: Severity
    text: str
    anchor: str | None = None


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything the page and the JSON are rendered from."""

    title: str
    generated: str
    version: str
    models: tuple[ModelAnalysis, ...]
    headlines: tuple[Headline, ...] = field(default_factory=tuple)
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    comparisons: tuple[Comparison, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    """What the run could not do as asked, one line each (the page shows it among notes)."""
    takeaways: tuple[Takeaway, ...] = field(default_factory=tuple)
    saved_comparisons: tuple[SavedComparison, ...] = field(default_factory=tuple)
    """Comparisons with a report's JSON written earlier (output/baseline.py): numbers only."""
