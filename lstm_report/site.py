"""A static site from a folder of reports: every report copied, plus a sortable index.

The index is built from the reports alone: each page carries its data as JSON in
``<script type="application/json" id="lstm-report-data">``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from lstm_report.errors import ConfigError, OutputError

DATA_ID = "lstm-report-data"


@dataclass(frozen=True)
class SiteEntry:
    """One report as the index lists it."""

    href: str
    title: str
    generated: str
    models: tuple[str, ...]
    layers: int
    params: int
    errors: int
    warnings: int
    largest_radius: float | None
    headline: str
    source: str


class _DataFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self._inside = False
        self.chunks: list[str] = []
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("id") == DATA_ID and a.get("type") == "application/json":
            self._inside = self.found = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.chunks.append(data)


def report_data(html: str) -> dict[str, Any] | None:
    """The JSON a report page carries, or None if the page is not an lstm-report."""
    finder = _DataFinder()
    finder.feed(html)
    if not finder.found:
        return None
    try:
        data = json.loads("".join(finder.chunks))
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("schema_version") == 1 else None


def entry(href: str, source: str, data: dict[str, Any]) -> SiteEntry:
    models = data.get("models") or []
    layers = [la for m in models for la in (m.get("layers") or [])]
    findings = data.get("findings") or []
    radii = [
        g["U"]["spectral_radius"]
        for la in layers
        for g in (la.get("spectra") or {}).values()
        if g.get("U") and g["U"].get("spectral_radius") is not None
    ]
    heads = data.get("headlines") or []
    first_finding = next((f for f in findings if f.get("severity") in ("error", "warning")), None)
    headline = (
        f"{first_finding['layer']}: {first_finding['message']}"
        if first_finding
        else (heads[0]["text"] if heads else "")
    )
    return SiteEntry(
        href=href,
        title=str(data.get("title") or href),
        generated=str(data.get("generated") or ""),
        models=tuple(str(m.get("name")) for m in models),
        layers=len(layers),
        params=sum(int(m.get("lstm_params") or 0) for m in models),
        errors=sum(1 for f in findings if f.get("severity") == "error"),
        warnings=sum(1 for f in findings if f.get("severity") == "warning"),
        largest_radius=max(radii) if radii else None,
        headline=headline,
        source=source,
    )


def _safe_name(rel: Path, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(rel.with_suffix("").parts)) or "report"
    name = f"{base}.html"
    n = 1
    while name in used or name == "index.html":
        n += 1
        name = f"{base}-{n}.html"
    used.add(name)
    return name


def _check_folders(src: Path, out: Path) -> None:
    """Refuse a site folder that is the reports folder, or whose reports/ holds it."""
    from lstm_report.write import same_file

    if same_file(out, src):
        raise OutputError(
            f"{out}: the output folder is the reports folder {src}; write the site elsewhere"
        )
    copies = out.resolve() / "reports"
    if copies == src.resolve() or copies in src.resolve().parents:
        raise OutputError(
            f"{out}: the reports folder {src} is inside {out / 'reports'}, where the site "
            "copies the reports; write the site elsewhere"
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; give a folder for the site")


def build_site(reports_dir: str | Path, site_dir: str | Path) -> tuple[Path, list[str]]:
    """Copy every report under reports_dir into site_dir/reports/ and write the index.

    Returns the index path and the files skipped (HTML that is not an lstm-report).
    """
    from lstm_report import __version__
    from lstm_report.pipeline import generated_at
    from lstm_report.render import env
    from lstm_report.write import check_outputs, write_files

    src = Path(reports_dir)
    out = Path(site_dir)
    if not src.is_dir():
        raise ConfigError(f"{src}: reports folder not found")
    _check_folders(src, out)
    out_resolved = out.resolve()
    candidates = sorted(
        p for p in src.rglob("*.html") if p.is_file() and out_resolved not in p.resolve().parents
    )
    entries: list[SiteEntry] = []
    skipped: list[str] = []
    files: list[tuple[Path, str]] = []
    used: set[str] = set()
    copied: list[Path] = []
    for p in candidates:
        try:
            html = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            skipped.append(str(p))
            continue
        data = report_data(html)
        if data is None:
            skipped.append(str(p))
            continue
        name = _safe_name(p.relative_to(src), used)
        files.append((out / "reports" / name, html))
        copied.append(p)
        entries.append(entry(f"reports/{name}", str(p.relative_to(src)), data))
    if not entries:
        raise ConfigError(
            f"{src}: no lstm-report pages found (looked at {len(candidates)} .html files)"
        )
    entries.sort(key=lambda e: (e.generated, e.title), reverse=True)
    index = env.get_template("site.html.jinja2").render(
        entries=entries, generated=generated_at(), version=__version__, source=src.name or str(src)
    )
    files.append((out / "index.html", index))
    outputs = [(f"the copy of {p}", path) for p, (path, _) in zip(copied, files)]
    outputs.append(("the site index", out / "index.html"))
    check_outputs(outputs, [("the report", p) for p in candidates])
    write_files(files)
    return out / "index.html", skipped
