"""Many reports at once: ``lstm-report batch``, on a local process pool or a Dask cluster.

Each config (or model file) is one work unit, a whole report, built by ``build_unit`` in a
worker process; the worker sends back the page's text (and the JSON and Markdown), and this
process writes them into SITE_DIR/reports/ and writes the index. A unit is a pure function
of its inputs (the batch fixes the ``generated`` time), so the pool and Dask write the same
bytes. A failed run never stops the others; a run whose inputs did not change since the
last batch (see runcache) is not rebuilt.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lstm_report._version import __version__
from lstm_report.config.schema import Config, natural_key
from lstm_report.errors import ConfigError, LstmReportError, OutputError, one_line, shorten
from lstm_report.output.numbers import Change, Numbers, TopInput
from lstm_report.series import checkpoints
from lstm_report.series.checkpoints import ONE_AT_A_TIME, Cache, same_version, unit_error
from lstm_report.site.build import SiteEntry, cell_words, display, folder_label
from lstm_report.sweep import manifest as runcache

CONNECT_TIMEOUT = "20s"
"""How long to wait for the Dask scheduler (a busy one can be slow to answer)."""

CACHE = ".lstm-report-cache"
"""The site folder's cache: the figures of every checkpoint of a series seen so far (see
checkpoints; safe to delete)."""

CHART_METRICS = ("memory", "change", "importance", "findings")
"""What the index's chart can show across runs, in the order ``auto`` tries them."""


@dataclass(frozen=True)
class Unit:
    """One work unit: everything a worker needs to build one report (no file of ours)."""

    name: str
    source: str
    """The config (or model file) as the user named it: for messages and the index."""
    config: Config
    generated: str
    version: str
    json: bool = False
    unsafe: bool = False
    verify: bool | None = None
    reader: str | None = None
    allow_external_data: bool = False
    points: tuple[tuple[str, Any], ...] = ()
    """The figures of its series' checkpoints, computed by earlier units: (key, entry)."""


@dataclass(frozen=True)
class Row:
    """What the index shows of one report."""

    entry: SiteEntry
    numbers: Numbers


@dataclass(frozen=True)
class UnitResult:
    """What a worker sends back: the texts to write (suffix, text), or why it failed."""

    name: str
    texts: tuple[tuple[str, str], ...] = ()
    row: Row | None = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """One run of the batch, as it ended: ``built``, ``reused`` or ``failed``."""

    source: str
    name: str
    status: str
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    row: Row | None = None

    @property
    def message(self) -> str:
        """``SOURCE: what went wrong`` (the source is not repeated when the error names it)."""
        error = self.error or ""
        return error if error.startswith(f"{self.source}:") else f"{self.source}: {error}"


@dataclass(frozen=True)
class Progress:
    """A run has finished: which, how many of the runs to build are done, and the time."""

    outcome: Outcome
    done: int
    total: int
    elapsed: float
    left: float | None
    """Estimated seconds until the last run is done (None before the first one)."""


@dataclass(frozen=True)
class BatchResult:
    index: Path
    outcomes: tuple[Outcome, ...]
    seconds: float
    engine: str

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


@dataclass(frozen=True)
class Bar:
    name: str
    href: str
    value: float
    height: float
    """Percent of the tallest bar."""


@dataclass(frozen=True)
class Chart:
    """One headline across runs, in batch order, as HTML bars (no script, no image)."""

    label: str
    bars: tuple[Bar, ...]
    top: float


@dataclass(frozen=True)
class Sweep:
    """What a batch's index shows beyond the site's: the sweep columns, failures, a chart."""

    numbers: dict[str, Numbers] = field(default_factory=dict)
    """By entry href."""
    failed: tuple[tuple[str, str], ...] = ()
    """(source, message) of every failed run."""
    chart: Chart | None = None


# -- the work unit, in a worker ---------------------------------------------------------


def build_unit(unit: Unit) -> UnitResult:
    """Build one report in a temporary folder and return its texts; never raises."""
    import tempfile
    import traceback
    import warnings

    from threadpoolctl import threadpool_limits

    from lstm_report.output.numbers import numbers
    from lstm_report.output.report_json import plain
    from lstm_report.pipeline import build_report
    from lstm_report.site.build import entry

    start = time.perf_counter()
    with ONE_AT_A_TIME:
        try:
            same_version(unit.version)
            with (
                tempfile.TemporaryDirectory(prefix="lstm-report-batch-") as tmp,
                warnings.catch_warnings(),
                threadpool_limits(limits=1, user_api="blas"),  # the runs are the parallelism
            ):
                warnings.simplefilter("ignore")
                base = Path(tmp) / unit.name
                outputs = {".html": base.with_suffix(".html"), ".md": base.with_suffix(".md")}
                if unit.json:
                    outputs[".json"] = base.with_suffix(".json")
                result = build_report(
                    unit.config,
                    cache=Cache(entries=dict(unit.points)),
                    output=outputs[".html"],
                    json_path=outputs.get(".json"),
                    markdown=outputs[".md"],
                    unsafe=unit.unsafe,
                    allow_external_data=unit.allow_external_data,
                    verify=unit.verify,
                    reader=unit.reader,
                    generated=unit.generated,
                )
                texts = tuple(
                    (suffix, path.read_text(encoding="utf-8")) for suffix, path in outputs.items()
                )
            data = plain(result.data)
            row = Row(entry(f"reports/{unit.name}.html", unit.source, data), numbers(data))
            return UnitResult(unit.name, texts, row, seconds=time.perf_counter() - start)
        except Exception as exc:  # isolated: one broken run never stops the others
            return UnitResult(
                unit.name,
                error=unit_error(exc),
                traceback=traceback.format_exc(),
                seconds=time.perf_counter() - start,
            )


# -- engines: submit(fn, item) any time; results() yields (item, result, error) ---------


class DaskEngine:
    """The distributed engine: the same units on a Dask cluster (``distributed.Client``).
    A worker that dies is Dask's to handle (it reruns the task elsewhere, and gives up on a
    task that killed three workers)."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client, as_completed
        except ImportError:
            raise ConfigError(
                f"--scheduler {address}: Dask is not installed; pip install 'lstm-report[dask]'"
            ) from None
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"--scheduler {address}: cannot connect to a Dask scheduler "
                f"({shorten(str(exc), 120)})"
            ) from None
        self._done = as_completed([], loop=self.client.loop)
        self._futures: dict[Any, Any] = {}
        self._token = os.urandom(6).hex()

    def submit(self, fn: Callable[[Any], Any], item: Any, name: str) -> None:
        future = self.client.submit(fn, item, key=f"lstm-report-{name}-{self._token}")
        self._futures[future] = item
        self._done.add(future)

    def results(self) -> Iterator[tuple[Any, Any, str | None]]:
        for future in self._done:
            item = self._futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # the worker died, or could not import lstm-report
                yield (
                    item,
                    None,
                    f"on the Dask cluster: {type(exc).__name__}: {shorten(str(exc), 200)}",
                )
            else:
                yield item, result, None
            future.release()

    def close(self) -> None:
        if self._futures:
            with contextlib.suppress(Exception):
                self.client.cancel(list(self._futures))
        with contextlib.suppress(Exception):
            self.client.close()

    terminate = close


class PoolEngine:
    """The embedded engine: pools.LocalPool (a worker that dies is replaced, and what it
    was running is run again, alone)."""

    def __init__(self, jobs: int) -> None:
        from lstm_report.sweep.engines.local import LocalPool

        self.pool = LocalPool(jobs)

    def submit(self, fn: Callable[[Any], Any], item: Any, name: str) -> None:
        self.pool.submit(fn, item)

    def results(self) -> Iterator[tuple[Any, Any, str | None]]:
        return self.pool.results()

    def close(self) -> None:
        self.pool.close()

    def terminate(self) -> None:
        self.pool.terminate()


# -- the batch, in this process ---------------------------------------------------------


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
    names = []
    for a in absolute:
        rel = Path(os.path.relpath(a, common))
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(rel.with_suffix("").parts))
        base = base.strip(".") or "report"
        name, n = base, 1
        while name.lower() in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name.lower())
        names.append(name)
    return names


_KINDS = {".html": "the page", ".json": "the JSON", ".md": "the Markdown summary"}


def _load(source: str) -> Config:
    from lstm_report.config.sources import check_config_suffix, is_model_file, model_file_config
    from lstm_report.config.yaml_file import load_config

    if is_model_file(source):
        return model_file_config(source)
    check_config_suffix(source)
    return load_config(source)


def row_json(row: Row) -> dict[str, Any]:
    return {"entry": asdict(row.entry), "numbers": asdict(row.numbers)}


def row_from_json(raw: Any) -> Row:
    """The Row a manifest kept; raises (KeyError, TypeError, ...) if it is not one."""
    e = dict(raw["entry"])
    e["models"] = tuple(e["models"])
    e["kinds"] = tuple(e["kinds"])  # absent from older manifests: rebuilt
    n = dict(raw["numbers"])
    n["top_input"] = TopInput(**n["top_input"]) if n["top_input"] is not None else None
    n["change"] = Change(**n["change"]) if n["change"] is not None else None
    return Row(SiteEntry(**e), Numbers(**n))


def chart(rows: Sequence[Row], metric: str = "auto") -> Chart | None:
    """Bars of one headline across the runs: the first of CHART_METRICS that any run has."""
    labels = {
        "memory": "Median memory timescale τ (steps)",
        "change": "Largest change vs baseline (RMS of ΔA / the gate's RMS)",
        "importance": "Top input's importance",
        "findings": "Findings",
    }

    def value(n: Numbers, m: str) -> float | None:
        if m == "memory":
            return n.memory_tau
        if m == "change":
            return n.change.value if n.change is not None else None
        if m == "importance":
            return n.top_input.value if n.top_input is not None else None
        return float(n.findings)

    metrics = CHART_METRICS if metric == "auto" else (metric,)
    for m in metrics:
        values = [(r, value(r.numbers, m)) for r in rows]
        present = [(r, v) for r, v in values if v is not None]
        if present:
            top = max(v for _, v in present)
            bars = tuple(
                Bar(
                    r.entry.href.removeprefix("reports/").removesuffix(".html"),
                    r.entry.href,
                    v,
                    round(100 * v / top, 1) if top > 0 else 0.0,
                )
                for r, v in present
            )
            return Chart(labels[m], bars, top)
    return None


def _check_site(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"{display(out)}: exists and is not a folder; give a folder for the site")
    # What the batch writes inside the site is never written through a symbolic link (one
    # planted there would send pages or the manifest elsewhere); the cache's own folder is
    # checked by checkpoints.Cache, which then caches nothing.
    for name in ("reports", runcache.MANIFEST):
        if (out / name).is_symlink():
            raise OutputError(
                f"{display(out / name)}: is a symbolic link; batch never writes through one: "
                "remove it"
            )


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
    progress: Callable[[Progress], None] | None = None,
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
    from lstm_report.fileio.write import write_files
    from lstm_report.pipeline import generated_at

    start = time.perf_counter()
    out = Path(site_dir)
    if scheduler is not None and jobs is not None:
        raise ConfigError(
            "--jobs: applies to the local pool; with --scheduler the Dask "
            "workers decide how many reports run at once"
        )
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs: expected a positive number, got {jobs}")
    _check_site(out)
    sources = expand(patterns)
    names = page_names(sources)
    options = {"json": json, "unsafe": unsafe, "verify": verify, "reader": reader}
    if allow_external_data:  # only when given: the run keys of earlier batches stay valid
        options["allow_external_data"] = True
    plan = _plan(out, sources, names, generated or generated_at(), options, no_cache)
    say = progress or (lambda _p: None)
    for o in plan.outcomes.values():
        say(Progress(o, 0, len(plan.units), 0.0, None))
    slots = jobs or os.cpu_count() or 1
    engine_name = (
        "none" if not plan.units else f"dask {scheduler}" if scheduler else f"local pool ({slots})"
    )
    folder = None if no_cache else out / CACHE / "checkpoints"
    try:
        if plan.units:
            engine = DaskEngine(scheduler) if scheduler else PoolEngine(slots)
            finished = False
            try:
                _execute(out, plan, engine, checkpoints.Cache(folder, root=out), say)
                finished = True
            finally:
                if finished:
                    engine.close()
                else:  # an error or a signal: stop the workers now, whatever they are doing
                    engine.terminate()
    finally:
        # Whatever happened, what was built is remembered (an interrupted batch resumes),
        # and the pages of runs not built (failed or interrupted) stay theirs.
        for unit, _, _ in plan.todo.values():
            ident = os.path.abspath(unit.source)
            if ident in plan.old:
                plan.kept.setdefault(ident, plan.old[ident])
        with contextlib.suppress(LstmReportError):
            write_files([(out / runcache.MANIFEST, runcache.dumps(plan.kept))])
    owned = {o for e in plan.kept.values() for o in e.outputs}
    runcache.remove_outputs(out, {o for e in plan.old.values() for o in e.outputs} - owned)
    ordered = tuple(plan.outcomes[n] for n in names)
    rows = [o.row for o in ordered if o.row is not None]
    index = out / "index.html"
    write_files([(index, render_index(ordered, rows, plan.generated, sources, chart_metric))])
    return BatchResult(index, ordered, time.perf_counter() - start, engine_name)


def _execute(
    out: Path, plan: _Plan, engine: Any, cache: checkpoints.Cache, say: Callable[[Progress], None]
) -> None:
    """Run every unit on the engine: first the checkpoints of the runs' series that the
    cache lacks, each a unit; a run's report once its checkpoints are in (it carries their
    figures to the worker, which needs no cache of its own)."""
    began = time.perf_counter()
    total, done = len(plan.units), 0
    waiting: dict[str, int] = {}
    failures: dict[str, dict[tuple[int, int], str]] = {}
    series: dict[str, list[checkpoints.Plan]] = {}
    points: dict[int, tuple[str, int, int, Path]] = {}
    """id(point unit) -> (run, model index, checkpoint index, checkpoint path)"""

    def landed(r: UnitResult) -> None:
        nonlocal done
        outcome = _land(out, plan, r)
        done += 1
        elapsed = time.perf_counter() - began
        say(Progress(outcome, done, total, elapsed, elapsed / done * (total - done)))

    def submit_report(unit: Unit) -> None:
        raw = [
            (key, cache.raw(key)) for p in series[unit.name] for key in p.keys if key is not None
        ]
        unit = replace(unit, points=tuple((k, e) for k, e in raw if e is not None))
        engine.submit(build_unit, unit, unit.name)

    for unit in plan.units:
        series[unit.name] = []
        for spec in unit.config.models:
            if not spec.series:
                continue
            p = checkpoints.plan(spec, cache, digest=plan.digest)
            series[unit.name].append(p)
            # Runs of consecutive checkpoints, each file read once (the runs of a batch are
            # spread over the workers too: a few units a run). "@" never occurs in a page
            # name: no task key of a report can be the same.
            size = checkpoints.unit_size(len(p.todo), 4)
            for item in p.units(size, f"{unit.name}@{spec.index}"):
                points[id(item)] = (unit.name, spec.index, item.start, p.paths[item.start])
                engine.submit(checkpoints.run_unit, item, item.label)
                waiting[unit.name] = waiting.get(unit.name, 0) + 1
        if not waiting.get(unit.name):
            submit_report(unit)
    for item, result, error in engine.results():
        if not isinstance(item, checkpoints.PointUnit):
            landed(result if error is None else UnitResult(item.name, error=error))
            continue
        name, index, k, path = points.pop(id(item))
        if error is not None:
            failures.setdefault(name, {})[(index, k)] = f"{path}: {error}"
        else:
            for key, raw in result.points:
                entry = checkpoints.parse_entry(raw, key or "")
                if entry is not None and key is not None:
                    cache.put(key, entry)
            if result.error is not None:
                at = result.failed if result.failed is not None else k
                failures.setdefault(name, {})[(index, at)] = result.error
        waiting[name] -= 1
        if waiting[name] == 0:
            cache.save()
            if name in failures:  # the first failed checkpoint, as a serial build would say
                first = failures[name][min(failures[name])]
                landed(UnitResult(name, error=first, traceback=result and result.traceback))
            else:
                submit_report(plan.todo[name][0])


@dataclass(frozen=True)
class _Plan:
    """What a batch does with each run; ``kept`` and ``outcomes`` fill in as runs end."""

    generated: str
    old: dict[str, runcache.Entry]
    """The previous batch's manifest, by source."""
    kept: dict[str, runcache.Entry]
    """The new manifest: runs reused or built."""
    outcomes: dict[str, Outcome]
    """By page name."""
    units: list[Unit]
    todo: dict[str, tuple[Unit, str, tuple[str, ...]]]
    """Runs to build, by page name: (work unit, key, outputs)."""
    digest: Callable[[Path], str | None] = lambda _path: None
    """sha256 of an input file (each hashed once per batch)."""


def _plan(
    out: Path,
    sources: Sequence[str],
    names: Sequence[str],
    generated: str,
    options: Any,
    no_cache: bool = False,
) -> _Plan:
    """Read every config, key it, and decide: failed already, reused, or to build."""
    from lstm_report.config.sources import is_model_file
    from lstm_report.fileio.write import check_outputs

    hashes = runcache.FileHashes()
    old = runcache.load(out)
    plan = _Plan(generated, old, {}, {}, [], {}, lambda path: hashes.fingerprint(path)[3])
    suffixes = (".html", ".json", ".md") if options["json"] else (".html", ".md")
    for source, name in zip(sources, names):
        ident = os.path.abspath(source)
        outputs = tuple(f"reports/{name}{s}" for s in suffixes)
        try:
            cfg = _load(source)
            run_options = {**options, "model_file": is_model_file(source)}
            key = runcache.run_key(cfg, run_options, __version__, hashes)
            check_outputs(
                [(f"{_KINDS[s]} of {source}", out / o) for s, o in zip(suffixes, outputs)],
                cfg.input_files(),
            )
        except LstmReportError as exc:
            plan.outcomes[name] = Outcome(source, name, "failed", one_line(str(exc)))
            if ident in plan.old:
                plan.kept[ident] = plan.old[ident]  # its pages stay, as a failed build leaves them
            continue
        previous = plan.old.get(ident)
        if (
            previous is not None
            and not no_cache
            and (previous.key, previous.outputs) == (key, outputs)
            and all((out / o).is_file() for o in outputs)
        ):
            with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
                row = row_from_json(previous.row)
                plan.outcomes[name] = Outcome(source, name, "reused", row=row)
                plan.kept[ident] = previous
                continue
        unit = Unit(
            name,
            source,
            cfg,
            generated,
            __version__,
            options["json"],
            options["unsafe"],
            options["verify"],
            options["reader"],
            options.get("allow_external_data", False),
        )
        plan.units.append(unit)
        plan.todo[name] = (unit, key, outputs)
    return plan


def _land(out: Path, plan: _Plan, r: UnitResult) -> Outcome:
    """Write what a worker built into the site (or note why not); return the run's outcome."""
    from lstm_report.fileio.write import write_files

    unit, key, outputs = plan.todo[r.name]
    ident = os.path.abspath(unit.source)
    outcome = Outcome(unit.source, r.name, "failed", r.error, r.traceback, r.seconds)
    if r.error is None and r.row is not None:
        try:
            write_files([(out / "reports" / f"{r.name}{s}", t) for s, t in r.texts])
        except LstmReportError as exc:
            outcome = Outcome(unit.source, r.name, "failed", one_line(str(exc)))
        else:
            outcome = Outcome(unit.source, r.name, "built", seconds=r.seconds, row=r.row)
            plan.kept[ident] = runcache.Entry(ident, r.name, key, outputs, row_json(r.row))
    plan.outcomes[r.name] = outcome
    return outcome


def _shown(folder: str) -> str:
    """A folder as the index names it: relative to the current one when below it."""
    rel = os.path.relpath(folder) if folder else "."
    return folder if rel == ".." or rel.startswith(".." + os.sep) else rel


def render_index(
    outcomes: Sequence[Outcome],
    rows: Sequence[Row],
    generated: str,
    sources: Sequence[str],
    chart_metric: str = "auto",
) -> str:
    """The site's index page, with the sweep's columns, failures and chart."""
    from lstm_report.output.html import env

    absolute = [os.path.abspath(s) for s in sources]
    common = os.path.commonpath([os.path.dirname(a) for a in absolute]) if absolute else "."
    sweep = Sweep(
        numbers={r.entry.href: r.numbers for r in rows},
        failed=tuple((o.source, o.message) for o in outcomes if o.status == "failed"),
        chart=chart(rows, chart_metric),
    )
    return env.get_template("site.html.jinja2").render(
        entries=[r.entry for r in rows],
        generated=generated,
        version=__version__,
        source=folder_label(display(_shown(common))),
        words=cell_words([r.entry for r in rows]),
        sweep=sweep,
    )
