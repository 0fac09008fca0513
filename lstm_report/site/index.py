"""The site's index page: one row per report, the sweep columns and chart, rendered."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstm_report._version import __version__
from lstm_report.errors import shorten
from lstm_report.output.numbers import Numbers
from lstm_report.templating import env

PAGE_HREF = re.compile(r"reports/[A-Za-z0-9._-]+\.html")
"""The only links an index has: to a page of the site (reports/NAME.html), relative."""


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
    kinds: tuple[str, ...] = ()
    """The kinds of its analysed layers (``LSTM``, ``GRU``, ``ConvLSTM2D``), sorted."""

    def __post_init__(self) -> None:
        # Whatever the row came from (a page, a batch manifest someone edited), its link
        # stays inside the site: never javascript:, never another site, never "..".
        if not isinstance(self.href, str) or not PAGE_HREF.fullmatch(self.href):
            raise ValueError(f"not a page of the site: {shorten(repr(self.href), 60)}")


def cell_words(entries: Sequence[SiteEntry]) -> dict[str, str]:
    """What the index calls the layers: LSTM where every report's are LSTMs, else
    recurrent (a GRU is no LSTM)."""
    only_lstm = all(set(e.kinds) <= {"LSTM"} for e in entries)
    return {
        "reports": "LSTM reports" if only_lstm else "Recurrent network reports",
        "layers": "LSTM" if only_lstm else "Recurrent",
    }


def folder_label(shown: str) -> str:
    """A reports folder as the index names it: as given, or, for the current folder
    (``.``), its own name; empty when it has none (the root)."""
    if shown in ("", ".", "./"):
        return display(Path.cwd().name)
    return shown


def display(path: Path | str) -> str:
    """A path as text that can be printed and written: undecodable bytes become U+FFFD."""
    return os.fsencode(path).decode("utf-8", "replace")


def entry(href: str, source: str, data: Mapping[str, Any], numbers: Numbers) -> SiteEntry:
    """The index row of a report whose data passed check_data (``numbers``: its numbers)."""
    findings = data["findings"]
    heads = data["headlines"]
    first_finding = next((f for f in findings if f["severity"] in ("error", "warning")), None)
    headline = (
        f"{first_finding['layer']}: {first_finding['message']}"
        if first_finding
        else (heads[0]["text"] if heads else "")
    )
    models = data["models"]
    return SiteEntry(
        href=href,
        title=data["title"] or href,
        generated=data["generated"],
        models=tuple(m["name"] for m in models),
        layers=numbers.layers,
        params=numbers.lstm_params,
        errors=numbers.errors,
        warnings=numbers.warnings,
        largest_radius=numbers.largest_radius,
        headline=headline,
        source=source,
        kinds=tuple(sorted(_kinds(models))),
    )


def _kinds(models: Sequence[Mapping[str, Any]]) -> set[str]:
    """The kinds of the analysed layers of a page's models, its ConvLSTMs among them."""
    kinds = {str(la.get("kind") or "LSTM") for m in models for la in m["layers"]}
    return kinds | {str(c["kind"]) for m in models for c in m.get("conv_layers") or []}


def page_name(rel: Path, used: set[str]) -> str:
    """A unique, file-safe page name (no suffix) for a path: its parts joined by ``__``
    (run7/config.yaml -> run7__config), ``-2``, ``-3``... when taken; ``used`` holds the
    names taken, lower-cased (two names that differ only in case are one file on some
    file systems)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(rel.with_suffix("").parts))
    base = base.strip(".") or "report"
    name, n = base, 1
    while name.lower() in used:
        n += 1
        name = f"{base}-{n}"
    used.add(name.lower())
    return name


@dataclass(frozen=True)
class IndexBar:
    """One run's bar in the index chart."""

    name: str
    href: str
    value: float
    height: float
    """Percent of the tallest bar."""


@dataclass(frozen=True)
class IndexChart:
    """One headline across runs, in batch order, as HTML bars (no script, no image)."""

    label: str
    bars: tuple[IndexBar, ...]
    top: float


@dataclass(frozen=True)
class SweepColumns:
    """What an index shows beyond its rows: the sweep columns, failures, a chart."""

    numbers: dict[str, Numbers] = field(default_factory=dict)
    """By entry href."""
    failed: tuple[tuple[str, str], ...] = ()
    """(source, message) of every failed run."""
    chart: IndexChart | None = None


def render_index(
    entries: Sequence[SiteEntry], generated: str, source: str, sweep: SweepColumns
) -> str:
    """The index page's HTML."""
    return env.get_template("site.html.jinja2").render(
        entries=list(entries),
        generated=generated,
        version=__version__,
        source=source,
        words=cell_words(entries),
        sweep=sweep,
    )
