"""Everything one report shows: takeaways, headlines, comparisons with a saved report, and
the report data."""

from __future__ import annotations

from dataclasses import dataclass, field

from lstm_report.model.analyses import Finding, ModelAnalysis, Severity
from lstm_report.model.training import Comparison


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


# -- comparisons with a saved report (output/baseline.py) --------------------------------

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
    """One layer matched by name and direction in both sides, with its rows."""

    name: str
    direction: str
    label: str
    rows: tuple[SavedRow, ...]
    anchor: str


@dataclass(frozen=True)
class SavedFinding:
    """A finding of one side, as its JSON states it."""

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
