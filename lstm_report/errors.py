"""Typed errors. Library code raises these; only the CLI prints them."""

from __future__ import annotations

from collections.abc import Iterable


class LstmReportError(Exception):
    """Base class: the message is one line that says what went wrong and where."""


class ConfigError(LstmReportError):
    """The config (or a CLI option standing in for it) is invalid."""


class ExpressionError(ConfigError):
    """A ``--fail-if`` expression cannot be read, or names what the report has no value of:
    a usage error (exit status 2)."""


class ModelLoadError(LstmReportError):
    """A model file is missing, unreadable, unsafe or not a Keras model."""


class CorruptModelError(ModelLoadError):
    """The file is damaged or hostile (data missing, impossible, or kept outside the file):
    refused outright, no reader tries it."""


class UnsafeModelError(ModelLoadError):
    """The model needs unsafe deserialization (e.g. a Lambda layer) and no opt-in was given."""


class AnalysisError(LstmReportError):
    """The weights cannot be analysed (e.g. shapes inconsistent with an LSTM)."""


class OutputError(LstmReportError):
    """The report or JSON cannot be written."""


QUOTE_KEEP = 60
"""A value quoted in a message keeps this many characters; the rest is counted, not shown."""

LIST_KEEP = 5
"""A list in a message shows this many items, then how many more there are."""

LINE_MAX = 1000
"""The CLI never prints an error line longer than this (a last guard)."""


def quote(value: object, keep: int = QUOTE_KEEP) -> str:
    """repr(value) for a message, shortened: ``'abc…' (52,000,000 characters)``."""
    if isinstance(value, str) and len(value) > keep:
        return f"{value[:keep]!r}… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= keep else f"{text[:keep]}… ({len(text):,} characters)"


def shorten(text: str, keep: int = QUOTE_KEEP) -> str:
    """text as is, or its first keep characters and how long it was (unquoted)."""
    text = str(text)
    return text if len(text) <= keep else f"{text[:keep]}… ({len(text):,} characters)"


def listing(items: Iterable[object], keep: int = LIST_KEEP, *, empty: str = "none") -> str:
    """Comma-separated items, each shortened: the first keep, then ``… and N more``."""
    shown: list[str] = []
    more = 0
    for item in items:
        if len(shown) < keep:
            shown.append(shorten(str(item)))
        else:
            more += 1
    if not shown:
        return empty
    return ", ".join(shown) + (f", … and {more:,} more" if more else "")


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type's name if it has none), as a reason."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def one_line(text: str, limit: int = LINE_MAX) -> str:
    """text on one line (line breaks become spaces), at most limit characters."""
    flat = " ".join(str(text).split("\n")).replace("\r", " ")
    if len(flat) <= limit:
        return flat
    return flat[: limit - 30] + f"… ({len(flat):,} characters)"
