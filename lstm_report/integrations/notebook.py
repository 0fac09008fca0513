"""Reports inline in Jupyter and VS Code: the page in an ``<iframe srcdoc>`` (``show`` is
integrations/show.py).

The iframe keeps the report's styles and scripts to itself (as ydata-profiling's
``to_notebook_iframe()`` does): the page is the ``srcdoc`` attribute, attribute-escaped, so
nothing of it is markup of the notebook. Its own Content-Security-Policy meta still
applies inside the frame (and Chromium also applies the notebook's policy to a srcdoc
frame, which the report's hashed scripts satisfy whenever the notebook allows scripts).
"""

from __future__ import annotations

import html
from pathlib import Path

FALLBACK_HEIGHT = 800
"""The frame's height (px) until it has loaded and can be sized to its page."""

_FIT = (
    "try{var d=this.contentDocument;if(d&&d.documentElement)"
    "{this.style.height=(d.documentElement.scrollHeight+4)+'px';}}catch(e){}"
)
"""The frame's onload: as tall as its page, so the notebook scrolls, not the frame (the
notebook's own script, allowed where the notebook trusts its outputs; else the fallback)."""


def iframe_html(page: str, path: Path | None = None, title: str = "lstm-report") -> str:
    """The report ``page`` in an iframe (its own document), with a link to its file."""
    frame = (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" title="{html.escape(title)}" '
        f'style="width:100%;height:{FALLBACK_HEIGHT}px;border:0" '
        f'onload="{html.escape(_FIT, quote=True)}"></iframe>'
    )
    if path is None:
        return f"<div>{frame}</div>"
    href = _href(path)
    link = (
        f'<p style="margin:4px 0"><a href="{html.escape(href, quote=True)}" target="_blank" '
        f'rel="noopener">{html.escape(str(path))}</a></p>'
    )
    return f"<div>{frame}{link}</div>"


def _href(path: Path) -> str:
    """A link the notebook's server resolves (relative, under the working folder), else a
    file: URI (VS Code and local viewers open those)."""
    absolute = path.resolve()
    try:
        return absolute.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return absolute.as_uri()


def result_html(html_path: Path, title: str) -> str:
    """A written report as a notebook shows it."""
    return iframe_html(html_path.read_text(encoding="utf-8"), html_path, title)
