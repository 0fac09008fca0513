"""Checkpoint work units: a run of consecutive checkpoints, read and reduced in a worker."""

from __future__ import annotations

import threading
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

import lstm_report.readers.keras.direct  # noqa: F401  (warmed: most checkpoints are Keras files)
from lstm_report._version import __version__
from lstm_report.analysis.series import layer_point
from lstm_report.config.schema import ModelSpec
from lstm_report.errors import ConfigError, LstmReportError, one_line, shorten
from lstm_report.fileio import digests
from lstm_report.fileio.digests import Stat, file_stat
from lstm_report.model.layers import ModelWeights, RecurrentLayer
from lstm_report.readers import dispatch
from lstm_report.series.codec import CheckpointFigures, entry_json
from lstm_report.series.keys import point_key


@dataclass(frozen=True)
class PointUnit:
    """A run of consecutive checkpoints to reduce, in a worker: everything it needs (no
    file of ours). Each file is read once, in turn, the one before it kept for its change."""

    spec: ModelSpec
    """The model entry, its ``path`` the run's first checkpoint (how to read it, which
    layers)."""
    previous: Path | None
    """The checkpoint before the run (read for the first one's change), or None."""
    first: bool
    """Whether the run starts the series."""
    version: str
    label: str = ""
    """The run and checkpoints, for Dask's task names."""
    paths: tuple[Path, ...] = ()
    """The run's checkpoints, in order (none: just ``spec.path``)."""
    start: int = 0
    """The index of the run's first checkpoint in its series."""
    known: tuple[tuple[Stat, str] | None, ...] = ()
    """For ``previous`` (if any) and each of ``paths``: the stat and sha256 the plan saw;
    a file whose stat is still that is not hashed again."""

    @property
    def files(self) -> tuple[Path, ...]:
        return self.paths or (self.spec.path,)


@dataclass(frozen=True)
class PointResult:
    points: tuple[tuple[str | None, dict[str, Any]], ...] = ()
    """(key, entry in JSON form) of each checkpoint of the unit, in order, up to a failure."""
    error: str | None = None
    failed: int | None = None
    """The series index of the checkpoint that could not be reduced (with ``error``)."""
    traceback: str | None = None


def wanted_layers(spec: ModelSpec, lstms: Sequence[RecurrentLayer]) -> list[RecurrentLayer]:
    """The layers whose figures a unit computes: those the config names (all by default).
    (The analysed layers are those of the last checkpoint; the others are never shown.)"""
    return [w for w in lstms if spec.layers is None or w.name in spec.layers]


def reduce(
    weights: ModelWeights, before: ModelWeights | None, layers: Sequence[RecurrentLayer]
) -> CheckpointFigures:
    """The figures of ``layers`` of one checkpoint (``before``: the previous one, or None)."""

    prev = {(w.name, w.direction): w for w in before.layers} if before is not None else {}
    # One BLAS thread: the checkpoints are the parallelism, and a multi-threaded eigenvalue
    # problem of this size is slower on a busy machine (measured: 4x on 2 cores).
    with threadpool_limits(limits=1, user_api="blas"):
        points = {
            (w.name, w.direction): layer_point(w, prev.get((w.name, w.direction))) for w in layers
        }
    return CheckpointFigures(tuple((w.name, w.direction) for w in weights.layers), points)


ONE_AT_A_TIME = threading.Lock()
"""One unit at a time per process, checkpoint or report (sweep.worker.build_unit): a Dask worker
with several threads would otherwise run them side by side, and process-wide settings
(BLAS threads, warning filters) are not theirs to share."""


def same_version(version: str) -> None:
    """Raise ConfigError in a worker whose lstm-report is not the batch's ``version``."""
    if version != __version__:
        raise ConfigError(
            f"this worker runs lstm-report {__version__}, the batch {version}; "
            "install the same version on every worker"
        )


def run_unit(unit: PointUnit) -> PointResult:
    """Read a run of checkpoints (and the one before it) and reduce them, in a worker;
    never raises: a failure ends the unit, with the figures computed so far."""

    done: list[tuple[str | None, dict[str, Any]]] = []
    at = [unit.start]
    with ONE_AT_A_TIME:
        try:
            same_version(unit.version)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                done.extend(reduce_checkpoints(unit, at))
                return PointResult(tuple(done))
        except Exception as exc:
            return PointResult(
                tuple(done), unit_error(exc), failed=at[0], traceback=traceback.format_exc()
            )


def reduce_checkpoints(
    unit: PointUnit, at: list[int] | None = None
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """run_unit's work: the (key, entry) of each checkpoint in turn, computed before the
    next is read; raises the reader's own errors. ``at[0]``: the series index of the
    checkpoint being read (the one before the run: ``start - 1``)."""
    at = at if at is not None else [0]
    spec = unit.spec
    known = list(unit.known)
    before = before_digest = None
    if unit.previous is not None:
        at[0] = unit.start - 1
        before, before_digest = _read_one(spec, unit.previous, known.pop(0) if known else None)
    for j, path in enumerate(unit.files):
        at[0] = unit.start + j
        weights, digest = _read_one(spec, path, known[j] if j < len(known) else None)
        entry = reduce(weights, before, wanted_layers(spec, weights.layers))
        first = unit.first and j == 0
        key = point_key(spec, digest, before_digest, first)
        yield key, entry_json(key or "", entry)
        before, before_digest = weights, digest


def _read_one(
    spec: ModelSpec, path: Path, known: tuple[Stat, str] | None
) -> tuple[ModelWeights, str | None]:
    """A checkpoint's weights, and the sha256 of the bytes read: the plan's when the file's
    stat is what the plan saw, else hashed here; None when the file changed while read
    (its figures are then not cached)."""

    st = file_stat(path)
    weights = dispatch.read_model(replace(spec, path=path))
    if st is None or file_stat(path) != st:
        return weights, None
    if known is not None and known[0] == st:
        return weights, known[1]
    digest = digests.file_digest(path)
    return weights, digest if file_stat(path) == st else None


def unit_error(exc: BaseException) -> str:
    """A unit's failure as one line: our own message, or an internal error."""
    if isinstance(exc, LstmReportError):
        return one_line(str(exc))
    first = (str(exc).strip().splitlines() or [""])[0]
    return one_line(
        f"internal error: {type(exc).__name__}: {shorten(first, 200)} "
        "(rerun with --debug for details)"
    )


def warm_up() -> None:
    """In a new worker: import what a unit needs while the builder reads and analyses."""
    import h5py  # noqa: F401  (heavy: only a worker that reads checkpoints needs it)
