"""Issue 6: the demo report (with its comparison) and a site index in real headless Chromium.

Needs Debian's chromium (/usr/bin/chromium) and the playwright Python package; .ci/run
installs both. Locally the tests skip without them, unless LSTM_REPORT_REQUIRE_BROWSER=1
(set by CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def _require() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright")
    if missing:
        if os.environ.get("LSTM_REPORT_REQUIRE_BROWSER"):
            pytest.fail(f"browser tests need {', '.join(missing)}")
        pytest.skip(f"needs {', '.join(missing)}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def demo_page(demo_run: Any) -> Path:
    return demo_run.html  # type: ignore[no-any-return]


def _open(browser: Any, path: Path, *, js: bool = True) -> tuple[Any, Any, list[str], list[str]]:
    context = browser.new_context(java_script_enabled=js, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return context, page, errors, requests


def _wait_for(page: Any, expression: str, timeout: float = 5.0) -> None:
    """Poll an expression with page.evaluate: Playwright's wait_for_function compiles its
    predicate with eval, which the page's Content-Security-Policy rightly forbids."""
    end = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > end:
            pytest.fail(f"not true within {timeout} s: {expression}")
        time.sleep(0.05)


def test_demo_report_in_chromium(browser: Any, demo_page: Path) -> None:
    context, page, errors, requests = _open(browser, demo_page)
    try:
        assert errors == []
        # no network request of any kind: only the page itself (figures are data: URIs)
        assert [u for u in requests if not u.startswith("data:")] == [demo_page.as_uri()]
        # every figure rendered
        n, ok = page.evaluate(
            "[document.images.length, Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)]"
        )
        assert n > 20 and ok
        # the table of contents navigates
        link = page.locator("nav.toc a[href^='#m0-']").nth(1)
        target = link.get_attribute("href")
        link.click()
        _wait_for(page, f"location.hash === '{target}'")
        # (the page scrolls smoothly: wait until the section has arrived at the top)
        _wait_for(
            page,
            f"Math.abs(document.getElementById('{target[1:]}').getBoundingClientRect().top) < 200",
            timeout=10.0,
        )
        # sections fold: the layout explanation opens and closes
        details = page.locator("#layout details")
        assert details.get_attribute("open") is None
        page.locator("#layout summary").click()
        assert details.get_attribute("open") is not None
        # the comparison is there too
        assert page.locator("section.comparison").count() == 1
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_demo_page_budget(browser: Any, demo_page: Path, width: int) -> None:
    # A page that reads well: at most 12,000 px tall on a desktop, 1.2 MiB in all, and on a
    # phone nothing wider than the screen (wide tables scroll inside their own box).
    assert demo_page.stat().st_size <= 1.2 * 2**20
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    try:
        page.goto(demo_page.as_uri())
        height, scroll_width = page.evaluate(
            "[document.documentElement.scrollHeight, document.documentElement.scrollWidth]"
        )
        assert scroll_width <= width
        if width == 1280:
            # each layer's mechanism (fixed points, unit cards) added about 600 px
            assert height <= 14_000
        # a figure opens full size on a click, and closes with Escape
        img = page.locator("details.fold figure img").first
        img.evaluate("i => { i.closest('details').open = true; }")
        img.click()
        assert page.locator("figure.zoomed").count() == 1
        page.keyboard.press("Escape")
        assert page.locator("figure.zoomed").count() == 0
        assert errors == []
    finally:
        context.close()


def test_demo_report_without_javascript(browser: Any, demo_page: Path) -> None:
    context, page, errors, requests = _open(browser, demo_page, js=False)
    try:
        text = page.inner_text("body")
        for needed in (
            "Summary",
            "Statistics per gate",
            "importance on the probe",
            "weight norms",
            "What changed",
        ):
            assert needed in text
        assert page.locator("img").count() > 20
        assert errors == []
    finally:
        context.close()


def test_site_index_sorts(browser: Any, demo_page: Path, simple_model: Any, tmp_path: Path) -> None:
    from lstm_report import build_report
    from lstm_report.site.build import build_site
    from tests.conftest import write_config

    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(demo_page, reports / "demo.html")
    build_report(
        write_config(tmp_path, f"title: Aaa small\nmodels: [{simple_model.path}]\n"),
        output=reports / "small.html",
    )
    index, _ = build_site(reports, tmp_path / "site")
    context, page, errors, requests = _open(browser, index)
    try:
        assert errors == []
        assert [u for u in requests if not u.startswith("data:")] == [index.as_uri()]

        def titles() -> list[str]:
            return page.eval_on_selector_all(  # type: ignore[no-any-return]
                "#reports tbody tr td:first-child a", "as => as.map(a => a.textContent)"
            )

        page.locator("#reports thead th").first.click()
        first = titles()
        assert first == sorted(first, key=str.lower)
        page.locator("#reports thead th").first.click()
        assert titles() == first[::-1]
        # The headers are buttons: the keyboard sorts too.
        page.locator("#reports thead th button").first.focus()
        page.keyboard.press("Enter")
        assert titles() == first
        assert page.locator("#reports thead th").first.get_attribute("aria-sort") == "ascending"
    finally:
        context.close()


# ---- phones and accessibility (issue 20) ------------------------------------------------------

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
"""axe-core, the standard accessibility engine: `npm ci --prefix tests/axe` (.ci/run does)."""


def _svg_fonts(uri: str) -> tuple[float, list[float]]:
    """An SVG figure's width (its own px) and every font size it sets."""
    import re
    from urllib.parse import unquote

    assert uri.startswith("data:image/svg+xml,")
    svg = unquote(uri.split(",", 1)[1])
    width = float(re.search(r'<svg [^>]*width="([0-9.]+)"', svg).group(1))  # type: ignore[union-attr]
    return width, [float(v) for v in re.findall(r'font-size="([0-9.]+)"', svg)]


def _all_open(page: Any) -> None:
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")


def test_phone_figures_reflow_and_text_stays_legible(browser: Any, demo_page: Path) -> None:
    # At 390 px every figure's smallest text, as rendered, is at least 9 CSS px: its font
    # size in the SVG times the scale the page shows the image at. Multi-panel figures wrap.
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    try:
        page.goto(demo_page.as_uri())
        _all_open(page)
        shown = page.evaluate(
            "Array.from(document.querySelectorAll('main figure img'))"
            ".map(i => [i.getAttribute('src'), i.getBoundingClientRect().width])"
        )
        assert len(shown) > 40
        smallest = []
        for src, rendered in shown:
            width, fonts = _svg_fonts(src)
            assert fonts, "an SVG without a font size"
            smallest.append((min(fonts) * rendered / width, src[:80]))
        worst = min(smallest)
        assert worst[0] >= 9.0, worst
        # the heatmaps' four panels are not on one line any more
        rows = page.evaluate(
            "Array.from(document.querySelectorAll('main figure .tiles')).map(t => "
            "new Set(Array.from(t.children).map(i => Math.round(i.getBoundingClientRect().top))).size)"
        )
        assert rows and max(rows) >= 3
        # and nothing is wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # a file name in a table stays on one line (it wrapped one character per line)
        lines = page.evaluate(
            "(() => { const c = document.querySelector('table.sortable td code');"
            " return c.getBoundingClientRect().height / parseFloat(getComputedStyle(c).lineHeight"
            " === 'normal' ? 1.2 * parseFloat(getComputedStyle(c).fontSize)"
            " : getComputedStyle(c).lineHeight); })()"
        )
        assert lines < 1.9
    finally:
        context.close()


def test_desktop_tiles_share_one_row(browser: Any, demo_page: Path) -> None:
    # At 1280 px a figure's tiles sit side by side as one picture, as wide as before.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(demo_page.as_uri())
        _all_open(page)
        rows = page.evaluate(
            "Array.from(document.querySelectorAll('main figure .tiles')).map(t => "
            "new Set(Array.from(t.children).map(i => Math.round(i.getBoundingClientRect().top))).size)"
        )
        assert rows and set(rows) == {1}
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_axe_finds_no_violation(browser: Any, demo_page: Path, width: int) -> None:
    if not AXE.exists():
        if os.environ.get("LSTM_REPORT_REQUIRE_BROWSER"):
            pytest.fail(f"needs {AXE} (npm ci --prefix tests/axe)")
        pytest.skip("needs axe-core: npm ci --prefix tests/axe")
    # (the page's CSP admits only its own script: bypassed for the injected engine)
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(demo_page.as_uri())
        _all_open(page)
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            "async () => (await axe.run(document)).violations.map(v => "
            "[v.id, v.nodes.length, v.nodes.slice(0, 3).map(n => n.target.join(' '))])"
        )
        assert violations == []
    finally:
        context.close()


# --- issue 21: the page's Content-Security-Policy stops what a hostile edit injects ------------


def _hostile_run(browser: Any, path: Path) -> tuple[list[str], list[str], int]:
    """Load a page; return the dialogs opened, the console errors and how many table
    headers our sort script turned into buttons (it ran)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []

    def dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        _wait_for(page, "Array.from(document.images).every(i => i.complete)")
        page.wait_for_timeout(200)  # time for an error event's handler, had it been allowed
        buttons = page.evaluate("document.querySelectorAll('th > button.sort').length")
        return dialogs, errors, int(buttons)
    finally:
        context.close()


@pytest.mark.parametrize(
    "variant", ["empty comment", "comment closed by --!>", "CDATA", "noscript"]
)
def test_injected_handlers_never_run(
    browser: Any, demo_page: Path, tmp_path: Path, variant: str
) -> None:
    """Each hostile variant, as `site` would publish it if its check were bypassed: the
    browser parses an <img onerror>, and the policy stops it. Without the policy (the
    control), the same page runs it."""
    import re

    from tests.hostile import HOSTILE_MARKUP, with_markup

    genuine = demo_page.read_text()
    hostile = tmp_path / "hostile.html"
    hostile.write_text(with_markup(genuine, HOSTILE_MARKUP[variant]))
    dialogs, errors, buttons = _hostile_run(browser, hostile)
    assert dialogs == []
    assert any("Content Security Policy" in e and "inline event handler" in e for e in errors), (
        errors
    )
    assert buttons > 0  # our own script still ran
    control = tmp_path / "control.html"
    control.write_text(
        re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", hostile.read_text())
    )
    dialogs, errors, _ = _hostile_run(browser, control)
    assert dialogs == ["1"]


def test_genuine_report_scripts_run_under_the_policy(browser: Any, demo_page: Path) -> None:
    """No CSP complaint on a genuine page, and its script works: a table sorts."""
    dialogs, errors, buttons = _hostile_run(browser, demo_page)
    assert dialogs == [] and errors == [] and buttons > 0
    context, page, errors, _ = _open(browser, demo_page)
    try:
        table = page.locator("table.sortable").first
        table.evaluate("t => { const d = t.closest('details'); if (d) d.open = true; }")
        header = table.locator("thead th").nth(1)
        column = "t => Array.from(t.tBodies[0].rows).map(r => r.cells[1].getAttribute('data-sort') ?? r.cells[1].textContent.trim())"
        before = table.evaluate(column)
        header.click()
        after = table.evaluate(column)
        assert sorted(after) == sorted(before) and header.get_attribute("aria-sort") == "ascending"
        header.click()
        assert table.evaluate(column) == after[::-1]
        assert errors == []
    finally:
        context.close()
