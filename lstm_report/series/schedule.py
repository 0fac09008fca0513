"""Which checkpoints of a series need a unit, and how they are cut into units."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lstm_report._version import __version__
from lstm_report.config.schema import ModelSpec
from lstm_report.fileio.digests import FileDigests, Stat, file_digest
from lstm_report.series.codec import LayerId
from lstm_report.series.keys import point_key
from lstm_report.series.store import Cache
from lstm_report.series.units import PointUnit

UNIT_MAX = 32
"""Checkpoints in a unit at most, on a pool: a unit re-reads the checkpoint before it, and
smaller units spread better over the workers."""


def unit_size(count: int, jobs: int) -> int:
    """How many checkpoints a unit holds when ``count`` are to be reduced on ``jobs``
    workers: about four units a worker (the last ones to finish are short), at most
    UNIT_MAX."""
    return max(1, min(UNIT_MAX, math.ceil(count / (4 * max(1, jobs)))))


def runs(todo: Sequence[int], size: int | None = None) -> list[tuple[int, int]]:
    """The units' (start, stop) ranges: the runs of consecutive indices of ``todo``
    (sorted), each cut into pieces of at most ``size`` (None: not cut)."""
    out: list[tuple[int, int]] = []
    for k in todo:
        if out and out[-1][1] == k and (size is None or k - out[-1][0] < size):
            out[-1] = (out[-1][0], k + 1)
        else:
            out.append((k, k + 1))
    return out


@dataclass(frozen=True)
class SeriesPlan:
    """A series' checkpoints, their keys, and which need a unit."""

    spec: ModelSpec
    paths: tuple[Path, ...]
    keys: tuple[str | None, ...]
    todo: tuple[int, ...]
    known: tuple[tuple[Stat, str] | None, ...] = ()
    """Each checkpoint's stat and sha256 as hashed (or remembered) by the plan."""

    def unit(self, start: int, stop: int, label: str = "") -> PointUnit:
        """The unit of checkpoints ``start`` to ``stop - 1``."""
        prev = self.paths[start - 1] if start else None
        known = self.known[start - 1 if start else 0 : stop] if self.known else ()
        return PointUnit(
            replace(self.spec, path=self.paths[start]),
            prev,
            start == 0,
            __version__,
            label,
            self.paths[start:stop],
            start,
            known,
        )

    def units(self, size: int | None = None, label: str = "") -> list[PointUnit]:
        """The units of ``todo``: runs of consecutive checkpoints of at most ``size``;
        ``label`` + ``.start`` names each."""
        return [self.unit(a, b, f"{label}.{a}" if label else "") for a, b in runs(self.todo, size)]


def plan(
    spec: ModelSpec,
    cache: Cache | None,
    wanted: Iterable[LayerId] | None = None,
    digest: Callable[[Path], str | None] | FileDigests = file_digest,
) -> SeriesPlan:
    """Hash every checkpoint and look it up. ``wanted``: the layers the report shows (None:
    those the config names, as a unit computes them)."""
    assert spec.series is not None
    paths = tuple(spec.series)
    known: tuple[tuple[Stat, str] | None, ...] = ()
    if isinstance(digest, FileDigests):
        known = tuple(digest.known(p) for p in paths)
        digests = [k[1] if k is not None else None for k in known]
    else:
        digests = [digest(p) for p in paths]
    keys = tuple(
        point_key(spec, d, digests[k - 1] if k else None, k == 0) for k, d in enumerate(digests)
    )
    todo = []
    for k, key in enumerate(keys):
        entry = cache.get(key) if cache is not None else None
        if entry is None:
            todo.append(k)
            continue
        need = (
            wanted
            if wanted is not None
            else [x for x in entry.layers if spec.layers is None or x[0] in spec.layers]
        )
        if entry.missing(need):
            todo.append(k)
    return SeriesPlan(spec, paths, keys, tuple(todo), known)
