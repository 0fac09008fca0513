"""The whole job as one short function: config -> read -> analyse -> figures -> render -> write."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstm_report import __version__
from lstm_report.config import Config, ModelSpec, load_config, parse_config
from lstm_report.errors import ConfigError
from lstm_report.model import ModelAnalysis, ReportData

if TYPE_CHECKING:
    from lstm_report.analysis.series import Series
    from lstm_report.figures import Workers

Progress = Callable[[str], None]


@dataclass(frozen=True, eq=False)
class BuildResult:
    """What build_report wrote, and the data it wrote."""

    html_path: Path
    json_path: Path | None
    report: ReportData
    data: dict[str, Any]


def build_report(
    config: str | Path | Mapping[str, Any] | Config,
    *,
    output: str | Path | None = None,
    json_path: str | Path | None = None,
    unsafe: bool = False,
    verify: bool | None = None,
    reader: str | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Build the report for a config (a YAML path, a mapping, or a Config) and write it.

    ``verify`` replays every layer in numpy and compares with a Keras LSTM; None (the
    default) verifies whenever the model was read through Keras, which is then loaded anyway.
    """
    from lstm_report.figures import Workers

    say = progress or (lambda _msg: None)
    cfg = _as_config(config)
    with Workers() as workers:
        return _build(cfg, output, json_path, unsafe, verify, reader, say, workers)


def _build(
    cfg: Config,
    output: str | Path | None,
    json_path: str | Path | None,
    unsafe: bool,
    verify: bool | None,
    reader: str | None,
    say: Progress,
    workers: Workers,
) -> BuildResult:
    from lstm_report.analysis import analyse_model, headlines, verify_model
    from lstm_report.analysis.compare import compare_models
    from lstm_report.figures import draw_figures
    from lstm_report.readers import keras_inputs, read_model
    from lstm_report.render import render_html
    from lstm_report.report_json import dumps, report_json
    from lstm_report.write import write_files

    if unsafe:
        cfg = replace(cfg, models=tuple(replace(m, unsafe=True) for m in cfg.models))
    if reader is not None:
        cfg = replace(cfg, models=tuple(replace(m, reader=reader) for m in cfg.models))
    if verify is None:
        verify = cfg.verify
    html_path = _output_path(cfg, output)

    models = []
    pending: dict[str, Any] = {}
    to_verify: list[bool] = []
    for i, spec in enumerate(cfg.models):
        say(f"reading {spec.name}")
        weights = read_model(spec)
        say(f"analysing {spec.name}")
        analysed = analyse_model(
            spec, weights, i, checks=cfg.checks, keras_inputs=keras_inputs(spec)
        )
        to_verify.append(verify if verify is not None else weights.reader == "keras")
        if to_verify[-1]:
            _import_keras_in_background()
        if spec.series:
            analysed = replace(analysed, series=read_series(spec, analysed, say))
        models.append(analysed)
        # Start drawing this model's figures while the next one is read and analysed.
        for la in analysed.layers:
            pending[la.anchor] = workers.submit("layer", la)
    # Verification needs Keras: it runs while the figures are drawn (they do not depend on it).
    if any(to_verify):
        say("verifying against Keras")
        models = [verify_model(m, cfg.checks) if v else m for m, v in zip(models, to_verify)]
    by_name = {m.name: m for m in models}
    comparisons = tuple(
        compare_models(by_name[c.baseline], by_name[c.candidate], c.index, f"compare[{c.index}]")
        for c in cfg.compare
    )
    report = ReportData(
        title=cfg.title,
        generated=generated_at(),
        version=__version__,
        models=tuple(models),
        headlines=headlines(models),
        findings=tuple(f for m in models for la in m.layers for f in la.findings),
        comparisons=comparisons,
    )
    say("drawing figures")
    figures = draw_figures(
        [], comparisons, [m.series for m in report.models if m.series is not None], workers
    )
    figures.update({anchor: f.result() for anchor, f in pending.items()})
    data = report_json(report)
    say("rendering")
    html = render_html(report, figures, data)
    outputs = [(html_path, html)]
    json_out = Path(json_path) if json_path is not None else None
    if json_out is not None:
        outputs.append((json_out, dumps(data)))
    write_files(outputs)
    return BuildResult(html_path=html_path, json_path=json_out, report=report, data=data)


def _import_keras_in_background() -> None:
    """Start importing TensorFlow now, so that it overlaps with the analysis."""
    import sys
    import threading

    if "keras" in sys.modules or any(t.name == "lstm-report-keras" for t in threading.enumerate()):
        return
    from lstm_report.readers.keras_reader import import_keras

    def run() -> None:
        try:
            import_keras()
        except Exception:  # reported properly when the verification imports it again
            pass

    threading.Thread(target=run, name="lstm-report-keras", daemon=True).start()


def read_series(spec: ModelSpec, analysed: ModelAnalysis, say: Progress) -> Series:
    """Per-gate figures of every checkpoint; the last one was analysed in full."""
    from lstm_report.analysis.series import Series, checkpoint_figures
    from lstm_report.readers import read_model

    keep = {(la.weights.name, la.weights.direction) for la in analysed.layers}
    points = []
    previous = None
    assert spec.series is not None
    for n, path in enumerate(spec.series, 1):
        say(f"checkpoint {n}/{len(spec.series)}: {path.name}")
        weights = read_model(replace(spec, path=path))
        points.append(checkpoint_figures(path, weights, previous, keep))
        previous = weights
    return Series(model=spec.name, checkpoints=tuple(points), anchor=f"{analysed.anchor}-series")


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
