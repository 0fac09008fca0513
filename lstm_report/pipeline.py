"""The whole job: config -> read -> analyse -> figures -> render -> write (see _build)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstm_report._version import __version__
from lstm_report.config.schema import Config, ModelSpec, load_config, parse_config
from lstm_report.errors import ConfigError
from lstm_report.model.analyses import ModelAnalysis
from lstm_report.model.layers import ModelWeights
from lstm_report.model.report import ReportData
from lstm_report.model.training import Comparison

if TYPE_CHECKING:
    from lstm_report.analysis.compare import Side
    from lstm_report.analysis.probing import KerasInputs
    from lstm_report.analysis.series import Series
    from lstm_report.figures.page import Figures

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Outputs:
    """Where a build writes: the page, and optionally the JSON and a Markdown summary."""

    html: Path
    json: Path | None = None
    markdown: Path | None = None
    junit: Path | None = None


@dataclass(frozen=True, eq=False)
class InMemory:
    """A model already in memory (from Keras): its weights, and optionally a series."""

    weights: ModelWeights
    keras_inputs: KerasInputs | None = None
    series: tuple[tuple[str, ModelWeights], ...] = ()
    """(label, weights) snapshots in order, e.g. kept by ReportCallback."""


@dataclass(frozen=True, eq=False, repr=False)
class BuildResult:
    """What build_report wrote, and the data it wrote."""

    html_path: Path
    json_path: Path | None
    report: ReportData
    data: dict[str, Any]
    markdown_path: Path | None = None
    junit_path: Path | None = None

    def __repr__(self) -> str:
        # The report and its data hold every weight statistic: a summary, not a dump.
        models = self.report.models
        return (
            f"BuildResult(html_path={str(self.html_path)!r}, json_path="
            f"{None if self.json_path is None else str(self.json_path)!r}, "
            f"models={len(models)}, layers={sum(len(m.layers) for m in models)}, "
            f"findings={len(self.report.findings)})"
        )

    def _repr_html_(self) -> str:
        """The page inline in Jupyter and VS Code: an iframe of its own (integrations.notebook)."""
        from lstm_report.integrations.notebook import result_html

        return result_html(self.html_path, self.report.title)


def build_report(
    config: str | Path | Mapping[str, Any] | Config | Any,
    *,
    output: str | Path | None = None,
    json_path: str | Path | None = None,
    unsafe: bool = False,
    verify: bool | None = None,
    reader: str | None = None,
    progress: Progress | None = None,
    options: Mapping[str, Any] | None = None,
    processes: bool = False,
    markdown: str | Path | None = None,
    generated: str | None = None,
    cache: bool | str | Path | Any = True,
    allow_external_data: bool = False,
    junit: str | Path | None = None,
    dynamics: bool = True,
) -> BuildResult:
    """Build the report and write it; return where, and the data written.

    ``config`` is a YAML path, a config mapping, a Config, or an in-memory ``keras.Model``
    (then ``options`` holds the config keys: title, checks, and those of a model entry
    such as feature_names, layers or probe). ``verify`` replays every layer in numpy and
    compares with a Keras LSTM; None verifies whenever the model was read through Keras
    (or is in memory), which is then loaded anyway. ``markdown`` also writes a short
    Markdown summary there, ``junit`` the findings as JUnit XML; ``generated`` is the time
    the page states (default: now, or SOURCE_DATE_EPOCH), fixed by a batch so that every
    engine writes the same bytes.
    ``allow_external_data``: every ONNX model may read external data from any file inside
    its folder, not only its own data file (config key ``external_data: allow``).
    ``dynamics`` False: no dynamics, fixed points or unit ablation for any model (as each
    entry's ``dynamics: false``; the CLI's --no-dynamics).
    ``cache``: where the figures of a series' checkpoints are cached (see checkpoints):
    True for ``$XDG_CACHE_HOME/lstm-report/checkpoints``, a folder, or False for none.
    With ``processes``, a long series is reduced on a pool of one process per core; where
    they are spawned (TensorFlow already imported, other threads running), a script that
    calls this must guard its top level with ``if __name__ == "__main__":``.
    """
    say = progress or (lambda _msg: None)
    loaded: dict[int, InMemory] = {}
    if _is_keras_model(config):
        config, loaded = _in_memory_config(config, options or {})
    cfg = _with_overrides(
        _as_config(config),
        unsafe=unsafe,
        reader=reader,
        verify=verify,
        allow_external_data=allow_external_data,
        dynamics=dynamics,
    )
    outputs = Outputs(
        html=_output_path(cfg, output),
        json=Path(json_path) if json_path is not None else None,
        markdown=Path(markdown) if markdown is not None else None,
        junit=Path(junit) if junit is not None else None,
    )
    from lstm_report.fileio.digests import FileDigests

    check_paths(cfg, outputs, loaded)  # before any work: a typo in -o never costs a model
    points = _checkpoint_cache(cache)
    digests = FileDigests(points)  # remembered in the cache: a rerun hashes only new files
    with _checkpoint_pool(cfg, processes, points, digests) as pool:
        return _build(cfg, outputs, Run(say, points, pool, digests), loaded, generated)


@dataclass(frozen=True, eq=False)
class Run:
    """How this build runs: its progress lines, the checkpoint cache, whether it may start
    worker processes."""

    say: Progress
    cache: Any = None
    """A checkpoints.Cache, or None."""
    pool: Any = None
    """A pools.LocalPool for the checkpoints of long series, or None."""
    digests: Any = None
    """checkpoints.Digests: each checkpoint hashed once."""


POOL_MIN_CHECKPOINTS = 8
"""With ``processes``, a series of at least this many checkpoints starts a local pool."""


@contextlib.contextmanager
def _checkpoint_pool(cfg: Config, processes: bool, cache: Any, digests: Any) -> Iterator[Any]:
    """One process per core for the checkpoints of long series, started now so that the
    workers import while this process reads and analyses; none when the cache has nearly
    all."""
    from lstm_report.series.schedule import plan
    from lstm_report.series.units import warm_up
    from lstm_report.sweep.engines.local import LocalPool
    from lstm_report.sweep.engines.local import cores as usable

    cores = usable()
    todo = 0
    if processes and cores > 1:
        series = [m for m in cfg.models if m.series]
        todo = max((len(plan(m, cache, digest=digests).todo) for m in series), default=0)
    if todo < POOL_MIN_CHECKPOINTS:
        yield None
        return

    pool = LocalPool(cores)
    pool.warm(warm_up)
    try:
        yield pool
    except BaseException:
        pool.terminate()
        raise
    pool.close()


def _checkpoint_cache(cache: bool | str | Path | Any) -> Any:
    from lstm_report.series.store import Cache, default_folder

    if cache is True:
        return Cache(default_folder())
    if cache is False or cache is None:
        return None
    if isinstance(cache, (str, Path)):
        return Cache(Path(cache))
    return cache


def _is_keras_model(obj: Any) -> bool:
    return not isinstance(obj, (str, Path, Mapping, Config)) and hasattr(obj, "get_weights")


def _in_memory_config(model: Any, options: Mapping[str, Any]) -> tuple[Config, dict[int, InMemory]]:
    """A one-model Config for an in-memory Keras model, with its weights extracted."""
    from lstm_report.readers.keras.load import from_model, model_inputs

    cfg = options_config(options, str(getattr(model, "name", "model")))
    series = tuple(options.get("series") or ())
    if options.get("weights") is not None:
        # A snapshot taken earlier: the live model may have moved on (training goes on).
        return cfg, {0: InMemory(options["weights"], None, series)}
    weights = from_model(model, name=cfg.models[0].name, path=cfg.models[0].path)
    return cfg, {0: InMemory(weights, model_inputs(model), series)}


def options_config(options: Mapping[str, Any], default_name: str) -> Config:
    """The Config that ``options`` (config keys) describe for a model in memory."""
    top = {k: v for k, v in options.items() if k in ("title", "checks", "verify", "output")}
    entry = {k: v for k, v in options.items() if k not in top and k not in ("series", "weights")}
    name = entry.setdefault("name", default_name)
    entry["path"] = f"{name} (in memory)"
    with _as_options():
        return parse_config({**top, "models": [entry]})


@contextlib.contextmanager
def _as_options() -> Iterator[None]:
    """Name options as they were given (``feature_names``), not as a config entry's keys."""
    try:
        yield
    except ConfigError as exc:
        text = str(exc)
        raise ConfigError(text.removeprefix("models[0].")) from None


def check_model_options(model: Any, cfg: Config) -> None:
    """Raise ConfigError now if ``cfg``'s layers, feature names or probe do not fit ``model``."""
    from lstm_report.config.resolve import feature_names, select_layers
    from lstm_report.readers.keras.load import from_model
    from lstm_report.readers.probe import load_probe, probe_shape

    spec = cfg.models[0]
    weights = from_model(model, name=spec.name, path=spec.path)
    with _as_options():
        feature_names(spec, select_layers(spec, weights))
        load_probe(spec, probe_shape(weights))


def _build(
    cfg: Config,
    outputs: Outputs,
    run: Run,
    loaded: Mapping[int, InMemory],
    generated: str | None = None,
) -> BuildResult:
    """read -> analyse -> verify -> compare -> draw -> render -> write, one stage a call."""
    from lstm_report.output.report_json import report_json

    say = run.say
    read = [
        _read_and_analyse(cfg, i, spec, loaded.get(i), run) for i, spec in enumerate(cfg.models)
    ]
    models = _verified([m for m, _, _ in read], [v for _, v, _ in read], cfg, say)
    comparisons = _compare(cfg, models, [sides for _, _, sides in read])
    report = _report_data(cfg, models, comparisons, generated or generated_at())
    report = replace(report, saved_comparisons=_compare_saved(cfg, models))
    figures = _draw(report, say)
    data = report_json(report)
    _render_and_write(report, figures, data, outputs, say)
    return BuildResult(
        outputs.html,
        outputs.json,
        report,
        data,
        markdown_path=outputs.markdown,
        junit_path=outputs.junit,
    )


def _with_overrides(
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


def check_paths(cfg: Config, outputs: Outputs, loaded: Mapping[int, InMemory]) -> None:
    """Refuse outputs that are inputs, or folders, FIFOs and devices (write.check_outputs)."""
    from lstm_report.fileio.write import check_outputs

    named = [("the HTML output", outputs.html)]
    if outputs.json is not None:
        named.append(("the JSON output", outputs.json))
    if outputs.markdown is not None:
        named.append(("the Markdown summary", outputs.markdown))
    if outputs.junit is not None:
        named.append(("the JUnit XML", outputs.junit))
    check_outputs(named, cfg.input_files(skip=loaded))


def _read_and_analyse(
    cfg: Config, i: int, spec: ModelSpec, mem: InMemory | None, run: Run
) -> tuple[ModelAnalysis, bool, dict[str, Side]]:
    """One model: read, analyse, follow its checkpoints. Returns the analysis, whether to
    verify it against Keras, and the sides comparisons may name (model, model@label)."""
    from lstm_report.analysis.compare import side
    from lstm_report.analysis.model import analyse_model
    from lstm_report.config.resolve import model_plan
    from lstm_report.readers.dispatch import keras_inputs, read_model
    from lstm_report.readers.frameworks import FRAMEWORK_READERS
    from lstm_report.readers.probe import load_probe, probe_shape

    say = run.say
    of = f"model {i + 1}/{len(cfg.models)}: " if len(cfg.models) > 1 else ""
    say(f"{of}reading {spec.name}")
    weights = mem.weights if mem is not None else read_model(spec)
    if mem is not None:
        inputs = mem.keras_inputs
    else:  # Keras can compute a Keras model's inner inputs, never a PyTorch/ONNX one's
        inputs = keras_inputs(spec) if weights.reader not in FRAMEWORK_READERS else None
    probe = load_probe(spec, probe_shape(weights))
    say(f"{of}analysing {spec.name}")
    plan = model_plan(spec, weights)  # the config resolved against the model (ConfigError)
    analysed = analyse_model(plan, weights, i, checks=cfg.checks, keras_inputs=inputs, probe=probe)
    sides: dict[str, Side] = {}
    wanted = {name for c in cfg.compare for name in (c.baseline, c.candidate)}
    if mem is not None and len(mem.series) > 1:
        series, sides = make_series(analysed, mem.series, wanted)
        analysed = replace(analysed, series=series)
    elif mem is None and spec.series:
        say(f"{of}following {len(spec.series)} checkpoints of {spec.name}")
        series, sides = _file_series(analysed, spec, wanted, run)
        analysed = replace(analysed, series=series)
    sides[analysed.name] = side(analysed)
    verify = cfg.verify if cfg.verify is not None else weights.reader == "keras"
    return analysed, verify, sides


def _verified(
    models: list[ModelAnalysis], wanted: list[bool], cfg: Config, say: Progress
) -> list[ModelAnalysis]:
    """Verification needs Keras: imported here, in this thread (see import_keras)."""
    if not any(wanted):
        return models
    from lstm_report.analysis.layer import with_verifications
    from lstm_report.verify import verify_model

    say("verifying against Keras")
    tolerance = cfg.checks.verify_tolerance
    return [
        with_verifications(m, verify_model(m, tolerance)) if v else m
        for m, v in zip(models, wanted)
    ]


def _compare(
    cfg: Config, models: list[ModelAnalysis], sides: list[dict[str, Side]]
) -> tuple[Comparison, ...]:
    from lstm_report.analysis.compare import compare_models, side
    from lstm_report.config.resolve import pair_layers

    named = {k: v for part in sides for k, v in part.items()}
    named.update({m.name: side(m) for m in models})  # verified, where they were
    return tuple(
        compare_models(
            base, cand, c.index, pair_layers(base, cand, f"compare[{c.index}]", c.layers)
        )
        for c in cfg.compare
        if not c.saved
        for base, cand in [(named[c.baseline], named[c.candidate])]
    )


def _compare_saved(cfg: Config, models: list[ModelAnalysis]) -> tuple[Any, ...]:
    """The comparisons of which a side is a report's JSON written earlier: numbers only."""
    from lstm_report.output.baseline import compare_saved
    from lstm_report.output.report_json import finding_json, model_json
    from lstm_report.output.saved_report import SavedReport, load_saved_report, saved_model

    current = {m.name: m for m in models}
    read: dict[Path, SavedReport] = {}
    out = []
    for c in cfg.compare:
        if not c.saved:
            continue
        where = c.where or f"compare[{c.index}]"
        sides: list[Any] = []
        sources: list[tuple[str, str]] = []
        for role, label, path in (
            ("baseline", c.baseline, c.saved_baseline),
            ("candidate", c.candidate, c.saved_candidate),
        ):
            if path is None:
                m = current[label]
                found = [finding_json(f) for la in m.layers for f in la.findings]
                sides.append((label, model_json(m), found))
                continue
            if path not in read:
                read[path] = load_saved_report(path, where)
            saved = read[path]
            other = c.candidate if role == "baseline" else c.baseline
            want = other if other in current else (sides[0][1]["name"] if sides else None)
            sides.append((label, saved_model(saved, want, where), saved.findings))
            made = f", generated {saved.generated}" if saved.generated else ""
            by = f" by {saved.generator}" if saved.generator else ""
            sources.append((role, f"{label}{made}{by}"))
        roles = tuple(
            r
            for r, p in (("baseline", c.saved_baseline), ("candidate", c.saved_candidate))
            if p is not None
        )
        out.append(compare_saved(sides[0], sides[1], c.index, roles, sources))
    return tuple(out)


def _report_data(
    cfg: Config, models: list[ModelAnalysis], comparisons: tuple[Comparison, ...], generated: str
) -> ReportData:
    from lstm_report.analysis.answers import headlines
    from lstm_report.analysis.takeaways import baselines_only, takeaways

    return ReportData(
        title=cfg.title,
        generated=generated,
        version=__version__,
        models=tuple(models),
        headlines=headlines(models, baselines_only(comparisons)),
        findings=tuple(f for m in models for la in m.layers for f in la.findings),
        comparisons=comparisons,
        warnings=run_warnings(models, comparisons),
        takeaways=takeaways(models, comparisons),
    )


def _draw(report: ReportData, say: Progress) -> Figures:
    from lstm_report.figures import draw_figures

    say("drawing figures")
    layers = [la for m in report.models for la in m.layers]
    series = [m.series for m in report.models if m.series is not None]
    return draw_figures(layers, report.comparisons, series, report.models)


def _render_and_write(
    report: ReportData,
    figures: Figures,
    data: dict[str, Any],
    outputs: Outputs,
    say: Progress,
) -> None:
    from lstm_report.fileio.write import write_files
    from lstm_report.output.writer import writers

    say("rendering")
    chosen = writers(outputs.html, outputs.json, outputs.markdown, outputs.junit, data)
    write_files([(path, w.write(report, figures)) for path, w in chosen])


def run_warnings(models: Sequence[ModelAnalysis], comparisons: Sequence[Any]) -> tuple[str, ...]:
    """One line per thing the run could not do as the config asked."""
    # A comparison with nothing to compare is an error (config.resolve.pair_layers).
    return tuple(f"{m.name}: {w}" for m in models for w in m.warnings)


def _file_series(
    analysed: ModelAnalysis, spec: ModelSpec, wanted: Collection[str], run: Run
) -> tuple[Series, dict[str, Side]]:
    """The figures of every checkpoint of a series of files (cached, or computed in units of
    consecutive checkpoints, on a pool when there are many), and the checkpoints
    comparisons name."""
    from lstm_report.analysis.series import Series
    from lstm_report.fileio.digests import file_digest
    from lstm_report.readers.dispatch import read_model
    from lstm_report.series.cost import POOL_MIN_SECONDS, estimate
    from lstm_report.series.runners import Runner, pooled, serial, series_points

    assert spec.series is not None
    keep = [(la.weights.name, la.weights.direction) for la in analysed.layers]
    runner: Runner = serial
    jobs = None  # in this process: each run of checkpoints to compute is one unit
    if run.pool is not None:
        cost = estimate([la.weights for la in analysed.layers], len(spec.series))
        if cost >= POOL_MIN_SECONDS:
            runner = pooled(run.pool)
            jobs = run.pool.jobs
    digest = run.digests or file_digest
    points = series_points(spec, keep, run.cache, runner, digest, jobs)
    kept: dict[str, Side] = {}
    for c, path in zip(points, spec.series):
        key = f"{analysed.name}@{c.label}"
        if key in wanted:
            weights = read_model(replace(spec, path=path))
            kept[key] = (key, tuple(w for w in weights.layers if (w.name, w.direction) in keep))
    series = Series(model=analysed.name, checkpoints=points, anchor=f"{analysed.anchor}-series")
    return series, kept


def make_series(
    analysed: ModelAnalysis,
    snapshots: Iterable[tuple[str, ModelWeights]],
    wanted: Collection[str] = (),
) -> tuple[Series, dict[str, Side]]:
    """Per-gate figures of every checkpoint (the last one was analysed in full), and the
    layers of the checkpoints that comparisons name as ``model@label``."""
    from lstm_report.analysis.series import Series, checkpoint_figures
    from lstm_report.series.labels import label_of

    keep = {(la.weights.name, la.weights.direction) for la in analysed.layers}
    points = []
    kept: dict[str, Side] = {}
    previous = None
    for path, weights in snapshots:
        label = label_of(path)
        points.append(checkpoint_figures(path, weights, previous, keep, label=label))
        key = f"{analysed.name}@{label}"
        if key in wanted:
            kept[key] = (key, tuple(w for w in weights.layers if (w.name, w.direction) in keep))
        previous = weights
    series = Series(
        model=analysed.name, checkpoints=tuple(points), anchor=f"{analysed.anchor}-series"
    )
    return series, kept


def _as_config(config: str | Path | Mapping[str, Any] | Config) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, (str, Path)):
        return load_config(config)
    if isinstance(config, Mapping):
        return parse_config(config)
    raise ConfigError(
        f"config: expected a path, a mapping or a Config, got {type(config).__name__}"
    )


def _output_path(cfg: Config, output: str | Path | None) -> Path:
    if output is not None:
        return Path(output)
    if cfg.output is not None:
        return cfg.output
    stem = cfg.source.stem if cfg.source is not None else "lstm-report"
    return Path(f"{stem}.html")


def generated_at() -> str:
    """Generation time in UTC; honours SOURCE_DATE_EPOCH for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip().isdigit():
        moment = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc)
    else:
        moment = _dt.datetime.now(tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
