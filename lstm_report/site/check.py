"""Whether a page is lstm-report's own: the HTML sanitizer and the embedded JSON contract.

A page is published only when it is lstm-report's own: valid data, and no script, event
handler or link that lstm-report did not write.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from typing import Any

import html5lib
from html5lib.constants import prefixes

from lstm_report.errors import quote, shorten
from lstm_report.templating import content_security_policy
from lstm_report.templating import script_hashes as csp_hashes

DATA_ID = "lstm-report-data"
SCHEMA_VERSION = 1
SEVERITIES = ("error", "warning", "info")


class NotOurs(Exception):
    """The page carries the lstm-report marker but is not (only) what lstm-report wrote."""


# -- what lstm-report writes ------------------------------------------------------------

URL_ATTRIBUTES = frozenset(
    "href src action formaction xlink:href srcset poster background data cite ping "
    "longdesc lowsrc dynsrc manifest codebase archive".split()
)
ACTIVE_TAGS = frozenset(
    "iframe frame frameset object embed applet base link form svg math portal".split()
)
IMAGE_URIS = ("data:image/png;base64,", "data:image/svg+xml;base64,", "data:image/svg+xml,")
"""Figures: PNG, and SVG base64- or percent-encoded (lstm_report.figures.encode.svg_uri)."""
CSS_FUNCTIONS = frozenset(
    "var calc min max clamp minmax repeat not is where rgb rgba hsl hsla nth-child "
    "linear-gradient radial-gradient".split()
)
"""The CSS functions a page may use: none of them can fetch anything (url(), image-set(),
@import and friends can, and are not in the list)."""
CSS_AT_RULES = frozenset(["media"])
STYLE_ATTRIBUTE = re.compile(
    r"(\s*((width|height|left)\s*:\s*-?[0-9.]+%|max-width\s*:\s*[0-9.]+px)\s*;?)*\s*"
)
"""The only inline styles the templates write: bar widths, heights and offsets, and the
natural width of a tiled figure."""


def css_problem(css: str) -> str | None:
    """Why a style sheet could reach outside the page, or None when it cannot."""
    if "\\" in css:
        # CSS escapes can spell url( without the letters (u\72l); we write none.
        return "a backslash escape in CSS"
    text = re.sub(r"/\*.*?\*/", " ", css, flags=re.DOTALL).lower()
    for name in re.findall(r"@([a-z-]*)", text):
        if name not in CSS_AT_RULES:
            return f"a CSS @{shorten(name, 30)} rule"
    for name in re.findall(r"([a-z0-9_-]+)\(", text):
        if name not in CSS_FUNCTIONS:
            return f"a CSS function lstm-report does not write ({shorten(name, 30)}())"
    return None


def script_hashes() -> frozenset[str]:
    """sha256 (hex) of the inline script(s) our templates write, as rendered."""

    return frozenset(base64.b64decode(h).hex() for h in csp_hashes())


def policy() -> str:
    """The Content-Security-Policy every page of ours carries, exactly."""

    return content_security_policy()


def _attribute_name(key: tuple[str | None, str]) -> str:
    namespace, name = key
    if namespace is None:
        return name.lower()

    return f"{prefixes.get(namespace, namespace)}:{name.lower()}"


class _PageScanner:
    """Collects the data block and the scripts, and the first thing we would not write, from
    the document a browser builds (html5lib follows the WHATWG parsing algorithm)."""

    def __init__(self) -> None:
        self.data_blocks: list[str] = []
        self.inline: list[str] = []
        self.script_tags = 0
        self.style_tags = 0
        self.policies: list[str] = []
        self.marked = False
        """Whether a script carries our data id: the page claims to be a report."""
        self.problem: str | None = None
        self._script: list[str] | None = None
        self._style: list[str] | None = None
        self._is_data = False
        self._in_head = False
        self._head_first: str | None = None
        """The first element inside <head>: our policy must be it, so it covers the page."""

    def feed(self, html: str) -> None:
        parser = html5lib.HTMLParser(
            tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False
        )
        # Scripting on, as in the browsers the page is published for (it changes how
        # <noscript> is parsed).
        document = parser.parse(html, scripting=True)
        for token in html5lib.getTreeWalker("etree")(document):
            kind = token["type"]
            if kind in ("StartTag", "EmptyTag"):
                attrs = [(_attribute_name(k), v) for k, v in token["data"].items()]
                self.handle_starttag(token["name"].lower(), attrs)
                if kind == "EmptyTag":
                    self.handle_endtag(token["name"].lower())
            elif kind == "EndTag":
                self.handle_endtag(token["name"].lower())
            elif kind in ("Characters", "SpaceCharacters"):
                self.handle_data(token["data"])
            elif kind == "Comment":
                self._flag("a comment, CDATA section or other <! markup")
            elif kind == "Doctype":
                pass
            else:
                self._flag(f"markup lstm-report does not write ({shorten(str(kind), 30)})")

    def close(self) -> None:
        pass

    def _flag(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        first_in_head = self._in_head and self._head_first is None
        if first_in_head:
            self._head_first = tag
        if tag == "head":
            self._in_head = True
        for name, value in attrs:
            text = re.sub(r"[\x00-\x20]", "", value or "").lower()
            if name == "style" and not STYLE_ATTRIBUTE.fullmatch(value or ""):
                self._flag(
                    f"a style lstm-report does not write (<{tag} style={quote(value or '', 40)}>)"
                )
            elif name.split(":")[-1].startswith("on"):
                self._flag(f"an event-handler attribute ({shorten(name, 30)}) on <{tag}>")
            elif text.startswith(("javascript:", "vbscript:")):
                self._flag(f"a {text.split(':')[0]}: URL in <{tag} {shorten(name, 30)}>")
            elif name == "href" and not (value or "").startswith("#"):
                self._flag(f"a link out of the page (<{tag} href={quote(value or '', 40)}>)")
            elif name == "src" and not (tag == "img" and (value or "").startswith(IMAGE_URIS)):
                self._flag(f"an external source (<{tag} src={quote(value or '', 40)}>)")
            elif name in URL_ATTRIBUTES and name not in ("href", "src"):
                self._flag(f"a URL attribute lstm-report does not write (<{tag} {name}>)")
        if tag in ACTIVE_TAGS:
            self._flag(f"a <{tag}> element")
        if tag == "noscript":
            self._flag("a <noscript> element")
        if tag == "meta" and any(n == "http-equiv" for n, _ in attrs):
            a = dict(attrs)
            if (a.get("http-equiv") or "").lower() != "content-security-policy" or set(a) != {
                "http-equiv",
                "content",
            }:
                self._flag("a <meta http-equiv> element")
            elif not first_in_head or self.policies:
                self._flag("a Content-Security-Policy that is not the first element of <head>")
            self.policies.append(a.get("content") or "")
        if tag == "style":
            self.style_tags += 1
            self._style = []
        if tag == "script":
            self.script_tags += 1
            a = dict(attrs)
            self.marked = self.marked or a.get("id") == DATA_ID
            self._is_data = a == {"type": "application/json", "id": DATA_ID}
            if not self._is_data and attrs:
                self._flag("a script lstm-report did not write (with attributes)")
            self._script = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False
        if tag == "style" and self._style is not None:
            problem = css_problem("".join(self._style))
            if problem is not None:
                self._flag(problem)
            self._style = None
        if tag == "script" and self._script is not None:
            body = "".join(self._script)
            (self.data_blocks if self._is_data else self.inline).append(body)
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)
        if self._style is not None:
            self._style.append(data)


def _scan(html: str) -> _PageScanner | None:
    """The scanned page, or None when it does not carry the lstm-report data marker."""
    if DATA_ID not in html:
        return None
    scanner = _PageScanner()
    try:
        scanner.feed(html)
        scanner.close()
    except Exception:  # html5lib recovers from any markup; anything else is not ours
        scanner.problem = scanner.problem or "cannot be parsed as HTML"
        scanner.marked = True
    return scanner if scanner.marked else None


def _raw_problem(html: str) -> str | None:
    """What the text itself shows that no parser should have to find: lstm-report writes
    one doctype and no other "<!", and no <noscript> (escaped text and our data block hold
    no "<")."""
    if not html.startswith("<!DOCTYPE html>") or html.count("<!") != 1:
        return "a comment, CDATA section or other <! markup"
    if re.search(r"<noscript", html, flags=re.IGNORECASE):
        return "a <noscript> element"
    return None


def check_page(html: str) -> dict[str, Any] | None:
    """The data of an lstm-report page; None if the page is not one (no data marker).

    Raises NotOurs, naming the first problem, for a page that carries the marker but
    whose data is invalid or that carries anything lstm-report does not write.
    """
    scanner = _scan(html)
    if scanner is None:
        return None
    if scanner.problem is not None:
        raise NotOurs(scanner.problem)
    problem = _raw_problem(html)
    if problem is not None:
        raise NotOurs(problem)
    if scanner.policies != [policy()]:
        if not scanner.policies:
            raise NotOurs("no Content-Security-Policy (a report of an older lstm-report?)")
        raise NotOurs(
            f"a Content-Security-Policy lstm-report does not write "
            f"({quote(scanner.policies[0], 60)})"
        )
    if len(scanner.data_blocks) != 1:
        raise NotOurs(f"{len(scanner.data_blocks)} embedded data blocks (one expected)")
    ours = script_hashes()
    for body in scanner.inline:
        if hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest() not in ours:
            raise NotOurs("an inline script lstm-report did not write")
    # Belt and braces against parser differences: every "<script" in the text must be one
    # of the scripts seen (our data block escapes "<", so it holds none).
    if len(re.findall(r"<script", html, flags=re.IGNORECASE)) != scanner.script_tags:
        raise NotOurs("a script lstm-report did not write (hidden from the HTML parser)")
    if len(re.findall(r"<style", html, flags=re.IGNORECASE)) != scanner.style_tags:
        raise NotOurs("a style sheet lstm-report did not write (hidden from the HTML parser)")
    data = _load_json(scanner.data_blocks[0])
    check_data(data)
    return data


def report_data(html: str) -> dict[str, Any] | None:
    """The JSON a report page carries, or None if the page is not (only) an lstm-report."""
    try:
        return check_page(html)
    except NotOurs:
        return None


# -- the embedded data, checked against the JSON contract (the fields the index reads) ----


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise NotOurs(f"embedded data is not valid JSON ({shorten(str(exc), 80)})") from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({shorten(repr(value), 30)})"
    if isinstance(value, str):
        return f"a string ({quote(value, 30)})"
    return "a list" if isinstance(value, list) else "a mapping"


def _bad(where: str, expected: str, value: Any) -> NotOurs:
    return NotOurs(f"embedded data: {where}: expected {expected}, got {_kind(value)}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(where, "a mapping", value)
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(where, "a list", value)
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(where, "a string", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NotOurs(f"embedded data: {where}: not valid Unicode text") from None
    return value


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(where, "a whole number >= 0", value)
    return value


def _number_or_null(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(where, "a number or null", value)
    if not math.isfinite(float(value)):
        raise _bad(where, "a finite number", value)
    return float(value)


def _check_conv_layers(value: Any, where: str) -> None:
    """The ConvLSTM entries the index reads (a page written before them has none)."""
    for j, raw in enumerate(_list(value, where)):
        c = _mapping(raw, f"{where}[{j}]")
        _text(c.get("kind"), f"{where}[{j}].kind")
        for k, t in enumerate(_list(c.get("timescales"), f"{where}[{j}].timescales")):
            _number_or_null(t, f"{where}[{j}].timescales[{k}]")


def check_data(data: Any) -> None:
    """Raise NotOurs naming the first field the index reads that breaks the contract."""
    top = _mapping(data, "the data")
    version = top.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise _bad("schema_version", f"{SCHEMA_VERSION}", version)
    _text(top.get("title"), "title")
    _text(top.get("generated"), "generated")
    for i, raw in enumerate(_list(top.get("models"), "models")):
        m = _mapping(raw, f"models[{i}]")
        _text(m.get("name"), f"models[{i}].name")
        _count(m.get("lstm_params"), f"models[{i}].lstm_params")
        for j, raw_layer in enumerate(_list(m.get("layers"), f"models[{i}].layers")):
            where = f"models[{i}].layers[{j}]"
            la = _mapping(raw_layer, where)
            for gate, raw_gate in _mapping(la.get("spectra"), f"{where}.spectra").items():
                g = _mapping(raw_gate, f"{where}.spectra.{gate}")
                if g.get("U") is not None:
                    u = _mapping(g["U"], f"{where}.spectra.{gate}.U")
                    _number_or_null(
                        u.get("spectral_radius"), f"{where}.spectra.{gate}.U.spectral_radius"
                    )
        _check_conv_layers(m.get("conv_layers", []), f"models[{i}].conv_layers")
    for k, raw in enumerate(_list(top.get("findings"), "findings")):
        f = _mapping(raw, f"findings[{k}]")
        if f.get("severity") not in SEVERITIES:
            raise _bad(f"findings[{k}].severity", "error, warning or info", f.get("severity"))
        _text(f.get("layer"), f"findings[{k}].layer")
        _text(f.get("message"), f"findings[{k}].message")
    for k, raw in enumerate(_list(top.get("headlines"), "headlines")):
        _text(_mapping(raw, f"headlines[{k}]").get("text"), f"headlines[{k}].text")
