"""Issue 12: the Markdown summary (`build --markdown`), checked against the JSON numbers."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report import build_report
from lstm_report.cli import main
from lstm_report.output.markdown import escape
from lstm_report.templating import fmt_num
from tests.conftest import _randomise, write_config
from tests.helpers import FIXTURES


@pytest.fixture(scope="module")
def summary(
    keras: Any, simple_model: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any], Path]:
    d = tmp_path_factory.mktemp("markdown")
    other = keras.models.clone_model(simple_model.model)
    _randomise(other, seed=7)
    other.save(d / "other.keras")
    np.save(d / "probe.npy", np.random.default_rng(0).normal(size=(6, 7, 5)).astype("float32"))
    cfg = write_config(
        d,
        'title: "Run <script>x</script> | *7* & co"\n'
        "checks: {dead_unit_norm: 1000000000.0}\n"
        "models:\n"
        f"  - {{path: {simple_model.path}, name: before}}\n"
        "  - {path: other.keras, name: after_run, probe: probe.npy,"
        " feature_names: [open, high, low, close, volume]}\n"
        "compare: [{baseline: before, candidate: after_run}]\n",
    )
    (d / "md").mkdir()
    result = build_report(
        cfg, output=d / "page.html", json_path=d / "page.json", markdown=d / "md" / "summary.md"
    )
    assert result.markdown_path == d / "md" / "summary.md"
    return (d / "md" / "summary.md").read_text(), json.loads((d / "page.json").read_text()), d


def _table(md: str) -> dict[str, str]:
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    return dict(tuple(c.strip() for c in row.strip("|").split(" | ", 1)) for row in rows[1:])


def test_summary_numbers_are_the_json_numbers(summary: tuple[str, dict[str, Any], Path]) -> None:
    md, data, _ = summary
    table = _table(md)
    models = data["models"]
    assert table["Models"] == "2"
    assert table["LSTM layers"] == str(sum(len(m["layers"]) for m in models))
    assert table["LSTM parameters"] == f"{sum(m['lstm_params'] for m in models):,}"
    radii = [
        g["U"]["spectral_radius"]
        for m in models
        for la in m["layers"]
        for g in la["spectra"].values()
    ]
    assert table["Largest spectral radius ρ(U_g)"] == fmt_num(max(radii))
    findings = data["findings"]
    errors = sum(f["severity"] == "error" for f in findings)
    warnings = sum(f["severity"] == "warning" for f in findings)
    assert warnings > 0  # every unit below the dead-unit norm
    assert table["Findings"].startswith(f"{len(findings)} ({errors} error")
    # measured importance of the model with the probe (the baseline speaks through the comparison)
    after = next(m for m in models if m["name"] == "after_run")
    best = max(after["input_importance"]["features"], key=lambda f: f["value"])
    assert table["Top input"] == (
        f"{best['name']} in after\\_run: {fmt_num(best['value'])} (occlusion on the probe)"
    )
    taus = [t for la in after["layers"] for t in la["memory"]["probe_tau"] if t is not None]
    assert (
        table["Median memory timescale τ"]
        == f"{fmt_num(statistics.median(taus))} steps (on the probe)"
    )
    # and the memory takeaway of that (single-layer) model states the same median
    memory = next(t["text"] for t in data["takeaways"] if t["code"] == "memory")
    assert f"{statistics.median(taus):.3g} steps" in memory
    changes = [
        (d["change"], g, mat)
        for la in data["comparisons"][0]["layers"]
        for g, mats in la["gates"].items()
        for mat, d in mats.items()
        if d is not None and d["change"] is not None
    ]
    value, gate, mat = max(changes)
    assert table["Largest change vs baseline"] == (
        f"{fmt_num(value)} ({mat}\\_{gate} of lstm, before → after\\_run)"
    )


def test_summary_lists_takeaways_findings_and_links_the_page(
    summary: tuple[str, dict[str, Any], Path],
) -> None:
    md, data, _ = summary
    lines = md.splitlines()
    assert lines[0] == "### Run \\<script\\>x\\</script\\> \\| \\*7\\* \\& co"
    assert lines[2].startswith("[Full report](../page.html) · Generated ")
    for t in data["takeaways"]:
        assert f"- {escape(t['text'])}" in lines
    for f in data["findings"]:
        assert any(line.startswith(f"- **{f['severity']}** `{f['code']}` ") for line in lines)


def test_summary_has_no_html(summary: tuple[str, dict[str, Any], Path]) -> None:
    md, _, _ = summary
    # every <, > and & is escaped: nothing a Markdown renderer would pass through as HTML
    assert not re.search(r"(?<!\\)[<>&]", md)
    assert "<" not in md.replace("\\<", "")


def test_escape() -> None:
    assert escape("a <b> & c_d | [x](y)") == "a \\<b\\> \\& c\\_d \\| \\[x\\](y)"
    assert escape("- item\nnext") == "\\- item next"
    assert escape("12. not a list") == "12\\. not a list"


def test_cli_markdown(
    simple_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    md = tmp_path / "s.md"
    assert (
        main(
            ["build", str(simple_model.path), "-o", str(tmp_path / "r.html"), "--markdown", str(md)]
        )
        == 0
    )
    assert f"wrote {md}" in capsys.readouterr().err
    assert "[Full report](r.html)" in md.read_text()
    # an output never replaces an input
    assert (
        main(
            [
                "build",
                str(simple_model.path),
                "-o",
                str(tmp_path / "r.html"),
                "--markdown",
                str(simple_model.path),
                "-q",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "the Markdown summary is the same file as" in err and err.count("\n") == 1


def test_every_output_is_one_writer(simple_model: Any, tmp_path: Path) -> None:
    # Issue 22: HTML, JSON, Markdown and JUnit go through one Writer interface; each writes
    # from the report data what the build wrote (the page also needs the figures).
    from lstm_report.figures.page import Figures
    from lstm_report.output.writer import writers

    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\n")
    paths = [tmp_path / n for n in ("r.html", "r.json", "r.md", "r.xml")]
    result = build_report(
        cfg, output=paths[0], json_path=paths[1], markdown=paths[2], junit=paths[3]
    )
    chosen = writers(*paths, data=result.data)
    assert [(p, w.kind) for p, w in chosen] == list(
        zip(paths, ["html", "json", "markdown", "junit"])
    )
    for path, w in chosen[1:]:
        assert w.write(result.report, Figures()) == path.read_text(encoding="utf-8"), w.kind
    assert [w.kind for _, w in writers(paths[0])] == ["html"]


def test_a_gru_report_speaks_of_recurrent_layers(tmp_path: Path) -> None:
    """A GRU is no LSTM: the summary's table names the layers "Recurrent" (LSTM-only
    reports keep "LSTM layers", above)."""
    model = FIXTURES / "frameworks" / "onnx_gru_lbr1_bidirectional.onnx"
    md = tmp_path / "summary.md"
    build_report({"models": [{"path": str(model)}]}, output=tmp_path / "p.html", markdown=md)
    table = _table(md.read_text())
    assert "Recurrent layers" in table and "Recurrent parameters" in table
    assert "LSTM layers" not in table and "LSTM parameters" not in table
