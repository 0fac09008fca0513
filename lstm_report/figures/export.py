"""``lstm-report figures``: every figure of a report as its own file, drawn by matplotlib
(figures/mpl.py) from the chart geometry the page draws, and ``figures.json`` saying what
each file shows."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from lstm_report.analysis.anchors import slug
from lstm_report.errors import ConfigError, OutputError
from lstm_report.figures import mpl  # matplotlib: this module serves only `figures`
from lstm_report.figures.chart import Chart
from lstm_report.figures.encode import EmbeddedFigure
from lstm_report.figures.page import Figures
from lstm_report.fileio.write import check_output_kind
from lstm_report.model.report import ReportData

FORMATS = ("pdf", "png", "svg")
INDEX = "figures.json"


@dataclass(frozen=True)
class Written:
    """One figure file: its name in the folder, the report section and figure it is, and
    the text that says what it shows (the page's alt text)."""

    file: str
    section: str
    figure: str
    shows: str
    model: str | None = None
    layer: str | None = None


def charts(report: ReportData, figures: Figures) -> Iterator[tuple[Written, Chart]]:
    """Every figure's entry (file name without suffix) and its chart, in page order."""
    where: dict[str, tuple[str | None, str | None]] = {}
    for m in report.models:
        where[m.anchor] = (m.name, None)
        where[f"{m.anchor}-steps"] = (m.name, None)
        where[f"{m.anchor}-series"] = (m.name, None)
        for la in m.layers:
            where[la.anchor] = (m.name, la.weights.label)
    taken: set[str] = set()
    for section, value in figures.items():
        model, layer = where.get(section, (None, None))
        for figure, fig, named in _members(value):
            if fig.chart is None:
                continue
            # A series' figures are named by their layer (text from the file): slugged,
            # so a name never becomes a path; numbered where two slugs meet.
            base = f"{section}-{slug(figure) if named else figure}" if figure else section
            name, k = base, 1
            while name in taken:
                k += 1
                name = f"{base}-{k}"
            taken.add(name)
            entry = Written(
                name, section, figure or "steps", fig.alt, model, figure if named else layer
            )
            yield entry, fig.chart


def _members(value: Any) -> Iterator[tuple[str, EmbeddedFigure, bool]]:
    """(figure, its EmbeddedFigure, whether the figure's name is a layer's) of a section."""
    if isinstance(value, EmbeddedFigure):
        yield "", value, False
    elif is_dataclass(value):
        for f in fields(value):
            member = getattr(value, f.name)
            if isinstance(member, EmbeddedFigure):
                yield f.name, member, False
    elif isinstance(value, tuple):
        for item in value:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], EmbeddedFigure):
                yield str(item[0]), item[1], True


def write_figures(
    report: ReportData,
    figures: Figures,
    folder: Path,
    fmt: str = "pdf",
    dpi: float = 300.0,
) -> list[Written]:
    """Draw every figure with matplotlib into ``folder``, then ``figures.json``."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if not 10 <= dpi <= 2400:
        raise ConfigError(f"--dpi: {dpi:g} is outside 10..2400")
    _folder(folder)
    written = []
    with mpl.settings():
        for entry, chart in charts(report, figures):
            entry = Written(**{**entry.__dict__, "file": f"{entry.file}.{fmt}"})
            _write(folder / entry.file, mpl.save(mpl.figure(chart), fmt, dpi))
            written.append(entry)
    index = {
        "title": report.title,
        "format": fmt,
        "dpi": dpi,
        "figures": [dict(e.__dict__) for e in written],
    }
    text = json.dumps(index, indent=2, ensure_ascii=False) + "\n"
    _write(folder / INDEX, text.encode("utf-8"))
    return written


def _folder(folder: Path) -> None:
    """Make the output folder; a file in its place is an error."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: not a folder (figures go into a folder: -o DIR)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create output folder: {exc.strerror or exc}") from None


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` and move it there: never half a file."""
    check_output_kind(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; figures are for sharing
        os.replace(tmp, path)
    except BaseException as exc:  # an interrupt too: never leave the temporary behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
