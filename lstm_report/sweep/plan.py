"""A batch's plan: the files named, their page names, and what to do with each run."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstm_report._version import __version__
from lstm_report.config.schema import Config, natural_key
from lstm_report.config.sources import check_config_suffix, is_model_file, model_file_config
from lstm_report.config.yaml_file import load_config
from lstm_report.errors import ConfigError, LstmReportError, one_line
from lstm_report.fileio.digests import FileDigests
from lstm_report.fileio.write import check_outputs
from lstm_report.site.index import page_name
from lstm_report.sweep import manifest
from lstm_report.sweep.manifest import IndexRow, ManifestRun, row_from_json

KINDS = {".html": "the page", ".json": "the JSON", ".md": "the Markdown summary"}
"""What each file of a run is, for messages."""


@dataclass(frozen=True)
class BatchOptions:
    """The options of a batch that change its pages (each run's key holds them)."""

    json: bool = False
    unsafe: bool = False
    verify: bool | None = None
    reader: str | None = None
    allow_external_data: bool = False

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The files each run writes."""
        return (".html", ".json", ".md") if self.json else (".html", ".md")

    def key_options(self, model_file: bool) -> dict[str, Any]:
        """The options as a run's key holds them."""
        options: dict[str, Any] = {
            "json": self.json,
            "unsafe": self.unsafe,
            "verify": self.verify,
            "reader": self.reader,
        }
        if self.allow_external_data:  # only when given: the run keys of earlier batches stay valid
            options["allow_external_data"] = True
        return {**options, "model_file": model_file}


@dataclass(frozen=True)
class ReportUnit:
    """One work unit: everything a worker needs to build one report (no file of ours)."""

    name: str
    source: str
    """The config (or model file) as the user named it: for messages and the index."""
    config: Config
    generated: str
    version: str
    options: BatchOptions = BatchOptions()
    points: tuple[tuple[str, Any], ...] = ()
    """The figures of its series' checkpoints, computed by earlier units: (key, entry)."""


@dataclass(frozen=True)
class Outcome:
    """One run of the batch, as it ended: ``built``, ``reused`` or ``failed``."""

    source: str
    name: str
    status: str
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    row: IndexRow | None = None

    @property
    def message(self) -> str:
        """``SOURCE: what went wrong`` (the source is not repeated when the error names it)."""
        error = self.error or ""
        return error if error.startswith(f"{self.source}:") else f"{self.source}: {error}"


@dataclass(frozen=True)
class RunToBuild:
    """A run the batch builds: its unit, its key and the files it writes."""

    unit: ReportUnit
    key: str
    outputs: tuple[str, ...]

    @property
    def ident(self) -> str:
        """The run's identity in the manifest: its source as an absolute path."""
        return os.path.abspath(self.unit.source)


@dataclass(frozen=True)
class BatchPlan:
    """What a batch does with each run; ``kept`` and ``outcomes`` fill in as runs end."""

    generated: str
    old: dict[str, ManifestRun]
    """The previous batch's manifest, by source."""
    kept: dict[str, ManifestRun] = field(default_factory=dict)
    """The new manifest: runs reused or built."""
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    """By page name."""
    todo: dict[str, RunToBuild] = field(default_factory=dict)
    """Runs to build, by page name."""
    digests: FileDigests = field(default_factory=FileDigests)
    """sha256 of the input files (each hashed once per batch)."""

    @property
    def units(self) -> list[ReportUnit]:
        """The work units of the runs to build, in batch order."""
        return [run.unit for run in self.todo.values()]


def expand(patterns: Sequence[str]) -> list[str]:
    """Every file the arguments name (globs in natural order), each once, in order."""
    out: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        if glob.has_magic(pattern):
            found = sorted(
                (p for p in glob.glob(pattern, recursive=True) if not os.path.isdir(p)),
                key=natural_key,
            )
            if not found:
                raise ConfigError(f"{pattern}: matches no file")
        elif os.path.lexists(pattern):
            found = [pattern]
        else:
            raise ConfigError(f"{pattern}: no such file")
        for p in found:
            real = os.path.realpath(p)
            if real not in seen:
                seen.add(real)
                out.append(p)
    return out


def page_names(sources: Sequence[str]) -> list[str]:
    """A unique, file-safe name per source: its path below the folder common to all, with
    ``__`` between folders (runs/run7/config.yaml -> run7__config)."""
    absolute = [os.path.abspath(s) for s in sources]
    common = os.path.commonpath([os.path.dirname(a) for a in absolute]) if absolute else ""
    used: set[str] = set()
    return [page_name(Path(os.path.relpath(a, common)), used) for a in absolute]


def load_source(source: str) -> Config:
    """The config a batch argument names: a YAML config, or a model file on its own."""
    if is_model_file(source):
        return model_file_config(source)
    check_config_suffix(source)
    return load_config(source)


def plan_batch(
    out: Path,
    sources: Sequence[str],
    names: Sequence[str],
    generated: str,
    options: BatchOptions,
    no_cache: bool = False,
) -> BatchPlan:
    """Read every config, key it, and decide: failed already, reused, or to build."""
    plan = BatchPlan(generated, manifest.load(out))
    for source, name in zip(sources, names):
        ident = os.path.abspath(source)
        outputs = tuple(f"reports/{name}{s}" for s in options.suffixes)
        try:
            cfg = load_source(source)
            key_options = options.key_options(is_model_file(source))
            key = manifest.run_key(cfg, key_options, __version__, plan.digests)
            check_outputs(
                [(f"{KINDS[s]} of {source}", out / o) for s, o in zip(options.suffixes, outputs)],
                cfg.input_files(),
            )
        except LstmReportError as exc:
            plan.outcomes[name] = Outcome(source, name, "failed", one_line(str(exc)))
            if ident in plan.old:
                plan.kept[ident] = plan.old[ident]  # its pages stay, as a failed build leaves them
            continue
        if not no_cache and _reuse(out, plan, source, name, key, outputs):
            continue
        unit = ReportUnit(name, source, cfg, generated, __version__, options)
        plan.todo[name] = RunToBuild(unit, key, outputs)
    return plan


def _reuse(
    out: Path, plan: BatchPlan, source: str, name: str, key: str, outputs: tuple[str, ...]
) -> bool:
    """Reuse the run's pages if its key and files are those of the previous batch."""
    previous = plan.old.get(os.path.abspath(source))
    if (
        previous is None
        or (previous.key, previous.outputs) != (key, outputs)
        or not all((out / o).is_file() for o in outputs)
    ):
        return False
    with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
        row = row_from_json(previous.row)
        plan.outcomes[name] = Outcome(source, name, "reused", row=row)
        plan.kept[os.path.abspath(source)] = previous
        return True
    return False
