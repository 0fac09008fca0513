"""What each subcommand does, printing nothing: cli.py prints and decides the exit status.

The stages are imported in the function that runs them, so that ``lstm-report --help``
imports neither numpy nor matplotlib (nor TensorFlow, which only verify and the Keras
reader import, themselves lazily).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lstm_report._resources import demo_config
from lstm_report.config.schema import Config
from lstm_report.config.sources import (
    check_config_suffix,
    is_model_file,
    model_file_config,
    with_baseline,
    with_overrides,
)
from lstm_report.config.yaml_file import load_config
from lstm_report.errors import ConfigError
from lstm_report.malloc import map_large_blocks_for
from lstm_report.output.fail_if import Condition

if TYPE_CHECKING:
    from lstm_report.figures.export import Written
    from lstm_report.model.analyses import Finding, Severity
    from lstm_report.model.report import ReportData
    from lstm_report.pipeline import BuildResult
    from lstm_report.site.build import Skipped
    from lstm_report.sweep.run import BatchProgress as Progress
    from lstm_report.sweep.run import BatchResult


def build(args: argparse.Namespace, progress: Callable[[str], None] | None) -> BuildResult:
    """``build`` and ``demo``: the report, written."""
    from lstm_report.pipeline import build_report  # every stage, and numpy: not for --help

    if args.command == "demo":
        config = load_config(demo_config())
    else:
        config = build_config(args)
        if args.baseline is not None:
            config = with_baseline(config, args.baseline)
    map_large_blocks_for(path for _, path in config.input_files())
    return build_report(
        config,
        output=args.output,
        json_path=args.json_path,
        unsafe=args.unsafe,
        allow_external_data=args.allow_external_data,
        verify=args.verify,
        reader=args.reader,
        progress=progress,
        processes=True,
        markdown=getattr(args, "markdown", None),
        cache=not args.no_cache,
        junit=args.junit,
        dynamics=args.dynamics,
    )


def build_config(args: argparse.Namespace) -> Config:
    """The config file's Config, or the one-model config of a model file and its flags."""
    flags = {
        "--name": args.name,
        "--probe": args.probe,
        "--feature-names": args.feature_names,
        "--pad-token": getattr(args, "pad_token", None),
    }
    if is_model_file(args.config):
        return model_file_config(
            args.config,
            name=args.name,
            probe=args.probe,
            feature_names=args.feature_names,
            pad_token=getattr(args, "pad_token", None),
        )
    check_config_suffix(args.config)
    given = [flag for flag, value in flags.items() if value is not None]
    if given:
        raise ConfigError(
            f"{args.config}: {', '.join(given)} {'applies' if len(given) == 1 else 'apply'} "
            "only to a model file; in a config, set it in the model's entry"
        )
    return load_config(args.config)


def failing_conditions(conditions: Sequence[Condition], report: ReportData) -> list[Condition]:
    """The --fail-if conditions that hold for the report's headline numbers."""
    from lstm_report.output.alerts import failing  # numpy

    return failing(conditions, report)


def fails_on(findings: Sequence[Finding], level: Severity) -> bool:
    """``--fail-on LEVEL``: whether a finding of this severity or worse exists."""
    from lstm_report.model.analyses import severity_rank  # numpy

    return any(severity_rank(f.severity) <= severity_rank(level) for f in findings)


def report_summary(report: ReportData) -> str:
    """The Markdown summary of a report, for $GITHUB_STEP_SUMMARY."""
    from lstm_report.figures.page import Figures  # numpy
    from lstm_report.output.markdown import MarkdownSummary  # numpy

    return MarkdownSummary().write(report, Figures())


def figures(args: argparse.Namespace, progress: Callable[[str], None] | None) -> list[Written]:
    """``figures``: every figure of the report as its own file."""
    from lstm_report.figures.export import write_figures  # matplotlib
    from lstm_report.pipeline import report_and_figures  # numpy

    cfg = with_overrides(
        build_config(args),
        unsafe=args.unsafe,
        reader=args.reader,
        verify=args.verify,
        allow_external_data=args.allow_external_data,
    )
    map_large_blocks_for(path for _, path in cfg.input_files())
    report, drawn = report_and_figures(cfg, progress=progress)
    return write_figures(report, drawn, Path(args.output), args.format, args.dpi)


def site(args: argparse.Namespace) -> tuple[Path, list[Skipped]]:
    """``site``: the index of a folder of reports, and the files it skipped."""
    from lstm_report.site.build import build_site  # the page check and the index: not for --help

    return build_site(args.reports_dir, args.output, follow_links=args.follow_links)


def display(path: Path) -> str:
    """How the CLI names a site's index (site.index.display)."""
    from lstm_report.site.index import display as shown  # as site(): not for --help

    return shown(path)


def batch(args: argparse.Namespace, report: Callable[[Progress], None]) -> BatchResult:
    """``batch``: one report per config or model file, into a site."""
    from lstm_report.sweep.run import run_batch  # every stage, and numpy

    return run_batch(
        args.configs,
        args.output,
        jobs=args.jobs,
        scheduler=args.scheduler,
        json=args.json,
        unsafe=args.unsafe,
        allow_external_data=args.allow_external_data,
        verify=args.verify,
        reader=args.reader,
        progress=report,
        no_cache=args.no_cache,
    )


def batch_table(result: BatchResult) -> str:
    """The Markdown table of a batch's runs, for $GITHUB_STEP_SUMMARY."""
    from lstm_report.output.markdown import batch_summary  # numpy

    rows = [(o.name, o.status, None if o.row is None else o.row.numbers) for o in result.outcomes]
    return batch_summary(rows)
