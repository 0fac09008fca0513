"""One entry of ``models:`` -> ModelSpec: its file or series, probe, activations, tokens."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lstm_report.config.fields import (
    check_keys,
    kind_of,
    optional_str,
    optional_str_list,
    reader_choice,
    resolve_path,
)
from lstm_report.config.schema import (
    ACTIVATION_KEYS,
    DYNAMICS_INPUTS,
    DYNAMICS_KEYS,
    EXTERNAL_DATA,
    GLOB_CHARS,
    MODEL_KEYS,
    PROBE_KEYS,
    ModelSpec,
    ProbeSpec,
    natural_key,
)
from lstm_report.errors import ConfigError, quote
from lstm_report.fileio.limits import NotRegularFileError, open_regular, read_at_most, size_text

MAX_VOCABULARY_BYTES = 16 * 1024 * 1024
"""A vocabulary file is read whole, so at most this large."""
MAX_VOCABULARY = 1_000_000
"""Tokens in a vocabulary at most."""


def parse_model(index: int, raw: Any, base: Path, default_reader: str = "auto") -> ModelSpec:
    """``models[index]``: a bare path or a mapping of MODEL_KEYS."""
    key = f"models[{index}]"
    if isinstance(raw, str):
        raw = {"path": raw}  # shorthand: a bare path
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected a mapping with at least 'path', got {kind_of(raw)}")
    check_keys(raw, MODEL_KEYS, key + ".")
    if "path" not in raw:
        raise ConfigError(f"{key}.path: required key is missing (the model file to read)")
    path_str, series, shown = _files(raw["path"], raw, key, base)
    path = series[-1] if series else resolve_path(base, path_str)
    if series is not None and len(series) < 2:
        series = None
    name = optional_str(raw, "name", f"{key}.name")
    if name is not None and not name.strip():
        raise ConfigError(f"{key}.name: must not be empty")
    layers = optional_str_list(raw, "layers", f"{key}.layers")
    if layers is not None and not layers:
        raise ConfigError(f"{key}.layers: the list is empty; omit the key to report every LSTM")
    features = optional_str_list(raw, "feature_names", f"{key}.feature_names", unique=True)
    unsafe = raw.get("unsafe", False)
    if not isinstance(unsafe, bool):
        raise ConfigError(f"{key}.unsafe: expected true or false, got {kind_of(unsafe)}")
    external = raw.get("external_data", "model")
    if external not in EXTERNAL_DATA:
        raise ConfigError(
            f"{key}.external_data: expected allow or model (the default: only the data file "
            f"made for the model), got {kind_of(external)}"
        )
    return ModelSpec(
        index=index,
        path=path,
        name=name if name is not None else Path(path_str).name,
        layers=layers,
        feature_names=features,
        unsafe=unsafe,
        probe=_parse_probe(raw.get("probe"), f"{key}.probe", base),
        reader=reader_choice(raw.get("reader"), f"{key}.reader") or default_reader,
        activations=_parse_activations(raw.get("activations"), f"{key}.activations"),
        series=series,
        external_data=external,
        shown=shown[-1:] if series is None else shown,
        pad_token=_pad_token(raw.get("pad_token", 0), f"{key}.pad_token"),
        vocabulary=_vocabulary(raw.get("vocabulary"), f"{key}.vocabulary", base),
        dynamics=_parse_dynamics(raw.get("dynamics", True), f"{key}.dynamics"),
    )


def _files(
    value: Any, raw: Mapping[str, Any], key: str, base: Path
) -> tuple[str, tuple[Path, ...] | None, tuple[str, ...]]:
    """``path:`` as given (its last file), the series it names (a list or a glob), and how
    the page names each file."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        listed = optional_str_list(raw, "path", f"{key}.path") or ()
        if not listed:
            raise ConfigError(f"{key}.path: the list of checkpoints is empty")
        series = tuple(resolve_path(base, p) for p in listed)
        return listed[-1], series, tuple(_shown(p, s, base) for p, s in zip(listed, series))
    path_str = optional_str(raw, "path", f"{key}.path") or ""
    if not path_str:
        raise ConfigError(f"{key}.path: must not be empty")
    if not GLOB_CHARS.search(path_str):
        return path_str, None, (_shown(path_str, resolve_path(base, path_str), base),)
    pattern = resolve_path(base, path_str)
    found = sorted((Path(p) for p in glob.glob(str(pattern)) if Path(p).is_file()), key=natural_key)
    if not found:
        raise ConfigError(f"{key}.path: no file matches {quote(path_str)}")
    return path_str, tuple(found), tuple(_shown(path_str, f, base) for f in found)


def _parse_dynamics(raw: Any, key: str) -> str | None:
    """``dynamics: false`` (skip), ``true`` or ``{inputs: zero | mean}``."""
    if raw is False:
        return None
    if raw is True or raw is None:
        return "zero"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected false or a mapping with 'inputs', got {kind_of(raw)}")
    check_keys(raw, DYNAMICS_KEYS, f"{key}.")
    inputs = raw.get("inputs", "zero")
    if inputs not in DYNAMICS_INPUTS:
        raise ConfigError(
            f"{key}.inputs: expected zero or mean (the probe's mean input), got {kind_of(inputs)}"
        )
    return str(inputs)


def _shown(given: str, path: Path, base: Path) -> str:
    """A file as the page names it: relative to the config's folder where the config gave
    a relative path (a glob: each match), else its name; never a local absolute path."""
    if Path(given).expanduser().is_absolute():
        return path.name
    return Path(os.path.relpath(path, base)).as_posix() if path.is_absolute() else given


def _pad_token(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: expected a token id (an integer ≥ 0), got {kind_of(value)}")
    return value


def _vocabulary(value: Any, where: str, base: Path) -> tuple[str, ...] | None:
    """A list of token names, or the lines of a text file (read bounded, as hostile)."""
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) > MAX_VOCABULARY:
            raise ConfigError(f"{where}: {len(value)} tokens; at most {MAX_VOCABULARY:,}")
        for i, v in enumerate(value):
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise ConfigError(f"{where}[{i}]: expected a string, got {kind_of(v)}")
        return tuple(str(v) for v in value)
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{where}: expected a list of tokens or a file path, got {kind_of(value)}"
        )

    path = resolve_path(base, value)
    try:
        with open_regular(path) as fh:
            data = read_at_most(fh, MAX_VOCABULARY_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{where}: vocabulary file not found: {path}") from None
    except (NotRegularFileError, IsADirectoryError) as exc:
        raise ConfigError(f"{where}: {path} is not a regular file ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if data is None:
        raise ConfigError(f"{where}: {path.name} is larger than {size_text(MAX_VOCABULARY_BYTES)}")
    lines = data.decode("utf-8", "replace").splitlines()
    if len(lines) > MAX_VOCABULARY:
        raise ConfigError(f"{where}: {len(lines)} tokens; at most {MAX_VOCABULARY:,}")
    return tuple(lines)


def _parse_probe(raw: Any, key: str, base: Path) -> ProbeSpec | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected a path or a mapping with 'path', got {kind_of(raw)}")
    check_keys(raw, PROBE_KEYS, key + ".")
    path = optional_str(raw, "path", f"{key}.path")
    if not path:
        raise ConfigError(f"{key}.path: required key is missing (an .npy or .npz file)")
    array = optional_str(raw, "array", f"{key}.array")
    sequence = raw.get("sequence", 0)
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise ConfigError(
            f"{key}.sequence: expected a sequence index >= 0, got {kind_of(sequence)}"
        )
    return ProbeSpec(path=resolve_path(base, path), array=array, sequence=sequence)


def _parse_activations(raw: Any, key: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected a mapping (activation, recurrent_activation)")
    check_keys(raw, ACTIVATION_KEYS, key + ".")
    out = []
    for k in ACTIVATION_KEYS:
        if k in raw:
            v = raw[k]
            if not isinstance(v, str) or not v:
                raise ConfigError(f"{key}.{k}: expected an activation name, got {kind_of(v)}")
            out.append((k, v))
    return tuple(out)
