"""The comparisons of ``compare:`` (and ``build --baseline``) of which a side is a report's
JSON written earlier: each side's numbers, from the model analysed now or the saved JSON
(output/saved_report.py), compared by output/baseline.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lstm_report.config.schema import Config
from lstm_report.model.analyses import ModelAnalysis
from lstm_report.model.report import SavedComparison
from lstm_report.output.baseline import Side, compare_saved
from lstm_report.output.report_json import finding_json, model_json
from lstm_report.output.saved_report import SavedReport, load_saved_report, saved_model


def saved_comparisons(cfg: Config, models: Sequence[ModelAnalysis]) -> tuple[SavedComparison, ...]:
    """The comparisons of which a side is a report's JSON written earlier: numbers only."""
    current = {m.name: m for m in models}
    read: dict[Path, SavedReport] = {}
    out = []
    for c in cfg.compare:
        if not c.saved:
            continue
        where = c.where or f"compare[{c.index}]"
        sides: list[Side] = []
        sources: list[tuple[str, str]] = []
        for role, label, path in (
            ("baseline", c.baseline, c.saved_baseline),
            ("candidate", c.candidate, c.saved_candidate),
        ):
            if path is None:
                m = current[label]
                found = [finding_json(f) for f in m.findings]
                sides.append((label, model_json(m), found))
                continue
            if path not in read:
                read[path] = load_saved_report(path, where)
            saved = read[path]
            other = c.candidate if role == "baseline" else c.baseline
            want = other if other in current else (sides[0][1]["name"] if sides else None)
            sides.append((label, saved_model(saved, want, where), saved.findings))
            made = f", generated {saved.generated}" if saved.generated else ""
            by = f" by {saved.generator}" if saved.generator else ""
            sources.append((role, f"{label}{made}{by}"))
        roles = tuple(
            r
            for r, p in (("baseline", c.saved_baseline), ("candidate", c.saved_candidate))
            if p is not None
        )
        out.append(compare_saved(sides[0], sides[1], c.index, roles, sources))
    return tuple(out)
