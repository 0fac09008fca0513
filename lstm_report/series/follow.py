"""A build's checkpoint series: the Run (cache, digests, pool) and following one model's
checkpoints, from files or from snapshots in memory, through one path (_series)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lstm_report.analysis.compare import Side
from lstm_report.analysis.series import checkpoint_figures
from lstm_report.config.schema import Config, ModelSpec
from lstm_report.fileio.digests import FileDigests, file_digest
from lstm_report.model.analyses import ModelAnalysis
from lstm_report.model.layers import ModelWeights
from lstm_report.model.training import Checkpoint, Series
from lstm_report.readers.dispatch import read_model
from lstm_report.series import cost
from lstm_report.series.labels import label_of
from lstm_report.series.runners import Runner, pooled, serial, series_points
from lstm_report.series.schedule import plan
from lstm_report.series.store import Cache, default_folder
from lstm_report.series.units import warm_up
from lstm_report.sweep.engines.local import LocalPool, cores

Progress = Callable[[str], None]
"""Where a build says which stage it is at."""

LayerId = tuple[str, str]
"""A layer's (name, direction)."""


@dataclass(frozen=True, eq=False)
class Run:
    """How this build runs: its progress lines, the checkpoint cache, whether it may start
    worker processes."""

    say: Progress
    cache: Cache | None = None
    pool: LocalPool | None = None
    """A pool for the checkpoints of long series, or None."""
    digests: FileDigests | None = None
    """Each checkpoint hashed once."""


POOL_MIN_CHECKPOINTS = 8
"""With ``processes``, a series of at least this many checkpoints starts a local pool."""


@contextlib.contextmanager
def checkpoint_run(
    cfg: Config, cache: bool | str | Path | Cache | None, processes: bool, say: Progress
) -> Iterator[Run]:
    """The Run of this build: its checkpoint cache, digests and (maybe) pool."""
    points = _checkpoint_cache(cache)
    digests = FileDigests(points)  # remembered in the cache: a rerun hashes only new files
    with _checkpoint_pool(cfg, processes, points, digests) as pool:
        yield Run(say, points, pool, digests)


@contextlib.contextmanager
def _checkpoint_pool(
    cfg: Config, processes: bool, cache: Cache | None, digests: FileDigests
) -> Iterator[LocalPool | None]:
    """One process per core for the checkpoints of long series, started now so that the
    workers import while this process reads and analyses; none when the cache has nearly
    all."""
    usable = cores()
    todo = 0
    if processes and usable > 1:
        series = [m for m in cfg.models if m.series]
        todo = max((len(plan(m, cache, digest=digests).todo) for m in series), default=0)
    if todo < POOL_MIN_CHECKPOINTS:
        yield None
        return

    pool = LocalPool(usable)
    pool.warm(warm_up)
    try:
        yield pool
    except BaseException:
        pool.terminate()
        raise
    pool.close()


def _checkpoint_cache(cache: bool | str | Path | Cache | None) -> Cache | None:
    if cache is True:
        return Cache(default_folder())
    if cache is False or cache is None:
        return None
    if isinstance(cache, (str, Path)):
        return Cache(Path(cache))
    return cache


def follow_series(
    analysed: ModelAnalysis,
    spec: ModelSpec,
    snapshots: Sequence[tuple[str, ModelWeights]] | None,
    wanted: Collection[str],
    run: Run,
    of: str = "",
) -> tuple[Series | None, dict[str, Side]]:
    """A model's checkpoint series (None: it has none), from its (label, weights)
    ``snapshots`` in memory or, when None, from the files of ``spec.series``; and the
    checkpoints that comparisons name."""
    keep = [(la.weights.name, la.weights.direction) for la in analysed.layers]
    weights_at: Callable[[int], ModelWeights]
    if snapshots is not None:
        if len(snapshots) < 2:
            return None, {}
        points = _snapshot_points(snapshots, keep)
        weights_at = lambda k: snapshots[k][1]  # noqa: E731
    elif spec.series:
        run.say(f"{of}following {len(spec.series)} checkpoints of {spec.name}")
        files = spec.series
        points = _file_points(analysed, spec, keep, run)
        weights_at = lambda k: read_model(replace(spec, path=files[k]))  # noqa: E731
    else:
        return None, {}
    return _series(analysed, points, weights_at, wanted)


def _snapshot_points(
    snapshots: Sequence[tuple[str, ModelWeights]], keep: Sequence[LayerId]
) -> tuple[Checkpoint, ...]:
    """Per-gate figures of every snapshot in memory, in order (the last one was analysed in
    full), each labelled as a checkpoint file of that name would be."""
    wanted = set(keep)
    points = []
    previous = None
    for path, weights in snapshots:
        points.append(checkpoint_figures(path, weights, previous, wanted, label=label_of(path)))
        previous = weights
    return tuple(points)


def _file_points(
    analysed: ModelAnalysis, spec: ModelSpec, keep: Sequence[LayerId], run: Run
) -> tuple[Checkpoint, ...]:
    """The figures of every checkpoint of a series of files: cached, or computed in units
    of consecutive checkpoints, on the pool when there are many."""
    assert spec.series is not None
    runner: Runner = serial
    jobs = None  # in this process: each run of checkpoints to compute is one unit
    if run.pool is not None:
        seconds = cost.estimate([la.weights for la in analysed.layers], len(spec.series))
        if seconds >= cost.POOL_MIN_SECONDS:
            runner = pooled(run.pool)
            jobs = run.pool.jobs
    digest = run.digests or file_digest
    return series_points(spec, keep, run.cache, runner, digest, jobs)


def _series(
    analysed: ModelAnalysis,
    points: Sequence[Checkpoint],
    weights_at: Callable[[int], ModelWeights],
    wanted: Collection[str],
) -> tuple[Series, dict[str, Side]]:
    """The series of ``points``, snapshots or files alike, and the layers of the checkpoints
    that comparisons name as ``model@label`` (``weights_at(k)``: checkpoint k's weights,
    asked for those only)."""
    keep = {(la.weights.name, la.weights.direction) for la in analysed.layers}
    kept: dict[str, Side] = {}
    for k, c in enumerate(points):
        key = f"{analysed.name}@{c.label}"
        if key in wanted:
            layers = weights_at(k).layers
            kept[key] = (key, tuple(w for w in layers if (w.name, w.direction) in keep))
    series = Series(
        model=analysed.name, checkpoints=tuple(points), anchor=f"{analysed.anchor}-series"
    )
    return series, kept
