"""YAML config -> frozen dataclasses. All validation lives here; messages name the key path."""

from __future__ import annotations

import difflib
import glob
import os
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lstm_report.errors import ConfigError, listing, quote, shorten
from lstm_report.model.checks import Checks
from lstm_report.readers.formats import format_of, model_stem, suffix_text

DEFAULT_TITLE = "LSTM weight report"

TOP_KEYS = ("title", "output", "models", "checks", "verify", "reader", "compare")
COMPARE_KEYS = ("baseline", "candidate", "layers")
MODEL_KEYS = (
    "path",
    "name",
    "layers",
    "feature_names",
    "unsafe",
    "probe",
    "reader",
    "activations",
    "external_data",
    "pad_token",
    "vocabulary",
    "dynamics",
)
MAX_VOCABULARY_BYTES = 16 * 1024 * 1024
"""A vocabulary file is read whole, so at most this large."""
MAX_VOCABULARY = 1_000_000
"""Tokens in a vocabulary at most."""
READERS = ("auto", "direct", "keras")
EXTERNAL_DATA = ("model", "allow")
MAX_MODELS = 1000
"""A config names at most this many models: one page cannot show more, and a sweep over
thousands of models is a job for a batch command, not one report."""
ACTIVATION_KEYS = ("activation", "recurrent_activation")
PROBE_KEYS = ("path", "array", "sequence")
DYNAMICS_KEYS = ("inputs",)
DYNAMICS_INPUTS = ("zero", "mean")


CHECK_KEYS = tuple(Checks.__dataclass_fields__)


@dataclass(frozen=True)
class ProbeSpec:
    """Probe data for a model: an .npy array, or one named array of an .npz file."""

    path: Path
    array: str | None = None
    sequence: int = 0
    """Which sequence the hidden- and cell-state heatmaps show."""


def natural_key(path: Path | str) -> list[Any]:
    """Sort key putting epoch_5 before epoch_10: digit runs compare as numbers."""
    parts = re.split(r"(\d+)", str(path))
    return [int(p) if p.isdigit() else p.lower() for p in parts]


GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ModelSpec:
    """One entry of ``models:``: which file to read and what to report on it."""

    index: int
    path: Path
    name: str
    layers: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    unsafe: bool = False
    probe: ProbeSpec | None = None
    reader: str = "auto"
    """``auto`` (direct where it can read the file, else Keras), ``direct`` or ``keras``."""
    activations: tuple[tuple[str, str], ...] = ()
    """Overrides for what weights-only files cannot tell: (key, activation name) pairs."""
    series: tuple[Path, ...] | None = None
    """A checkpoint series (glob or list, in natural order); ``path`` is its last file."""
    pad_token: int = 0
    """Token models: the id that blanks a token in the importance (``pad_token``)."""
    vocabulary: tuple[str, ...] | None = None
    """Token models: the name of each token id (``vocabulary``: a list, or a text file)."""
    external_data: str = "model"
    """Where an ONNX file's external data may be read from: ``model``, only the data file
    made for it (model.onnx.data beside it); ``allow``, any file inside its folder."""
    shown: tuple[str, ...] = ()
    """How the page names each file of ``series or (path,)``: as the config gave it,
    relative to the config (an absolute path: the file name). Never an absolute path."""
    dynamics: str | None = "zero"
    """What the input is held at for the fixed points (``zero`` or ``mean``, the probe's
    mean); None: no dynamics, fixed points or unit ablation (``dynamics: false``)."""

    @property
    def key(self) -> str:
        """The key path of this entry, for error messages: ``models[0]``."""
        return f"models[{self.index}]"

    def shown_path(self, path: Path | None = None) -> str:
        """How the page, the JSON and the Markdown name ``path`` (default: ``self.path``)."""
        path = self.path if path is None else path
        files = self.series or (self.path,)
        return dict(zip(files, self.shown)).get(path, path.name)


@dataclass(frozen=True)
class CompareSpec:
    """One entry of ``compare:``: two model names, and which layer is which."""

    index: int
    baseline: str
    candidate: str
    layers: tuple[tuple[str, str], ...] | None = None
    """``layers:``: (baseline layer name, candidate layer name) pairs, in the config's order;
    None: by name, else by position (config.resolve.pair_layers)."""
    saved_baseline: Path | None = None
    """Set where the baseline is a report's JSON written earlier (then ``baseline`` is the
    path as given): its numbers are compared, not weights (output/baseline.py)."""
    saved_candidate: Path | None = None
    where: str | None = None
    """How messages name this entry (default ``compare[index]``)."""

    @property
    def saved(self) -> bool:
        return self.saved_baseline is not None or self.saved_candidate is not None


@dataclass(frozen=True)
class Config:
    """A validated config. Paths are absolute (resolved against the config's folder)."""

    models: tuple[ModelSpec, ...]
    title: str = DEFAULT_TITLE
    output: Path | None = None
    source: Path | None = None
    checks: Checks = Checks()
    verify: bool | None = None
    """Replay vs Keras: True, False, or None (only when the model was read through Keras)."""
    compare: tuple[CompareSpec, ...] = ()

    def input_files(self, skip: Collection[int] = ()) -> Iterator[tuple[str, Path]]:
        """Every file a run reads, labelled for messages: config, models, checkpoints,
        probes. ``skip``: indexes of models already in memory (their files are not read)."""
        if self.source is not None:
            yield "the config", self.source
        for spec in self.models:
            if spec.index not in skip:
                if spec.series:
                    for n, path in enumerate(spec.series, 1):
                        yield f"{spec.key}'s checkpoint {n}", path
                else:
                    yield f"{spec.key}'s model", spec.path
            if spec.probe is not None:
                yield f"{spec.key}'s probe", spec.probe.path
        for c in self.compare:
            for role, saved in (("baseline", c.saved_baseline), ("candidate", c.saved_candidate)):
                if saved is not None:
                    yield f"{c.where or f'compare[{c.index}]'}'s {role}", saved


def with_baseline(cfg: Config, baseline: str) -> Config:
    """``build --baseline OLD.json``: every model also compared with the saved report."""
    path = Path(baseline).expanduser().absolute()
    extra = tuple(
        CompareSpec(len(cfg.compare) + k, baseline, m.name, saved_baseline=path, where="--baseline")
        for k, m in enumerate(cfg.models)
    )
    return replace(cfg, compare=cfg.compare + extra)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file (see config_file: bounded, safe YAML)."""
    from lstm_report.config.yaml_file import load_config as load

    return load(path)


_MAGIC = (b"PK\x03\x04", b"\x89HDF\r\n\x1a\n")  # a zip (.keras) or an HDF5 file


def is_model_file(path: str | Path) -> bool:
    """Whether ``build`` should read this path as a model, not as a YAML config."""
    path = Path(path)
    if format_of(path) is not None:  # the readers' table of model files
        return True
    try:
        if path.is_dir() and (path / "config.json").is_file():
            return True  # a Keras 3 model saved with save(zipped=False)
    except OSError:
        return False
    if path.suffix.lower() in (".yaml", ".yml"):
        return False
    try:
        if not path.is_file():
            return False
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return head.startswith(_MAGIC) or head[4:8] == b"TFL3"  # a .tflite FlatBuffer


CONFIG_SUFFIXES = (".yaml", ".yml")


def check_config_suffix(path: str | Path) -> None:
    """ConfigError for a file whose suffix is neither a model's nor a config's (a model of a
    format lstm-report does not read, most often), instead of reading it as YAML."""
    suffix = Path(path).suffix.lower()
    if suffix and format_of(path) is None and suffix not in CONFIG_SUFFIXES:
        raise ConfigError(
            f"{path}: not a format lstm-report reads (it reads "
            f"{suffix_text()}, {', '.join(CONFIG_SUFFIXES)})"
        )


def model_file_config(
    path: str | Path,
    *,
    name: str | None = None,
    probe: str | None = None,
    feature_names: Sequence[str] | None = None,
    pad_token: int | None = None,
) -> Config:
    """The config of `lstm-report build MODEL_FILE`: one model, everything else by default.
    With a ``name``, the page is NAME.html in the current folder (else the file's name)."""
    entry: dict[str, Any] = {"path": str(path)}
    top: dict[str, Any] = {}
    if pad_token is not None:
        entry["pad_token"] = pad_token
    if name is not None:
        entry["name"] = name
        top["output"] = page_name(name)
    if probe is not None:
        entry["probe"] = probe
    if feature_names is not None:
        entry["feature_names"] = list(feature_names)
    cfg = parse_config(
        {"title": f"{name or Path(path).name}: LSTM weight report", "models": [entry], **top},
        source=Path(path).resolve(),
    )
    (spec,) = cfg.models  # a file named on the command line: its name on the page
    return replace(cfg, models=(replace(spec, shown=(spec.path.name,)),))


def page_name(name: str) -> str:
    """NAME.html for a model named NAME: a file in the current folder, whatever the name
    holds (path separators and control characters become ``_``)."""
    safe = re.sub(r"[/\\\x00-\x1f\x7f]", "_", name).strip()
    return f"{'_' if safe.startswith('.') or not safe else ''}{safe}.html"


def parse_config(
    data: Any, *, base_dir: str | Path | None = None, source: Path | None = None
) -> Config:
    """Validate a config mapping (as loaded from YAML). Relative paths resolve against base_dir."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    _check_text(data)
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: expected a mapping at the top level, got {_kind(data)}")
    _check_keys(data, TOP_KEYS, "")

    title = _optional_str(data, "title", "title")
    output = _optional_str(data, "output", "output")
    if "models" not in data:
        raise ConfigError("models: required key is missing (a list of models to report on)")
    models_raw = data["models"]
    if not isinstance(models_raw, Sequence) or isinstance(models_raw, (str, bytes)):
        raise ConfigError(f"models: expected a list, got {_kind(models_raw)}")
    if not models_raw:
        raise ConfigError("models: the list is empty; name at least one model")
    if len(models_raw) > MAX_MODELS:
        raise ConfigError(too_many_models(f"{len(models_raw):,}"))

    default_reader = _reader(data.get("reader"), "reader") or "auto"
    models = tuple(_parse_model(i, raw, base, default_reader) for i, raw in enumerate(models_raw))
    seen: dict[str, int] = {}
    for spec in models:
        if spec.name in seen:
            raise ConfigError(
                f"{spec.key}.name: duplicate model name {quote(spec.name)} "
                f"(also models[{seen[spec.name]}]); give each model a distinct name"
            )
        seen[spec.name] = spec.index
    return Config(
        models=models,
        title=title if title is not None else DEFAULT_TITLE,
        output=_resolve(base, output) if output is not None else None,
        source=source,
        checks=_parse_checks(data.get("checks")),
        verify=_optional_bool(data, "verify", "verify"),
        compare=_parse_compare(data.get("compare"), models, base),
    )


def checkpoint_label(path: Path) -> str:
    """How ``model@label`` names one checkpoint of a series: the file name without its
    model suffix (readers.formats: ``epoch_3.keras``, ``epoch_3.weights.h5``, ``epoch_3.pt``,
    ``epoch_3.safetensors``, ``epoch_3.onnx`` are all ``epoch_3``)."""
    return model_stem(path.name)


def _compare_side(value: str, models: Sequence[ModelSpec], where: str) -> str:
    """A model name, or ``model@label`` for one checkpoint of a series."""
    by_name = {m.name: m for m in models}
    if value in by_name:
        return value
    name, at, label = value.rpartition("@")
    if at and name in by_name:
        spec = by_name[name]
        if spec.series is None:
            raise ConfigError(
                f"{where}: model {name!r} is one file, not a checkpoint series; "
                f"'{name}@LABEL' names a checkpoint of a series (a glob or a list as its path)"
            )
        labels = [checkpoint_label(p) for p in spec.series]
        if label not in labels:
            raise ConfigError(
                f"{where}: no checkpoint {quote(label)} in the series {quote(name)} "
                f"(checkpoints: {listing(labels)})"
            )
        return value
    close = difflib.get_close_matches(value, list(by_name), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"{where}: no model named {quote(value)}{hint} (models: {listing(list(by_name))}; "
        "a checkpoint of a series is MODEL@LABEL)"
    )


def is_saved_report(value: str, models: Sequence[ModelSpec]) -> bool:
    """Whether a compare side names a report's JSON (a path ending in .json, not a model)."""
    return value.lower().endswith(".json") and value not in {m.name for m in models}


def _parse_compare(
    raw: Any, models: Sequence[ModelSpec], base: Path | None = None
) -> tuple[CompareSpec, ...]:
    if raw is None:
        return ()
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise ConfigError(f"compare: expected a list of {{baseline, candidate}}, got {_kind(raw)}")
    out = []
    for i, item in enumerate(raw):
        key = f"compare[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(
                f"{key}: expected a mapping with baseline and candidate, got {_kind(item)}"
            )
        _check_keys(item, COMPARE_KEYS, key + ".")
        pair = []
        saved: list[Path | None] = []  # where a side is a saved report's JSON
        for role in ("baseline", "candidate"):
            value = item.get(role)
            if value is None:
                raise ConfigError(f"{key}.{role}: required key is missing (a model name)")
            if not isinstance(value, str):
                raise ConfigError(f"{key}.{role}: expected a model name, got {_kind(value)}")
            if is_saved_report(value, models):
                pair.append(value)
                saved.append(_resolve(base or Path.cwd(), value))
                continue
            pair.append(_compare_side(value, models, f"{key}.{role}"))
            saved.append(None)
        if pair[0] == pair[1]:
            raise ConfigError(f"{key}: baseline and candidate are the same model {quote(pair[0])}")
        for role, name, path in zip(("baseline", "candidate"), pair, saved):
            if path is None and any(saved) and "@" in name and name not in {m.name for m in models}:
                raise ConfigError(
                    f"{key}.{role}: a saved report is compared with a model, not with a "
                    f"checkpoint of a series ({quote(name)})"
                )
        out.append(
            CompareSpec(
                i,
                pair[0],
                pair[1],
                _layer_map(item.get("layers"), key),
                saved_baseline=saved[0],
                saved_candidate=saved[1],
            )
        )
    return tuple(out)


def _layer_map(raw: Any, key: str) -> tuple[tuple[str, str], ...] | None:
    """``layers: {baseline layer: candidate layer}``: names only here; whether the models
    have them is known once they are read."""
    if raw is None:
        return None
    where = f"{key}.layers"
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping of baseline layer names to candidate layer names "
            f"({{lstm: lstm_1}}), got {_kind(raw)}"
        )
    if not raw:
        raise ConfigError(f"{where}: the mapping is empty; omit the key to match layers by name")
    seen: dict[str, str] = {}
    for b, c in raw.items():
        if not isinstance(b, str) or not b:
            raise ConfigError(f"{where}: expected layer names as keys, got {_kind(b)}")
        if not isinstance(c, str) or not c:
            raise ConfigError(f"{where}.{b}: expected a candidate layer name, got {_kind(c)}")
        if c in seen:
            raise ConfigError(
                f"{where}.{b}: candidate layer {quote(c)} is already mapped from {quote(seen[c])}"
            )
        seen[c] = b
    return tuple((str(b), str(c)) for b, c in raw.items())


def _parse_checks(raw: Any) -> Checks:
    if raw is None:
        return Checks()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"checks: expected a mapping of thresholds, got {_kind(raw)}")
    _check_keys(raw, CHECK_KEYS, "checks.")
    values: dict[str, float] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"checks.{key}: expected a number, got {_kind(value)}")
        if not value >= 0 or value != value or value == float("inf"):
            raise ConfigError(f"checks.{key}: expected a finite number >= 0, got {value}")
        if key in ("saturation_fraction", "duplicate_cosine") and value > 1:
            raise ConfigError(f"checks.{key}: expected a number between 0 and 1, got {value}")
        values[key] = float(value)
    return Checks(**values)


def _parse_probe(raw: Any, key: str, base: Path) -> ProbeSpec | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected a path or a mapping with 'path', got {_kind(raw)}")
    _check_keys(raw, PROBE_KEYS, key + ".")
    path = _optional_str(raw, "path", f"{key}.path")
    if not path:
        raise ConfigError(f"{key}.path: required key is missing (an .npy or .npz file)")
    array = _optional_str(raw, "array", f"{key}.array")
    sequence = raw.get("sequence", 0)
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise ConfigError(f"{key}.sequence: expected a sequence index >= 0, got {_kind(sequence)}")
    return ProbeSpec(path=_resolve(base, path), array=array, sequence=sequence)


def _reader(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if value not in READERS:
        raise ConfigError(f"{where}: expected one of {', '.join(READERS)}, got {_kind(value)}")
    return str(value)


def _optional_bool(data: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {_kind(value)}")
    return value


def _parse_activations(raw: Any, key: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected a mapping (activation, recurrent_activation)")
    _check_keys(raw, ACTIVATION_KEYS, key + ".")
    out = []
    for k in ACTIVATION_KEYS:
        if k in raw:
            v = raw[k]
            if not isinstance(v, str) or not v:
                raise ConfigError(f"{key}.{k}: expected an activation name, got {_kind(v)}")
            out.append((k, v))
    return tuple(out)


def _parse_model(index: int, raw: Any, base: Path, default_reader: str = "auto") -> ModelSpec:
    key = f"models[{index}]"
    if isinstance(raw, str):
        raw = {"path": raw}  # shorthand: a bare path
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected a mapping with at least 'path', got {_kind(raw)}")
    _check_keys(raw, MODEL_KEYS, key + ".")
    if "path" not in raw:
        raise ConfigError(f"{key}.path: required key is missing (the model file to read)")
    series: tuple[Path, ...] | None = None
    shown: tuple[str, ...]
    if isinstance(raw["path"], Sequence) and not isinstance(raw["path"], str):
        listed = _optional_str_list(raw, "path", f"{key}.path") or ()
        if not listed:
            raise ConfigError(f"{key}.path: the list of checkpoints is empty")
        series = tuple(_resolve(base, p) for p in listed)
        shown = tuple(_shown(p, s, base) for p, s in zip(listed, series))
        path_str = listed[-1]
    else:
        path_str = _optional_str(raw, "path", f"{key}.path") or ""
        if not path_str:
            raise ConfigError(f"{key}.path: must not be empty")
        if GLOB_CHARS.search(path_str):
            pattern = _resolve(base, path_str)
            found = sorted(
                (Path(p) for p in glob.glob(str(pattern)) if Path(p).is_file()), key=natural_key
            )
            if not found:
                raise ConfigError(f"{key}.path: no file matches {quote(path_str)}")
            series = tuple(found)
            shown = tuple(_shown(path_str, f, base) for f in found)
        else:
            shown = (_shown(path_str, _resolve(base, path_str), base),)
    path = series[-1] if series else _resolve(base, path_str)
    if series is not None and len(series) < 2:
        series = None
    name = _optional_str(raw, "name", f"{key}.name")
    if name is not None and not name.strip():
        raise ConfigError(f"{key}.name: must not be empty")
    layers = _optional_str_list(raw, "layers", f"{key}.layers")
    if layers is not None and not layers:
        raise ConfigError(f"{key}.layers: the list is empty; omit the key to report every LSTM")
    features = _optional_str_list(raw, "feature_names", f"{key}.feature_names", unique=True)
    unsafe = raw.get("unsafe", False)
    if not isinstance(unsafe, bool):
        raise ConfigError(f"{key}.unsafe: expected true or false, got {_kind(unsafe)}")
    external = raw.get("external_data", "model")
    if external not in EXTERNAL_DATA:
        raise ConfigError(
            f"{key}.external_data: expected allow or model (the default: only the data file "
            f"made for the model), got {_kind(external)}"
        )
    return ModelSpec(
        index=index,
        path=path,
        name=name if name is not None else Path(path_str).name,
        layers=layers,
        feature_names=features,
        unsafe=unsafe,
        probe=_parse_probe(raw.get("probe"), f"{key}.probe", base),
        reader=_reader(raw.get("reader"), f"{key}.reader") or default_reader,
        activations=_parse_activations(raw.get("activations"), f"{key}.activations"),
        series=series,
        external_data=external,
        shown=shown[-1:] if series is None else shown,
        pad_token=_pad_token(raw.get("pad_token", 0), f"{key}.pad_token"),
        vocabulary=_vocabulary(raw.get("vocabulary"), f"{key}.vocabulary", base),
        dynamics=_parse_dynamics(raw.get("dynamics", True), f"{key}.dynamics"),
    )


def _parse_dynamics(raw: Any, key: str) -> str | None:
    """``dynamics: false`` (skip), ``true`` or ``{inputs: zero | mean}``."""
    if raw is False:
        return None
    if raw is True or raw is None:
        return "zero"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected false or a mapping with 'inputs', got {_kind(raw)}")
    _check_keys(raw, DYNAMICS_KEYS, f"{key}.")
    inputs = raw.get("inputs", "zero")
    if inputs not in DYNAMICS_INPUTS:
        raise ConfigError(
            f"{key}.inputs: expected zero or mean (the probe's mean input), got {_kind(inputs)}"
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
        raise ConfigError(f"{where}: expected a token id (an integer ≥ 0), got {_kind(value)}")
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
                raise ConfigError(f"{where}[{i}]: expected a string, got {_kind(v)}")
        return tuple(str(v) for v in value)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a list of tokens or a file path, got {_kind(value)}")
    from lstm_report.fileio.limits import NotRegularFileError, open_regular, read_at_most, size_text

    path = _resolve(base, value)
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


def too_many_models(count: str) -> str:
    return (
        f"models: {count} models; one config names at most {MAX_MODELS:,} "
        "(split them into several configs; for sweeps, `lstm-report batch` builds one report "
        "per config)"
    )


def _check_keys(data: Mapping[Any, Any], allowed: Sequence[str], prefix: str) -> None:
    for k in data:
        if not isinstance(k, str):
            raise ConfigError(f"{prefix}{quote(k)}: keys must be strings")
        if k not in allowed:
            close = difflib.get_close_matches(k, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            valid = ", ".join(allowed)
            raise ConfigError(f"{prefix}{shorten(k)}: unknown key{hint} (valid keys: {valid})")


def _optional_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    if key not in data or data[key] is None:
        return None
    value = data[key]
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {_kind(value)}")
    return value


def _optional_str_list(
    data: Mapping[str, Any], key: str, where: str, *, unique: bool = False
) -> tuple[str, ...] | None:
    if key not in data or data[key] is None:
        return None
    value = data[key]
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}: expected a list of strings, got {_kind(value)}")
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"{where}[{i}]: expected a string, got {_kind(item)}")
        if unique and item in seen:
            raise ConfigError(
                f"{where}[{i}]: duplicate name {quote(item)} (also {where}[{seen[item]}])"
            )
        seen[item] = i
    return tuple(value)


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _check_text(data: Any) -> None:
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


def _kind(value: Any) -> str:
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
