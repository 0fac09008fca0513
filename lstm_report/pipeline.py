"""The whole job: config -> read -> analyse -> verify -> figures -> output -> write.

build_report is the flow; each stage is one call below it. Models already in memory
(the Keras callback, notebooks) come in through integrations/in_memory.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lstm_report._version import __version__
from lstm_report.analysis.answers import headlines
from lstm_report.analysis.compare import Side, compare_models, side
from lstm_report.analysis.layer import with_verifications
from lstm_report.analysis.model import analyse_model
from lstm_report.analysis.takeaways import baselines_only, takeaways
from lstm_report.config.resolve import model_plan, pair_layers
from lstm_report.config.schema import Config, ModelSpec
from lstm_report.config.sources import as_config, with_overrides
from lstm_report.figures import draw_figures
from lstm_report.figures.page import Figures
from lstm_report.fileio.write import check_outputs, write_files
from lstm_report.integrations.in_memory import (
    InMemory,
    KerasModel,
    in_memory_config,
    is_keras_model,
)
from lstm_report.integrations.notebook import result_html
from lstm_report.model.analyses import ModelAnalysis
from lstm_report.model.report import ReportData
from lstm_report.model.training import Comparison
from lstm_report.output.clock import generated_at
from lstm_report.output.report_json import report_json
from lstm_report.output.saved_compare import saved_comparisons
from lstm_report.output.writer import writers
from lstm_report.readers.dispatch import keras_inputs, read_model
from lstm_report.readers.frameworks import FRAMEWORK_READERS
from lstm_report.readers.probe import load_probe, probe_shape
from lstm_report.series.follow import Progress, Run, checkpoint_run, follow_series
from lstm_report.series.store import Cache
from lstm_report.verify import verify_model


@dataclass(frozen=True)
class Outputs:
    """Where a build writes: the page, and optionally the JSON and a Markdown summary."""

    html: Path
    json: Path | None = None
    markdown: Path | None = None
    junit: Path | None = None


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
        return result_html(self.html_path, self.report.title)


def build_report(
    config: str | Path | Mapping[str, Any] | Config | KerasModel,
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
    cache: bool | str | Path | Cache | None = True,
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
    say = progress or _silent
    given, loaded = _configure(config, options)
    cfg = with_overrides(
        given,
        unsafe=unsafe,
        reader=reader,
        verify=verify,
        allow_external_data=allow_external_data,
        dynamics=dynamics,
    )
    outputs = Outputs(_output_path(cfg, output), _path(json_path), _path(markdown), _path(junit))
    check_paths(cfg, outputs, loaded)  # before any work: a typo in -o never costs a model
    with checkpoint_run(cfg, cache, processes, say) as run:
        report = analyse(cfg, run, loaded, generated)
        report = replace(report, saved_comparisons=saved_comparisons(cfg, report.models))
        figures = _draw(report, say)
        data = report_json(report)
        _render_and_write(report, figures, data, outputs, say)
    return BuildResult(outputs.html, outputs.json, report, data, outputs.markdown, outputs.junit)


def analyse(
    cfg: Config,
    run: Run,
    loaded: Mapping[int, InMemory] | None = None,
    generated: str | None = None,
) -> ReportData:
    """read -> analyse -> verify -> compare, every model of ``cfg``: the report's data
    (``loaded``: the models already in memory, by index; ``generated``: default now)."""
    mem = loaded or {}
    read = [_read_and_analyse(cfg, i, spec, mem.get(i), run) for i, spec in enumerate(cfg.models)]
    models = _verified([m for m, _, _ in read], [v for _, v, _ in read], cfg, run.say)
    comparisons = _compare(cfg, models, [sides for _, _, sides in read])
    return _report_data(cfg, models, comparisons, generated or generated_at())


def report_and_figures(
    cfg: Config, *, progress: Progress | None = None, generated: str | None = None
) -> tuple[ReportData, Figures]:
    """The report's data and its figures, as build_report makes them, nothing written
    (``lstm-report figures``; no checkpoint cache, no pool)."""
    say = progress or _silent
    run = Run(say)
    report = analyse(cfg, run, None, generated)
    return report, _draw(report, say)


def _silent(_message: str) -> None:
    """No progress lines."""


def _configure(
    config: str | Path | Mapping[str, Any] | Config | KerasModel,
    options: Mapping[str, Any] | None,
) -> tuple[Config, dict[int, InMemory]]:
    """The Config to build, and the models it names that are already in memory (by index)."""
    if is_keras_model(config):
        return in_memory_config(config, options or {})
    return as_config(config), {}


def check_paths(cfg: Config, outputs: Outputs, loaded: Mapping[int, InMemory]) -> None:
    """Refuse outputs that are inputs, or folders, FIFOs and devices (write.check_outputs)."""
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
    say = run.say
    of = f"model {i + 1}/{len(cfg.models)}: " if len(cfg.models) > 1 else ""
    say(f"{of}reading {spec.name}")
    weights = mem.weights if mem is not None else read_model(spec)
    if mem is not None:
        inputs = mem.keras_inputs
    else:  # Keras can compute a Keras model's inner inputs, never a PyTorch/ONNX one's
        inputs = keras_inputs(spec) if weights.reader not in FRAMEWORK_READERS else None
    probe = load_probe(spec, probe_shape(weights))
    plan = model_plan(spec, weights)  # the config resolved against the model (ConfigError)
    say(f"{of}analysing {spec.name}")
    analysed = analyse_model(plan, weights, i, checks=cfg.checks, keras_inputs=inputs, probe=probe)
    wanted = {name for c in cfg.compare for name in (c.baseline, c.candidate)}
    snapshots = mem.series if mem is not None else None
    series, sides = follow_series(analysed, spec, snapshots, wanted, run, of)
    if series is not None:
        analysed = replace(analysed, series=series)
    sides[analysed.name] = side(analysed)
    verify = cfg.verify if cfg.verify is not None else weights.reader == "keras"
    return analysed, verify, sides


def _verified(
    models: list[ModelAnalysis], wanted: list[bool], cfg: Config, say: Progress
) -> list[ModelAnalysis]:
    """Verification needs Keras: imported by verify_model, in this thread (see import_keras)."""
    if not any(wanted):
        return models
    say("verifying against Keras")
    tolerance = cfg.checks.verify_tolerance
    return [
        with_verifications(m, verify_model(m, tolerance)) if v else m
        for m, v in zip(models, wanted)
    ]


def _compare(
    cfg: Config, models: list[ModelAnalysis], sides: list[dict[str, Side]]
) -> tuple[Comparison, ...]:
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


def _report_data(
    cfg: Config, models: list[ModelAnalysis], comparisons: tuple[Comparison, ...], generated: str
) -> ReportData:
    return ReportData(
        title=cfg.title,
        generated=generated,
        version=__version__,
        models=tuple(models),
        headlines=headlines(models, baselines_only(comparisons)),
        findings=tuple(f for m in models for f in m.findings),
        comparisons=comparisons,
        warnings=run_warnings(models, comparisons),
        takeaways=takeaways(models, comparisons),
    )


def _draw(report: ReportData, say: Progress) -> Figures:
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
    say("rendering")
    chosen = writers(outputs.html, outputs.json, outputs.markdown, outputs.junit, data)
    write_files([(path, w.write(report, figures)) for path, w in chosen])


def run_warnings(
    models: Sequence[ModelAnalysis], comparisons: Sequence[Comparison]
) -> tuple[str, ...]:
    """One line per thing the run could not do as the config asked."""
    # A comparison with nothing to compare is an error (config.resolve.pair_layers).
    return tuple(f"{m.name}: {w}" for m in models for w in m.warnings)


def _path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None


def _output_path(cfg: Config, output: str | Path | None) -> Path:
    if output is not None:
        return Path(output)
    if cfg.output is not None:
        return cfg.output
    stem = cfg.source.stem if cfg.source is not None else "lstm-report"
    return Path(f"{stem}.html")
