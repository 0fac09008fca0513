"""What a batch remembers between runs: a manifest in the site folder, one key per run.

A run's key is a hash of lstm-report's version, the options that change a page, the
config's content and every input file's size, modification time and content hash (models,
checkpoints, probes). A rerun whose key is unchanged, and whose pages are still there,
reuses them: a report is a pure function of its inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lstm_report.config.schema import Config
from lstm_report.errors import OutputError
from lstm_report.fileio.digests import FileDigests
from lstm_report.fileio.limits import (
    MAX_MANIFEST_BYTES,
    NotRegularFileError,
    TooLargeError,
    read_regular,
)
from lstm_report.output.numbers import Change, Numbers, TopInput
from lstm_report.site.index import SiteEntry

MANIFEST = ".lstm-report-batch.json"
"""The manifest's file name in the site folder (a dot file: not part of the published site)."""

FORMAT = 1
"""The manifest's own format: a manifest of another format is ignored (every run rebuilt)."""


def run_key(
    cfg: Config, options: Mapping[str, Any], version: str, hashes: FileDigests | None = None
) -> str:
    """The hash that decides whether a run's page can be reused (``hashes``: each input
    file hashed once per batch, as many runs often share a model or probe)."""
    hashes = hashes or FileDigests()
    # The config's parsed form too: a model file given directly has no YAML of its own.
    parts = {
        "format": FORMAT,
        "version": version,
        "options": dict(sorted(options.items())),
        "config": repr(cfg),
        "files": [[label, *hashes.fingerprint(path)] for label, path in cfg.input_files()],
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IndexRow:
    """What the index shows of one report."""

    entry: SiteEntry
    numbers: Numbers


def row_json(row: IndexRow) -> dict[str, Any]:
    """The row as the manifest keeps it."""
    return {"entry": asdict(row.entry), "numbers": asdict(row.numbers)}


def row_from_json(raw: Any) -> IndexRow:
    """The IndexRow a manifest kept; raises (KeyError, TypeError, ...) if it is not one."""
    e = dict(raw["entry"])
    e["models"] = tuple(e["models"])
    e["kinds"] = tuple(e["kinds"])  # absent from older manifests: rebuilt
    n = dict(raw["numbers"])
    n["top_input"] = TopInput(**n["top_input"]) if n["top_input"] is not None else None
    n["change"] = Change(**n["change"]) if n["change"] is not None else None
    return IndexRow(SiteEntry(**e), Numbers(**n))


@dataclass(frozen=True)
class ManifestRun:
    """One run as the manifest remembers it."""

    source: str
    """The config (or model file) as an absolute path: the run's identity."""
    name: str
    key: str
    outputs: tuple[str, ...]
    """Files written, relative to the site folder (``reports/NAME.html``, ...)."""
    row: Mapping[str, Any]
    """What the index shows of the run (row_json of its IndexRow)."""


def load(site_dir: Path) -> dict[str, ManifestRun]:
    """The manifest's runs by source; empty when there is none or it is not one we wrote.

    Read as a hostile file: a manifest that is a symlink, a FIFO or a device, or larger than
    MAX_MANIFEST_BYTES, raises OutputError (the batch would otherwise hang, or read
    /dev/zero until memory runs out).
    """
    path = site_dir / MANIFEST
    try:
        if path.is_symlink():
            raise NotRegularFileError("a symbolic link")
        raw = read_regular(path, MAX_MANIFEST_BYTES, follow_symlinks=False)
    except FileNotFoundError:
        return {}
    except (NotRegularFileError, TooLargeError) as exc:
        raise OutputError(
            f"{os.fsencode(path).decode('utf-8', 'replace')}: the batch manifest is {exc}, "
            "which batch never writes; remove it (every run is then rebuilt)"
        ) from None
    except OSError:
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
        if data.get("format") != FORMAT:
            return {}
        return {
            r["source"]: ManifestRun(
                r["source"], r["name"], r["key"], tuple(r["outputs"]), r["row"]
            )
            for r in data["runs"]
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return {}  # no manifest, or not one we can trust: every run is rebuilt


def manifest_text(entries: Mapping[str, ManifestRun]) -> str:
    """The manifest's text."""
    runs = [
        {"source": e.source, "name": e.name, "key": e.key, "outputs": list(e.outputs), "row": e.row}
        for _, e in sorted(entries.items())
    ]
    return json.dumps({"format": FORMAT, "runs": runs}, indent=1, ensure_ascii=False) + "\n"


def remove_outputs(site_dir: Path, stale: set[str]) -> None:
    """Remove files a previous batch wrote that no run of this batch owns."""
    reports = (site_dir / "reports").resolve()
    for rel in sorted(stale):
        path = site_dir / rel
        # Only regular files directly in reports/, as the manifest says we wrote them.
        if path.parent.resolve() != reports or path.is_symlink() or not path.is_file():
            continue
        with contextlib.suppress(OSError):
            path.unlink()
