"""Issue 5: a static site built from real reports alone."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lstm_report import build_report
from lstm_report.cli import main
from lstm_report.errors import ConfigError
from lstm_report.site.build import build_site
from lstm_report.site.check import report_data
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
        f'title: "Run <1> & co"\nchecks: {{dead_unit_norm: 1000000000.0}}\nmodels: [{simple_model.path}]\n',
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
    assert [(s.path, s.reason, s.warning) for s in skipped] == [
        (str(reports / "notes.html"), "not an lstm-report page", False)
    ]
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
    assert '<span class="badge warning">' in html  # every unit below the dead-unit norm
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


DATA_BLOCK = re.compile(
    r'(<script type="application/json" id="lstm-report-data">)(.*?)(</script>)', re.S
)


def _with_data(html: str, edit: Callable[[dict[str, Any]], Any]) -> str:
    """The page with its embedded data edited (edit returns the new data)."""
    match = DATA_BLOCK.search(html)
    assert match is not None
    data = edit(json.loads(match.group(2)))
    text = data if isinstance(data, str) else json.dumps(data).replace("<", "\\u003c")
    return html[: match.start(2)] + text + html[match.end(2) :]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def edit(data: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return data

    return edit


def _drop(path: str) -> Callable[[dict[str, Any]], Any]:
    def edit(data: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]
        return data

    return edit


def _finding(data: dict[str, Any]) -> Any:
    data["findings"] = [{"severity": "warning", "code": "x", "model": "m", "message": "hi"}]
    return data


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (_drop("title"), "embedded data: title: expected a string, got null"),
        (
            _set("models.0.layers.0", "x"),
            "embedded data: models[0].layers[0]: expected a mapping, got a string ('x')",
        ),
        (_finding, "embedded data: findings[0].layer: expected a string, got null"),
        (
            _set("models.0.lstm_params", "many"),
            "embedded data: models[0].lstm_params: expected a whole number >= 0, got a string ('many')",
        ),
        (
            _set("models.0.layers.0.spectra.i.U.spectral_radius", "1.5"),
            "embedded data: models[0].layers[0].spectra.i.U.spectral_radius: expected a number or null, got a string ('1.5')",
        ),
        (
            _set("models.0.conv_layers", {"kind": "ConvLSTM2D"}),
            "embedded data: models[0].conv_layers: expected a list, got a mapping",
        ),
        (
            _set("models.0.conv_layers", [{"kind": "ConvLSTM2D", "timescales": ["2"]}]),
            "embedded data: models[0].conv_layers[0].timescales[0]: expected a number or null, got a string ('2')",
        ),
        (
            _set("models.0.conv_layers", [{"timescales": []}]),
            "embedded data: models[0].conv_layers[0].kind: expected a string, got null",
        ),
        (_set("models", {}), "embedded data: models: expected a list, got a mapping"),
        (_set("models.0", None), "embedded data: models[0]: expected a mapping, got null"),
        (
            _set("headlines", [3]),
            "embedded data: headlines[0]: expected a mapping, got a number (3)",
        ),
        (
            _set("findings", [{"severity": "fatal"}]),
            "embedded data: findings[0].severity: expected error, warning or info, got a string ('fatal')",
        ),
        (_set("schema_version", 2), "embedded data: schema_version: expected 1, got a number (2)"),
        (
            _set("schema_version", True),
            "embedded data: schema_version: expected 1, got a boolean (true)",
        ),
        (
            lambda d: json.dumps(d).replace('"lstm_params": ', '"lstm_params": NaN, "x": '),
            "embedded data is not valid JSON",
        ),
        (
            lambda d: '{"schema_version": 1, "title": "\\ud800"}',
            "embedded data: title: not valid Unicode text",
        ),
        (lambda d: "[" * 100_000, "embedded data is not valid JSON"),
        (lambda d: [], "embedded data: the data: expected a mapping, got a list"),
    ],
)
def test_site_skips_pages_whose_data_breaks_the_contract(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, problem: str
) -> None:
    src = tmp_path / "reports"
    src.mkdir()
    html = (reports / "a.html").read_text()
    (src / "good.html").write_text(html)
    (src / "bad.html").write_text(_with_data(html, edit))
    assert main(["site", str(src), "-o", str(tmp_path / "site")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"warning: skipped {src / 'bad.html'}: not published: {problem}"), (
        lines
    )
    assert len(lines) == 2 and lines[1] == f"wrote {tmp_path / 'site' / 'index.html'}"
    assert sorted(p.name for p in (tmp_path / "site" / "reports").iterdir()) == ["good.html"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda h: h.replace("</body>", "<script>alert(1)</script></body>"),
            "an inline script lstm-report did not write",
        ),
        (
            lambda h: h.replace("</body>", '<script src="https://x.example/y.js"></script></body>'),
            "an external source (<script src='https://x.example/y.js'>)",
        ),
        (
            lambda h: h.replace("<body>", '<body onload="alert(1)">'),
            "an event-handler attribute (onload) on <body>",
        ),
        (
            lambda h: h.replace("</main>", '<a href="java\tscript:alert(1)">x</a></main>'),
            "a javascript: URL in <a href>",
        ),
        (
            lambda h: h.replace("</main>", '<img src="x" onerror="alert(1)"></main>'),
            "an external source (<img src='x'>)",
        ),
        (
            # figures are PNG or SVG data URIs (percent-encoded SVG too); nothing else
            lambda h: h.replace("</main>", '<img src="data:text/html,x"></main>'),
            "an external source (<img src='data:text/html,x'>)",
        ),
        (
            lambda h: h.replace("</main>", '<img src="data:image/svg+xml;utf8,x"></main>'),
            "an external source (<img src='data:image/svg+xml;utf8,x'>)",
        ),
        (
            lambda h: h.replace("</main>", '<p title="<script>alert(1)</script>">x</p></main>'),
            "a script lstm-report did not write (hidden from the HTML parser)",
        ),
        (
            lambda h: h.replace("</main>", "<iframe srcdoc='x'></iframe></main>"),
            "a <iframe> element",
        ),
        (
            lambda h: h.replace("</style>", "body { background: url(//x.example/p.png) }</style>"),
            "a CSS function lstm-report does not write (url())",
        ),
        (
            lambda h: h.replace("<style>", "<style>@import 'https://x.example/t.css';"),
            "a CSS @import rule",
        ),
        (
            lambda h: h.replace("</style>", "b { background: u\\72l(//x.example) }</style>"),
            "a backslash escape in CSS",
        ),
        (
            lambda h: h.replace(
                "</style>", "b { background: image-set('//x.example' 1x) }</style>"
            ),
            "a CSS function lstm-report does not write (image-set())",
        ),
        (
            lambda h: h.replace("</main>", '<p style="background:url(//x.example)">x</p></main>'),
            "a style lstm-report does not write (<p style='background:url(//x.example)'>)",
        ),
        (
            lambda h: h.replace("</main>", '<p title="<style>b{}</style>">x</p></main>'),
            "a style sheet lstm-report did not write (hidden from the HTML parser)",
        ),
        (
            lambda h: h + "<style>b { background: url(//x.example) }",
            "a CSS function lstm-report does not write (url())",
        ),
        (
            lambda h: h.replace("rows.sort(", "fetch('//x.example');rows.sort("),
            "an inline script lstm-report did not write",
        ),
        (
            lambda h: h.replace(
                '<script type="application/json" id="lstm-report-data">',
                '<script type="module" id="lstm-report-data">',
            ),
            "a script lstm-report did not write (with attributes)",
        ),
    ],
)
def test_site_publishes_only_pages_whose_scripts_are_ours(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, problem: str
) -> None:
    src = tmp_path / "reports"
    src.mkdir()
    html = (reports / "a.html").read_text()
    changed = change(html)
    assert changed != html
    (src / "good.html").write_text(html)
    (src / "bad.html").write_text(changed)
    assert main(["site", str(src), "-o", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"warning: skipped {src / 'bad.html'}: not published: {problem}\n"), err
    assert sorted(p.name for p in (tmp_path / "site" / "reports").iterdir()) == ["good.html"]


def test_site_symlinks_out_of_the_folder(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    (outside / "more").mkdir(parents=True)
    (outside / "far.html").write_bytes((reports / "a.html").read_bytes())
    (outside / "more" / "deep.html").write_bytes((reports / "a.html").read_bytes())
    src = tmp_path / "reports"
    src.mkdir()
    (src / "a.html").write_bytes((reports / "a.html").read_bytes())
    (src / "near.html").symlink_to(src / "a.html")  # inside: fine
    (src / "far.html").symlink_to(outside / "far.html")
    (src / "more").symlink_to(outside / "more")
    assert main(["site", str(src), "-o", str(tmp_path / "site")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[:2] == [
        f"warning: skipped {src / 'far.html'}: a symlink to a file outside the reports folder ({outside / 'far.html'}); pass --follow-links to include it",
        f"warning: skipped {src / 'more'}: a symlink to a folder outside the reports folder ({outside / 'more'}); pass --follow-links to include it",
    ]
    assert sorted(p.name for p in (tmp_path / "site" / "reports").iterdir()) == [
        "a.html",
        "near.html",
    ]
    assert main(["site", str(src), "-o", str(tmp_path / "site2"), "--follow-links", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "site2" / "reports").iterdir()) == [
        "a.html",
        "far.html",
        "more__deep.html",
        "near.html",
    ]


def test_site_file_names_that_are_not_utf8(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "reports"
    src.mkdir()
    name = os.fsdecode(b"r\xff.html")
    (src / name).write_bytes((reports / "a.html").read_bytes())
    (src / os.fsdecode(b"n\xfe.html")).write_text("<html>not a report</html>")
    assert main(["site", str(src), "-o", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err
    assert f"skipped {src / 'n'}\ufffd.html: not an lstm-report page" in err
    # (names may wrap after the dot: a <wbr> is no text)
    index = (tmp_path / "site" / "index.html").read_text().replace("<wbr>", "")
    assert "r\ufffd.html" in index
    assert [p.name for p in (tmp_path / "site" / "reports").iterdir()] == ["r_.html"]


# --- issue 21: pages checked as browsers read them, and their Content-Security-Policy -------


@pytest.mark.parametrize(
    ("variant", "problem"),
    [
        ("empty comment", "a comment, CDATA section or other <! markup"),
        ("comment closed by --!>", "a comment, CDATA section or other <! markup"),
        ("CDATA", "a comment, CDATA section or other <! markup"),
        ("noscript", "a <noscript> element"),
    ],
)
def test_site_refuses_markup_browsers_read_differently(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], variant: str, problem: str
) -> None:
    from tests.hostile import HOSTILE_MARKUP, with_markup

    src = tmp_path / "reports"
    src.mkdir()
    html = (reports / "a.html").read_text()
    (src / "good.html").write_text(html)
    (src / "bad.html").write_text(with_markup(html, HOSTILE_MARKUP[variant]))
    assert main(["site", str(src), "-o", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"warning: skipped {src / 'bad.html'}: not published: {problem}\n"), err
    assert sorted(p.name for p in (tmp_path / "site" / "reports").iterdir()) == ["good.html"]


def test_the_onerror_handler_is_there_for_a_browser(reports: Path) -> None:
    """What the browser sees in each variant: an <img onerror> (html5lib, the WHATWG
    algorithm), where Python's html.parser sees none (the hole the check had)."""
    from html.parser import HTMLParser

    import html5lib

    from tests.hostile import HOSTILE_MARKUP, with_markup

    class Handlers(HTMLParser):
        found = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.found += any(n == "onerror" for n, _ in attrs)

    html = (reports / "a.html").read_text()
    for markup in HOSTILE_MARKUP.values():
        page = with_markup(html, markup)
        old = Handlers()
        old.feed(page)
        assert old.found == 0, markup
        tree = html5lib.parse(page, namespaceHTMLElements=False, scripting=True)
        assert [img.get("onerror") for img in tree.iter("img")].count("alert(1)") == 1, markup


def _policy_of(page: str) -> str:
    """The policy a report should carry, from its own script (hashed here, independently)."""
    import base64
    import hashlib

    bodies = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    assert len(bodies) == 1
    digest = base64.b64encode(hashlib.sha256(bodies[0].encode()).digest()).decode()
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'"
    )


def test_every_page_carries_the_policy_first_in_head(reports: Path, tmp_path: Path) -> None:
    import html5lib

    index, _ = build_site(reports, tmp_path / "site")
    for page in ((reports / "a.html").read_text(), index.read_text()):
        head = html5lib.parse(page, namespaceHTMLElements=False).find("head")
        assert head is not None
        first = head[0]
        assert first.tag == "meta" and first.attrib == {
            "http-equiv": "Content-Security-Policy",
            "content": _policy_of(page),
        }
        assert page.index("<meta http-equiv") < page.index("<meta charset")
        # no inline handler anywhere: the policy would block it
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", page)


_POLICY_START = '<meta http-equiv="Content-Security-Policy" content="'


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda h: re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n', "", h),
            "no Content-Security-Policy (a report of an older lstm-report?)",
        ),
        (
            lambda h: h.replace("script-src ", "script-src &#39;unsafe-inline&#39; "),
            "a Content-Security-Policy lstm-report does not write",
        ),
        (
            lambda h: h.replace("default-src &#39;none&#39;; ", ""),
            "a Content-Security-Policy lstm-report does not write",
        ),
        (
            lambda h: h.replace('<meta charset="utf-8">\n', "").replace(
                _POLICY_START, '<meta charset="utf-8">\n' + _POLICY_START
            ),
            "a Content-Security-Policy that is not the first element of <head>",
        ),
        (
            lambda h: h.replace(
                "</title>", "</title>" + re.findall(r"<meta http-equiv[^>]*>", h)[0]
            ),
            "a Content-Security-Policy that is not the first element of <head>",
        ),
        (
            lambda h: h.replace(
                "</title>", '</title><meta http-equiv="refresh" content="0; url=https://x.example">'
            ),
            "a <meta http-equiv> element",
        ),
    ],
)
def test_site_requires_exactly_our_policy(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, problem: str
) -> None:
    src = tmp_path / "reports"
    src.mkdir()
    html = (reports / "a.html").read_text()
    changed = change(html)
    assert changed != html
    (src / "good.html").write_text(html)
    (src / "bad.html").write_text(changed)
    assert main(["site", str(src), "-o", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"warning: skipped {src / 'bad.html'}: not published: {problem}"), err
    assert sorted(p.name for p in (tmp_path / "site" / "reports").iterdir()) == ["good.html"]
