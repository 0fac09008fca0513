"""Where a build's Config comes from: a YAML file, a mapping, one model file; and what
the command line or the caller changes in it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lstm_report.config.parse import parse_config
from lstm_report.config.schema import CompareSpec, Config, page_name
from lstm_report.config.yaml_file import load_config
from lstm_report.errors import ConfigError
from lstm_report.readers.formats import format_of, has_model_magic, suffix_text

CONFIG_SUFFIXES = (".yaml", ".yml")


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
    if path.suffix.lower() in CONFIG_SUFFIXES:
        return False
    return has_model_magic(path)  # a model file under another name


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


def with_baseline(cfg: Config, baseline: str) -> Config:
    """``build --baseline OLD.json``: every model also compared with the saved report."""
    path = Path(baseline).expanduser().absolute()
    extra = tuple(
        CompareSpec(len(cfg.compare) + k, baseline, m.name, saved_baseline=path, where="--baseline")
        for k, m in enumerate(cfg.models)
    )
    return replace(cfg, compare=cfg.compare + extra)


def with_overrides(
    cfg: Config,
    *,
    unsafe: bool,
    reader: str | None,
    verify: bool | None,
    allow_external_data: bool = False,
    dynamics: bool = True,
) -> Config:
    """The config with the command line's overrides applied (they win over the file)."""
    if not dynamics:
        cfg = replace(cfg, models=tuple(replace(m, dynamics=None) for m in cfg.models))
    if unsafe:
        cfg = replace(cfg, models=tuple(replace(m, unsafe=True) for m in cfg.models))
    if allow_external_data:
        cfg = replace(cfg, models=tuple(replace(m, external_data="allow") for m in cfg.models))
    if reader is not None:
        cfg = replace(cfg, models=tuple(replace(m, reader=reader) for m in cfg.models))
    return cfg if verify is None else replace(cfg, verify=verify)


def as_config(config: object) -> Config:
    """A Config from a YAML path, a config mapping, or a Config as it is; ConfigError for
    anything else."""
    if isinstance(config, Config):
        return config
    if isinstance(config, (str, Path)):
        return load_config(config)
    if isinstance(config, Mapping):
        return parse_config(config)
    raise ConfigError(
        f"config: expected a path, a mapping or a Config, got {type(config).__name__}"
    )
