"""The command line. The only module that prints errors or decides the exit status."""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from lstm_report._version import __version__
from lstm_report.errors import LstmReportError, one_line, shorten
from lstm_report.malloc import map_large_blocks_for

if TYPE_CHECKING:
    from lstm_report.config.schema import Config
    from lstm_report.model.report import ReportData

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def _parser() -> argparse.ArgumentParser:
    from lstm_report.readers.formats import suffix_text

    parser = argparse.ArgumentParser(
        prog="lstm-report",
        description="Explain what a trained recurrent network (LSTM or GRU, from Keras, "
        "PyTorch or ONNX) has learned from its weights: "
        "per-gate matrices, norms, spectra and figures, as one self-contained HTML page.",
    )
    parser.add_argument("--version", action="version", version=f"lstm-report {__version__}")
    # Options shared by the commands: every command's, those of every command that reads
    # models (build, demo, batch), and those of a single report (build, demo).
    basic = argparse.ArgumentParser(add_help=False)
    basic.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    basic.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay every layer in numpy and compare with Keras (default: when the model "
        "was read through Keras)",
    )
    reading.add_argument(
        "--reader",
        choices=("auto", "direct", "keras"),
        help="how to read model files: direct (h5py, no TensorFlow), keras, or auto "
        "(direct where it can, else Keras; the default)",
    )
    reading.add_argument(
        "--unsafe",
        action="store_true",
        help="allow models whose layers run Python code on load (Lambda layers); "
        "only for files you trust",
    )
    reading.add_argument(
        "--allow-external-data",
        action="store_true",
        help="let ONNX models read external data from any file in their folder, not only "
        "the data file made for them (model.onnx.data); only for folders you trust",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[basic, reading])
    common.add_argument(
        "--json", metavar="PATH", dest="json_path", help="also write the report data as JSON"
    )
    common.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        help="exit with status 3 if a finding of this severity or worse exists "
        "(the report is still written)",
    )
    common.add_argument(
        "--fail-if",
        metavar="EXPR",
        action="append",
        type=_condition,
        help="exit with status 3 if EXPR holds for the report's numbers, e.g. "
        "'max_spectral_radius > 1.2' or 'importance[a] < importance[b]' (repeatable; "
        "the report is still written; docs/ci.md lists the quantities)",
    )
    common.add_argument(
        "--junit",
        metavar="PATH",
        help="also write the findings as JUnit XML: one test case per model, layer and check",
    )
    common.add_argument(
        "--no-step-summary",
        action="store_true",
        help="do not append the Markdown summary to $GITHUB_STEP_SUMMARY (appended when set)",
    )
    common.add_argument(
        "--no-cache",
        action="store_true",
        help="read no cached figures of checkpoints: compute every one afresh (and store "
        "nothing); for build, the cache is in $XDG_CACHE_HOME/lstm-report/checkpoints",
    )
    common.add_argument(
        "--no-dynamics",
        dest="dynamics",
        action="store_false",
        help="skip the probe's dynamics: Lyapunov exponents, fixed points, slow manifolds "
        "and unit ablation (faster for large layers; as each model's 'dynamics: false')",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    build = sub.add_parser(
        "build",
        parents=[common],
        help="build a report from a YAML config or a model file",
        description="Build the report described by a YAML config file, or the report of one "
        f"model file ({suffix_text()}) with default settings.",
    )
    build.add_argument(
        "config",
        metavar="CONFIG_OR_MODEL",
        help="YAML config naming the models and layers to report on, or a model file",
    )
    build.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="HTML file to write (default: the config's 'output', else NAME.html in the "
        "current folder, NAME being the config's file name or, for a model file, --name "
        "or the model file's name)",
    )
    build.add_argument(
        "--markdown",
        metavar="PATH",
        help="also write a short Markdown summary (takeaways, findings, headline numbers, "
        "a link to the page), e.g. for a pull-request comment or $GITHUB_STEP_SUMMARY",
    )
    build.add_argument(
        "--baseline",
        metavar="OLD.json",
        help="also compare each model with its entry in a report's JSON written earlier "
        "(--json): the numbers the JSON keeps, without the old model file",
    )
    model_only = build.add_argument_group(
        "when CONFIG_OR_MODEL is a model file (a config says these itself)"
    )
    model_only.add_argument(
        "--name",
        help="the model's name in the report; the page is NAME.html in the current folder "
        "unless -o says otherwise (default: the model file's name)",
    )
    model_only.add_argument(
        "--probe",
        metavar="PATH",
        help="probe data for the model input: .npy, or .npz with one array",
    )
    model_only.add_argument(
        "--feature-names",
        metavar="A,B,...",
        type=_names,
        help="names of the input features, comma-separated, in input order",
    )
    model_only.add_argument(
        "--pad-token",
        metavar="N",
        type=int,
        help="token models: the id that blanks a token in the importance (default 0)",
    )

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="build the report of the built-in demo model",
        description="Build the report of the built-in demo: a small LSTM trained on a synthetic "
        "task where only two of six input features matter.",
    )
    demo.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        default="lstm-report-demo.html",
        help="HTML file to write (default: %(default)s)",
    )
    site = sub.add_parser(
        "site",
        parents=[basic],
        help="build a static site from a folder of reports",
        description="Copy every lstm-report page under REPORTS_DIR into SITE_DIR/reports/ and "
        "write SITE_DIR/index.html, a sortable index built from the data the reports carry.",
    )
    site.add_argument("reports_dir", metavar="REPORTS_DIR", help="folder with report .html files")
    site.add_argument(
        "-o",
        "--output",
        metavar="SITE_DIR",
        default="site",
        help="folder to write the site to (default: %(default)s)",
    )
    site.add_argument(
        "--follow-links",
        action="store_true",
        help="also publish reports reached through symlinks that lead out of REPORTS_DIR "
        "(skipped by default)",
    )
    _add_batch(sub, [basic, reading])
    _add_figures(sub, [basic, reading])
    return parser


# -- figures (issue 26) -------------------------------------------------------------------


def _add_figures(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    figures = sub.add_parser(
        "figures",
        parents=parents,
        help="write every figure of a report as its own PDF, PNG or SVG file (matplotlib)",
        description="Draw every figure of the report of CONFIG_OR_MODEL with matplotlib, from "
        "the same geometry as the page, one file each, and DIR/figures.json listing what each "
        "shows. Needs matplotlib (a dependency); nothing else imports it.",
    )
    figures.add_argument("config", metavar="CONFIG_OR_MODEL", help="YAML config or model file")
    figures.add_argument(
        "-o", "--output", metavar="DIR", required=True, help="folder to write the figures to"
    )
    figures.add_argument(
        "--format", choices=("pdf", "png", "svg"), default="pdf", help="default: %(default)s"
    )
    figures.add_argument(
        "--dpi", type=float, default=300.0, help="resolution of PNG files (default: %(default)s)"
    )
    model_only = figures.add_argument_group("when CONFIG_OR_MODEL is a model file")
    model_only.add_argument("--name", help="the model's name (default: the file's name)")
    model_only.add_argument("--probe", metavar="PATH", help="probe data: .npy or .npz")
    model_only.add_argument(
        "--feature-names", metavar="A,B,...", type=_names, help="names of the input features"
    )


def _figures(args: argparse.Namespace, progress: Callable[[str], None] | None) -> int:
    from pathlib import Path

    from lstm_report.figures.export import report_figures, write_figures
    from lstm_report.pipeline import _with_overrides

    cfg = _with_overrides(
        _build_config(args),
        unsafe=args.unsafe,
        reader=args.reader,
        verify=args.verify,
        allow_external_data=args.allow_external_data,
    )
    map_large_blocks_for(path for _, path in cfg.input_files())
    report, figures = report_figures(cfg, progress=progress)
    written = write_figures(report, figures, Path(args.output), args.format, args.dpi)
    if not args.quiet:
        print(f"wrote {len(written)} figures and figures.json to {args.output}", file=sys.stderr)
    return EXIT_OK


# -- batch (issue 12) ---------------------------------------------------------------------


def _add_batch(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    batch = sub.add_parser(
        "batch",
        parents=parents,
        help="build the reports of many configs or model files into a site",
        description="Build one report per config or model file (a sweep's runs) into "
        "SITE_DIR/reports/, with a Markdown summary beside each, and write SITE_DIR/index.html "
        "to compare them. Runs whose inputs did not change since the last batch into SITE_DIR "
        "are not rebuilt. A failed run never stops the others: exit status 1 if any failed.",
    )
    batch.add_argument(
        "configs",
        metavar="CONFIG_OR_GLOB",
        nargs="+",
        help="config files or model files, or quoted globs ('runs/*/config.yaml')",
    )
    batch.add_argument("-o", "--output", metavar="SITE_DIR", required=True, help="the site folder")
    batch.add_argument(
        "--jobs",
        metavar="N",
        type=int,
        help="reports built at once on this machine (default: the number of cores)",
    )
    batch.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="build on the Dask cluster of this scheduler (tcp://HOST:PORT) instead; needs "
        "pip install 'lstm-report[dask]' and workers that see the input files at the same paths",
    )
    batch.add_argument(
        "--json", action="store_true", help="also write each report's data as JSON beside it"
    )
    batch.add_argument(
        "--no-step-summary",
        action="store_true",
        help="do not append a table of the runs to $GITHUB_STEP_SUMMARY (appended when set)",
    )
    batch.add_argument(
        "--no-cache",
        action="store_true",
        help="rebuild every run and compute every checkpoint afresh: reuse no page and no "
        "cached checkpoint of an earlier batch into SITE_DIR, and cache nothing",
    )


def _batch(args: argparse.Namespace) -> int:
    from lstm_report.site.index import display
    from lstm_report.sweep.run import BatchProgress, run_batch

    def report(p: BatchProgress) -> None:
        o = p.outcome
        if o.status == "failed":
            if args.debug and o.traceback:
                print(o.traceback, file=sys.stderr, end="")
            print(one_line(f"error: {o.message}"), file=sys.stderr, flush=True)
        if args.quiet or o.status == "reused":
            return
        if p.done:
            left = f", about {_duration(p.left)} left" if p.left and p.done < p.total else ""
            print(
                f"[{p.done}/{p.total} {_duration(p.elapsed)}{left}] {o.status} {o.source} "
                f"({o.seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    result = run_batch(
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
    if not args.no_step_summary:
        from lstm_report.output.ci import batch_summary

        rows = [
            (o.name, o.status, None if o.row is None else o.row.numbers) for o in result.outcomes
        ]
        _step_summary(lambda: batch_summary(rows), quiet=args.quiet)
    if not args.quiet:
        counts = ", ".join(
            f"{result.count(s)} {s}" for s in ("built", "reused", "failed") if result.count(s)
        )
        print(
            f"wrote {display(result.index)}: {counts} in {_duration(result.seconds)}",
            file=sys.stderr,
        )
    return EXIT_ERROR if result.failed else EXIT_OK


def _duration(seconds: float | None) -> str:
    s = seconds or 0.0
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {int(s % 60):02d} s"


# -- end of batch -------------------------------------------------------------------------


def _condition(text: str) -> Any:
    from lstm_report.errors import ExpressionError
    from lstm_report.output.fail_if import parse

    try:
        return parse(text)
    except ExpressionError as exc:
        # argparse names the option itself: "argument --fail-if: 'EXPR': what is wrong"
        raise argparse.ArgumentTypeError(_printable(str(exc).removeprefix("--fail-if "))) from None


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` runs."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    restore = _catch_signals()
    try:
        with _warnings_as_lines(quiet=args.quiet), _cache_environment():
            return _run(args)
    except LstmReportError as exc:
        from lstm_report.errors import ExpressionError

        if args.debug:
            traceback.print_exc()
        print(one_line(f"error: {_printable(str(exc))}"), file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ExpressionError) else EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Terminated:
        print("error: terminated", file=sys.stderr)
        return EXIT_SIGTERM
    except Exception as exc:  # a bug: still one line, unless --debug
        if args.debug:
            traceback.print_exc()
        first = _printable((str(exc).strip().splitlines() or [""])[0])
        print(
            one_line(
                f"error: internal error: {type(exc).__name__}: {shorten(first, 200)} "
                "(rerun with --debug for details)"
            ),
            file=sys.stderr,
        )
        return EXIT_ERROR
    finally:
        from lstm_report.fileio.write import remove_temporaries

        remove_temporaries()
        restore()


@contextlib.contextmanager
def _cache_environment() -> Iterator[None]:
    """Keras and matplotlib write their files under our cache folder, not the home folder
    (set before either is imported; restored afterwards for in-process callers)."""
    import os

    from lstm_report._resources import cache_environment

    added = cache_environment()
    os.environ.update(added)
    try:
        yield
    finally:
        for var in added:
            os.environ.pop(var, None)


_SILENT_WARNINGS: tuple[type[Warning], ...] = (
    DeprecationWarning,
    PendingDeprecationWarning,
    FutureWarning,
    ImportWarning,
    ResourceWarning,
    SyntaxWarning,
    BytesWarning,
)
"""Warnings for the developers of the libraries we use, not for the user of a report."""


@contextlib.contextmanager
def _warnings_as_lines(*, quiet: bool) -> Iterator[None]:
    """Python warnings from the libraries: nothing under -q (nor their logged warnings);
    else one ``warning:`` line each for those that tell the user something."""
    import logging
    import warnings

    with warnings.catch_warnings(), _logging_disabled(logging.WARNING if quiet else None):
        if quiet:
            warnings.simplefilter("ignore")
        else:
            for category in _SILENT_WARNINGS:
                warnings.simplefilter("ignore", category)
            # numpy's floating-point notes: the findings say which weights are not finite
            warnings.filterwarnings("ignore", message=".*encountered in", category=RuntimeWarning)
            warnings.showwarning = _show_warning
        yield


@contextlib.contextmanager
def _logging_disabled(level: int | None) -> Iterator[None]:
    """Under -q, the libraries' log records up to ``level`` (WARNING: every library's
    warnings, TensorFlow's among them) are dropped for the run; errors still print."""
    import logging

    if level is None:
        yield
        return
    before = logging.root.manager.disable
    logging.disable(max(level, before))
    try:
        yield
    finally:
        logging.disable(before)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    text = (str(message).strip().splitlines() or [category.__name__])[0]
    try:
        print(one_line(f"warning: {shorten(text, 200)}"), file=file or sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # stderr closed: nowhere to warn


def _catch_signals() -> Callable[[], None]:
    """SIGINT and SIGTERM become exceptions in the main thread: a batch's workers are stopped
    and temporary files removed on the way out. Returns what restores the previous handlers."""
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # a forked worker before it reset its handlers
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        # One is enough: a second Ctrl-C must not interrupt the cleanup.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            if old is not None:
                signal.signal(sig, old)

    return restore


def _run(args: argparse.Namespace) -> int:
    from lstm_report.config.schema import load_config
    from lstm_report.pipeline import build_report

    progress = None if args.quiet else _Progress()
    if args.command == "batch":
        return _batch(args)
    if args.command == "figures":
        return _figures(args, progress)
    if args.command == "site":
        from lstm_report.site.build import build_site
        from lstm_report.site.index import display

        index, skipped = build_site(args.reports_dir, args.output, follow_links=args.follow_links)
        if not args.quiet:
            for s in skipped:
                line = f"{'warning: ' if s.warning else ''}skipped {s.path}: {s.reason}"
                print(one_line(_printable(line)), file=sys.stderr)
            print(f"wrote {display(index)}", file=sys.stderr)
        return EXIT_OK
    if args.command == "demo":
        from lstm_report._resources import demo_config

        config = load_config(demo_config())
    else:
        config = _build_config(args)
        if args.baseline is not None:
            from lstm_report.config.schema import with_baseline

            config = with_baseline(config, args.baseline)
    map_large_blocks_for(path for _, path in config.input_files())
    result = build_report(
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
    findings = result.report.findings
    if not args.quiet:
        for warning in result.report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"wrote {result.html_path}", file=sys.stderr)
        if result.json_path is not None:
            print(f"wrote {result.json_path}", file=sys.stderr)
        if result.markdown_path is not None:
            print(f"wrote {result.markdown_path}", file=sys.stderr)
        if result.junit_path is not None:
            print(f"wrote {result.junit_path}", file=sys.stderr)
        for f in findings:
            if f.severity in ("error", "warning"):
                print(
                    _printable(f"{f.severity}: {f.model} › {f.layer}: {f.message} [{f.code}]"),
                    file=sys.stderr,
                )
    if not args.no_step_summary:
        _step_summary(lambda: _report_summary(result.report), quiet=args.quiet)
    failed = _failing_conditions(args.fail_if or [], result.report)  # a bad one: exit 2
    if not args.quiet:
        for c in failed:
            print(_printable(f"failed: --fail-if {c.text!r} holds"), file=sys.stderr)
    if args.fail_on is not None:
        from lstm_report.model.analyses import severity_rank

        if any(severity_rank(f.severity) <= severity_rank(args.fail_on) for f in findings):
            return EXIT_FINDINGS
    return EXIT_FINDINGS if failed else EXIT_OK


def _failing_conditions(conditions: Sequence[Any], report: ReportData) -> list[Any]:
    """The --fail-if conditions that hold for the report's headline numbers."""
    if not conditions:
        return []
    from lstm_report.output.fail_if import failing

    return failing(conditions, report)


def _report_summary(report: ReportData) -> str:
    from lstm_report.figures.page import Figures
    from lstm_report.output.markdown import MarkdownSummary

    return MarkdownSummary().write(report, Figures())


def _step_summary(text: Callable[[], str], *, quiet: bool) -> None:
    """Append to $GITHUB_STEP_SUMMARY where it is set; a warning (not a failure) if it cannot
    be written: the report is."""
    from lstm_report.output.ci import append_step_summary, step_summary_path

    path = step_summary_path()
    if path is None:
        return
    try:
        append_step_summary(path, text())
    except LstmReportError as exc:
        if not quiet:
            print(one_line(f"warning: {_printable(str(exc))}"), file=sys.stderr)


def _build_config(args: argparse.Namespace) -> Config:
    """The config file's Config, or the one-model config of a model file and its flags."""
    from lstm_report.config.schema import (
        check_config_suffix,
        is_model_file,
        load_config,
        model_file_config,
    )
    from lstm_report.errors import ConfigError

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


def _printable(text: str) -> str:
    """One line without terminal escapes: messages quote names taken from hostile files."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


class _Progress:
    """Stage messages on stderr, for a terminal only, and only once a run takes a moment."""

    DELAY = 0.5

    def __init__(self) -> None:
        import time

        self._clock = time.monotonic
        self._start = self._clock()
        self._tty = sys.stderr.isatty()

    def __call__(self, message: str) -> None:
        elapsed = self._clock() - self._start
        if self._tty and elapsed >= self.DELAY:
            print(f"[{elapsed:5.1f}s] {message}", file=sys.stderr, flush=True)
