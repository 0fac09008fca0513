"""A static site from a folder of reports: every report copied, plus a sortable index.

The index is built from the reports alone: each page carries its data as JSON in
``<script type="application/json" id="lstm-report-data">`` (site.check decides whether a
page is lstm-report's own), so pages written by earlier versions are read as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_report.errors import ConfigError, OutputError
from lstm_report.fileio.limits import (
    MAX_PAGE_BYTES,
    NotRegularFileError,
    TooLargeError,
    read_regular,
)
from lstm_report.fileio.write import check_outputs, same_file, write_files
from lstm_report.output.clock import generated_at
from lstm_report.output.numbers import Numbers
from lstm_report.site.check import NotOurs, check_page
from lstm_report.site.index import SiteEntry, SweepColumns, display, entry, page_name, render_index
from lstm_report.site.numbers import page_numbers


@dataclass(frozen=True)
class Skipped:
    """A file the site does not publish, and why; ``warning`` when it claims to be a report."""

    path: str
    reason: str
    warning: bool = False


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _walk(src: Path, out: Path, follow_links: bool) -> list[tuple[Path, str | None]]:
    """Every .html file under src (not under out), sorted; with the reason to skip it when
    it is a symlink leading out of src (unless follow_links)."""
    root = src.resolve()
    out_resolved = out.resolve()
    seen = {root}
    pending = [src]
    found: list[tuple[Path, str | None]] = []
    while pending:
        folder = pending.pop()
        try:
            listing = list(os.scandir(folder))
        except OSError:
            continue
        for e in listing:
            path = Path(e.path)
            try:
                is_dir = e.is_dir()
                # not only regular files: a FIFO or a device named .html gets its warning
                is_html = not is_dir and e.name.endswith(".html")
                target = path.resolve() if e.is_symlink() else None
            except (OSError, RuntimeError):  # unreadable, or a symlink loop
                continue
            if not (is_dir or is_html):
                continue
            if target is not None and not _inside(target, root) and not follow_links:
                what = "a folder" if is_dir else "a file"
                found.append(
                    (
                        path,
                        f"a symlink to {what} outside the reports folder ({display(target)}); "
                        "pass --follow-links to include it",
                    )
                )
                continue
            real = target or path.resolve()
            if _inside(real, out_resolved):
                continue  # the site itself, inside the reports folder
            if not is_dir:
                found.append((path, None))
            elif real not in seen:  # each folder once, even when linked twice or in a loop
                seen.add(real)
                pending.append(path)
    return sorted(found, key=lambda item: item[0])


def _check_folders(src: Path, out: Path) -> None:
    """Refuse a site folder that is the reports folder, or whose reports/ holds it."""
    if same_file(out, src):
        raise OutputError(
            f"{display(out)}: the output folder is the reports folder {display(src)}; "
            "write the site elsewhere"
        )
    copies = out.resolve() / "reports"
    if copies == src.resolve() or copies in src.resolve().parents:
        raise OutputError(
            f"{display(out)}: the reports folder {display(src)} is inside "
            f"{display(out / 'reports')}, where the site copies the reports; "
            "write the site elsewhere"
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"{display(out)}: exists and is not a folder; give a folder for the site")


def _read_page(p: Path) -> tuple[str, dict[str, Any]] | Skipped:
    """A page's text and data, or why it is skipped."""
    shown = display(p)
    try:
        raw = read_regular(p, MAX_PAGE_BYTES)
    except (NotRegularFileError, TooLargeError) as exc:
        return Skipped(shown, f"{exc}, not read", warning=True)
    except OSError:
        return Skipped(shown, "not an lstm-report page")
    try:  # universal newlines, as read_text gives
        html = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        return Skipped(shown, "not an lstm-report page")
    try:
        data = check_page(html)
    except NotOurs as exc:
        return Skipped(shown, f"not published: {exc}", warning=True)
    if data is None:
        return Skipped(shown, "not an lstm-report page")
    return html, data


def build_site(
    reports_dir: str | Path, site_dir: str | Path, *, follow_links: bool = False
) -> tuple[Path, list[Skipped]]:
    """Copy every report under reports_dir into site_dir/reports/ and write the index.

    Returns the index path and the files skipped: HTML that is not an lstm-report page,
    pages that carry the marker but not (only) what lstm-report writes, and symlinks that
    lead out of reports_dir (unless follow_links).
    """
    src = Path(reports_dir)
    out = Path(site_dir)
    if not src.is_dir():
        raise ConfigError(f"{display(src)}: reports folder not found")
    _check_folders(src, out)
    entries: list[SiteEntry] = []
    columns: dict[str, Numbers] = {}  # the sweep columns a batch's index has, from each page
    skipped: list[Skipped] = []
    files: list[tuple[Path, str]] = []
    used = {"index"}  # no page named like the index
    copied: list[Path] = []
    found = _walk(src, out, follow_links)
    for p, refused in found:
        page = Skipped(display(p), refused, warning=True) if refused is not None else _read_page(p)
        if isinstance(page, Skipped):
            skipped.append(page)
            continue
        html, data = page
        name = page_name(p.relative_to(src), used)
        files.append((out / "reports" / f"{name}.html", html))
        copied.append(p)
        n = page_numbers(data)
        entries.append(entry(f"reports/{name}.html", display(p.relative_to(src)), data, n))
        columns[entries[-1].href] = n
    if not entries:
        raise ConfigError(
            f"{display(src)}: no lstm-report pages found (looked at {len(found)} .html files)"
        )
    entries.sort(key=lambda e: (e.generated, e.title), reverse=True)
    shown = display(src.name if src.name not in ("", "..") else src.resolve().name)
    index = render_index(entries, generated_at(), shown, SweepColumns(numbers=columns))
    files.append((out / "index.html", index))
    outputs = [(f"the copy of {display(p)}", path) for p, (path, _) in zip(copied, files)]
    outputs.append(("the site index", out / "index.html"))
    check_outputs(outputs, [("the report", p) for p in copied])
    write_files(files)
    return out / "index.html", skipped
