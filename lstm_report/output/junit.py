"""``--junit PATH``: a report's findings as JUnit XML, so that any CI shows them as tests.

One test suite per model, one test case per (model, layer, check; a ConvLSTM has one,
non-finite weights): it fails (``<failure>``)
where the check found a warning, errors (``<error>``) where it found an error, is skipped
where the check could not run (no probe, not verified), and passes otherwise; info findings
are its ``<system-out>``. The shape is the JUnit XML that pytest writes (``xunit2``) and that
GitHub, GitLab and Jenkins read. Built from the report's data, like the Markdown summary.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from lstm_report.figures.page import Figures
from lstm_report.model.analyses import Finding, LayerAnalysis
from lstm_report.model.report import ReportData
from lstm_report.output.numbers import finite

CHECKS: tuple[tuple[str, str], ...] = (
    ("nonfinite-weights", "every weight is finite"),
    ("large-spectral-radius", "no recurrent matrix U_g has a spectral radius above the limit"),
    ("dead-units", "no unit has near-zero incoming weights"),
    ("duplicate-units", "no two units have nearly identical incoming weights"),
    ("verification-mismatch", "the numpy replay reproduces the framework's output"),
    ("saturated-units", "no gate is saturated on most probe steps"),
)
"""The checks every layer is put through (analysis/findings.py), in the order listed."""

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot carry at all, not even escaped (names come from hostile files)."""


def xml_text(text: Any) -> str:
    """``text`` as XML can carry it: characters it cannot are written as ``\\xNN``."""
    return _NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def _skip_reason(code: str, la: LayerAnalysis, codes: set[str]) -> str | None:
    v = la.verification
    if code == "verification-mismatch" and v is None:
        return "not verified (the layer was not replayed against its framework)"
    if code == "verification-mismatch" and v is not None and finite(v.max_abs_error) is None:
        return "verification failed to run: " + str(v.error or "")
    if code == "saturated-units" and (la.activity is None or not la.activity.gates):
        return "no probe data: saturation is measured on a probe"
    if code in ("dead-units", "duplicate-units") and "nonfinite-weights" in codes:
        return "not checked: the layer has non-finite weights"
    return None


def _case(
    suite: ET.Element, classname: str, code: str, what: str, hits: Sequence[Finding]
) -> str | None:
    """One test case: its failure or error where a finding is a warning or an error; the
    kind it counts as (``errors``, ``failures``), or None where it did not fail."""
    case = ET.SubElement(
        suite, "testcase", classname=xml_text(classname), name=xml_text(code), time="0"
    )
    bad = [f for f in hits if f.severity in ("error", "warning")]
    if bad:
        kind = "error" if any(f.severity == "error" for f in bad) else "failure"
        element = ET.SubElement(case, kind, type=xml_text(code), message=xml_text(bad[0].message))
        element.text = xml_text(
            "\n".join(f"{f.severity}: {f.message}" for f in bad) + f"\n(expected: {what})"
        )
        return "errors" if kind == "error" else "failures"
    return None


def _layer_cases(
    suite: ET.Element, model: str, la: LayerAnalysis, findings: Sequence[Finding]
) -> dict[str, int]:
    """Every check of one layer as a test case; the counts of tests, failures, errors and
    skipped."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    label = la.weights.label  # as findings name the layer
    mine = [f for f in findings if f.model == model and f.layer == label]
    codes = {f.code for f in mine}
    extra = [(c, c) for c in dict.fromkeys(f.code for f in mine) if c not in dict(CHECKS)]
    for code, what in (*CHECKS, *extra):
        counts["tests"] += 1
        hits = [f for f in mine if f.code == code]
        failed = _case(suite, f"{model}.{label}", code, what, hits)
        if failed is not None:
            counts[failed] += 1
            continue
        case = suite[-1]
        reason = _skip_reason(code, la, codes)
        if reason is not None:
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", type="skipped", message=xml_text(reason))
        if hits:  # info findings: passed, with a note
            out = ET.SubElement(case, "system-out")
            out.text = xml_text("\n".join(f"info: {f.message}" for f in hits))
    return counts


def junit_xml(report: ReportData) -> str:
    """The JUnit XML text of a report."""
    root = ET.Element("testsuites", name=xml_text(report.title or "lstm-report"))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for m in report.models:
        suite = ET.SubElement(root, "testsuite", name=xml_text(m.name))
        counts = dict.fromkeys(totals, 0)
        for c in m.conv_layers:  # a ConvLSTM is checked for non-finite weights only
            hits = [f for f in m.conv_findings if f.layer == c.layer.name]
            code, what = CHECKS[0]
            failed = _case(suite, f"{m.name}.{c.layer.name}", code, what, hits)
            counts["tests"] += 1
            if failed is not None:
                counts[failed] += 1
        for la in m.layers:
            for key, value in _layer_cases(suite, m.name, la, report.findings).items():
                counts[key] += value
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", "0")
    for key in ("tests", "failures", "errors"):
        root.set(key, str(totals[key]))
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


class JunitXml:
    """The Writer of the findings as JUnit XML (``--junit``)."""

    kind = "junit"
    suffix = ".xml"

    def write(self, report: ReportData, figures: Figures) -> str:
        return junit_xml(report)
