"""Read a config file: a regular file of bounded size, safe YAML (no tags, no code), merge
keys allowed, duplicate keys refused, alias expansion bounded; then parse_config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lstm_report.config.parse import parse_config
from lstm_report.config.schema import MAX_MODELS, Config, too_many_models
from lstm_report.errors import ConfigError, first_line, quote, shorten
from lstm_report.fileio.limits import (
    MAX_CONFIG_BYTES,
    open_hostile,
    read_at_most,
    size_text,
)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = shorten(exc.problem or exc.context or "syntax error", 200)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {shorten(str(exc), 200)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply to read") from None
    except (ValueError, OverflowError) as exc:  # a value yaml recognised but cannot build
        raise ConfigError(f"{path}: invalid YAML: {first_line(exc)[:300]}") from None
    if data is None:
        raise ConfigError(f"{path}: config is empty; it needs at least a 'models' list")
    return parse_config(data, base_dir=path.resolve().parent, source=path.resolve())


def _read_text(path: Path) -> str:
    """The config's text: a regular file of at most MAX_CONFIG_BYTES, in UTF-8."""

    def unreadable(why: object) -> ConfigError:
        return ConfigError(f"{path}: cannot read config: {why}")

    with open_hostile(
        path,
        missing=lambda: ConfigError(f"{path}: config file not found"),
        directory=lambda: ConfigError(f"{path}: is a directory, not a config file"),
        special=lambda what: ConfigError(f"{path}: {what}; a config must be a file"),
        unreadable=unreadable,
    ) as fh:
        try:
            raw = read_at_most(fh, MAX_CONFIG_BYTES)
        except OSError as exc:  # the disk failing once the file is open
            raise unreadable(exc.strerror or exc) from None
    if raw is None:
        raise ConfigError(
            f"{path}: config is larger than {size_text(MAX_CONFIG_BYTES)}; refused "
            "(a config is a few kilobytes)"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (UTF-8 expected)") from None


MAX_YAML_NODES = 1_000_000
"""A config whose aliases and merge keys expand to more values than this is refused."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that rejects duplicate keys instead of silently keeping the last,
    supports merge keys (``<<: *defaults``) and refuses alias bombs before expanding."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.explicit_keys: dict[int, list[Any]] = {}
        self.path: list[Any] = []

    def flatten_mapping(self, node: Any) -> None:
        # Merging rewrites node.value in place: remember the keys written in the
        # mapping itself first, the only ones that can be duplicates.
        self.explicit_keys.setdefault(id(node), _explicit(node))
        super().flatten_mapping(node)

    def compose_node(self, parent: Any, index: Any) -> Any:
        # Stop reading at the first model too many, rather than compose them all.
        self.path.append(index)
        try:
            if (
                len(self.path) == 3
                and isinstance(index, int)
                and index >= MAX_MODELS
                and getattr(self.path[1], "value", None) == "models"
            ):
                raise ConfigError(too_many_models(f"more than {MAX_MODELS:,}"))
            return super().compose_node(parent, index)
        finally:
            self.path.pop()

    def construct_document(self, node: Any) -> Any:
        _check_expansion(node)
        return super().construct_document(node)


def _explicit(node: Any) -> list[Any]:
    """The keys written in a mapping node itself, not merged in."""
    return [k for k, _ in node.value if k.tag != _MERGE_TAG]


def _check_expansion(root: Any) -> None:
    """Count the values the document would expand to, each shared node once (fast)."""
    size: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            active.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            if size[key] > MAX_YAML_NODES:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"aliases expand to more than {MAX_YAML_NODES:,} values",
                    node.start_mark,
                )
            continue
        if key in size:
            continue
        if key in active:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias refers to its own anchor", node.start_mark
            )
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)


def _construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
    """A mapping, refusing a key written twice in it (merged keys may repeat)."""
    seen: set[Any] = set()
    for key_node in loader.explicit_keys.get(id(node)) or _explicit(node):
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            duplicate = False
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {quote(key)}", key_node.start_mark
            )
        try:
            seen.add(key)
        except TypeError:
            pass
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _construct_int(loader: Any, node: Any) -> Any:
    """An integer, or a YAML error for one too long for Python to convert."""
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:  # Python refuses to convert integers of more than 4300 digits
        problem = f"integer too long ({len(str(node.value)):,} characters)"
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
