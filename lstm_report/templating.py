"""The one Jinja2 environment (autoescape, StrictUndefined) and the filters every template uses."""

from __future__ import annotations

import base64
import hashlib
import math
import re
from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup, escape

from lstm_report._resources import templates_dir

env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(templates_dir())),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def fmt_num(value: Any, digits: int = 4) -> str:
    """A number for a table cell: 4 significant digits; None and non-finite as 'n/a'."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    v = float(value)
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:.{digits}g}"
    return f"{v:.{digits - 1}e}"


def fmt_shape(shape: Any) -> str:
    """A tensor shape as Python writes a tuple: ``(3,)``, ``(4, 8)``."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt_sci(value: Any) -> str:
    """A small error or tolerance: 3e-07 style, 'n/a' for None."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return "0" if value == 0 else f"{float(value):.1e}"


def fmt_pct(value: Any) -> str:
    """A share as a percentage with one decimal; 'n/a' for None."""
    return "n/a" if value is None else f"{100.0 * float(value):.1f}%"


def fmt_px(value: float, digits: int = 1) -> str:
    """A coordinate in an SVG: at most ``digits`` decimals, no trailing zeros."""
    text = f"{float(value):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_points(points: Any) -> str:
    """An SVG points list: ``x,y x,y``."""
    return " ".join(f"{fmt_px(x)},{fmt_px(y)}" for x, y in points)


def fmt_dotpath(points: Any) -> str:
    """Path data of a zero-length stroke at every point: round caps draw them as dots."""
    return "".join(f"M{fmt_px(x)} {fmt_px(y)}h0" for x, y in points)


def breakable(value: Any) -> Markup:
    """A name that may wrap after ``/``, ``_`` and ``.`` (a <wbr> there), escaped: long file
    and layer names break at their joints on a phone, never one character per line."""
    text = str(escape(str(value)))
    return Markup(re.sub(r"([/_.])(?=.)", r"\1<wbr>", text))


@lru_cache(maxsize=1)
def script_hashes() -> tuple[str, ...]:
    """The CSP hashes (base64 sha256) of the inline scripts our templates write, as rendered."""
    rendered = env.get_template("_sort_script.html.jinja2").render()
    bodies = re.findall(r"<script>(.*?)</script>", rendered, flags=re.DOTALL)
    return tuple(
        sorted(
            base64.b64encode(hashlib.sha256(b.encode("utf-8")).digest()).decode() for b in bodies
        )
    )


def content_security_policy() -> str:
    """The policy every page (report and site index) carries: nothing loads, only our own
    scripts run (no handlers)."""
    scripts = " ".join(f"'sha256-{h}'" for h in script_hashes())
    return f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {scripts}"


env.filters["num"] = fmt_num
env.filters["breakable"] = breakable
env.filters["px"] = fmt_px
env.filters["points"] = fmt_points
env.filters["dotpath"] = fmt_dotpath
env.filters["sci"] = fmt_sci
env.filters["pct"] = fmt_pct
env.filters["shape"] = fmt_shape
env.globals["content_security_policy"] = content_security_policy
