"""Many reports at once: ``lstm-report batch``, on a local process pool or a Dask cluster.

Each config (or model file) is one work unit, a whole report, built by ``build_unit`` (sweep.worker)
in a worker process; the worker sends back the page's text (and the JSON and Markdown), and this
process writes them into SITE_DIR/reports/ and writes the index. A unit is a pure function
of its inputs (the batch fixes the ``generated`` time), so the pool and Dask write the same
bytes. A failed run never stops the others; a run whose inputs did not change since the
last batch (see sweep.manifest) is not rebuilt.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from lstm_report.errors import ConfigError, LstmReportError, OutputError, one_line
from lstm_report.fileio.write import write_files
from lstm_report.output.clock import generated_at
from lstm_report.series import schedule
from lstm_report.series.codec import parse_entry
from lstm_report.series.schedule import SeriesPlan
from lstm_report.series.store import Cache
from lstm_report.series.units import PointResult, PointUnit, run_unit
from lstm_report.site.index import display
from lstm_report.sweep import manifest
from lstm_report.sweep.engines.base import Engine
from lstm_report.sweep.engines.dask import DaskEngine
from lstm_report.sweep.engines.local import LocalPool
from lstm_report.sweep.index import batch_index
from lstm_report.sweep.manifest import ManifestRun, row_json
from lstm_report.sweep.plan import (
    BatchOptions,
    BatchPlan,
    Outcome,
    RunToBuild,
    expand,
    page_names,
    plan_batch,
)
from lstm_report.sweep.worker import UnitResult, build_unit

CACHE = ".lstm-report-cache"
"""The site folder's cache: the figures of every checkpoint of a series seen so far (see
series.store; safe to delete)."""


@dataclass(frozen=True)
class BatchProgress:
    """A run has finished: which, how many of the runs to build are done, and the time."""

    outcome: Outcome
    done: int
    total: int
    elapsed: float
    left: float | None
    """Estimated seconds until the last run is done (None before the first one)."""


@dataclass(frozen=True)
class BatchResult:
    """A whole batch: the index written, every run's outcome, the time and the engine."""

    index: Path
    outcomes: tuple[Outcome, ...]
    seconds: float
    engine: str

    @property
    def failed(self) -> tuple[Outcome, ...]:
        """The runs that failed."""
        return tuple(o for o in self.outcomes if o.status == "failed")

    def count(self, status: str) -> int:
        """How many runs ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)


# -- the batch, in this process ---------------------------------------------------------


def run_batch(
    patterns: Sequence[str],
    site_dir: str | Path,
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    json: bool = False,
    unsafe: bool = False,
    allow_external_data: bool = False,
    verify: bool | None = None,
    reader: str | None = None,
    generated: str | None = None,
    chart_metric: str = "auto",
    progress: Callable[[BatchProgress], None] | None = None,
    no_cache: bool = False,
) -> BatchResult:
    """Build the report of every config (or model file) the patterns name into
    ``site_dir/reports/`` and write ``site_dir/index.html``.

    ``jobs`` worker processes on this machine (default: one per core), or the Dask
    scheduler at ``scheduler``. Runs whose inputs did not change since the last batch into
    ``site_dir`` are reused, and the figures of checkpoints already seen (in
    ``site_dir/.lstm-report-cache``); ``no_cache`` rebuilds every run and reads no cache.
    Raises only for the batch as a whole (no file named, a site
    folder that cannot be); each run's failure is an Outcome.
    """
    start = time.perf_counter()
    out = Path(site_dir)
    _check_engine(jobs, scheduler)
    _check_site(out)
    sources = expand(patterns)
    names = page_names(sources)
    options = BatchOptions(json, unsafe, verify, reader, allow_external_data)
    plan = plan_batch(out, sources, names, generated or generated_at(), options, no_cache)
    say = progress or (lambda _p: None)
    for o in plan.outcomes.values():
        say(BatchProgress(o, 0, len(plan.todo), 0.0, None))
    slots = jobs or os.cpu_count() or 1
    engine_name = (
        "none" if not plan.todo else f"dask {scheduler}" if scheduler else f"local pool ({slots})"
    )
    folder = None if no_cache else out / CACHE / "checkpoints"
    try:
        if plan.todo:
            engine: Engine = DaskEngine(scheduler) if scheduler else LocalPool(slots)
            _run_on(engine, _Execution(out, plan, engine, Cache(folder, root=out), say))
    finally:
        _save_manifest(out, plan)
    ordered = tuple(plan.outcomes[n] for n in names)
    rows = [o.row for o in ordered if o.row is not None]
    index = out / "index.html"
    write_files([(index, batch_index(ordered, rows, plan.generated, sources, chart_metric))])
    return BatchResult(index, ordered, time.perf_counter() - start, engine_name)


def _check_engine(jobs: int | None, scheduler: str | None) -> None:
    """Refuse --jobs with --scheduler, and a --jobs that is not a positive number."""
    if scheduler is not None and jobs is not None:
        raise ConfigError(
            "--jobs: applies to the local pool; with --scheduler the Dask "
            "workers decide how many reports run at once"
        )
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs: expected a positive number, got {jobs}")


def _check_site(out: Path) -> None:
    """Refuse a site that is no folder, or whose reports/ or manifest is a symbolic link."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{display(out)}: exists and is not a folder; give a folder for the site")
    # What the batch writes inside the site is never written through a symbolic link (one
    # planted there would send pages or the manifest elsewhere); the cache's own folder is
    # checked by series.store.Cache, which then caches nothing.
    for name in ("reports", manifest.MANIFEST):
        if (out / name).is_symlink():
            raise OutputError(
                f"{display(out / name)}: is a symbolic link; batch never writes through one: "
                "remove it"
            )


def _run_on(engine: Engine, execution: _Execution) -> None:
    """Run the batch's units; on an error or a signal, stop the workers now, whatever they
    are doing."""
    finished = False
    try:
        execution.run()
        finished = True
    finally:
        if finished:
            engine.close()
        else:
            engine.terminate()


def _save_manifest(out: Path, plan: BatchPlan) -> None:
    """Whatever happened, remember what was built (an interrupted batch resumes), keep the
    pages of runs not built (failed or interrupted), and remove pages no run owns."""
    for run in plan.todo.values():
        if run.ident in plan.old:
            plan.kept.setdefault(run.ident, plan.old[run.ident])
    with contextlib.suppress(LstmReportError):
        write_files([(out / manifest.MANIFEST, manifest.manifest_text(plan.kept))])
    owned = {o for e in plan.kept.values() for o in e.outputs}
    manifest.remove_outputs(out, {o for e in plan.old.values() for o in e.outputs} - owned)


@dataclass(eq=False)
class _RunState:
    """A run being built: its series' plans, its checkpoint units still out, their
    failures by (model index, checkpoint index)."""

    run: RunToBuild
    series: list[SeriesPlan] = field(default_factory=list)
    waiting: int = 0
    failures: dict[tuple[int, int], str] = field(default_factory=dict)


@dataclass(frozen=True)
class _PointTask:
    """A checkpoint unit out on the engine: its run, model, first checkpoint and file."""

    state: _RunState
    model: int
    start: int
    path: Path


class _Execution:
    """Every unit of a batch on its engine: first the checkpoints of the runs' series that
    the cache lacks, each a unit; a run's report once its checkpoints are in (it carries
    their figures to the worker, which needs no cache of its own)."""

    def __init__(
        self,
        out: Path,
        plan: BatchPlan,
        engine: Engine,
        cache: Cache,
        say: Callable[[BatchProgress], None],
    ) -> None:
        self.out, self.plan, self.engine, self.cache, self.say = out, plan, engine, cache, say
        self.began = time.perf_counter()
        self.done = 0
        self.tasks: dict[str, _PointTask] = {}
        """Checkpoint units out on the engine, by label (unique in the batch)."""

    def run(self) -> None:
        """Submit every unit, and land every result as it comes."""
        for run in self.plan.todo.values():
            self._start(run)
        for item, result, error in self.engine.results():
            if isinstance(item, PointUnit):
                self._point_done(item, result, error)
            else:
                self._landed(result if error is None else UnitResult(item.name, error=error))

    def _start(self, run: RunToBuild) -> None:
        """Submit the run's checkpoint units, or its report when the cache has them all."""
        state = _RunState(run)
        unit = run.unit
        for spec in unit.config.models:
            if not spec.series:
                continue
            p = schedule.plan(spec, self.cache, digest=self.plan.digests)
            state.series.append(p)
            # Runs of consecutive checkpoints, each file read once (the runs of a batch are
            # spread over the workers too: a few units a run). "@" never occurs in a page
            # name: no task key of a report can be the same.
            size = schedule.unit_size(len(p.todo), 4)
            for item in p.units(size, f"{unit.name}@{spec.index}"):
                self.tasks[item.label] = _PointTask(
                    state, spec.index, item.start, p.paths[item.start]
                )
                self.engine.submit(run_unit, item, item.label)
                state.waiting += 1
        if not state.waiting:
            self._submit_report(state)

    def _submit_report(self, state: _RunState) -> None:
        """Submit the run's report, with the figures of its checkpoints."""
        keys = [key for p in state.series for key in p.keys if key is not None]
        raw = [(key, self.cache.raw(key)) for key in keys]
        unit = replace(state.run.unit, points=tuple((k, e) for k, e in raw if e is not None))
        self.engine.submit(build_unit, unit, unit.name)

    def _point_done(self, item: PointUnit, result: PointResult | None, error: str | None) -> None:
        """Cache a checkpoint unit's figures; once the run's last is in, submit its report
        (or fail it with its first failed checkpoint)."""
        task = self.tasks.pop(item.label)
        state = task.state
        if error is not None or result is None:
            state.failures[(task.model, task.start)] = f"{task.path}: {error}"
        else:
            for key, raw in result.points:
                figures = parse_entry(raw, key or "")
                if figures is not None and key is not None:
                    self.cache.put(key, figures)
            if result.error is not None:
                at = result.failed if result.failed is not None else task.start
                state.failures[(task.model, at)] = result.error
        state.waiting -= 1
        if state.waiting == 0:
            self.cache.save()
            if state.failures:  # the first failed checkpoint, as a serial build would say
                first = state.failures[min(state.failures)]
                trace = result.traceback if result is not None else None
                self._landed(UnitResult(state.run.unit.name, error=first, traceback=trace))
            else:
                self._submit_report(state)

    def _landed(self, r: UnitResult) -> None:
        """Land a run's result and say how far the batch is."""
        outcome = _land(self.out, self.plan, r)
        self.done += 1
        elapsed = time.perf_counter() - self.began
        total = len(self.plan.todo)
        self.say(
            BatchProgress(
                outcome, self.done, total, elapsed, elapsed / self.done * (total - self.done)
            )
        )


def _land(out: Path, plan: BatchPlan, r: UnitResult) -> Outcome:
    """Write what a worker built into the site (or note why not); return the run's outcome."""
    run = plan.todo[r.name]
    source = run.unit.source
    outcome = Outcome(source, r.name, "failed", r.error, r.traceback, r.seconds)
    if r.error is None and r.row is not None:
        try:
            write_files([(out / "reports" / f"{r.name}{s}", t) for s, t in r.texts])
        except LstmReportError as exc:
            outcome = Outcome(source, r.name, "failed", one_line(str(exc)))
        else:
            outcome = Outcome(source, r.name, "built", seconds=r.seconds, row=r.row)
            plan.kept[run.ident] = ManifestRun(
                run.ident, r.name, run.key, run.outputs, row_json(r.row)
            )
    plan.outcomes[r.name] = outcome
    return outcome
