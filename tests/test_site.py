"""Issue 5: a static site built from real reports alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lstm_report import build_report
from lstm_report.cli import main
from lstm_report.errors import ConfigError
from lstm_report.site import build_site, report_data
from tests.conftest import write_config
from tests.test_end_to_end import parse


@pytest.fixture(scope="module")
def reports(
    simple_model: Any, complex_model: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    d = tmp_path_factory.mktemp("reports")
    (d / "run2").mkdir()
    cfg = write_config(
        d,
        f'title: "Run <1> & co"\nchecks: {{spectral_radius_max: 0.5}}\nmodels: [{simple_model.path}]\n',
        "a.yaml",
    )
    build_report(cfg, output=d / "a.html")
    cfg = write_config(d, f"title: Second\nmodels: [{complex_model.path}]\n", "b.yaml")
    build_report(cfg, output=d / "run2" / "b.html")
    (d / "notes.html").write_text("<html><body>not a report</body></html>")
    return d


def test_site_index_from_reports(reports: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    index, skipped = build_site(reports, site)
    assert skipped == [str(reports / "notes.html")]
    html = index.read_text()
    page = parse(html)
    links = [h for h in page.hrefs if not h.startswith("#")]
    assert sorted(links) == ["reports/a.html", "reports/run2__b.html"]
    for link in links:
        assert (site / link).is_file()
    # copies are the reports, byte for byte, still standalone
    assert (site / "reports/a.html").read_bytes() == (reports / "a.html").read_bytes()
    # built from the embedded data: titles escaped, findings counted, models named
    assert "Run &lt;1&gt; &amp; co" in html and "<1>" not in html
    assert '<span class="badge warning">' in html  # spectral radius above 0.5
    assert "complex.keras" in html and "simple.keras" in html
    assert page.srcs == [] and all(h.startswith(("#", "reports/")) for h in page.hrefs)
    assert "https://" not in html and "http://" not in html


def test_report_data_roundtrip(reports: Path) -> None:
    data = report_data((reports / "a.html").read_text())
    assert data is not None and data["title"] == "Run <1> & co"
    assert report_data("<html></html>") is None


def test_site_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="reports folder not found"):
        build_site(tmp_path / "none", tmp_path / "site")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no lstm-report pages found"):
        build_site(tmp_path / "empty", tmp_path / "site")


def test_site_cli_and_site_inside_reports(reports: Path) -> None:
    site = reports / "_site"
    assert main(["site", str(reports), "-o", str(site), "-q"]) == 0
    assert main(["site", str(reports), "-o", str(site), "-q"]) == 0  # does not index itself
    assert sorted(p.name for p in (site / "reports").iterdir()) == ["a.html", "run2__b.html"]


def test_site_output_is_not_the_reports_folder(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in reports.rglob("*"))
    assert main(["site", str(reports), "-o", str(reports)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: {reports}: the output folder is the reports folder {reports}; "
        "write the site elsewhere\n"
    )
    (tmp_path / "link").symlink_to(reports)
    assert main(["site", str(reports), "-o", str(tmp_path / "link")]) == 1
    assert "the output folder is the reports folder" in capsys.readouterr().err
    # the reports where the site puts its copies: they would be rewritten in place
    import shutil

    shutil.copytree(reports, tmp_path / "x" / "reports")
    inner = sorted(p.name for p in (tmp_path / "x").rglob("*"))
    assert main(["site", str(tmp_path / "x" / "reports"), "-o", str(tmp_path / "x")]) == 1
    assert "where the site copies the reports" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "x").rglob("*")) == inner
    assert sorted(p.name for p in reports.rglob("*")) == before
