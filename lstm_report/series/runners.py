"""A series' figures in the process that builds the report: units run in turn or on a pool."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from lstm_report.config.schema import ModelSpec, checkpoint_label
from lstm_report.errors import LstmReportError
from lstm_report.fileio.digests import FileDigests, file_digest
from lstm_report.model.training import Checkpoint
from lstm_report.series import schedule
from lstm_report.series.codec import CheckpointFigures, LayerId, parse_entry
from lstm_report.series.store import Cache
from lstm_report.series.units import PointResult, PointUnit, reduce_checkpoints, run_unit
from lstm_report.sweep.engines.local import WORKER_DIED, LocalPool

Runner = Callable[[Sequence[PointUnit]], Iterator[tuple[PointUnit, PointResult | None, str | None]]]


def serial(
    units: Sequence[PointUnit],
) -> Iterator[tuple[PointUnit, PointResult | None, str | None]]:
    """Units in this process, in order (each reads its checkpoints in turn); the first
    error is raised as it is."""
    for u in units:
        yield u, PointResult(tuple(reduce_checkpoints(u))), None


def pooled(pool: LocalPool) -> Runner:
    """A runner on a local pool (its owner closes it)."""

    def run(
        units: Sequence[PointUnit],
    ) -> Iterator[tuple[PointUnit, PointResult | None, str | None]]:
        for u in units:
            pool.submit(run_unit, u)
        yield from pool.results()

    return run


def series_points(
    spec: ModelSpec,
    keep: Sequence[LayerId],
    cache: Cache | None,
    runner: Runner,
    digest: Callable[[Path], str | None] | FileDigests = file_digest,
    jobs: int | None = None,
) -> tuple[Checkpoint, ...]:
    """The figures of every checkpoint of ``spec``'s series, from the cache or computed by
    ``runner`` in units of consecutive checkpoints (sized for ``jobs`` workers; None: each
    run of checkpoints to compute is one unit); new figures go into the cache. Raises the
    error of the first checkpoint (in series order) that could not be reduced."""
    p = schedule.plan(spec, cache, keep, digest)
    size = schedule.unit_size(len(p.todo), jobs) if jobs is not None else None
    store = cache if cache is not None else Cache()
    failed: dict[int, str] = {}
    found: dict[int, CheckpointFigures] = {}
    for unit, result, error in runner(p.units(size)):
        for j, (key, raw) in enumerate(result.points if result is not None else ()):
            entry = parse_entry(raw, key or "")
            if entry is None:
                failed[unit.start + j] = (
                    "internal error: a checkpoint's figures did not come back whole"
                )
                break
            found[unit.start + j] = entry
            if key is not None:  # the key of the bytes the unit read
                store.put(key, entry)
        if error is not None or result is None:
            failed[unit.start] = error or "failed"
        elif result.error is not None:
            failed[result.failed if result.failed is not None else unit.start] = result.error
    if failed:
        store.save()
        first = min(failed)
        message = failed[first]
        if message == WORKER_DIED:
            message = f"{p.paths[max(first, 0)]}: {message}"
        raise _Failed(message)
    store.save()
    out = []
    wanted = set(keep)
    # never a local absolute path (the page is published): as ModelSpec.shown_path says,
    # looked up once rather than once per checkpoint
    shown = dict(zip(p.paths, spec.shown))
    for k, path in enumerate(p.paths):
        entry = found.get(k) or store.get(p.keys[k])
        assert entry is not None
        layers = tuple(entry.points[x] for x in entry.layers if x in wanted)
        out.append(
            Checkpoint(path=shown.get(path, path.name), label=checkpoint_label(path), layers=layers)
        )
    return tuple(out)


class _Failed(LstmReportError):
    """A checkpoint could not be reduced; the message is the unit's own."""
