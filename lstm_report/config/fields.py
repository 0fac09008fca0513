"""One config value at a time: typed reads whose messages name the key path."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstm_report.config.schema import READERS
from lstm_report.errors import ConfigError, quote, shorten


def check_keys(data: Mapping[Any, Any], allowed: Sequence[str], prefix: str) -> None:
    for k in data:
        if not isinstance(k, str):
            raise ConfigError(f"{prefix}{quote(k)}: keys must be strings")
        if k not in allowed:
            close = difflib.get_close_matches(k, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            valid = ", ".join(allowed)
            # A key with a line break or another control character is shown as repr shows
            # it: the message stays one line.
            name = shorten(k) if k.isprintable() else quote(k)
            raise ConfigError(f"{prefix}{name}: unknown key{hint} (valid keys: {valid})")


def optional_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    if key not in data or data[key] is None:
        return None
    value = data[key]
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {kind_of(value)}")
    return value


def optional_str_list(
    data: Mapping[str, Any], key: str, where: str, *, unique: bool = False
) -> tuple[str, ...] | None:
    if key not in data or data[key] is None:
        return None
    value = data[key]
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}: expected a list of strings, got {kind_of(value)}")
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"{where}[{i}]: expected a string, got {kind_of(item)}")
        if unique and item in seen:
            raise ConfigError(
                f"{where}[{i}]: duplicate name {quote(item)} (also {where}[{seen[item]}])"
            )
        seen[item] = i
    return tuple(value)


def resolve_path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def check_text(data: Any) -> None:
    """Every string must be text UTF-8 can carry: YAML's "\\ud800" escape makes a lone
    surrogate, which no page or JSON file can hold."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, Mapping):
            stack += [(f"{where}.{k}" if where else str(k), v) for k, v in value.items()]
            stack += [(where or "config", k) for k in value]
        elif isinstance(value, (list, tuple)):
            stack += [(f"{where}[{i}]", v) for i, v in enumerate(value)]
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = value[exc.start].encode("unicode_escape").decode("ascii")
                raise ConfigError(
                    f"{where or 'config'}: not valid text: a lone surrogate ({bad}) that no "
                    "page can hold; write the character itself"
                ) from None


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({quote(value)})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


def reader_choice(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if value not in READERS:
        raise ConfigError(f"{where}: expected one of {', '.join(READERS)}, got {kind_of(value)}")
    return str(value)


def optional_bool(data: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {kind_of(value)}")
    return value
